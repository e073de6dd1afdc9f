"""How values are shown to a person, the same in the terminal and in the browser.

Untrusted text (plugin output, ids and paths a user typed) is made inert before display: C0
controls except newline and tab, DEL and C1 controls become ``\\xHH``; bidi controls
(U+202A-U+202E, U+2066-U+2069) become ``\\uHHHH``; a literal backslash is left as is (CLI.md,
DESIGN.md §6.7: one function does it). Durations and sizes read the way CLI.md writes them.

    escape_control("red\\x1b[31m")   # -> 'red\\\\x1b[31m'
    format_duration_ms(90_000)       # -> '1m 30s'
    format_bytes(1_572_864)          # -> '1.5 MiB'
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str, *, keep_newlines: bool = True) -> str:
    """Return ``text`` with every terminal control character made visible.

    Args:
        keep_newlines: leave ``\\n`` as a line break (multi-line messages); when false it is
            shown as ``\\x0a`` too (single-line cells).
    """
    escaped = _UNSAFE.sub(_visible, text)
    if not keep_newlines:
        escaped = escaped.replace("\n", "\\x0a")
    return escaped


def format_duration_ms(ms: int | None) -> str:
    """Render a duration the way CLI.md shows them: ``500ms``, ``2.5s``, ``1m 30s``, ``2h 5m``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        seconds = (ms // 100) / 10  # floor: 59,999 ms is 59.9s, not 60s
        text = f"{seconds:.1f}".rstrip("0").rstrip(".")
        return f"{text}s"
    total_s = ms // 1000
    if total_s < 3600:
        minutes, seconds = divmod(total_s, 60)
        return f"{minutes}m {seconds}s" if seconds else f"{minutes}m"
    if total_s < 86_400:
        hours, rest = divmod(total_s, 3600)
        minutes = rest // 60
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, rest = divmod(total_s, 86_400)
    hours = rest // 3600
    return f"{days}d {hours}h" if hours else f"{days}d"


def format_bytes(size: int) -> str:
    """Render a byte count with binary units (``512 B``, ``4.0 KiB``, ``1.5 MiB``)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
