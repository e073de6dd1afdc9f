"""Read-side domain errors; the CLI maps them to ``Error: <message>`` and exit code 1."""

from __future__ import annotations


class ExecutionNotFound(LookupError):
    """No execution has the requested id."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"Execution not found: {execution_id}")
        self.execution_id = execution_id


class InvalidFilter(ValueError):
    """A filter value (level, since, attempt, ...) is not valid; the message says how."""
