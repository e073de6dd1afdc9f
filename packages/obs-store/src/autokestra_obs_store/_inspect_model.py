"""The records :class:`ExecutionInspector` returns: frozen, typed views of one execution.

They mirror the columns of ``executions``, ``task_runs``, ``task_attempts`` and
``execution_audit_events`` (DESIGN.md §2), with JSON columns already decoded and a few derived
fields (durations of live executions, the states of a task's dependencies).

    snapshot = ExecutionInspector(conn).snapshot(execution_id)
    for task in snapshot.tasks:
        print(task.task_id, task.state, [a.state for a in task.attempts])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autokestra_obs_schema import TERMINAL_STATES, State


@dataclass(frozen=True, slots=True)
class ChildExecution:
    """An execution a subflow task of this one started (``executions.parent_*`` name it)."""

    execution_id: str
    #: The subflow task run that started it (``call``, or ``call[2]`` in a fan-out).
    task_id: str
    workflow_id: str
    state: str


@dataclass(frozen=True, slots=True)
class ExecutionOverview:
    """One ``executions`` row, plus its duration (elapsed so far while it runs)."""

    execution_id: str
    workflow_id: str
    state: str
    trigger_type: str
    reason_code: str | None
    message: str | None
    failed_task_id: str | None
    created_at: int
    started_at: int | None
    ended_at: int | None
    updated_at: int
    log_entry_count: int
    #: Log entries the collector could not store (DESIGN.md §6.1); shown next to the count.
    logs_dropped: int
    cancel_requested_at: int | None
    cancelled_by: str | None
    cancel_reason: str | None
    inputs: Any
    workflow_source: str | None
    engine_id: str | None
    engine_pid: int | None
    engine_host: str | None
    heartbeat_at: int | None
    #: ended - started for a finished execution, now - started while it runs, else None.
    duration_ms: int | None
    #: The clock reading (Unix ms) the live figures were computed with.
    observed_at: int
    #: For an unfinished execution whose engine is gone (DESIGN.md §6.4): its engine's last
    #: heartbeat (Unix ms); None otherwise.
    engine_gone_since: int | None = None
    #: The execution and subflow task that started this one; None for a top-level execution.
    parent_execution_id: str | None = None
    parent_task_id: str | None = None
    #: The executions this one's subflow tasks started, oldest first.
    children: tuple[ChildExecution, ...] = ()

    @property
    def in_progress(self) -> bool:
        """True until the execution reaches a terminal state."""
        return self.state not in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One ``task_attempts`` row: why it ended, how long it ran, how it exited."""

    attempt: int
    state: str
    reason: str | None
    started_at: int | None
    ended_at: int | None
    #: The stored duration, or the elapsed time of a running attempt.
    duration_ms: int | None
    exit_code: int | None
    error: Any
    pid: int | None
    pgid: int | None

    @property
    def running(self) -> bool:
        """True while the attempt has started and not ended."""
        return self.started_at is not None and self.ended_at is None


@dataclass(frozen=True, slots=True)
class Dependency:
    """A task named in ``needs`` and its state in the same execution (None if absent)."""

    task_id: str
    state: str | None


@dataclass(frozen=True, slots=True)
class TaskView:
    """One ``task_runs`` row with its attempts and the states of its dependencies."""

    task_id: str
    position: int
    type: str
    state: str
    reason_code: str | None
    needs: tuple[Dependency, ...]
    attempt_count: int
    inputs: Any
    outputs: Any
    error: Any
    created_at: int
    queued_at: int | None
    started_at: int | None
    ended_at: int | None
    #: The stored duration, or the elapsed time of a running task.
    duration_ms: int | None
    attempts: tuple[AttemptView, ...]
    #: For a subflow task: the child executions it started (one per attempt), oldest first.
    child_execution_ids: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """True once the task run is in a terminal state."""
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One ``execution_audit_events`` row with its metadata decoded."""

    id: int
    event_type: str
    timestamp: int
    metadata: dict[str, Any]
    prev_hash: str | None
    hash: str


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one task's lane: waiting (queue or retry backoff) or an attempt running.

    Offsets are milliseconds from the execution start.
    """

    kind: str  # "wait" or "run"
    start_ms: int
    end_ms: int
    #: The attempt number of a run segment; for a wait, the attempt it waits for.
    attempt: int | None
    #: For a run segment: the attempt's state (RUNNING while it runs); None for a wait.
    state: str | None

    @property
    def failed(self) -> bool:
        """True for a run segment whose attempt ended FAILED (drawn with a final ``x``)."""
        return self.kind == "run" and self.state == State.FAILED


@dataclass(frozen=True, slots=True)
class TaskTimeline:
    """One lane of the Gantt chart: when the task was queued, ran and ended."""

    task_id: str
    state: str
    queued_ms: int | None
    start_ms: int | None
    end_ms: int | None
    duration_ms: int | None
    segments: tuple[Segment, ...]
    critical: bool
    running: bool


@dataclass(frozen=True, slots=True)
class Timeline:
    """The timeline model of an execution: lanes relative to ``origin`` (Unix ms).

    ``origin`` is the execution's ``started_at`` (its ``created_at`` until it starts).
    """

    origin: int
    span_ms: int
    lanes: tuple[TaskTimeline, ...]
    #: Task ids on the critical path, from the first to the last task of the chain.
    critical_path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Violation:
    """The first thing wrong with an execution's audit trail."""

    #: ``chain``, ``first_event``, ``terminal``, ``transition`` or ``state``.
    kind: str
    #: The offending audit row, or None when the problem is a missing event.
    event_id: int | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Inspection:
    """Everything about one execution, read in one read transaction."""

    execution: ExecutionOverview
    tasks: tuple[TaskView, ...]
    audit_events: tuple[AuditEvent, ...]
    timeline: Timeline
