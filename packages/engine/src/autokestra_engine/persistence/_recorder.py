"""Every write the engine makes to the database, each in one transaction of the process's Writer.

Execution transitions are durable (``synchronous=FULL``) and write their audit events inside
the same transaction, so a state the database shows always has its audit trail. Task-run and
attempt rows commit with NORMAL durability: the next durable commit of the execution syncs
them too. Values stored here (inputs, outputs, errors, messages) must already be masked and
redacted by the caller.

    recorder = ExecutionRecorder(writer)
    recorder.create_execution(NewExecution(...))
    recorder.start_execution(execution_id, owner)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from autokestra_obs_audit import AuditLogger
from autokestra_obs_collector import (
    AttemptEnded,
    AttemptStarted,
    ExecutionEnded,
    ExecutionStarted,
    Observers,
    TaskEnded,
    TaskStarted,
)
from autokestra_obs_schema import (
    AuditEventType,
    AutokestraError,
    ExecutionNotFound,
    Reason,
    State,
    StorageError,
    StorageReserve,
    Writer,
    load_or_create_audit_key,
    now_ms,
)

from ._transitions import check_transition


class ExecutionAlreadyFinished(AutokestraError):
    """The execution is terminal: it can no longer be cancelled or run."""

    def __init__(self, execution_id: str, state: State) -> None:
        self.execution_id = execution_id
        self.state = state
        super().__init__(f"Execution {execution_id} is already {state}")


class CannotRecordExecution(StorageError):
    """Even with the storage reserve freed, an execution's end could not be stored (§6.2)."""

    def __init__(self, execution_id: str, cause: BaseException) -> None:
        self.execution_id = execution_id
        super().__init__(f"cannot record execution {execution_id}: {cause}")


class ExecutionOwned(AutokestraError):
    """Another engine process has claimed this execution."""

    def __init__(self, execution_id: str, engine_id: str) -> None:
        self.execution_id = execution_id
        self.engine_id = engine_id
        super().__init__(f"Execution {execution_id} is owned by engine {engine_id}")


def _error_message(error: Mapping[str, Any] | None) -> str | None:
    """The message of a stored error object, for the observers."""
    message = None if error is None else error.get("message")
    return None if message is None else str(message)


def to_json(value: object) -> str:
    """The JSON text stored in a JSON column (compact, UTF-8, key order kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class EngineOwner:
    """Identity of the engine process running an execution (crash recovery reads it)."""

    engine_id: str
    pid: int
    host: str


@dataclass(frozen=True, slots=True)
class NewTask:
    """One task run to create with its execution."""

    task_id: str
    type: str
    needs: tuple[str, ...]
    position: int


class DeliveryReplayed(AutokestraError):
    """A webhook delivery id this workflow already received (a replayed request)."""

    def __init__(self, workflow_id: str, delivery_id: str) -> None:
        self.workflow_id = workflow_id
        self.delivery_id = delivery_id
        super().__init__(f"delivery {delivery_id} of workflow {workflow_id} was already received")


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """The webhook request that creates an execution (a ``webhook_deliveries`` row).

    Attributes:
        delivery_id: the sender's id of this delivery, unique per workflow.
        signed_at: the signed timestamp of the request (Unix ms).
        received_at: when the server received it (Unix ms).
        content_type: the request's media type (``application/json``), or None.
        body: what ``{{ trigger.body }}`` reads: decoded JSON or text, already masked.
    """

    delivery_id: str
    signed_at: int
    received_at: int
    content_type: str | None
    body: Any


@dataclass(frozen=True, slots=True)
class ParentLink:
    """The execution and task that started a child execution (a subflow)."""

    execution_id: str
    task_id: str


@dataclass(frozen=True, slots=True)
class NewExecution:
    """Everything stored when an execution is created."""

    execution_id: str
    workflow_id: str
    trigger_type: str
    inputs: Mapping[str, Any]
    workflow_source: str
    tasks: Sequence[NewTask]
    owner: EngineOwner | None = None
    delivery: WebhookDelivery | None = None
    parent_execution_id: str | None = None
    parent_task_id: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    """The columns of an ``executions`` row the engine acts on."""

    execution_id: str
    workflow_id: str
    state: State
    trigger_type: str
    reason_code: str | None
    created_at: int
    started_at: int | None
    ended_at: int | None
    cancel_requested_at: int | None
    cancelled_by: str | None
    cancel_reason: str | None
    inputs: dict[str, Any]
    workflow_source: str
    engine_id: str | None
    message: str | None = None
    parent_execution_id: str | None = None

    @property
    def duration_ms(self) -> int | None:
        """Wall time from start (or creation, if it never started) to end; None while open."""
        if self.ended_at is None:
            return None
        return self.ended_at - (self.started_at or self.created_at)


_SELECT_EXECUTION = (
    "SELECT execution_id, workflow_id, state, trigger_type, reason_code, created_at, started_at,"
    " ended_at, cancel_requested_at, cancelled_by, cancel_reason, inputs, workflow_source,"
    " engine_id, message, parent_execution_id FROM executions WHERE execution_id = ?"
)


_SELECT_DELIVERY = (
    "SELECT delivery_id, signed_at, content_type, body FROM webhook_deliveries"
    " WHERE execution_id = ?"
)
_DELIVERY_EXISTS = "SELECT 1 FROM webhook_deliveries WHERE workflow_id = ? AND delivery_id = ?"
_INSERT_DELIVERY = (
    "INSERT INTO webhook_deliveries (workflow_id, delivery_id, execution_id, signed_at,"
    " received_at, content_type, body) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def load_trigger(conn: apsw.Connection, row: ExecutionRow) -> dict[str, Any]:
    """What ``{{ trigger.* }}`` reads for a stored execution.

    ``{"type": <trigger type>}``, plus ``body``, ``delivery_id`` and ``content_type`` for an
    execution a webhook request created (the body as stored: masked).
    """
    trigger: dict[str, Any] = {"type": row.trigger_type}
    if row.trigger_type != "webhook":
        return trigger
    found = conn.execute(_SELECT_DELIVERY, (row.execution_id,)).fetchall()
    if found:
        delivery_id, _, content_type, body = found[0]
        trigger.update(
            body=json.loads(str(body)) if body is not None else None,
            delivery_id=str(delivery_id),
            content_type=content_type,
        )
    return trigger


def delivery_received(conn: apsw.Connection, workflow_id: str, delivery_id: str) -> bool:
    """Whether ``workflow_id`` already received the delivery ``delivery_id``."""
    return bool(conn.execute(_DELIVERY_EXISTS, (workflow_id, delivery_id)).fetchall())


def load_execution(conn: apsw.Connection, execution_id: str) -> ExecutionRow | None:
    """Read one execution through any connection (the writer's or a read-only one)."""
    rows: list[tuple[Any, ...]] = conn.execute(_SELECT_EXECUTION, (execution_id,)).fetchall()
    if not rows:
        return None
    row = rows[0]
    return ExecutionRow(
        execution_id=str(row[0]),
        workflow_id=str(row[1]),
        state=State(row[2]),
        trigger_type=str(row[3]),
        reason_code=row[4],
        created_at=int(row[5]),
        started_at=row[6],
        ended_at=row[7],
        cancel_requested_at=row[8],
        cancelled_by=row[9],
        cancel_reason=row[10],
        inputs=json.loads(row[11]) if row[11] else {},
        workflow_source=str(row[12] or ""),
        engine_id=row[13],
        message=None if row[14] is None else str(row[14]),
        parent_execution_id=None if row[15] is None else str(row[15]),
    )


def load_task_outputs(
    conn: apsw.Connection, execution_id: str, task_ids: Iterable[str]
) -> dict[str, Any]:
    """The stored (redacted) outputs of an execution's successful tasks, by task id.

    Only the ``task_ids`` asked for (a workflow's declared tasks, not its iterations).
    """
    wanted = set(task_ids)
    rows: list[tuple[Any, ...]] = conn.execute(
        "SELECT task_id, outputs FROM task_runs WHERE execution_id = ? AND state = ?"
        " ORDER BY position, task_id",
        (execution_id, State.SUCCESS.value),
    ).fetchall()
    return {
        str(task_id): json.loads(outputs) if outputs else {}
        for task_id, outputs in rows
        if task_id in wanted
    }


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What :meth:`ExecutionRecorder.request_cancel` did."""

    state: State
    recorded: bool
    """False when an earlier request was already recorded (the first one wins)."""
    cancelled_now: bool
    """True when the execution was queued with no engine and was cancelled at once."""
    pending_task_count: int = 0


class ExecutionRecorder:
    """The engine's write path: executions, task runs, attempts, cancel requests.

    Every transition it commits is also told to ``observers`` (telemetry), after the commit
    and with the stored timestamp; without observers nothing more is done.

    Args:
        writer: the process's one :class:`~autokestra_obs_schema.Writer`.
        audit: the audit logger; by default one keyed with the database's audit key,
            created beside the database on first use (DESIGN.md §6.8).
        clock: Unix-ms clock, injectable so tests can pin timestamps.
        observers: told of every stored transition (default: none).

    Raises:
        StorageError: the audit key could not be read or created.
    """

    def __init__(
        self,
        writer: Writer,
        *,
        audit: AuditLogger | None = None,
        clock: Callable[[], int] = now_ms,
        observers: Observers | None = None,
    ) -> None:
        self.writer = writer
        if audit is None:
            # Every engine write path (runs, cancels, recovery) goes through a recorder, so
            # keying here keys every event this engine writes.
            audit = AuditLogger(key=load_or_create_audit_key(writer.path))
        self._audit = audit
        self._clock = clock
        self.observers = observers if observers is not None else Observers()
        #: The 1 MiB set aside beside the database for recording ends on a full disk.
        self.reserve = StorageReserve(writer.path)

    # -- executions -------------------------------------------------------------------------

    def create_execution(self, new: NewExecution) -> int:
        """Insert the execution (PENDING), its task runs and its CREATED audit event.

        With ``new.delivery``, the webhook delivery is recorded in the same transaction:
        of two requests with one delivery id, exactly one creates an execution.

        Returns:
            The creation timestamp (Unix ms).

        Raises:
            DeliveryReplayed: the workflow already received this delivery; nothing stored.
        """
        at = self._clock()
        owner = new.owner
        delivery = new.delivery
        with self.writer.transaction(durable=True) as conn:
            # BEGIN IMMEDIATE holds the database's write lock: no other writer can record
            # the same delivery between this check and the insert below.
            if delivery is not None and delivery_received(
                conn, new.workflow_id, delivery.delivery_id
            ):
                raise DeliveryReplayed(new.workflow_id, delivery.delivery_id)
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, trigger_type,"
                " created_at, updated_at, inputs, workflow_source, engine_id, engine_pid,"
                " engine_host, heartbeat_at, parent_execution_id, parent_task_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.execution_id,
                    new.workflow_id,
                    State.PENDING,
                    new.trigger_type,
                    at,
                    at,
                    to_json(dict(new.inputs)),
                    new.workflow_source,
                    owner.engine_id if owner else None,
                    owner.pid if owner else None,
                    owner.host if owner else None,
                    at if owner else None,
                    new.parent_execution_id,
                    new.parent_task_id,
                ),
            )
            for task in new.tasks:
                conn.execute(
                    "INSERT INTO task_runs (execution_id, task_id, position, type, state, needs,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        new.execution_id,
                        task.task_id,
                        task.position,
                        task.type,
                        State.PENDING,
                        to_json(list(task.needs)),
                        at,
                    ),
                )
            if delivery is not None:
                conn.execute(
                    _INSERT_DELIVERY,
                    (
                        new.workflow_id,
                        delivery.delivery_id,
                        new.execution_id,
                        delivery.signed_at,
                        delivery.received_at,
                        delivery.content_type,
                        to_json(delivery.body),
                    ),
                )
            created: dict[str, Any] = {
                "workflow_id": new.workflow_id,
                "trigger_type": new.trigger_type,
            }
            if delivery is not None:
                created["delivery_id"] = delivery.delivery_id
            if new.parent_execution_id:
                # A subflow's child names who started it, inside its own signed trail.
                created["parent_execution_id"] = new.parent_execution_id
                created["parent_task_id"] = new.parent_task_id
            self._audit.emit(conn, new.execution_id, AuditEventType.CREATED, created, timestamp=at)
        return at

    def start_execution(self, execution_id: str, owner: EngineOwner) -> ExecutionRow:
        """Claim a PENDING execution for ``owner`` and move it to RUNNING (STARTED audit).

        Replaying it on an execution this owner already runs is a no-op; a terminal
        execution is returned as is so the caller can report its final state.

        Raises:
            ExecutionNotFound: no such execution.
            ExecutionOwned: another engine owns it.
        """
        # Space may have returned since a full disk used the reserve: set it aside again
        # before this execution needs it (best effort, a cheap stat when it is there).
        self.reserve.ensure()
        with self.writer.transaction(durable=True) as conn:
            row = load_execution(conn, execution_id)
            if row is None:
                raise ExecutionNotFound(execution_id)
            if row.state.terminal:
                return row
            if row.engine_id is not None and row.engine_id != owner.engine_id:
                raise ExecutionOwned(execution_id, row.engine_id)
            if not check_transition(row.state, State.RUNNING, subject=f"execution {execution_id}"):
                return row
            at = self._clock()
            conn.execute(
                "UPDATE executions SET state = ?, reason_code = NULL, started_at = ?,"
                " updated_at = ?, engine_id = ?, engine_pid = ?, engine_host = ?,"
                " heartbeat_at = ? WHERE execution_id = ?",
                (State.RUNNING, at, at, owner.engine_id, owner.pid, owner.host, at, execution_id),
            )
            self._audit.emit(conn, execution_id, AuditEventType.STARTED, {}, timestamp=at)
            self._audit.emit(
                conn,
                execution_id,
                AuditEventType.STATE_CHANGE,
                {"from_state": row.state.value, "to_state": State.RUNNING.value},
                timestamp=at,
            )
            started = load_execution(conn, execution_id)
        assert started is not None  # written in this very transaction
        if self.observers:
            self.observers.execution_started(
                ExecutionStarted(execution_id, started.workflow_id, started.trigger_type, at)
            )
        return started

    def finish_execution(
        self,
        execution_id: str,
        state: State,
        *,
        terminal_event: AuditEventType,
        terminal_metadata: Mapping[str, Any],
        reason: str | None = None,
        message: str | None = None,
        failed_task_id: str | None = None,
        logs_dropped: int = 0,
    ) -> bool:
        """Move the execution to a terminal state with STATE_CHANGE + its terminal audit event.

        Args:
            logs_dropped: dropped log entries the collector could not record itself, added
                to ``executions.logs_dropped`` in the same transaction (DESIGN.md §6.1).

        Returns:
            ``False`` when the execution already is in ``state`` (replay: nothing written).

        Raises:
            ExecutionNotFound: no such execution.
            IllegalTransition: it is already in another terminal state.
        """
        with self.writer.transaction(durable=True) as conn:
            row = load_execution(conn, execution_id)
            if row is None:
                raise ExecutionNotFound(execution_id)
            if not check_transition(row.state, state, subject=f"execution {execution_id}"):
                return False
            at = self._clock()
            conn.execute(
                "UPDATE executions SET state = ?, reason_code = ?, message = ?,"
                " failed_task_id = ?, ended_at = ?, updated_at = ?,"
                " logs_dropped = logs_dropped + ? WHERE execution_id = ?",
                (str(state), reason, message, failed_task_id, at, at, logs_dropped, execution_id),
            )
            change: dict[str, Any] = {"from_state": str(row.state), "to_state": str(state)}
            if reason is not None:
                change["reason"] = reason
            self._audit.emit(conn, execution_id, AuditEventType.STATE_CHANGE, change, timestamp=at)
            metadata = dict(terminal_metadata)
            if terminal_event is not AuditEventType.TIMEOUT and "duration_ms" not in metadata:
                metadata["duration_ms"] = at - (row.started_at or row.created_at)
            self._audit.emit(conn, execution_id, terminal_event, metadata, timestamp=at)
        if self.observers:
            self.observers.execution_ended(
                ExecutionEnded(
                    execution_id,
                    row.workflow_id,
                    state,
                    reason,
                    message,
                    row.started_at or row.created_at,
                    at,
                )
            )
        return True

    def heartbeat(self, execution_id: str, engine_id: str) -> None:
        """Record that the owning engine is alive (NORMAL durability: it is advisory)."""
        at = self._clock()
        with self.writer.transaction() as conn:
            conn.execute(
                "UPDATE executions SET heartbeat_at = ? WHERE execution_id = ? AND engine_id = ?",
                (at, execution_id, engine_id),
            )

    def request_cancel(self, execution_id: str, *, by: str, reason: str | None) -> CancelOutcome:
        """Record a cancellation request; works from any process.

        The engine running the execution polls these columns and cancels. An execution still
        queued with no engine (``run --detach``) has nobody to notice, so it is cancelled here.

        Raises:
            ExecutionNotFound: no such execution.
            ExecutionAlreadyFinished: it is already SUCCESS, FAILED or CANCELLED.
        """
        with self.writer.transaction(durable=True) as conn:
            row = load_execution(conn, execution_id)
            if row is None:
                raise ExecutionNotFound(execution_id)
            if row.state.terminal:
                raise ExecutionAlreadyFinished(execution_id, row.state)
            at = self._clock()
            recorded = row.cancel_requested_at is None
            if recorded:
                conn.execute(
                    "UPDATE executions SET cancel_requested_at = ?, cancelled_by = ?,"
                    " cancel_reason = ?, updated_at = ? WHERE execution_id = ?",
                    (at, by, reason, at, execution_id),
                )
            if not (row.state is State.PENDING and row.engine_id is None):
                return CancelOutcome(row.state, recorded, cancelled_now=False)
            who = by if recorded else (row.cancelled_by or by)
            why = reason if recorded else row.cancel_reason
            pending = self.cancel_open_tasks(execution_id, Reason.CANCELLED_BY_USER)
            self.finish_execution(
                execution_id,
                State.CANCELLED,
                terminal_event=AuditEventType.CANCELLED,
                terminal_metadata={
                    "cancelled_by": who,
                    "reason": why,
                    "pending_task_count": pending,
                },
                reason=Reason.CANCELLED_BY_USER,
                message=f"Cancelled by {who}" + (f": {why}" if why else ""),
            )
        return CancelOutcome(
            State.CANCELLED, recorded, cancelled_now=True, pending_task_count=pending
        )

    # -- task runs --------------------------------------------------------------------------

    def _task_state(self, conn: apsw.Connection, execution_id: str, task_id: str) -> State:
        rows: list[tuple[Any, ...]] = conn.execute(
            "SELECT state FROM task_runs WHERE execution_id = ? AND task_id = ?",
            (execution_id, task_id),
        ).fetchall()
        if not rows:
            raise KeyError(f"task run {execution_id}/{task_id}")
        return State(rows[0][0])

    def _task_facts(
        self, conn: apsw.Connection, execution_id: str, task_id: str
    ) -> tuple[str, int, int | None]:
        """(type, attempt_count, started_at) of a task run, for the observers."""
        rows: list[tuple[Any, ...]] = conn.execute(
            "SELECT type, attempt_count, started_at FROM task_runs"
            " WHERE execution_id = ? AND task_id = ?",
            (execution_id, task_id),
        ).fetchall()
        task_type, attempts, started_at = rows[0]
        return str(task_type), int(attempts), started_at

    def start_fan_out(self, execution_id: str, task_id: str, iterations: Sequence[NewTask]) -> None:
        """Move a ``for_each`` task to RUNNING and insert one PENDING task run per iteration.

        The iterations' rows (ids ``task[0]``, ``task[1]``...) commit with the parent's
        transition, so a reader never sees a running fan-out without its iterations.
        """
        at = self._clock()
        with self.writer.transaction() as conn:
            current = self._task_state(conn, execution_id, task_id)
            check_transition(current, State.RUNNING, subject=f"task {task_id}")
            conn.execute(
                "UPDATE task_runs SET state = ?, started_at = COALESCE(started_at, ?)"
                " WHERE execution_id = ? AND task_id = ?",
                (State.RUNNING, at, execution_id, task_id),
            )
            for task in iterations:
                conn.execute(
                    "INSERT INTO task_runs (execution_id, task_id, position, type, state, needs,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        execution_id,
                        task.task_id,
                        task.position,
                        task.type,
                        State.PENDING,
                        to_json(list(task.needs)),
                        at,
                    ),
                )
            task_type = self._task_facts(conn, execution_id, task_id)[0] if self.observers else ""
        if self.observers:
            self.observers.task_started(TaskStarted(execution_id, task_id, task_type, at))

    def task_queued(self, execution_id: str, task_id: str) -> None:
        """Stamp the moment the scheduler handed the task to the worker pool.

        The scheduler stamps after the pool accepted the job, so a free worker may already
        have started it: ``queued_at`` is then capped at ``started_at``, keeping
        ``queued_at <= started_at <= ended_at`` for every task run (DESIGN.md §6.14).
        """
        at = self._clock()
        with self.writer.transaction() as conn:
            conn.execute(
                "UPDATE task_runs SET queued_at = min(?, coalesce(started_at, ?))"
                " WHERE execution_id = ? AND task_id = ?",
                (at, at, execution_id, task_id),
            )

    def start_attempt(
        self,
        execution_id: str,
        task_id: str,
        attempt: int,
        *,
        masked_inputs: Mapping[str, Any] | None,
        queued_at: int | None = None,
    ) -> int:
        """Move the task run to RUNNING and insert the attempt row (state RUNNING).

        The masked inputs are stored once, at the first attempt, and so is ``queued_at``
        (when the scheduler handed the task to the worker pool, stamped then and written
        here: one transaction less per task). Returns the start time.
        """
        at = self._clock()
        facts = None
        with self.writer.transaction() as conn:
            current = self._task_state(conn, execution_id, task_id)
            check_transition(current, State.RUNNING, subject=f"task {task_id}")
            if self.observers:
                facts = self._task_facts(conn, execution_id, task_id)
            conn.execute(
                "UPDATE task_runs SET state = ?, reason_code = NULL, attempt_count = ?,"
                " queued_at = COALESCE(queued_at, ?), started_at = COALESCE(started_at, ?),"
                " inputs = COALESCE(inputs, ?) WHERE execution_id = ? AND task_id = ?",
                (
                    State.RUNNING,
                    attempt,
                    queued_at,
                    at,
                    None if masked_inputs is None else to_json(dict(masked_inputs)),
                    execution_id,
                    task_id,
                ),
            )
            conn.execute(
                "INSERT INTO task_attempts (execution_id, task_id, attempt, state, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (execution_id, task_id, attempt, State.RUNNING, at),
            )
        if facts is not None:
            task_type, _, started_at = facts
            if started_at is None:
                self.observers.task_started(TaskStarted(execution_id, task_id, task_type, at))
            self.observers.attempt_started(AttemptStarted(execution_id, task_id, attempt, at))
        return at

    def attempt_spawned(
        self, execution_id: str, task_id: str, attempt: int, *, pid: int, pgid: int
    ) -> None:
        """Record the attempt's process and process group (to kill orphans after a crash)."""
        with self.writer.transaction() as conn:
            conn.execute(
                "UPDATE task_attempts SET pid = ?, pgid = ?"
                " WHERE execution_id = ? AND task_id = ? AND attempt = ?",
                (pid, pgid, execution_id, task_id, attempt),
            )

    def end_attempt(
        self,
        execution_id: str,
        task_id: str,
        attempt: int,
        state: State,
        *,
        reason: str | None,
        duration_ms: int,
        exit_code: int | None = None,
        error: Mapping[str, Any] | None = None,
        pid: int | None = None,
        pgid: int | None = None,
        retry_delay_ms: int | None = None,
        finish_task: bool = False,
        outputs: Mapping[str, Any] | None = None,
    ) -> None:
        """Close the attempt row: final state, why it ended, duration, exit code, error.

        With ``finish_task``, the task run ends in the same transaction, in the same state
        with the same reason and error, and ``outputs`` (what :meth:`finish_task` writes):
        the attempt and its task can never be seen half-ended, and a task costs one
        transaction less. ``retry_delay_ms`` is not stored (the retry's WAITING state and
        log entry are): it tells the observers that a retry follows, and after how long.
        """
        at = self._clock()
        task_ended: TaskEnded | None = None
        with self.writer.transaction() as conn:
            if finish_task:
                _, task_ended = self._finish_task(
                    conn,
                    execution_id,
                    task_id,
                    state,
                    at=at,
                    reason=reason,
                    outputs=outputs,
                    error=error,
                )
            conn.execute(
                "UPDATE task_attempts SET state = ?, reason = ?, ended_at = ?, duration_ms = ?,"
                " exit_code = ?, error = ?, pid = COALESCE(pid, ?), pgid = COALESCE(pgid, ?)"
                " WHERE execution_id = ? AND task_id = ? AND attempt = ?",
                (
                    str(state),
                    reason,
                    at,
                    duration_ms,
                    exit_code,
                    None if error is None else to_json(dict(error)),
                    pid,
                    pgid,
                    execution_id,
                    task_id,
                    attempt,
                ),
            )
        if self.observers:
            self.observers.attempt_ended(
                AttemptEnded(
                    execution_id,
                    task_id,
                    attempt,
                    state,
                    reason,
                    exit_code,
                    _error_message(error),
                    duration_ms,
                    at,
                    retry_delay_ms,
                )
            )
        if task_ended is not None:
            self.observers.task_ended(task_ended)

    def task_waiting(self, execution_id: str, task_id: str, reason: str) -> bool:
        """Move a RUNNING task run to WAITING(reason) between attempts."""
        with self.writer.transaction() as conn:
            current = self._task_state(conn, execution_id, task_id)
            if not check_transition(current, State.WAITING, subject=f"task {task_id}"):
                return False
            conn.execute(
                "UPDATE task_runs SET state = ?, reason_code = ?"
                " WHERE execution_id = ? AND task_id = ?",
                (State.WAITING, reason, execution_id, task_id),
            )
        return True

    def finish_task(
        self,
        execution_id: str,
        task_id: str,
        state: State,
        *,
        reason: str | None = None,
        outputs: Mapping[str, Any] | None = None,
        error: Mapping[str, Any] | None = None,
        queued_at: int | None = None,
    ) -> bool:
        """Move the task run to a terminal state with its outputs or error and duration.

        ``duration_ms`` is from the first attempt's start to now (retry waits included), or
        NULL for a task that never started. ``queued_at`` is written when none is yet (a
        task cancelled after it was handed to the pool but before it started).
        """
        at = self._clock()
        # A skip is a decision with no attempt behind it: its audit event commits with the
        # task row, durably, like an execution transition (docs/audit.md).
        skipped = state is State.SKIPPED
        with self.writer.transaction(durable=skipped) as conn:
            applied, ended = self._finish_task(
                conn,
                execution_id,
                task_id,
                state,
                at=at,
                reason=reason,
                outputs=outputs,
                error=error,
                queued_at=queued_at,
                audit=skipped,
            )
        if ended is not None:
            self.observers.task_ended(ended)
        return applied

    def _finish_task(
        self,
        conn: apsw.Connection,
        execution_id: str,
        task_id: str,
        state: State,
        *,
        at: int,
        reason: str | None,
        outputs: Mapping[str, Any] | None,
        error: Mapping[str, Any] | None,
        queued_at: int | None = None,
        audit: bool = False,
    ) -> tuple[bool, TaskEnded | None]:
        """End the task run inside ``conn``'s transaction; whether it moved, and the event
        to tell the observers once the transaction has committed (None without observers).

        With ``audit``, the transition is also a task ``STATE_CHANGE`` audit event (its
        ``task_id`` tells it from an execution transition), in the same transaction.
        """
        current = self._task_state(conn, execution_id, task_id)
        if not check_transition(current, state, subject=f"task {task_id}"):
            return False, None
        if audit:
            self._audit.emit(
                conn,
                execution_id,
                AuditEventType.STATE_CHANGE,
                {
                    "task_id": task_id,
                    "from_state": current.value,
                    "to_state": state.value,
                    "reason": reason,
                },
                timestamp=at,
            )
        facts = self._task_facts(conn, execution_id, task_id) if self.observers else None
        conn.execute(
            "UPDATE task_runs SET state = ?, reason_code = ?, outputs = ?, error = ?,"
            " queued_at = COALESCE(queued_at, ?), ended_at = ?, duration_ms = CASE WHEN"
            " started_at IS NULL THEN NULL ELSE ? - started_at END"
            " WHERE execution_id = ? AND task_id = ?",
            (
                str(state),
                reason,
                None if outputs is None else to_json(dict(outputs)),
                None if error is None else to_json(dict(error)),
                queued_at,
                at,
                at,
                execution_id,
                task_id,
            ),
        )
        if facts is None:
            return True, None
        task_type, attempts, _ = facts
        return True, TaskEnded(
            execution_id,
            task_id,
            task_type,
            state,
            reason,
            attempts,
            _error_message(error),
            at,
        )

    def cancel_unfinished_tasks(self, execution_id: str, reason: str) -> int:
        """CANCEL every task run not yet terminal (RUNNING ones too); returns how many.

        For an execution ended by a storage failure: a running task whose own end could not
        be stored must not stay RUNNING under a FAILED execution.
        """
        at = self._clock()
        with self.writer.transaction() as conn:
            rows = conn.execute(
                "SELECT task_id FROM task_runs WHERE execution_id = ? AND state IN (?, ?, ?)",
                (execution_id, State.PENDING, State.WAITING, State.RUNNING),
            ).fetchall()
            conn.execute(
                "UPDATE task_runs SET state = ?, reason_code = ?, ended_at = ?,"
                " duration_ms = CASE WHEN started_at IS NULL THEN NULL"
                " ELSE ? - started_at END WHERE execution_id = ? AND state IN (?, ?, ?)",
                (
                    State.CANCELLED,
                    reason,
                    at,
                    at,
                    execution_id,
                    State.PENDING,
                    State.WAITING,
                    State.RUNNING,
                ),
            )
        return len(rows)

    def cancel_open_tasks(self, execution_id: str, reason: str) -> int:
        """CANCEL every task run still PENDING or WAITING; returns how many there were."""
        at = self._clock()
        with self.writer.transaction() as conn:
            rows: list[tuple[Any, ...]] = conn.execute(
                "SELECT task_id, type, attempt_count FROM task_runs"
                " WHERE execution_id = ? AND state IN (?, ?)",
                (execution_id, State.PENDING, State.WAITING),
            ).fetchall()
            for task_id, _, _ in rows:
                conn.execute(
                    "UPDATE task_runs SET state = ?, reason_code = ?, ended_at = ?,"
                    " duration_ms = CASE WHEN started_at IS NULL THEN NULL"
                    " ELSE ? - started_at END WHERE execution_id = ? AND task_id = ?",
                    (State.CANCELLED, reason, at, at, execution_id, task_id),
                )
        if self.observers:
            for task_id, task_type, attempts in rows:
                self.observers.task_ended(
                    TaskEnded(
                        execution_id,
                        str(task_id),
                        str(task_type),
                        State.CANCELLED,
                        reason,
                        int(attempts),
                        None,
                        at,
                    )
                )
        return len(rows)
