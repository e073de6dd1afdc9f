"""Read-side domain errors; the CLI maps them to ``Error: <message>`` and exit code 1.

``ExecutionNotFound`` is the vocabulary's (``autokestra_obs_schema``); these are the errors
only the read side raises, all rooted in ``AutokestraError``.

    raise InvalidFilter("Invalid time format. Examples: 5m, 2h, 1d")
"""

from __future__ import annotations

from autokestra_obs_schema import AutokestraError


class InvalidFilter(AutokestraError, ValueError):
    """A filter value (level, since, attempt, ...) is not valid; the message says how."""


class TaskNotFound(AutokestraError, LookupError):
    """The execution exists but has no task run with the requested id."""

    def __init__(self, execution_id: str, task_id: str) -> None:
        super().__init__(f"Task not found: {task_id} in execution {execution_id}")
        self.execution_id = execution_id
        self.task_id = task_id
