"""Log levels and the log entry record shared by the collector, the capture and the engine.

level = LogLevel.parse("warn")          # LogLevel.WARN
entry = LogEntry("0190...", "fetch", 1, level, "worker", "retrying", None, 1764096000000)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_INVALID_LEVEL = "Invalid log level. Must be one of: DEBUG, INFO, WARN, ERROR"


class LogLevel(StrEnum):
    """The four levels a log entry can have, from least to most severe."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"

    @classmethod
    def parse(cls, text: str) -> LogLevel:
        """Parse a level name case-insensitively, ignoring surrounding blanks.

        Args:
            text: a level name such as ``"info"`` or ``"WARN"``.

        Returns:
            The matching level.

        Raises:
            ValueError: the text names no level (``WARNING`` is not accepted either: one
                spelling per level keeps ``--level`` filters and stored rows consistent).
        """
        if isinstance(text, LogLevel):
            return text
        if not isinstance(text, str):
            raise ValueError(_INVALID_LEVEL)
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ValueError(_INVALID_LEVEL) from None

    @property
    def severity(self) -> int:
        """Rank of the level: DEBUG 10, INFO 20, WARN 30, ERROR 40 (for threshold filters)."""
        return _SEVERITY[self]


_SEVERITY = {LogLevel.DEBUG: 10, LogLevel.INFO: 20, LogLevel.WARN: 30, LogLevel.ERROR: 40}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One structured log entry, as stored in ``execution_logs`` (without its id).

    Attributes:
        execution_id: the execution the entry belongs to.
        task_id: the task, or ``None`` for an execution-level entry.
        attempt: the task attempt (1-based), or ``None`` outside a task attempt.
        level: the entry's level.
        source: who wrote it: ``scheduler``, ``worker``, ``plugin:<ns>/<plugin>.<action>``.
        message: the (already redacted) message text.
        metadata: structured extra data (already redacted), or ``None``.
        timestamp: Unix milliseconds, assigned when the entry was logged.
    """

    execution_id: str
    task_id: str | None
    attempt: int | None
    level: LogLevel
    source: str
    message: str
    metadata: dict[str, Any] | None
    timestamp: int
