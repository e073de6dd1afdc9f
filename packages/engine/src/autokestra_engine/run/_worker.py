"""The worker pool and the runner of one task run (all its attempts, retries and waits).

The pool is a fixed set of threads fed by a bounded queue: :meth:`WorkerPool.try_submit`
refuses work when the queue is full, so the scheduler keeps the task PENDING and offers it
again later (backpressure) instead of piling up threads or blocking its own loop. Each thread
runs :meth:`TaskRunner.run`, which drives the plugin executor attempt by attempt: the task run
is RUNNING during an attempt and WAITING (reason RETRY_BACKOFF) between attempts.

    pool = WorkerPool(size=4, queue_size=8)
    pool.try_submit(lambda: runner.run(context, task))
    pool.shutdown()
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from autokestra_obs_collector import LogCollector, Redactor
from autokestra_obs_schema import LogLevel, Reason, State

from .._secret_store import SecretStore
from ..language._model import ActionSpec, TaskSpec
from ..language._plugin_registry import PluginRegistry
from ..language._problems import TemplateError
from ..language._templates import TemplateContext, resolve_task_inputs
from ..persistence._recorder import ExecutionRecorder
from ._executor import AttemptRequest, AttemptResult, PluginExecutor

WORKER = "worker"


def human_ms(ms: int) -> str:
    """``850ms``, ``2.5s``, ``1m 30s``: durations in log messages."""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, rest = divmod(ms // 1000, 60)
    return f"{minutes}m {rest}s" if rest else f"{minutes}m"


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """A progress event for live displays: an execution or task run changed state."""

    execution_id: str
    task_id: str | None
    state: State
    attempt: int | None = None
    reason: str | None = None
    timestamp: float = field(default_factory=time.monotonic)


EventCallback = Callable[[EngineEvent], None]


class CancelToken:
    """Why an execution is being stopped, shared by the scheduler and every worker.

    ``event`` is what the plugin executor watches; the reason says whether the stop is a
    cancellation (who asked, why) or the workflow timeout.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason_code: str = Reason.CANCELLED_BY_USER
        self.cancelled_by: str | None = None
        self.reason: str | None = None
        self._lock = threading.Lock()

    def trigger(
        self, reason_code: str, *, by: str | None = None, reason: str | None = None
    ) -> bool:
        """Stop everything; the first trigger wins. Returns False when already triggered."""
        with self._lock:
            if self.event.is_set():
                return False
            self.reason_code = reason_code
            self.cancelled_by = by
            self.reason = reason
            self.event.set()
            return True

    def is_set(self) -> bool:
        """Whether the execution is being stopped."""
        return self.event.is_set()


class ExecutionContext:
    """What the tasks of one execution share: inputs, upstream outputs, secrets, redactor."""

    def __init__(
        self,
        *,
        execution_id: str,
        inputs: Mapping[str, Any],
        secrets: SecretStore,
        collector: LogCollector,
        base_secrets: set[str],
        on_event: EventCallback | None,
        workflow_id: str = "",
        mask_token_shapes: bool = True,
        trigger: Mapping[str, Any] | None = None,
    ) -> None:
        self.execution_id = execution_id
        #: What {{ trigger.* }} reads (the webhook request body, as stored: masked).
        self.trigger: dict[str, Any] = dict(trigger or {})
        # What {{ execution.* }} reads; the scheduler fills in how it failed before the
        # failure handler runs.
        self.summary: dict[str, Any] = {
            "id": execution_id,
            "workflow_id": workflow_id,
            "state": State.RUNNING.value,
            "failed_task_id": None,
            "message": None,
        }
        self._mask_token_shapes = mask_token_shapes
        self.inputs = dict(inputs)
        self.secrets = secrets
        self.collector = collector
        self.cancel = CancelToken()
        # Cleanup tasks (``run_if: always``) and failure-handler tasks run after a cancel or a
        # timeout: they watch their own token, which only an engine error triggers.
        self.cleanup = CancelToken()
        self.cleanup_tasks: set[str] = set()
        self._on_event = on_event
        self._lock = threading.Lock()
        self._outputs: dict[str, dict[str, Any]] = {}
        #: Child executions started by this execution's subflow tasks: task run id -> child
        #: id (the latest attempt's), named in the terminal audit event.
        self.children: dict[str, str] = {}
        self._secret_values: set[str] = set(base_secrets)
        self.redactor = Redactor(self._secret_values, mask_token_shapes=mask_token_shapes)
        collector.set_redactor(execution_id, self.redactor)

    def stop_token(self, task_id: str) -> CancelToken:
        """The token that stops this task: the execution's, or the cleanup one."""
        return self.cleanup if task_id in self.cleanup_tasks else self.cancel

    def add_secret_values(self, values: set[str]) -> None:
        """Extend the redactor with values found while resolving a task's inputs."""
        with self._lock:
            new = values - self._secret_values
            if not new:
                return
            self._secret_values |= new
            self.redactor = Redactor(self._secret_values, mask_token_shapes=self._mask_token_shapes)
            self.collector.set_redactor(self.execution_id, self.redactor)

    def secret_values(self) -> frozenset[str]:
        """Every secret value known to this execution's redactor (a child inherits them)."""
        with self._lock:
            return frozenset(self._secret_values)

    def add_child(self, task_id: str, child_execution_id: str) -> None:
        """Remember the child execution a subflow task started."""
        with self._lock:
            self.children[task_id] = child_execution_id

    def set_outputs(self, task_id: str, outputs: Mapping[str, Any]) -> None:
        """Keep a finished task's real outputs for the templates of its dependants."""
        with self._lock:
            self._outputs[task_id] = dict(outputs)

    def outputs(self) -> dict[str, dict[str, Any]]:
        """A snapshot of the outputs of every task finished so far."""
        with self._lock:
            return dict(self._outputs)

    def emit(self, task_id: str | None, state: State, **kwargs: Any) -> None:
        """Tell the live display (if any); a display error never stops the execution."""
        if self._on_event is None:
            return
        try:
            self._on_event(EngineEvent(self.execution_id, task_id, state, **kwargs))
        except (Exception, SystemExit):  # rich raises SystemExit on a closed stdout pipe
            self._on_event = None

    def log(
        self,
        level: LogLevel,
        message: str,
        *,
        task_id: str | None = None,
        attempt: int | None = None,
        source: str = WORKER,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Log one entry of this execution through the collector (redacted there)."""
        self.collector.log(
            self.execution_id,
            level,
            source,
            message,
            task_id=task_id,
            attempt=attempt,
            metadata=metadata,
        )


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How a task run ended, as the scheduler needs it."""

    task_id: str
    state: State
    reason: str | None = None
    error_message: str | None = None
    attempts: int = 0


class InProcessAction(Protocol):
    """An action the engine runs itself instead of a plugin process (``core/flow.subflow``).

    It gets the same attempt as a process would (resolved inputs, timeout, the task's stop
    event) and reports it the same way, so retries, timeouts and cancellation apply unchanged.
    """

    def run_attempt(
        self,
        ctx: ExecutionContext,
        task: TaskSpec,
        *,
        attempt: int,
        values: dict[str, Any],
        timeout_ms: int,
    ) -> AttemptResult:
        """Run one attempt to its end; never raises for a failure of the work itself."""
        ...


class WorkerPool:
    """A fixed number of worker threads fed by a bounded queue (backpressure).

    Args:
        size: number of threads, i.e. of attempts that may run at once.
        queue_size: jobs that may wait for a thread; beyond it :meth:`try_submit` refuses.
    """

    def __init__(self, size: int, *, queue_size: int | None = None) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.size = size
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(
            maxsize=queue_size if queue_size is not None else size
        )
        self._threads = [
            threading.Thread(target=self._loop, name=f"autokestra-worker-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def try_submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job`` unless the queue is full; never blocks."""
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def shutdown(self, timeout: float | None = None) -> None:
        """Let queued jobs finish, then stop every thread."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout)


class TaskRunner:
    """Runs one task run to its end: input resolution, attempts, retries, timeouts, cancel."""

    def __init__(
        self,
        *,
        recorder: ExecutionRecorder,
        executor: PluginExecutor,
        registry: PluginRegistry,
        default_timeout_ms: int,
        in_process: Mapping[str, InProcessAction] | None = None,
    ) -> None:
        self._recorder = recorder
        self._executor = executor
        self._registry = registry
        self._default_timeout_ms = default_timeout_ms
        #: Task types the engine runs itself, by type.
        self.in_process: dict[str, InProcessAction] = dict(in_process or {})

    # Each early return is one way a task ends before or between attempts (cancelled, bad
    # template, retries spent...); reading them in order is the retry policy.
    def run(  # noqa: PLR0911
        self, ctx: ExecutionContext, task: TaskSpec, *, queued_at: int | None = None
    ) -> TaskOutcome:
        """Run every attempt the retry policy allows; never raises for a task failure.

        Args:
            ctx: the execution's shared state.
            task: the task to run.
            queued_at: when the scheduler handed it to the pool (Unix ms); stored with the
                first write of the task run.
        """
        eid = ctx.execution_id
        action = self._registry.action(task.type)
        if ctx.stop_token(task.id).is_set():
            return self._cancelled_between(ctx, task, 0, queued_at=queued_at)
        try:
            resolved = resolve_task_inputs(
                task,
                action,
                TemplateContext(
                    inputs=ctx.inputs,
                    task_outputs=ctx.outputs(),
                    secrets=ctx.secrets,
                    execution_id=eid,
                    iteration=None
                    if task.iteration is None
                    else (task.iteration.index, task.iteration.item),
                    execution=dict(ctx.summary),
                    trigger=ctx.trigger,
                ),
            )
        except TemplateError as exc:
            return self._template_failed(ctx, task, str(exc), queued_at)
        ctx.add_secret_values(set(resolved.secret_values))
        # Templates mask {{ secrets.* }} and secret inputs, but a secret can also arrive
        # through an upstream task's outputs (kept in clear for templates): redact those too.
        masked = ctx.redactor.redact_value(resolved.masked)
        timeout_ms = task.timeout_ms or action.timeout_ms or self._default_timeout_ms
        total = task.retry.max + 1
        attempt = 0
        while True:
            attempt += 1
            if ctx.stop_token(task.id).is_set():
                return self._cancelled_between(ctx, task, attempt - 1)
            self._started(
                ctx,
                task,
                attempt,
                total=total,
                masked=masked,
                timeout_ms=timeout_ms,
                queued_at=queued_at,
            )
            result = self._attempt(
                ctx, task, action, attempt=attempt, values=resolved.values, timeout_ms=timeout_ms
            )
            error = ctx.redactor.redact_value(result.error) if result.error else None
            if result.outcome == "success":
                return self._succeeded(ctx, task, attempt, result)
            if result.outcome == "cancelled":
                self._end_attempt(ctx, task, attempt, result, State.CANCELLED, error=error)
                return self._cancelled_between(ctx, task, attempt)
            reason = (
                Reason.TIMEOUT
                if result.outcome == "timeout"
                else (result.reason or Reason.PLUGIN_ERROR)
            )
            message = str((error or {}).get("message") or f"attempt {attempt} failed")
            if result.outcome == "timeout":
                ctx.log(
                    LogLevel.ERROR,
                    f"Task {task.id} attempt {attempt} timed out: limit {human_ms(timeout_ms)},"
                    f" elapsed {human_ms(result.duration_ms)}",
                    task_id=task.id,
                    attempt=attempt,
                    metadata={"timeout_ms": timeout_ms, "elapsed_ms": result.duration_ms},
                )
            retrying = attempt < total and not ctx.stop_token(task.id).is_set()
            # The last attempt ends its task run in the same transaction (see _failed).
            self._end_attempt(
                ctx,
                task,
                attempt,
                result,
                State.FAILED,
                error=error,
                reason=reason,
                retry_delay_ms=task.retry.delay_for(attempt) if retrying else None,
                last=not retrying,
            )
            if retrying:
                if self._wait_to_retry(ctx, task, attempt, total, reason=reason, message=message):
                    continue
                return self._cancelled_between(ctx, task, attempt)
            return self._failed(
                ctx, task, attempt=attempt, reason=reason, error=error, message=message
            )

    def _started(
        self,
        ctx: ExecutionContext,
        task: TaskSpec,
        attempt: int,
        *,
        total: int,
        masked: Any,
        timeout_ms: int,
        queued_at: int | None,
    ) -> None:
        """Record, announce and log the start of an attempt."""
        self._recorder.start_attempt(
            ctx.execution_id, task.id, attempt, masked_inputs=masked, queued_at=queued_at
        )
        ctx.emit(task.id, State.RUNNING, attempt=attempt)
        ctx.log(
            LogLevel.INFO,
            f"Task {task.id} started ({task.type}, attempt {attempt}/{total})",
            task_id=task.id,
            attempt=attempt,
            metadata={
                "type": task.type,
                "inputs": masked,
                "attempt": attempt,
                "timeout_ms": timeout_ms,
            },
        )

    def _end_attempt(
        self,
        ctx: ExecutionContext,
        task: TaskSpec,
        attempt: int,
        result: AttemptResult,
        state: State,
        *,
        error: dict[str, Any] | None,
        reason: str | None = None,
        retry_delay_ms: int | None = None,
        last: bool = False,
    ) -> None:
        """Close a failed or cancelled attempt's row (a cancel records the token's reason).

        ``retry_delay_ms``: the backoff before the next attempt when one follows (told to the
        engine's observers, not stored). ``last``: no retry follows, so the task run ends
        FAILED in the same transaction.
        """
        self._recorder.end_attempt(
            ctx.execution_id,
            task.id,
            attempt,
            state,
            reason=ctx.stop_token(task.id).reason_code if state is State.CANCELLED else reason,
            duration_ms=result.duration_ms,
            exit_code=result.exit_code,
            error=error,
            pid=result.pid,
            pgid=result.pgid,
            retry_delay_ms=retry_delay_ms,
            finish_task=last,
        )

    def _wait_to_retry(
        self,
        ctx: ExecutionContext,
        task: TaskSpec,
        attempt: int,
        total: int,
        *,
        reason: str,
        message: str,
    ) -> bool:
        """WAITING (RETRY_BACKOFF) for the backoff delay; False when cancelled meanwhile."""
        delay_ms = task.retry.delay_for(attempt)
        self._recorder.task_waiting(ctx.execution_id, task.id, Reason.RETRY_BACKOFF)
        ctx.emit(task.id, State.WAITING, attempt=attempt, reason=Reason.RETRY_BACKOFF)
        ctx.log(
            LogLevel.WARN,
            f"Retrying task {task.id}: attempt {attempt}/{total} failed ({reason}:"
            f" {message}); next attempt in {human_ms(delay_ms)}",
            task_id=task.id,
            attempt=attempt,
            metadata={
                "attempt": attempt,
                "next_attempt": attempt + 1,
                "max_attempts": total,
                "reason": str(reason),
                "error": message,
                "delay_ms": delay_ms,
                "backoff": task.retry.backoff,
            },
        )
        return not ctx.stop_token(task.id).event.wait(delay_ms / 1000)

    def _attempt(
        self,
        ctx: ExecutionContext,
        task: TaskSpec,
        action: ActionSpec,
        *,
        attempt: int,
        values: dict[str, Any],
        timeout_ms: int,
    ) -> AttemptResult:
        own = self.in_process.get(task.type)
        if own is not None:
            return own.run_attempt(ctx, task, attempt=attempt, values=values, timeout_ms=timeout_ms)
        eid = ctx.execution_id
        source = action.source
        plugin_meta = {"plugin": f"{action.namespace}/{action.plugin}", "action": action.action}

        def sink(level: LogLevel, message: str, metadata: dict[str, Any] | None) -> None:
            ctx.log(
                level,
                message,
                task_id=task.id,
                attempt=attempt,
                source=source,
                metadata={**plugin_meta, **(metadata or {})},
            )

        def on_spawn(pid: int, pgid: int) -> None:
            self._recorder.attempt_spawned(eid, task.id, attempt, pid=pid, pgid=pgid)

        request = AttemptRequest(
            execution_id=eid,
            task_id=task.id,
            attempt=attempt,
            action=action,
            inputs=values,
            timeout_ms=timeout_ms,
            redactor=ctx.redactor,
            on_spawn=on_spawn,
        )
        return self._executor.run_attempt(request, sink, ctx.stop_token(task.id).event)

    def _succeeded(
        self, ctx: ExecutionContext, task: TaskSpec, attempt: int, result: AttemptResult
    ) -> TaskOutcome:
        eid = ctx.execution_id
        outputs = ctx.redactor.redact_value(result.outputs)
        self._recorder.end_attempt(
            eid,
            task.id,
            attempt,
            State.SUCCESS,
            reason=None,
            duration_ms=result.duration_ms,
            exit_code=result.exit_code,
            pid=result.pid,
            pgid=result.pgid,
            finish_task=True,  # attempt and task end in one transaction
            outputs=outputs,
        )
        ctx.set_outputs(task.id, result.outputs)
        ctx.emit(task.id, State.SUCCESS, attempt=attempt)
        ctx.log(
            LogLevel.INFO,
            f"Task {task.id} succeeded in {human_ms(result.duration_ms)} (attempt {attempt})",
            task_id=task.id,
            attempt=attempt,
            metadata={
                "state": State.SUCCESS.value,
                "duration_ms": result.duration_ms,
                "attempt": attempt,
                "outputs": outputs,
            },
        )
        return TaskOutcome(task.id, State.SUCCESS, attempts=attempt)

    def _failed(
        self,
        ctx: ExecutionContext,
        task: TaskSpec,
        *,
        attempt: int,
        reason: str,
        error: dict[str, Any] | None,
        message: str,
    ) -> TaskOutcome:
        """Report a task run that its last attempt already ended FAILED (same transaction)."""
        ctx.emit(task.id, State.FAILED, attempt=attempt, reason=reason)
        ctx.log(
            LogLevel.ERROR,
            f"Task {task.id} failed after {attempt} attempt{'s' if attempt > 1 else ''}: {message}",
            task_id=task.id,
            attempt=attempt,
            metadata={
                "state": State.FAILED.value,
                "reason": reason,
                "attempts": attempt,
                "error": error,
            },
        )
        return TaskOutcome(task.id, State.FAILED, reason, message, attempt)

    def _template_failed(
        self, ctx: ExecutionContext, task: TaskSpec, detail: str, queued_at: int | None
    ) -> TaskOutcome:
        """An input template that cannot be resolved fails the task without spawning."""
        message = ctx.redactor.redact(f"cannot resolve inputs: {detail}")
        error = {"message": message, "type": "TemplateError"}
        eid = ctx.execution_id
        self._recorder.start_attempt(eid, task.id, 1, masked_inputs=None, queued_at=queued_at)
        self._recorder.end_attempt(
            eid,
            task.id,
            1,
            State.FAILED,
            reason=Reason.TEMPLATE_ERROR,
            duration_ms=0,
            error=error,
            finish_task=True,
        )
        return self._failed(
            ctx, task, attempt=1, reason=Reason.TEMPLATE_ERROR, error=error, message=message
        )

    def _cancelled_between(
        self, ctx: ExecutionContext, task: TaskSpec, attempts: int, queued_at: int | None = None
    ) -> TaskOutcome:
        token = ctx.stop_token(task.id)
        self._recorder.finish_task(
            ctx.execution_id,
            task.id,
            State.CANCELLED,
            reason=token.reason_code,
            queued_at=queued_at,
        )
        ctx.emit(task.id, State.CANCELLED, attempt=attempts or None, reason=token.reason_code)
        ctx.log(
            LogLevel.WARN,
            f"Task {task.id} cancelled ({token.reason_code})",
            task_id=task.id,
            attempt=attempts or None,
            metadata={
                "state": State.CANCELLED.value,
                "reason": token.reason_code,
                "cancelled_by": token.cancelled_by,
                "attempts": attempts,
            },
        )
        return TaskOutcome(task.id, State.CANCELLED, token.reason_code, attempts=attempts)
