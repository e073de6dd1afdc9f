"""The scheduler: drives one execution's DAG from RUNNING to its single terminal state.

It runs in the calling thread and, every 50 ms at most: decides each PENDING task whose
upstreams allow a verdict (:func:`decide`: run it, skip it, or cancel it because an upstream
failed) and offers the ones to run to the worker pool (the pool may refuse: backpressure),
after their ``if:`` condition; collects finished tasks while independent branches go on;
polls the ``executions`` row for a cancellation request (from any process); enforces the
workflow timeout; and refreshes the engine heartbeat. Cleanup tasks (``run_if: always``) still
run after a cancel or a timeout. When the execution fails, the ``on_failure`` tasks run once,
after everything else ended; otherwise they end SKIPPED (NO_FAILURE).

    run = ExecutionRun(...)
    final_state = run.run()
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from autokestra_obs_schema import (
    AuditEventType,
    LogLevel,
    Reason,
    State,
    StorageError,
    StorageFull,
)

from ..language._conditions import ConditionError, ConditionScope, parse_condition
from ..language._model import TaskSpec, Workflow
from ..language._problems import TemplateError
from ..language._subflows import SUBFLOW_TYPE
from ..language._templates import TemplateContext, resolve_value
from ..persistence._recorder import (
    CannotRecordExecution,
    ExecutionAlreadyFinished,
    ExecutionRecorder,
    NewTask,
)
from ._fan_out import FanOut
from ._worker import ExecutionContext, TaskOutcome, TaskRunner, WorkerPool, human_ms

SCHEDULER = "scheduler"
#: How often the executions row is read for a cancellation request (DESIGN: noticed < 250 ms).
CANCEL_POLL_S = 0.1
#: How often the owning engine refreshes ``heartbeat_at``.
HEARTBEAT_S = 5.0
#: Longest the loop sleeps waiting for a task to finish before re-checking everything.
TICK_S = 0.05
#: After an engine error, how long running attempts get to be stopped before giving up.
ABORT_WAIT_S = 30.0


#: Upstream outcomes that count as failures for trigger rules (an allowed failure does not).
_FAILED_LIKE = (State.FAILED, State.CANCELLED)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a PENDING task now: ``run`` it, or end it in ``state`` for ``reason``.

    Attributes:
        action: ``run``, ``end`` or ``wait`` (an upstream has not decided it yet).
        state: the terminal state of an ``end`` verdict.
        reason: its reason code.
        upstream: the upstream task that decided it, for the log entry.
    """

    action: str
    state: State | None = None
    reason: str | None = None
    upstream: str | None = None


_WAIT = Verdict("wait")
_RUN = Verdict("run")


def decide(task: TaskSpec, upstream: Mapping[str, State], allowed: Iterable[str]) -> Verdict:
    """Apply a task's trigger rule to the states of its ``needs``.

    Args:
        task: the task (its ``run_if`` rule).
        upstream: the current state of each of its needs.
        allowed: tasks whose failure was allowed (``allow_failure``): they count as successes.

    Returns:
        ``run`` when the rule is met, ``end`` (CANCELLED UPSTREAM_FAILED, or SKIPPED with
        UPSTREAM_SKIPPED or TRIGGER_RULE_UNMET) when it can no longer be, else ``wait``.
    """
    ok = set(allowed)
    failed = [t for t, s in upstream.items() if s in _FAILED_LIKE and t not in ok]
    skipped = [t for t, s in upstream.items() if s is State.SKIPPED]
    all_done = all(s.terminal for s in upstream.values())
    if task.run_if in ("all_success", "none_failed"):
        if failed:
            return Verdict("end", State.CANCELLED, Reason.UPSTREAM_FAILED, failed[0])
        if skipped and task.run_if == "all_success":
            return Verdict("end", State.SKIPPED, Reason.UPSTREAM_SKIPPED, skipped[0])
        return _RUN if all_done else _WAIT
    if not all_done:
        return _WAIT
    if task.run_if == "any_failed" and not failed:
        return Verdict("end", State.SKIPPED, Reason.TRIGGER_RULE_UNMET)
    return _RUN


class Dag:
    """The dependency graph of a workflow's tasks (validated acyclic by the DSL loader)."""

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        self.order = [task.id for task in tasks]
        self.needs: dict[str, tuple[str, ...]] = {task.id: tuple(task.needs) for task in tasks}

    def open(self, states: Mapping[str, State], dispatched: Iterable[str]) -> list[str]:
        """PENDING tasks not yet dispatched, in file order."""
        taken = set(dispatched)
        return [
            task_id
            for task_id in self.order
            if states.get(task_id) is State.PENDING and task_id not in taken
        ]


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """A cancellation request read from the executions row."""

    requested_at: int
    by: str
    reason: str | None


def read_cancel_request(conn: apsw.Connection, execution_id: str) -> CancelRequest | None:
    """The recorded cancellation request of an execution, if any."""
    rows: list[tuple[Any, ...]] = conn.execute(
        "SELECT cancel_requested_at, cancelled_by, cancel_reason FROM executions"
        " WHERE execution_id = ?",
        (execution_id,),
    ).fetchall()
    if not rows or rows[0][0] is None:
        return None
    requested_at, by, reason = rows[0]
    return CancelRequest(int(requested_at), str(by or "system"), reason)


def cancel_reason_code(by: str) -> str:
    """``CANCELLED_BY_USER`` for ``user:<login>``, ``CANCELLED_BY_SYSTEM`` otherwise."""
    return Reason.CANCELLED_BY_USER if by.startswith("user:") else Reason.CANCELLED_BY_SYSTEM


#: (state, terminal event, reason, message, event metadata, failed task) of an execution's end.
_Verdict = tuple[State, AuditEventType, str | None, str | None, dict[str, Any], str | None]


class ExecutionRun:
    """Runs one started execution to the end (one instance per execution)."""

    def __init__(
        self,
        *,
        workflow: Workflow,
        context: ExecutionContext,
        recorder: ExecutionRecorder,
        runner: TaskRunner,
        pool: WorkerPool,
        reader: apsw.Connection,
        engine_id: str,
        started_at_ms: int,
        interrupt: threading.Event | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._workflow = workflow
        self._ctx = context
        self._recorder = recorder
        self._runner = runner
        self._pool = pool
        self._reader = reader
        self._engine_id = engine_id
        self._started_at = started_at_ms
        self._interrupt = interrupt
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)
        self._dag = Dag(workflow.tasks)
        self._tasks = {task.id: task for task in workflow.tasks + workflow.on_failure}
        self.states: dict[str, State] = {task.id: State.PENDING for task in workflow.tasks}
        self._allowed_failures: set[str] = set()
        self._fan_outs: dict[str, FanOut] = {}
        self._iteration_of: dict[str, tuple[str, int]] = {}
        self._main_ids = frozenset(task.id for task in workflow.tasks)
        context.cleanup_tasks.update(
            [task.id for task in workflow.tasks if task.run_if == "always"]
            + [task.id for task in workflow.on_failure]
        )
        self._dispatched: set[str] = set()
        self._done: queue.Queue[TaskOutcome] = queue.Queue()
        self._failed_task: TaskOutcome | None = None
        # A task's state write that failed: the whole execution takes the §6.2 path.
        self._storage_failure: StorageError | None = None
        self._pending_at_cancel = 0
        self._timeout_elapsed_ms = 0

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> State:
        """Block until the execution is terminal; returns its final state.

        Raises:
            CannotRecordExecution: the database failed and the execution could not even be
                recorded as FAILED, the reserve freed (its running tasks are stopped first).
        """
        try:
            self._loop()
            verdict = self._verdict(self._clock() - self._started_at)
            self._ctx.summary.update(
                state=verdict[0].value,
                message=self._ctx.redactor.redact(verdict[3]) if verdict[3] else None,
                failed_task_id=verdict[5],
            )
            self._run_failure_handler(verdict[0])
        except Exception as exc:  # a broken engine must still stop its plugin processes
            return self._abort(exc)
        return self._finish(verdict)

    def _loop(self) -> None:
        eid = self._ctx.execution_id
        deadline = (
            None
            if self._workflow.timeout_ms is None
            else self._started_at + self._workflow.timeout_ms
        )
        next_poll = 0.0
        next_beat = time.monotonic() + HEARTBEAT_S
        while True:
            now = time.monotonic()
            if not self._ctx.cancel.is_set():
                if self._interrupt is not None and self._interrupt.is_set():
                    self._record_interrupt()
                    next_poll = 0.0
                if now >= next_poll:
                    next_poll = now + CANCEL_POLL_S
                    request = read_cancel_request(self._reader, eid)
                    if request is not None:
                        self._begin_cancel(request)
                if deadline is not None and not self._ctx.cancel.is_set():
                    now_ms = self._clock()
                    if now_ms >= deadline:
                        self._begin_timeout(now_ms - self._started_at)
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S
                self._recorder.heartbeat(eid, self._engine_id)
            self._dispatch()
            if not self._dispatched and not self._dag.open(self.states, self._dispatched):
                return
            self._drain(TICK_S)
            if self._storage_failure is not None:
                raise self._storage_failure

    def _run_failure_handler(self, outcome: State) -> None:
        """Run the ``on_failure`` tasks of a failed execution; skip them otherwise."""
        handlers = self._workflow.on_failure
        if not handlers:
            return
        if outcome is not State.FAILED:
            for task in handlers:
                self._end_task(task.id, State.SKIPPED, Reason.NO_FAILURE, None)
            return
        self._ctx.log(
            LogLevel.WARN,
            f"Execution failed: running the failure handler ({len(handlers)} tasks)",
            source=SCHEDULER,
            metadata={"on_failure": [task.id for task in handlers]},
        )
        self._dag = Dag(handlers)
        self.states.update({task.id: State.PENDING for task in handlers})
        next_beat = time.monotonic() + HEARTBEAT_S
        while self._dispatched or self._dag.open(self.states, self._dispatched):
            self._dispatch()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + HEARTBEAT_S
                self._recorder.heartbeat(self._ctx.execution_id, self._engine_id)
            self._drain(TICK_S)
            if self._storage_failure is not None:
                raise self._storage_failure

    def _drain(self, timeout: float) -> None:
        """Collect every finished task, waiting up to ``timeout`` for the first one."""
        try:
            outcome = self._done.get(timeout=timeout)
        except queue.Empty:
            return
        self._collect(outcome)
        while True:
            try:
                self._collect(self._done.get_nowait())
            except queue.Empty:
                return

    def _abort(self, exc: Exception) -> State:
        """The loop itself failed: stop every task, then record the execution FAILED."""
        if isinstance(exc, StorageError):
            return self._record_storage_failure(exc)
        message = self._ctx.redactor.redact(f"Engine error: {type(exc).__name__}: {exc}")
        self._ctx.log(LogLevel.ERROR, message, source=SCHEDULER)
        self._ctx.cancel.trigger(Reason.ENGINE_ERROR, by="system", reason="engine error")
        self._ctx.cleanup.trigger(Reason.ENGINE_ERROR, by="system", reason="engine error")
        deadline = time.monotonic() + ABORT_WAIT_S
        while self._dispatched and time.monotonic() < deadline:
            self._drain(TICK_S)
        self._ctx.collector.flush_execution(self._ctx.execution_id)
        try:
            self._recorder.cancel_open_tasks(self._ctx.execution_id, Reason.ENGINE_ERROR)
            self._recorder.finish_execution(
                self._ctx.execution_id,
                State.FAILED,
                terminal_event=AuditEventType.FAILED,
                terminal_metadata={"error_message": message, "reason": Reason.ENGINE_ERROR.value},
                reason=Reason.ENGINE_ERROR,
                message=message,
            )
        except Exception:
            raise exc from None
        self._ctx.emit(None, State.FAILED, reason=Reason.ENGINE_ERROR)
        return State.FAILED

    def _dispatch(self) -> None:
        """Decide every open task that can be decided; offer the ones to run to the pool.

        One pass in file order suffices for chains: a task ended here (skipped, cancelled)
        is seen by its dependants later in the same pass, since ``needs`` come first.
        """
        stopping = self._ctx.cancel.is_set()
        self._dispatch_iterations()
        for task_id in self._dag.open(self.states, self._dispatched):
            task = self._tasks[task_id]
            if stopping and task_id not in self._ctx.cleanup_tasks:
                continue  # _stop_open_tasks ends it
            upstream = {need: self.states[need] for need in task.needs}
            verdict = decide(task, upstream, self._allowed_failures)
            if verdict.action == "wait":
                continue
            if verdict.action == "end":
                assert verdict.state is not None  # every "end" verdict has one
                self._end_task(task_id, verdict.state, verdict.reason, verdict.upstream)
                continue
            if task.condition is not None and not self._condition_holds(task):
                continue
            if task.for_each is not None:
                self._start_fan_out(task)
                continue
            # Stamped now, stored by the worker with the task's first write (one write
            # transaction less per task; the value is the same).
            if not self._submit(task, self._job(task, self._clock())):
                return  # queue full: try again on the next tick
            self._dispatched.add(task_id)

    # -- for_each ---------------------------------------------------------------------------

    def _start_fan_out(self, task: TaskSpec) -> None:
        """Resolve a for_each task's list and create its iterations (or end it at once)."""
        eid = self._ctx.execution_id
        try:
            items, _, _ = resolve_value(
                task.for_each,
                TemplateContext(
                    inputs=self._ctx.inputs,
                    task_outputs=self._ctx.outputs(),
                    secrets=self._ctx.secrets,
                    execution_id=eid,
                    trigger=self._ctx.trigger,
                ),
            )
            if not isinstance(items, list):
                raise TemplateError(f"for_each: expected a list, got {type(items).__name__}")
        except TemplateError as exc:
            self._fail_unrun(
                task, Reason.TEMPLATE_ERROR, "TemplateError", f"cannot resolve for_each: {exc}"
            )
            return
        fan = FanOut(task, items)
        self._recorder.start_fan_out(
            eid,
            task.id,
            [NewTask(fan.iteration(i).id, task.type, (), task.position) for i in range(len(items))],
        )
        self.states[task.id] = State.RUNNING
        self._ctx.emit(task.id, State.RUNNING)
        limit = task.concurrency or self._pool.size
        self._ctx.log(
            LogLevel.INFO,
            f"Task {task.id}: for_each over {len(items)} items, concurrency {limit}"
            + ("" if items else ": nothing to run"),
            task_id=task.id,
            source=SCHEDULER,
            metadata={"iterations": len(items), "concurrency": task.concurrency},
        )
        self._dispatched.add(task.id)
        self._fan_outs[task.id] = fan
        for index in range(len(items)):
            self._iteration_of[fan.iteration(index).id] = (task.id, index)
        if fan.done:  # an empty list: the task succeeds with no results
            self._finish_fan_out(fan)

    def _dispatch_iterations(self) -> None:
        """Start the iterations each fan-out's concurrency allows; cancel them when stopping."""
        for fan in list(self._fan_outs.values()):
            token = self._ctx.stop_token(fan.task.id)
            if token.is_set():
                for index in fan.unstarted():
                    iteration = fan.iteration(index).id
                    self._recorder.finish_task(
                        self._ctx.execution_id,
                        iteration,
                        State.CANCELLED,
                        reason=token.reason_code,
                    )
                    self._collect(TaskOutcome(iteration, State.CANCELLED, token.reason_code))
                continue
            while fan.can_start():
                spec = fan.iteration(fan.next_index)
                if not self._submit(spec, self._job(spec, self._clock())):
                    return  # queue full: try again on the next tick
                fan.start_next()

    def _collect_iteration(self, outcome: TaskOutcome) -> None:
        parent, index = self._iteration_of[outcome.task_id]
        fan = self._fan_outs[parent]
        fan.record(index, outcome, self._ctx.outputs().get(outcome.task_id))
        if fan.done:
            self._finish_fan_out(fan)

    def _finish_fan_out(self, fan: FanOut) -> None:
        """End a for_each task once every iteration ended: SUCCESS with the collected
        outputs, FAILED (ITERATION_FAILED) when one failed, else CANCELLED."""
        task, eid = fan.task, self._ctx.execution_id
        del self._fan_outs[task.id]
        failed = fan.indexes_in(State.FAILED)
        cancelled = fan.indexes_in(State.CANCELLED)
        if failed:
            message = f"iterations failed: {', '.join(map(str, failed))} (of {len(fan.items)})"
            error = {"message": message, "type": "IterationFailed", "failed_indexes": failed}
            self._recorder.finish_task(
                eid, task.id, State.FAILED, reason=Reason.ITERATION_FAILED, error=error
            )
            outcome = TaskOutcome(task.id, State.FAILED, Reason.ITERATION_FAILED, message)
        elif cancelled:
            reason = self._ctx.stop_token(task.id).reason_code
            self._recorder.finish_task(eid, task.id, State.CANCELLED, reason=reason)
            message = f"iterations cancelled: {len(cancelled)} (of {len(fan.items)})"
            outcome = TaskOutcome(task.id, State.CANCELLED, reason, message)
        else:
            outputs = fan.collected()
            self._ctx.set_outputs(task.id, outputs)
            self._recorder.finish_task(
                eid, task.id, State.SUCCESS, outputs=self._ctx.redactor.redact_value(outputs)
            )
            message = f"{len(fan.items)} iterations succeeded"
            outcome = TaskOutcome(task.id, State.SUCCESS)
        self._ctx.emit(task.id, outcome.state, reason=outcome.reason)
        self._ctx.log(
            LogLevel.INFO if outcome.state is State.SUCCESS else LogLevel.ERROR,
            f"Task {task.id} {outcome.state}: {message}",
            task_id=task.id,
            source=SCHEDULER,
            metadata={
                "state": outcome.state.value,
                "reason": outcome.reason,
                "iterations": len(fan.items),
                "failed_indexes": failed,
                "cancelled_indexes": cancelled,
            },
        )
        self._collect(outcome)

    def _condition_holds(self, task: TaskSpec) -> bool:
        """Evaluate ``if:``; a false or broken condition ends the task here (returns False)."""
        assert task.condition is not None  # only called for tasks with a condition
        scope = ConditionScope(
            inputs=self._ctx.inputs,
            outputs=self._ctx.outputs(),
            states={task_id: str(state) for task_id, state in self.states.items()},
            trigger=self._ctx.trigger,
        )
        try:
            holds = parse_condition(task.condition).evaluate(scope)
        except ConditionError as exc:
            self._fail_unrun(
                task,
                Reason.CONDITION_ERROR,
                "ConditionError",
                f"condition {task.condition!r}: {exc}",
            )
            return False
        if not holds:
            self._end_task(task.id, State.SKIPPED, Reason.CONDITION_FALSE, None)
        return holds

    def _fail_unrun(self, task: TaskSpec, reason: Reason, error_type: str, detail: str) -> None:
        """End a task FAILED before any attempt (its for_each list or condition is broken)."""
        message = self._ctx.redactor.redact(detail)
        self._recorder.finish_task(
            self._ctx.execution_id,
            task.id,
            State.FAILED,
            reason=reason,
            error={"message": message, "type": error_type},
        )
        self._ctx.emit(task.id, State.FAILED, reason=reason)
        self._ctx.log(
            LogLevel.ERROR,
            f"Task {task.id} failed: {message}",
            task_id=task.id,
            source=SCHEDULER,
            metadata={"reason": reason.value},
        )
        self._collect(TaskOutcome(task.id, State.FAILED, reason, message))

    def _end_task(
        self, task_id: str, state: State, reason: str | None, upstream: str | None
    ) -> None:
        """End a task that never ran (skipped, or cancelled by an upstream failure)."""
        self.states[task_id] = state
        self._recorder.finish_task(self._ctx.execution_id, task_id, state, reason=reason)
        self._ctx.emit(task_id, state, reason=reason)
        task = self._tasks[task_id]
        why = {
            Reason.UPSTREAM_FAILED: f"upstream task {upstream} failed",
            Reason.UPSTREAM_SKIPPED: f"upstream task {upstream} was skipped (run_if: all_success)",
            Reason.CONDITION_FALSE: f"condition is false: {task.condition}",
            Reason.TRIGGER_RULE_UNMET: f"no upstream task failed (run_if: {task.run_if})",
            Reason.NO_FAILURE: "the execution did not fail (failure handler)",
        }.get(Reason(reason) if reason else Reason.UPSTREAM_FAILED, str(reason))
        self._ctx.log(
            LogLevel.WARN if state is State.CANCELLED else LogLevel.INFO,
            f"Task {task_id} {'cancelled' if state is State.CANCELLED else 'skipped'}: {why}",
            task_id=task_id,
            source=SCHEDULER,
            metadata={
                "state": state.value,
                "reason": reason,
                "upstream_task_id": upstream,
                "condition": task.condition,
                "run_if": task.run_if,
            },
        )

    def _submit(self, task: TaskSpec, job: Callable[[], None]) -> bool:
        """Hand a job to the worker pool; a subflow task gets a thread of its own.

        A subflow task waits for its child execution, whose tasks need the pool: holding a
        pool thread while waiting would deadlock as soon as subflows fill the pool.
        """
        if task.type == SUBFLOW_TYPE:
            threading.Thread(target=job, name=f"autokestra-subflow-task-{task.id}").start()
            return True
        return self._pool.try_submit(job)

    def _job(self, task: TaskSpec, queued_at: int) -> Callable[[], None]:
        def job() -> None:
            try:
                outcome = self._runner.run(self._ctx, task, queued_at=queued_at)
            except StorageError as exc:
                # Not this task's failure: the database's. The loop records the execution's
                # end as §6.2 says (reserve freed, STORAGE_FULL, the rest cancelled).
                if self._storage_failure is None:
                    self._storage_failure = exc
                reason = (
                    Reason.STORAGE_FULL if isinstance(exc, StorageFull) else Reason.ENGINE_ERROR
                )
                outcome = TaskOutcome(
                    task.id, State.FAILED, reason, self._ctx.redactor.redact(str(exc))
                )
            except BaseException as exc:
                # Whatever ends the job (SystemExit included: rich raises it on a closed
                # stdout pipe), the loop must get an outcome, or it waits for this task
                # forever and the execution hangs RUNNING.
                outcome = self._engine_error(task, exc)
            self._done.put(outcome)

        return job

    def _engine_error(self, task: TaskSpec, exc: BaseException) -> TaskOutcome:
        message = self._ctx.redactor.redact(f"engine error: {type(exc).__name__}: {exc}")
        self._ctx.log(LogLevel.ERROR, message, task_id=task.id, source=SCHEDULER)
        try:
            self._recorder.finish_task(
                self._ctx.execution_id,
                task.id,
                State.FAILED,
                reason=Reason.ENGINE_ERROR,
                error={"message": message, "type": type(exc).__name__},
            )
        except Exception as again:
            self._ctx.log(LogLevel.ERROR, f"could not record task failure: {again}")
        return TaskOutcome(task.id, State.FAILED, Reason.ENGINE_ERROR, message)

    def _collect(self, outcome: TaskOutcome) -> None:
        if outcome.task_id in self._iteration_of:
            self._collect_iteration(outcome)
            return
        self._dispatched.discard(outcome.task_id)
        self.states[outcome.task_id] = outcome.state
        if outcome.state is not State.FAILED:
            return
        if self._tasks[outcome.task_id].allow_failure:
            self._allowed_failures.add(outcome.task_id)
            self._ctx.log(
                LogLevel.WARN,
                f"Task {outcome.task_id} failed; allow_failure: the execution goes on",
                task_id=outcome.task_id,
                source=SCHEDULER,
                metadata={"allow_failure": True, "reason": outcome.reason},
            )
        elif self._failed_task is None and outcome.task_id in self._main_ids:
            self._failed_task = outcome

    # -- stopping ---------------------------------------------------------------------------

    def _record_interrupt(self) -> None:
        """Ctrl+C of a foreground run: a system cancellation, recorded like any other."""
        try:
            self._recorder.request_cancel(self._ctx.execution_id, by="system", reason="interrupted")
        except ExecutionAlreadyFinished:
            return
        request = read_cancel_request(self._recorder.writer.connection, self._ctx.execution_id)
        if request is not None:
            self._begin_cancel(request)

    def _stop_open_tasks(self, reason_code: str) -> int:
        """Cancel tasks never handed to the pool; returns how many tasks had not started."""
        not_started = [
            task_id
            for task_id, state in self.states.items()
            if state is State.PENDING and task_id not in self._ctx.cleanup_tasks
        ]
        for task_id in not_started:
            if task_id in self._dispatched:
                continue  # queued in the pool: its worker cancels it without starting
            self.states[task_id] = State.CANCELLED
            self._recorder.finish_task(
                self._ctx.execution_id, task_id, State.CANCELLED, reason=reason_code
            )
            self._ctx.emit(task_id, State.CANCELLED, reason=reason_code)
        return sum(1 for task_id in not_started if not self._has_started(task_id))

    def _has_started(self, task_id: str) -> bool:
        rows = self._reader.execute(
            "SELECT attempt_count FROM task_runs WHERE execution_id = ? AND task_id = ?",
            (self._ctx.execution_id, task_id),
        ).fetchall()
        return bool(rows and rows[0][0])

    def _running_tasks(self) -> list[str]:
        return sorted(self._dispatched, key=self._dag.order.index)

    def _begin_cancel(self, request: CancelRequest) -> None:
        code = cancel_reason_code(request.by)
        if not self._ctx.cancel.trigger(code, by=request.by, reason=request.reason):
            return
        why = f": {request.reason}" if request.reason else ""
        self._ctx.log(
            LogLevel.WARN,
            f"Cancellation requested by {request.by}{why}",
            source=SCHEDULER,
            metadata={"cancelled_by": request.by, "reason": request.reason},
        )
        for task_id in self._running_tasks():
            self._ctx.log(
                LogLevel.WARN,
                f"Cancelling task {task_id}: requested by {request.by}{why}",
                task_id=task_id,
                metadata={"cancelled_by": request.by, "reason": request.reason},
            )
        self._pending_at_cancel = self._stop_open_tasks(code)

    def _begin_timeout(self, elapsed_ms: int) -> None:
        limit = self._workflow.timeout_ms or 0
        if not self._ctx.cancel.trigger(Reason.TIMEOUT, by="system", reason="timeout"):
            return
        self._timeout_elapsed_ms = elapsed_ms
        self._ctx.log(
            LogLevel.ERROR,
            f"Execution timed out: limit {human_ms(limit)}, elapsed {human_ms(elapsed_ms)}",
            source=SCHEDULER,
            metadata={"timeout_ms": limit, "elapsed_ms": elapsed_ms},
        )
        for task_id in self._running_tasks():
            self._ctx.log(
                LogLevel.WARN,
                f"Cancelling task {task_id}: execution timed out",
                task_id=task_id,
                metadata={"reason": Reason.TIMEOUT.value},
            )
        self._stop_open_tasks(Reason.TIMEOUT)

    # -- the end ----------------------------------------------------------------------------

    def _finish(self, verdict: _Verdict) -> State:
        eid = self._ctx.execution_id
        elapsed = self._clock() - self._started_at
        state, event, reason, message, metadata, failed_task_id = verdict
        message = self._ctx.redactor.redact(message) if message else None
        if self._ctx.children:  # the parent's trail names the children its subflows started
            metadata = {**metadata, "subflow_execution_ids": dict(self._ctx.children)}
        metadata = self._ctx.redactor.redact_value(metadata)
        # Log and flush before the terminal commit: a follower that sees the execution
        # terminal and drains the logs then has every entry, the summary included.
        self._ctx.log(
            LogLevel.INFO,
            f"Execution state RUNNING -> {state}" + (f" ({reason})" if reason else ""),
            source=SCHEDULER,
            metadata={"from_state": State.RUNNING.value, "to_state": state.value, "reason": reason},
        )
        level = {
            State.SUCCESS: LogLevel.INFO,
            State.FAILED: LogLevel.ERROR,
            State.CANCELLED: LogLevel.WARN,
        }[state]
        verb = {State.SUCCESS: "completed", State.FAILED: "failed", State.CANCELLED: "cancelled"}
        summary = f"Execution {verb[state]} in {human_ms(elapsed)}" + (
            f": {message}" if message else ""
        )
        self._ctx.log(
            level,
            summary,
            source=SCHEDULER,
            metadata={
                "state": str(state),
                "duration_ms": elapsed,
                "reason": reason,
                "failed_task_id": failed_task_id,
                "task_states": {task_id: str(s) for task_id, s in self.states.items()},
            },
        )
        # Stores what is buffered, or counts it and stores the `Dropped <n> log entries`
        # WARN (DESIGN.md §6.1), freeing the reserve if even that does not fit.
        self._ctx.collector.end_execution(eid, make_room=self._recorder.reserve.release)
        # What the collector could not record rides with the terminal state: a column
        # update fits where its WARN entry (new log and index pages) did not.
        unrecorded = self._ctx.collector.take_unrecorded_drops(eid)
        try:
            self._recorder.finish_execution(
                eid,
                state,
                terminal_event=event,
                terminal_metadata=metadata,
                reason=reason,
                message=message,
                failed_task_id=failed_task_id,
                logs_dropped=unrecorded,
            )
        except StorageError as exc:
            return self._record_storage_failure(exc, unrecorded)
        self._ctx.emit(None, state, reason=reason)
        return state

    def _record_storage_failure(self, exc: StorageError, unrecorded_drops: int = 0) -> State:
        """A write failed: free the reserve, record the end FAILED, tasks left cancelled.

        DESIGN.md §6.2: the reserve file's 1 MiB is what lets the terminal state, its audit
        events and the task rows be stored on a full disk. The reason is ``STORAGE_FULL``
        for lack of space (``ENGINE_ERROR`` for another storage error); the reserve is
        recreated when the next execution starts, once space returned.

        Args:
            exc: the failed write.
            unrecorded_drops: dropped log entries not yet counted anywhere, stored with the end.

        Raises:
            CannotRecordExecution: even with the reserve freed, the end could not be stored.
        """
        eid = self._ctx.execution_id
        reason = Reason.STORAGE_FULL if isinstance(exc, StorageFull) else Reason.ENGINE_ERROR
        self._ctx.cancel.trigger(reason, by="system", reason="storage")
        deadline = time.monotonic() + ABORT_WAIT_S
        while self._dispatched and time.monotonic() < deadline:
            self._drain(TICK_S)  # running attempts stop; their own writes may fail too
        self._recorder.reserve.release()
        message = self._ctx.redactor.redact(f"Cannot store the execution's data: {exc}")
        self._ctx.log(LogLevel.ERROR, message, source=SCHEDULER)
        self._ctx.collector.end_execution(eid, timeout=2.0)
        unrecorded_drops += self._ctx.collector.take_unrecorded_drops(eid)
        try:
            self._recorder.cancel_unfinished_tasks(eid, reason)
            self._recorder.finish_execution(
                eid,
                State.FAILED,
                terminal_event=AuditEventType.FAILED,
                terminal_metadata={"error_message": message, "reason": reason.value},
                reason=reason,
                message=message,
                logs_dropped=unrecorded_drops,
            )
        except StorageError as again:
            raise CannotRecordExecution(eid, again) from exc
        self._ctx.emit(None, State.FAILED, reason=reason)
        return State.FAILED

    def _verdict(self, elapsed: int) -> _Verdict:
        """(state, terminal event, reason, message, event metadata, failed task) of the end.

        A timeout wins over a cancellation (its token reason is TIMEOUT), a cancellation
        over a failed task; otherwise the execution succeeded.
        """
        token = self._ctx.cancel
        task_count = len(self.states)
        state: State
        event: AuditEventType
        metadata: dict[str, Any]
        if token.is_set() and token.reason_code == Reason.TIMEOUT:
            limit = self._workflow.timeout_ms or 0
            state, event, reason = State.FAILED, AuditEventType.TIMEOUT, Reason.TIMEOUT.value
            message = f"Execution timed out: limit {human_ms(limit)}, elapsed {human_ms(elapsed)}"
            metadata = {"timeout_ms": limit, "elapsed_ms": elapsed}
            failed_task_id = None
        elif token.is_set():
            state, event, reason = State.CANCELLED, AuditEventType.CANCELLED, token.reason_code
            who = token.cancelled_by or "system"
            message = f"Cancelled by {who}" + (f": {token.reason}" if token.reason else "")
            metadata = {
                "cancelled_by": who,
                "reason": token.reason,
                "pending_task_count": self._pending_at_cancel,
            }
            failed_task_id = None
        elif self._failed_task is not None:
            failed = self._failed_task
            state, event, reason = State.FAILED, AuditEventType.FAILED, Reason.TASK_FAILED.value
            message = f"Task {failed.task_id} failed: {failed.error_message or failed.reason}"
            metadata = {
                "error_message": message,
                "failed_task_id": failed.task_id,
                "reason": failed.reason,
            }
            failed_task_id = failed.task_id
        else:
            state, event, reason = State.SUCCESS, AuditEventType.COMPLETED, None
            message = None
            metadata = {"task_count": task_count}
            failed_task_id = None
        return state, event, reason, message, metadata, failed_task_id
