"""Making untrusted text (plugin output) safe to print on a terminal.

CLI.md: C0 controls except newline and tab, DEL and C1 controls are shown as ``\\xHH``; bidi
controls (U+202A-U+202E, U+2066-U+2069) as ``\\uHHHH``; a literal backslash is left as is.

    escape_control("red\\x1b[31m")  # -> 'red\\\\x1b[31m'
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
