"""The one vocabulary of Autokestra: states, reasons, levels, audit event types, the secret mask
and the root of every domain error. Every package imports these; none retypes them.

    from autokestra_obs_schema import State, TERMINAL_STATES, LogLevel, SECRET_MASK

    State("SUCCESS") in TERMINAL_STATES      # True
    LogLevel.parse("warn").severity          # 30
    f"token={SECRET_MASK}"                   # 'token=***SECRET***'

The schema's CHECK constraints are built from these enums (``sql_list``), so the database and
the code cannot disagree about a spelling.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

#: What every secret value becomes wherever it would be stored or shown.
SECRET_MASK = "***SECRET***"


class State(StrEnum):
    """State of an execution, a task run or a task attempt (the values of ``state`` columns)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: A task run that did not run by design: its ``if:`` was false, its trigger rule was not
    #: met, or an upstream was skipped. Never an execution's or an attempt's state.
    SKIPPED = "SKIPPED"

    @property
    def terminal(self) -> bool:
        """Whether no transition ever leaves this state."""
        return self in TERMINAL_STATES


#: States no transition leaves.
TERMINAL_STATES: frozenset[State] = frozenset(
    {State.SUCCESS, State.FAILED, State.CANCELLED, State.SKIPPED}
)
#: Terminal states that are not a success (``--exit-status``, ``run``'s exit code).
UNSUCCESSFUL_STATES: frozenset[State] = frozenset({State.FAILED, State.CANCELLED})


class Reason(StrEnum):
    """Reason codes stored in ``reason_code`` for the last transition (DESIGN.md §5)."""

    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED_BY_USER = "CANCELLED_BY_USER"
    CANCELLED_BY_SYSTEM = "CANCELLED_BY_SYSTEM"
    ENGINE_LOST = "ENGINE_LOST"
    RETRY_BACKOFF = "RETRY_BACKOFF"
    PLUGIN_ERROR = "PLUGIN_ERROR"
    TEMPLATE_ERROR = "TEMPLATE_ERROR"
    TASK_FAILED = "TASK_FAILED"
    ENGINE_ERROR = "ENGINE_ERROR"
    STORAGE_FULL = "STORAGE_FULL"
    #: SKIPPED: the task's ``if:`` condition was false.
    CONDITION_FALSE = "CONDITION_FALSE"
    #: FAILED: the task's ``if:`` condition could not be evaluated (``'a' < 3``).
    CONDITION_ERROR = "CONDITION_ERROR"
    #: SKIPPED: an upstream task was skipped and the task's rule needs every upstream SUCCESS.
    UPSTREAM_SKIPPED = "UPSTREAM_SKIPPED"
    #: SKIPPED: the task's ``run_if`` rule was not met (``any_failed`` and nothing failed).
    TRIGGER_RULE_UNMET = "TRIGGER_RULE_UNMET"
    #: FAILED: a for_each task one of whose iterations failed.
    ITERATION_FAILED = "ITERATION_FAILED"
    #: SKIPPED: a failure handler task of an execution that did not fail.
    NO_FAILURE = "NO_FAILURE"
    #: FAILED: the child execution a subflow task started did not succeed (or could not start).
    SUBFLOW_FAILED = "SUBFLOW_FAILED"


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

#: The message of an invalid level name, as CLI.md spells it.
INVALID_LEVEL_MESSAGE = _INVALID_LEVEL


class AuditEventType(StrEnum):
    """What happened to an execution; exactly one terminal type per execution."""

    CREATED = "CREATED"
    STARTED = "STARTED"
    STATE_CHANGE = "STATE_CHANGE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"


#: Event types that end an execution's story.
TERMINAL_EVENT_TYPES: frozenset[AuditEventType] = frozenset(
    {
        AuditEventType.COMPLETED,
        AuditEventType.FAILED,
        AuditEventType.CANCELLED,
        AuditEventType.TIMEOUT,
    }
)


def sql_list(members: Iterable[StrEnum]) -> str:
    """Enum members as an SQL list literal for a CHECK constraint: ``('A', 'B')``.

    Only for DDL built at import time from these enums (their values are fixed identifiers,
    never user input); queries bind their values as parameters.
    """
    return "(" + ", ".join(f"'{member.value}'" for member in members) + ")"


class AutokestraError(Exception):
    """Root of every domain error: its message is fit to show a user as one line."""


class ExecutionNotFound(AutokestraError, LookupError):
    """No execution has the requested id."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"Execution not found: {execution_id}")
        self.execution_id = execution_id
