"""The one duration grammar of Autokestra: ``250ms``, ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``.

Workflow files (timeouts, retry delays), the config file and the CLI (``--since``,
``--older-than``) all parse durations here, so they accept exactly the same strings.

    parse_duration_ms("1h30m")  # -> 5_400_000
"""

from __future__ import annotations

import re

_UNIT_MS: dict[str, int] = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
_ORDER = ("d", "h", "m", "s", "ms")
# "ms" must be tried before "m"; ASCII digits only (\d would take "٣"); at most 12 digits.
_PART = re.compile(r"([0-9]{1,12})(ms|d|h|m|s)")
#: The longest duration accepted (100 years): beyond it a "since" would precede the epoch.
MAX_DURATION_MS = 36_500 * 86_400_000


def parse_duration_ms(text: str) -> int:
    """Parse a duration into milliseconds.

    One or more ``<integer><unit>`` parts, units ``d``, ``h``, ``m``, ``s``, ``ms`` in
    descending order, each at most once. No signs, fractions, spaces or bare numbers.

    Raises:
        ValueError: the text is not a positive duration of at most 100 years.
    """
    if not text:
        raise ValueError("empty duration")
    position = 0
    total = 0
    last_rank = -1
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        rank = _ORDER.index(match.group(2))
        if rank <= last_rank:
            raise ValueError(f"units out of order or repeated in {text!r}")
        last_rank = rank
        total += int(match.group(1)) * _UNIT_MS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(f"not a duration: {text!r}")
    if total <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    if total > MAX_DURATION_MS:
        raise ValueError(f"duration too large: {text!r}")
    return total
