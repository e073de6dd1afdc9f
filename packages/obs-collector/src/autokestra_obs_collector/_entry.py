"""The log entry record shared by the collector, the capture and the engine.

entry = LogEntry("0190...", "fetch", 1, level, "worker", "retrying", None, 1764096000000)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autokestra_obs_schema import LogLevel


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
