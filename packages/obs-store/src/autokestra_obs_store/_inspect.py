"""``ExecutionInspector``: everything about one execution, in a fixed number of queries.

Read-only. Each method reads whole sets (every task run of the execution in one query, every
attempt in another) and joins them in Python, so the query count never grows with the task
count (no N+1; a test counts the statements with apsw's exec tracer). Live executions are read
as they are: running tasks and attempts report their elapsed time up to the inspector's clock.

    inspector = ExecutionInspector(open_reader(db_path))
    snapshot = inspector.snapshot(execution_id)      # 4 queries, one read transaction
    print(snapshot.execution.state, len(snapshot.tasks), snapshot.timeline.critical_path)
    violation = inspector.verify(execution_id)       # None when the audit trail is intact
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import apsw

from autokestra_obs_schema import (
    TERMINAL_STATES,
    AuditKey,
    ExecutionNotFound,
    load_audit_key,
    now_ms,
)

from ._errors import TaskNotFound
from ._inspect_model import (
    AttemptView,
    AuditEvent,
    ChildExecution,
    Dependency,
    ExecutionOverview,
    Inspection,
    TaskView,
    Timeline,
    Violation,
)
from ._liveness import engine_gone
from ._retention import DEFAULT_RETENTION_DAYS
from ._timeline import build_timeline
from ._verify import AuditTrail, AuditVerdict, verify_trail

_EXECUTION_SQL = """
SELECT execution_id, workflow_id, state, trigger_type, reason_code, message, failed_task_id,
       created_at, started_at, ended_at, updated_at, log_entry_count, cancel_requested_at,
       cancelled_by, cancel_reason, inputs, workflow_source, engine_id, engine_pid,
       engine_host, heartbeat_at, logs_dropped, parent_execution_id, parent_task_id,
       -- The children of its subflow tasks in the same query (the query count stays fixed).
       (SELECT json_group_array(json_array(execution_id, parent_task_id, workflow_id, state))
        FROM (SELECT execution_id, parent_task_id, workflow_id, state FROM executions
              WHERE parent_execution_id = ?1 ORDER BY created_at, execution_id))
FROM executions WHERE execution_id = ?1
"""

# Whole-set reads: every task run, every attempt, every audit event of the execution in one
# query each; the Python side joins them (no N+1).
_TASKS_SQL = """
SELECT task_id, position, type, state, reason_code, needs, attempt_count, inputs, outputs,
       error, created_at, queued_at, started_at, ended_at, duration_ms
FROM task_runs WHERE execution_id = ? ORDER BY position, length(task_id), task_id
"""
_ONE_TASK_SQL = """
SELECT task_id, position, type, state, reason_code, needs, attempt_count, inputs, outputs,
       error, created_at, queued_at, started_at, ended_at, duration_ms
FROM task_runs WHERE execution_id = ? AND task_id = ?
"""
# The states of one task's dependencies, named by its `needs` JSON list, in one query.
_NEED_STATES_SQL = """
SELECT task_id, state FROM task_runs
WHERE execution_id = ? AND task_id IN (SELECT value FROM json_each(?))
"""
_ATTEMPTS_SQL = """
SELECT task_id, attempt, state, reason, started_at, ended_at, duration_ms, exit_code, error,
       pid, pgid
FROM task_attempts WHERE execution_id = ? ORDER BY task_id, attempt
"""
_TASK_ATTEMPTS_SQL = """
SELECT task_id, attempt, state, reason, started_at, ended_at, duration_ms, exit_code, error,
       pid, pgid
FROM task_attempts WHERE execution_id = ? AND task_id = ? ORDER BY attempt
"""
_AUDIT_SQL = """
SELECT id, event_type, timestamp, metadata, prev_hash, hash, keyed_hash
FROM execution_audit_events WHERE execution_id = ? ORDER BY id
"""
_HEAD_SQL = """
SELECT audit_event_count, audit_head FROM executions WHERE execution_id = ?
"""
_KEY_RECORD_SQL = "SELECT key_id, keyed_since, check_hash FROM audit_key WHERE id = 1"
# The type filter is one bound JSON list, so the statement text never depends on the input.
_AUDIT_TYPES_SQL = """
SELECT id, event_type, timestamp, metadata, prev_hash, hash
FROM execution_audit_events
WHERE execution_id = ? AND event_type IN (SELECT value FROM json_each(?)) ORDER BY id
"""


def _json(text: str | None) -> Any:
    # The schema's CHECK (json_valid(...)) guarantees the text decodes.
    return None if text is None else json.loads(text)


def _elapsed(
    started: int | None, ended: int | None, stored: int | None, now: int, live: bool
) -> int | None:
    """The stored duration, else what the timestamps say (up to now while still live)."""
    if stored is not None:
        return stored
    if started is None:
        return None
    if ended is not None:
        return max(0, ended - started)
    return max(0, now - started) if live else None


class ExecutionInspector:
    """Reads one execution's overview, task runs, attempts, audit trail and timeline.

    Args:
        conn: a connection to the database, usually from ``open_reader``; never written.
        clock: Unix-ms clock used for the elapsed time of live executions.
    """

    def __init__(self, conn: apsw.Connection, *, clock: Callable[[], int] = now_ms) -> None:
        self._conn = conn
        self._clock = clock

    @contextmanager
    def _read_transaction(self) -> Iterator[None]:
        """One read snapshot, so a live execution's rows are mutually consistent."""
        if self._conn.in_transaction:
            yield  # the caller's transaction already gives a snapshot
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return list(self._conn.cursor().execute(sql, params))

    # -- overview ------------------------------------------------------------------------

    def _overview(self, execution_id: str) -> ExecutionOverview:
        rows = self._rows(_EXECUTION_SQL, (execution_id,))
        if not rows:
            raise ExecutionNotFound(execution_id)
        (
            eid, workflow_id, state, trigger_type, reason_code, message, failed_task_id,
            created_at, started_at, ended_at, updated_at, log_entry_count,
            cancel_requested_at, cancelled_by, cancel_reason, inputs, workflow_source,
            engine_id, engine_pid, engine_host, heartbeat_at, logs_dropped,
            parent_execution_id, parent_task_id, children,
        ) = rows[0]  # fmt: skip
        now = self._clock()
        live = state not in TERMINAL_STATES
        gone = engine_gone(self._conn, eid, clock=self._clock) if live else None
        return ExecutionOverview(
            execution_id=eid,
            workflow_id=workflow_id,
            state=state,
            trigger_type=trigger_type,
            reason_code=reason_code,
            message=message,
            failed_task_id=failed_task_id,
            created_at=created_at,
            started_at=started_at,
            ended_at=ended_at,
            updated_at=updated_at,
            log_entry_count=log_entry_count,
            logs_dropped=logs_dropped,
            cancel_requested_at=cancel_requested_at,
            cancelled_by=cancelled_by,
            cancel_reason=cancel_reason,
            inputs=_json(inputs),
            workflow_source=workflow_source,
            engine_id=engine_id,
            engine_pid=engine_pid,
            engine_host=engine_host,
            heartbeat_at=heartbeat_at,
            duration_ms=_elapsed(started_at, ended_at, None, now, live),
            observed_at=now,
            engine_gone_since=None if gone is None else gone.last_heartbeat_ms,
            parent_execution_id=parent_execution_id,
            parent_task_id=parent_task_id,
            children=tuple(ChildExecution(*child) for child in _json(children) or ()),
        )

    def overview(self, execution_id: str) -> ExecutionOverview:
        """Return the execution's metadata, state, reason, timestamps and duration.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        return self._overview(execution_id)

    # -- tasks ---------------------------------------------------------------------------

    def _attempt(self, row: tuple[Any, ...], now: int, live: bool) -> AttemptView:
        _, attempt, state, reason, started, ended, duration, exit_code, error, pid, pgid = row
        return AttemptView(
            attempt=attempt,
            state=state,
            reason=reason,
            started_at=started,
            ended_at=ended,
            duration_ms=_elapsed(started, ended, duration, now, live),
            exit_code=exit_code,
            error=_json(error),
            pid=pid,
            pgid=pgid,
        )

    def _tasks(
        self,
        task_rows: Iterable[tuple[Any, ...]],
        attempt_rows: Iterable[tuple[Any, ...]],
        states: dict[str, str],
        overview: ExecutionOverview,
    ) -> tuple[TaskView, ...]:
        now = overview.observed_at
        attempts: dict[str, list[AttemptView]] = {}
        for row in attempt_rows:
            attempts.setdefault(row[0], []).append(self._attempt(row, now, overview.in_progress))
        children: dict[str, list[str]] = {}
        for child in overview.children:
            children.setdefault(child.task_id, []).append(child.execution_id)
        views = []
        for row in task_rows:
            (
                task_id, position, type_, state, reason_code, needs, attempt_count, inputs,
                outputs, error, created_at, queued_at, started_at, ended_at, duration_ms,
            ) = row  # fmt: skip
            live = overview.in_progress and state not in TERMINAL_STATES
            views.append(
                TaskView(
                    task_id=task_id,
                    position=position,
                    type=type_,
                    state=state,
                    reason_code=reason_code,
                    needs=tuple(Dependency(need, states.get(need)) for need in _json(needs)),
                    attempt_count=attempt_count,
                    inputs=_json(inputs),
                    outputs=_json(outputs),
                    error=_json(error),
                    created_at=created_at,
                    queued_at=queued_at,
                    started_at=started_at,
                    ended_at=ended_at,
                    duration_ms=_elapsed(started_at, ended_at, duration_ms, now, live),
                    attempts=tuple(attempts.get(task_id, ())),
                    child_execution_ids=tuple(children.get(task_id, ())),
                )
            )
        return tuple(views)

    def _all_tasks(self, overview: ExecutionOverview) -> tuple[TaskView, ...]:
        task_rows = self._rows(_TASKS_SQL, (overview.execution_id,))
        attempt_rows = self._rows(_ATTEMPTS_SQL, (overview.execution_id,))
        states = {row[0]: row[3] for row in task_rows}
        return self._tasks(task_rows, attempt_rows, states, overview)

    def tasks(self, execution_id: str) -> tuple[TaskView, ...]:
        """Return every task run in declaration order, with attempts and dependency states.

        Inputs are as stored: secrets already masked as ``SECRET_MASK`` by the engine.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        with self._read_transaction():
            return self._all_tasks(self._overview(execution_id))

    def task(self, execution_id: str, task_id: str) -> TaskView:
        """Return one task run with its attempts and the states of its dependencies.

        Raises:
            ExecutionNotFound: no execution has this id.
            TaskNotFound: the execution has no task run ``task_id``.
        """
        with self._read_transaction():
            overview = self._overview(execution_id)
            task_rows = self._rows(_ONE_TASK_SQL, (execution_id, task_id))
            if not task_rows:
                raise TaskNotFound(execution_id, task_id)
            needs_json = task_rows[0][5]
            states = dict(self._rows(_NEED_STATES_SQL, (execution_id, needs_json)))
            attempt_rows = self._rows(_TASK_ATTEMPTS_SQL, (execution_id, task_id))
            return self._tasks(task_rows, attempt_rows, states, overview)[0]

    # -- audit ---------------------------------------------------------------------------

    def _audit(self, execution_id: str, types: Iterable[str] | None) -> tuple[AuditEvent, ...]:
        if types is None:
            rows = self._rows(_AUDIT_SQL, (execution_id,))
        else:
            wanted = json.dumps(sorted({str(t) for t in types}))
            rows = self._rows(_AUDIT_TYPES_SQL, (execution_id, wanted))
        return tuple(
            AuditEvent(
                id=row[0],
                event_type=row[1],
                timestamp=row[2],
                metadata=_json(row[3]),
                prev_hash=row[4],
                hash=row[5],
            )
            for row in rows
        )

    def audit_trail(
        self, execution_id: str, types: Iterable[str] | None = None
    ) -> tuple[AuditEvent, ...]:
        """Return the execution's audit events in the order they were written.

        Args:
            types: only these event types (e.g. ``{AuditEventType.STATE_CHANGE}``); all when None.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        with self._read_transaction():
            self._overview(execution_id)
            return self._audit(execution_id, types)

    # -- timeline, snapshot, verify --------------------------------------------------------

    def timeline(self, execution_id: str) -> Timeline:
        """Return the timeline model: lanes, wait/run segments, critical path.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        with self._read_transaction():
            overview = self._overview(execution_id)
            return build_timeline(overview, self._all_tasks(overview))

    def snapshot(self, execution_id: str) -> Inspection:
        """Return overview, tasks, audit trail and timeline from one read transaction.

        Four queries whatever the number of tasks.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        with self._read_transaction():
            overview = self._overview(execution_id)
            tasks = self._all_tasks(overview)
            events = self._audit(execution_id, None)
        return Inspection(
            execution=overview,
            tasks=tasks,
            audit_events=events,
            timeline=build_timeline(overview, tasks),
        )

    def verify(self, execution_id: str) -> Violation | None:
        """Check the audit trail; return the first violation, or None when it is intact.

        The same check as :meth:`verify_trail` with the database's own audit key (when
        ``audit.key`` is beside it) and the default retention window.

        Raises:
            ExecutionNotFound: no execution has this id.
            AuditKeyError: ``audit.key`` exists but cannot be used.
        """
        return self.verify_trail(execution_id).violation

    def verify_trail(
        self,
        execution_id: str,
        *,
        key: AuditKey | bool | None = True,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> AuditVerdict:
        """Check the audit trail and say whether its content could be authenticated.

        Checks, in this order: a trail missing although the execution ended within the
        retention window; the hash chain (each row's ``prev_hash`` and ``hash`` recomputed
        with ``audit_digest``); with the key, each ``keyed_hash``, the chain head stored with
        the execution (deleted newest events) and that nothing created after keying began is
        unkeyed; then CREATED first, a legal transition sequence, exactly one terminal event
        and the execution's state equal to the state the last event implies.

        Args:
            execution_id: the execution.
            key: ``True`` (default) reads ``audit.key`` beside the database (none there:
                unkeyed); ``False`` or ``None`` checks links only; or the key itself.
            retention_days: the retention window in force (``RetentionPolicy.days``).

        Returns:
            The verdict: ``violation`` (None when intact), ``keyed`` and ``status``.

        Raises:
            ExecutionNotFound: no execution has this id.
            AuditKeyError: ``key=True`` and ``audit.key`` exists but cannot be used.
        """
        if key is True:
            resolved = load_audit_key(self._conn.db_filename("main"))
        elif key is False:
            resolved = None
        else:
            resolved = key
        with self._read_transaction():
            overview = self._overview(execution_id)
            rows = self._rows(_AUDIT_SQL, (execution_id,))
            ((event_count, head),) = self._rows(_HEAD_SQL, (execution_id,))
            records = self._rows(_KEY_RECORD_SQL, ())
        trail = AuditTrail(
            state=overview.state,
            created_at=overview.created_at,
            ended_at=overview.ended_at if overview.ended_at is not None else overview.updated_at,
            event_count=event_count,
            head=head,
            rows=rows,
            key_record=(str(records[0][0]), int(records[0][1]), str(records[0][2]))
            if records
            else None,
        )
        return verify_trail(
            execution_id, trail, key=resolved, now=self._clock(), retention_days=retention_days
        )
