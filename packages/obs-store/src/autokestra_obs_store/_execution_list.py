"""Listing executions: newest first with keyset paging, every id, and one execution's outcome.

The listing pages by the key ``(created_at, execution_id)`` (never OFFSET): a page is one
indexed statement whatever its depth, and a row inserted meanwhile never shifts the next page.
Pass the last summary's :attr:`ExecutionSummary.cursor` as ``before`` to get the next page.

    page = list_executions(conn, state=State.FAILED, limit=20)
    older = list_executions(conn, state=State.FAILED, before=page[-1].cursor, limit=20)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import apsw

from autokestra_obs_schema import ExecutionNotFound, State

# Every column of `executions`, in table order (the order `--json` keys have always had).
_LIST_SQL = """
SELECT execution_id, workflow_id, state, trigger_type, reason_code, message, failed_task_id,
    created_at, started_at, ended_at, updated_at, log_entry_count, cancel_requested_at,
    cancelled_by, cancel_reason, inputs, workflow_source, engine_id, engine_pid,
    engine_host, heartbeat_at, logs_dropped, audit_event_count, audit_head,
    parent_execution_id, parent_task_id
FROM executions
WHERE (:workflow_id IS NULL OR workflow_id = :workflow_id)
AND (:state IS NULL OR state = :state)
AND (:before_at IS NULL OR (created_at, execution_id) < (:before_at, :before_id))
ORDER BY created_at DESC, execution_id DESC LIMIT :limit
"""
_ALL_IDS_SQL = "SELECT execution_id FROM executions ORDER BY created_at, execution_id"
_OUTCOME_SQL = (
    "SELECT state, started_at, ended_at, created_at, message FROM executions WHERE execution_id = ?"
)


@dataclass(frozen=True, slots=True)
class ExecutionCursor:
    """Where a page of :func:`list_executions` ended: the key of its last (oldest) row."""

    created_at: int
    execution_id: str


@dataclass(frozen=True, slots=True)
class ExecutionSummary:
    """One ``executions`` row as stored: Unix-ms timestamps, ``inputs`` decoded from JSON.

    ``workflow_source`` is the source as run; the engine masks literal secret inputs in it
    before storing it, so it is fit to show.
    """

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
    cancel_requested_at: int | None
    cancelled_by: str | None
    cancel_reason: str | None
    inputs: Any
    workflow_source: str | None
    engine_id: str | None
    engine_pid: int | None
    engine_host: str | None
    heartbeat_at: int | None
    #: Log entries the collector could not store (DESIGN.md §6.1).
    logs_dropped: int
    #: The keyed audit chain head (DESIGN.md §6.8): event count and newest keyed hash.
    audit_event_count: int | None
    audit_head: str | None
    #: The execution and subflow task that started this one (a child); None otherwise.
    parent_execution_id: str | None = None
    parent_task_id: str | None = None

    @property
    def cursor(self) -> ExecutionCursor:
        """The ``before`` argument that continues a listing after this row."""
        return ExecutionCursor(self.created_at, self.execution_id)

    @property
    def duration_ms(self) -> int | None:
        """``ended_at - started_at`` once both are known, else None."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class ExecutionOutcome:
    """How an execution ended (or stands): what ``workflow run`` prints last."""

    state: State
    #: ``ended_at`` minus ``started_at`` (``created_at`` if it never started); None while live.
    duration_ms: int | None
    message: str | None


def _summary(row: tuple[Any, ...]) -> ExecutionSummary:
    values = list(row)
    inputs = values[15]
    # The schema's CHECK (json_valid(inputs)) guarantees the text decodes.
    values[15] = json.loads(inputs) if isinstance(inputs, str) else inputs
    return ExecutionSummary(*values)


def list_executions(
    conn: apsw.Connection,
    *,
    workflow_id: str | None = None,
    state: State | None = None,
    before: ExecutionCursor | None = None,
    limit: int = 20,
) -> list[ExecutionSummary]:
    """Return one page of executions, newest first (by ``created_at``, then id).

    Args:
        conn: a connection to the database (a read-only one is enough).
        workflow_id: only this workflow's executions.
        state: only executions in this state.
        before: only executions strictly older than this key (the previous page's last
            :attr:`ExecutionSummary.cursor`).
        limit: at most this many executions.

    Returns:
        The page; shorter than ``limit`` (or empty) when no older execution matches.

    Raises:
        ValueError: ``limit`` is not positive.
    """
    if limit < 1:
        raise ValueError("limit must be a positive integer")
    params = {
        "workflow_id": workflow_id,
        "state": None if state is None else state.value,
        "before_at": None if before is None else before.created_at,
        "before_id": None if before is None else before.execution_id,
        "limit": limit,
    }
    return [_summary(row) for row in conn.cursor().execute(_LIST_SQL, params)]


def all_execution_ids(conn: apsw.Connection) -> list[str]:
    """Every execution id in the database, oldest first (``audit verify --all``)."""
    return [str(row[0]) for row in conn.cursor().execute(_ALL_IDS_SQL)]


def execution_outcome(conn: apsw.Connection, execution_id: str) -> ExecutionOutcome:
    """Return the state, duration and message of one execution.

    Raises:
        ExecutionNotFound: no execution has this id.
    """
    rows: list[tuple[Any, ...]] = conn.cursor().execute(_OUTCOME_SQL, (execution_id,)).fetchall()
    if not rows:
        raise ExecutionNotFound(execution_id)
    state, started, ended, created, message = rows[0]
    duration = None if ended is None else int(ended) - int(started or created)
    return ExecutionOutcome(State(state), duration, None if message is None else str(message))
