"""Log filters: what the CLI's ``--level``/``--since``/``--grep``/... options select.

Every parser here raises :class:`InvalidFilter` with the exact CLI.md message, so the CLI only
prints it. Filter values are always bound as SQL parameters, never formatted into SQL.

    flt = LogFilter(levels=parse_levels("error,warn"), since_ms=parse_since("5m"), text="boom")
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autokestra_obs_schema import (
    INVALID_LEVEL_MESSAGE,
    LogLevel,
    ms_from_iso,
    now_ms,
    parse_duration_ms,
)

from ._errors import InvalidFilter

#: Every level's name as stored (plain strings: they are bound as SQL parameters).
_LEVEL_NAMES = frozenset(level.value for level in LogLevel)

#: CLI.md's message for a bad ``--since`` value (duration or timestamp).
INVALID_TIME_MESSAGE = "Invalid time format. Examples: 5m, 2h, 1d"
#: A --since timestamp: RFC 3339 (``T`` and ``Z`` in either case), seconds optional. Python's
#: ``fromisoformat`` alone refused a lowercase ``z`` and took forms no user means, such as a
#: space before the zone or an offset without its colon.
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)

#: Longest ``text`` filter: SQLite refuses LIKE patterns over 50,000 bytes, and this bound
#: keeps an escaped pattern far below it whatever the characters.
MAX_TEXT_LENGTH = 4096

#: The escape character of every LIKE pattern built here (``ESCAPE '\\'`` in the SQL).
LIKE_ESCAPE = "\\"


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which log entries to return; ``None`` (or an empty value) means "do not filter".

    Attributes:
        levels: exactly these levels (a set, not a threshold).
        since_ms: entries at or after this Unix-ms timestamp (the cutoff itself included).
        task_id: entries of this task only.
        source: entries whose source starts with this prefix (case-sensitive).
        text: entries whose message contains this substring, ignoring case; ``%``, ``_`` and
            ``\\`` match literally. ASCII text runs as SQLite ``LIKE``; text with other
            letters (``É``) compares casefolded strings in a registered function.
        attempt: entries of this attempt number of a task (execution-level entries excluded).
        tail: only the last N matching entries, still oldest first.
    """

    levels: frozenset[str] | None = None
    since_ms: int | None = None
    task_id: str | None = None
    source: str | None = None
    text: str | None = None
    attempt: int | None = None
    tail: int | None = None

    def __post_init__(self) -> None:
        if self.levels is not None and (not self.levels or not self.levels.issubset(_LEVEL_NAMES)):
            raise InvalidFilter(INVALID_LEVEL_MESSAGE)
        if self.attempt is not None and self.attempt < 1:
            raise InvalidFilter("Invalid attempt: must be a positive integer")
        if self.tail is not None and self.tail < 1:
            raise InvalidFilter("Invalid tail: must be a positive integer")
        if self.text is not None and len(self.text) > MAX_TEXT_LENGTH:
            raise InvalidFilter(f"Invalid grep text: longer than {MAX_TEXT_LENGTH} characters")

    def with_task(self, task_id: str) -> LogFilter:
        """Return a copy restricted to ``task_id``."""
        return LogFilter(
            levels=self.levels,
            since_ms=self.since_ms,
            task_id=task_id,
            source=self.source,
            text=self.text,
            attempt=self.attempt,
            tail=self.tail,
        )


def parse_levels(text: str) -> frozenset[str]:
    """Parse a comma-separated, case-insensitive level list such as ``"error,WARN"``.

    Raises:
        InvalidFilter: an empty list or an unknown level, with CLI.md's message.
    """
    items = [item.strip().upper() for item in text.split(",")]
    if not items or any(item not in _LEVEL_NAMES for item in items):
        raise InvalidFilter(INVALID_LEVEL_MESSAGE)
    return frozenset(items)


def parse_duration(text: str) -> int:
    """Parse a duration (``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``) into milliseconds.

    The grammar is obs-schema's :func:`~autokestra_obs_schema.parse_duration_ms`: zero,
    negative, fractional, unit-less, unknown-unit and overflowing values are refused.

    Raises:
        InvalidFilter: with CLI.md's "Invalid time format" message.
    """
    try:
        return parse_duration_ms(text)
    except ValueError as exc:
        raise InvalidFilter(INVALID_TIME_MESSAGE) from exc


def parse_since(text: str, *, now: int | None = None) -> int:
    """Parse a ``--since`` value into a Unix-ms cutoff.

    Args:
        text: a duration back from ``now`` (``5m``, ``1h30m``) or an ISO-8601 timestamp with a
            zone (``2026-11-25T18:00:00Z``, ``2026-11-25T19:00:00+01:00``).
        now: the reference time in Unix ms (default: the current time).

    Raises:
        InvalidFilter: anything else, with CLI.md's "Invalid time format" message.
    """
    if text[:1].isdigit() and "-" not in text and ":" not in text:
        return (now_ms() if now is None else now) - parse_duration(text)
    try:
        # A timestamp must be a full date-time with a zone; strip nothing, guess nothing.
        if _TIMESTAMP.fullmatch(text) is None:
            raise ValueError(text)
        return ms_from_iso(text.upper())
    except (ValueError, OverflowError) as exc:
        raise InvalidFilter(INVALID_TIME_MESSAGE) from exc


def like_contains(text: str) -> str:
    """Return a ``LIKE ... ESCAPE '\\'`` pattern matching ``text`` as a literal substring."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return "%" + escaped + "%"
