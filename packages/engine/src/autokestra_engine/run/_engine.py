"""The engine facade: create executions, run them to the end, cancel them from anywhere.

One :class:`Engine` per process owns the worker pool and an engine id; the caller owns the
Writer and the LogCollector (one of each per process) and closes them after :meth:`close`.

    engine = Engine(config, writer=writer, collector=collector, registry=registry,
                    secrets=SecretStore.load(config, os.environ))
    execution_id = engine.create_execution(workflow, {"name": "ops"})
    outcome = engine.run(execution_id)   # RunOutcome(state=<State.SUCCESS>, duration_ms=...)
    engine.close()
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autokestra_obs_collector import ExecutionObserver, LogCollector, LogEntry, Observers, Redactor
from autokestra_obs_schema import (
    AuditEventType,
    ExecutionNotFound,
    LogLevel,
    Reason,
    State,
    Writer,
    connect,
)

from .._config import EngineConfig
from .._secret_store import SecretStore
from ..language._inputs import bind_inputs
from ..language._model import Workflow
from ..language._plugin_registry import PluginRegistry
from ..language._problems import SecretNotQueueable, WorkflowInvalid
from ..language._secret_analysis import (
    SecretInputValues,
    check_secrets,
    secret_input_values,
    secret_references,
    stored_form,
)
from ..language._subflows import SUBFLOW_TYPE, WorkflowLookup
from ..language._templates import secret_strings
from ..language._workflow_parser import parse_workflow
from ..persistence._ids import new_engine_id, new_execution_id
from ..persistence._recorder import (
    CancelOutcome,
    EngineOwner,
    ExecutionRecorder,
    ExecutionRow,
    NewExecution,
    NewTask,
    ParentLink,
    WebhookDelivery,
    load_execution,
    load_trigger,
)
from ._executor import PluginExecutor
from ._scheduler import SCHEDULER, ExecutionRun
from ._subflow import SubflowRunner
from ._worker import EventCallback, ExecutionContext, TaskRunner, WorkerPool


def referenced_secrets(workflow: Workflow) -> list[str]:
    """Names of the secrets a workflow's task inputs reference, sorted."""
    return sorted(secret_references(workflow))


@dataclass(frozen=True)
class _Prepared:
    """What a foreground run needs that its stored (masked) row no longer holds in clear."""

    workflow: Workflow
    inputs: dict[str, Any]
    secret_values: frozenset[str]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How an execution ended, as stored: what ``workflow run`` prints at the end.

    Attributes:
        state: the terminal state (or the current one of an execution still open).
        reason_code: why it ended so (``TASK_FAILED``, ``TIMEOUT``...), None on success.
        duration_ms: from start (or creation, if it never started) to end; None while open.
        message: the one-line explanation stored with a failure or cancellation.
    """

    state: State
    reason_code: str | None
    duration_ms: int | None
    message: str | None

    @classmethod
    def of(cls, row: ExecutionRow) -> RunOutcome:
        """The outcome an ``executions`` row records."""
        return cls(row.state, row.reason_code, row.duration_ms, row.message)


@dataclass(frozen=True)
class _Claim:
    """An execution this engine moved to RUNNING, with the workflow it runs."""

    workflow: Workflow
    row: ExecutionRow


class Engine:
    """Runs workflows: the scheduler, the worker pool and the write path of one process.

    Args:
        config: the engine configuration (concurrency, default task timeout).
        writer: the process's one Writer.
        collector: the process's LogCollector (over the same Writer).
        registry: discovered plugins.
        secrets: the secret store templates read.
        executor: the plugin executor (default: one over ``registry`` in the working folder).
        observers: told of every stored transition and log batch of this engine (telemetry
            exporters); none by default, which costs nothing.
        workflows: the registered workflows by id, which subflow tasks start (None: a
            subflow task fails, naming the missing registry).
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        writer: Writer,
        collector: LogCollector,
        registry: PluginRegistry,
        secrets: SecretStore,
        executor: PluginExecutor | None = None,
        observers: Sequence[ExecutionObserver] = (),
        workflows: WorkflowLookup | None = None,
    ) -> None:
        self.config = config
        self.writer = writer
        self.collector = collector
        self.registry = registry
        self.secrets = secrets
        self.observers = Observers(observers)
        self.recorder = ExecutionRecorder(writer, observers=self.observers)
        if self.observers:
            # Every stored log batch of this process, as stored (redacted): what an exporter
            # sends as log records. Not registered without observers: it would cost a batch.
            collector.add_listener(self._logs_stored)
        self.owner = EngineOwner(new_engine_id(), os.getpid(), socket.gethostname())
        self._own_executor = executor is None
        self._executor = executor or PluginExecutor(
            registry, workdir=Path.cwd(), launcher=config.launcher
        )
        self._runner = TaskRunner(
            recorder=self.recorder,
            executor=self._executor,
            registry=registry,
            default_timeout_ms=config.default_task_timeout_ms,
            in_process={SUBFLOW_TYPE: SubflowRunner(self, workflows)},
        )
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()
        # Executions this engine created and owns, until it runs them: the real workflow,
        # inputs and secret values (the stored source and inputs have the secrets masked).
        self._prepared: dict[str, _Prepared] = {}
        self._prepared_lock = threading.Lock()

    def _logs_stored(self, entries: Sequence[LogEntry], seconds: float) -> None:
        self.observers.logs_stored(entries)

    @property
    def engine_id(self) -> str:
        """This engine process's id (``executions.engine_id`` of what it runs)."""
        return self.owner.engine_id

    def _worker_pool(self) -> WorkerPool:
        with self._pool_lock:
            if self._pool is None:
                size = self.config.max_concurrent_tasks
                # Twice the threads: enough queued work to keep every thread busy, little
                # enough that a cancel reaches queued tasks before they spawn anything.
                self._pool = WorkerPool(size, queue_size=2 * size)
            return self._pool

    # -- creating ---------------------------------------------------------------------------

    def create_execution(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        trigger_type: str = "manual",
        *,
        detached: bool = False,
        delivery: WebhookDelivery | None = None,
        parent: ParentLink | None = None,
        inherited_secrets: frozenset[str] = frozenset(),
    ) -> str:
        """Store a new PENDING execution with its task runs and CREATED audit event.

        The execution's secrets are known from here on: the values of ``{{ secrets.* }}``
        it references, literals the file gives to ``secret: true`` task inputs, inputs such
        a task input reads and the actions' secret defaults. Its redactor masks them from
        its first log entry, and the stored source and inputs hold them masked; so only
        this engine can run it (:meth:`run` uses the values it keeps in memory).

        Args:
            workflow: the validated workflow.
            inputs: input values by name (text is converted to the declared type).
            trigger_type: ``manual``, ``cron`` or ``webhook``.
            detached: leave it unowned (``run --detach``): a server picks it up. Otherwise
                this engine owns it from the start, so no server can claim it first.
            delivery: the webhook request that starts it, recorded in the same
                transaction; its body is stored with the execution's secrets masked.
            parent: the execution and subflow task that start this one (a child).
            inherited_secrets: secret values of the parent: a child's inputs may carry them.

        Returns:
            The new execution id (a UUID7).

        Raises:
            WorkflowInvalid: inputs undeclared, mistyped or missing, or a referenced secret
                that has no value.
            SecretNotQueueable: ``detached`` while the file or an input gives a secret input
                its value in clear (a server would run the masked value); nothing is stored.

            DeliveryReplayed: ``delivery`` was already received; nothing is stored.
        """
        values = bind_inputs(workflow, inputs)
        check_secrets(workflow, self.secrets)
        declared = secret_input_values(workflow, values)
        where = f"{workflow.source_path}: " if workflow.source_path else ""
        if detached and declared:
            raise SecretNotQueueable(where + declared.refusal("queued"))
        secret_values = self._initial_secrets(workflow, declared) | inherited_secrets
        redactor = Redactor(secret_values, mask_token_shapes=self.config.mask_token_shapes)
        stored = stored_form(workflow, values, declared, redactor)
        if detached and (changed := stored.changed(workflow, values)):
            # A secret's value written elsewhere in the file or given as an input: storing
            # it masked would change what the server runs, storing it clear would leak it.
            raise SecretNotQueueable(
                f"{where}{', '.join(changed)}: holds the value of a secret in clear and cannot"
                " be queued; use {{ secrets.NAME }}"
            )
        if delivery is not None and redactor:
            delivery = dataclasses.replace(delivery, body=redactor.redact_value(delivery.body))
        execution_id = new_execution_id()
        self.recorder.create_execution(
            NewExecution(
                execution_id=execution_id,
                workflow_id=workflow.id,
                trigger_type=trigger_type,
                inputs=stored.inputs,
                workflow_source=stored.source,
                tasks=[
                    NewTask(task.id, task.type, tuple(task.needs), task.position)
                    for task in workflow.all_tasks
                ],
                owner=None if detached else self.owner,
                delivery=delivery,
                parent_execution_id=parent.execution_id if parent else None,
                parent_task_id=parent.task_id if parent else None,
            )
        )
        if redactor:
            self.collector.set_redactor(execution_id, redactor)
        if not detached:
            with self._prepared_lock:
                self._prepared[execution_id] = _Prepared(workflow, values, secret_values)
        self.collector.log(
            execution_id,
            LogLevel.INFO,
            SCHEDULER,
            f"Execution created ({workflow.id}, trigger {trigger_type})",
            metadata={
                "workflow_id": workflow.id,
                "trigger_type": trigger_type,
                "task_count": len(workflow.tasks),
                "detached": detached,
                **(
                    {"parent_execution_id": parent.execution_id, "parent_task_id": parent.task_id}
                    if parent
                    else {}
                ),
            },
        )
        if detached:
            self.collector.flush_execution(execution_id)
            self.collector.clear_redactor(execution_id)
        return execution_id

    def _initial_secrets(self, workflow: Workflow, declared: SecretInputValues) -> frozenset[str]:
        """Every secret value of an execution known before its first task runs."""
        found = set(declared.values) | self._secret_values(workflow)
        for task in workflow.all_tasks:
            if not task.secret_inputs:
                continue
            action = self.registry.action(task.type)
            for name in task.secret_inputs - task.inputs.keys():
                default = action.inputs[name].default
                if default is not None:
                    found |= secret_strings(default)
        found.discard("")
        return frozenset(found)

    # -- running ----------------------------------------------------------------------------

    def run(
        self,
        execution_id: str,
        *,
        on_event: EventCallback | None = None,
        interrupt: threading.Event | None = None,
    ) -> RunOutcome:
        """Run a PENDING execution to its terminal state, in the calling thread.

        Args:
            execution_id: the execution to run.
            on_event: called (from any thread) on every task and execution state change.
            interrupt: set it (e.g. from a SIGINT handler) to cancel the execution as
                ``system`` with reason ``interrupted``.

        Returns:
            How the execution ended (state, reason, duration, message), as stored; an
            execution that already ended is not run again.

        An execution this engine created runs the workflow and inputs it was created with;
        any other (queued) one runs its stored source and inputs.

        Raises:
            ExecutionNotFound: no such execution.
            ExecutionOwned: another engine process owns it.
        """
        with self._prepared_lock:
            prepared = self._prepared.pop(execution_id, None)
        claimed = False
        try:
            claim = self._claim(execution_id, prepared)
            claimed = claim is not None
        finally:
            if not claimed:  # not run here: forget the redactor create_execution set
                self.collector.clear_redactor(execution_id)
        if claim is not None:
            self._drive(claim, prepared, on_event=on_event, interrupt=interrupt)
        return self.outcome(execution_id)

    def outcome(self, execution_id: str) -> RunOutcome:
        """How an execution stands now, as stored (its final outcome once it ended).

        Raises:
            ExecutionNotFound: no such execution.
        """
        with self.writer.locked() as conn:
            row = load_execution(conn, execution_id)
        if row is None:
            raise ExecutionNotFound(execution_id)
        return RunOutcome.of(row)

    def _claim(self, execution_id: str, prepared: _Prepared | None) -> _Claim | None:
        """Load the workflow and move the execution to RUNNING; None when it is not to run.

        An execution that already ended, one whose stored workflow no longer loads (it is
        ended FAILED here) and one a replay finds past RUNNING are not run.
        """
        with self.writer.locked() as conn:
            row = load_execution(conn, execution_id)
        if row is None:
            raise ExecutionNotFound(execution_id)
        if row.state.terminal:
            return None
        if prepared is not None:
            workflow = prepared.workflow
        else:
            try:
                workflow = parse_workflow(
                    row.workflow_source, self.registry, filename=f"execution {execution_id}"
                )
            except WorkflowInvalid as exc:
                self._fail_unrunnable(execution_id, str(exc))
                return None
        started = self.recorder.start_execution(execution_id, self.owner)
        if started.state is not State.RUNNING:
            return None
        return _Claim(workflow, started)

    def _drive(
        self,
        claim: _Claim,
        prepared: _Prepared | None,
        *,
        on_event: EventCallback | None,
        interrupt: threading.Event | None,
    ) -> State:
        """Run a claimed execution's tasks to its terminal state (the scheduler loop)."""
        workflow, started = claim.workflow, claim.row
        execution_id = started.execution_id
        if prepared is not None:
            inputs, base_secrets = prepared.inputs, prepared.secret_values
        else:
            inputs = started.inputs
            base_secrets = self._initial_secrets(workflow, secret_input_values(workflow, inputs))
        reader = connect(self.writer.path, readonly=True)
        try:
            trigger = load_trigger(reader, started)
        except BaseException:
            reader.close()
            raise
        context = ExecutionContext(
            execution_id=execution_id,
            inputs=inputs,
            secrets=self.secrets,
            collector=self.collector,
            base_secrets=set(base_secrets),
            on_event=on_event,
            workflow_id=workflow.id,
            mask_token_shapes=self.config.mask_token_shapes,
            trigger=trigger,
        )
        try:
            self._log_start(context, workflow)
            context.emit(None, State.RUNNING)
            run = ExecutionRun(
                workflow=workflow,
                context=context,
                recorder=self.recorder,
                runner=self._runner,
                pool=self._worker_pool(),
                reader=reader,
                engine_id=self.engine_id,
                started_at_ms=started.started_at or started.created_at,
                interrupt=interrupt,
            )
            return run.run()
        finally:
            reader.close()
            self.collector.flush_execution(execution_id)
            self.collector.clear_redactor(execution_id)

    def _secret_values(self, workflow: Workflow) -> set[str]:
        return {self.secrets.get(name) for name in referenced_secrets(workflow)}

    def _log_start(self, context: ExecutionContext, workflow: Workflow) -> None:
        context.log(
            LogLevel.INFO,
            "Execution state PENDING -> RUNNING",
            source=SCHEDULER,
            metadata={"from_state": State.PENDING.value, "to_state": State.RUNNING.value},
        )
        context.log(
            LogLevel.INFO,
            f"Execution started: {len(workflow.tasks)} tasks,"
            f" max_concurrent_tasks {self.config.max_concurrent_tasks}",
            source=SCHEDULER,
            metadata={
                "workflow_id": workflow.id,
                "task_count": len(workflow.tasks),
                "max_concurrent_tasks": self.config.max_concurrent_tasks,
                "timeout_ms": workflow.timeout_ms,
                "engine_id": self.engine_id,
                "engine_pid": self.owner.pid,
            },
        )
        for name in self.secrets.short_names(referenced_secrets(workflow)):
            context.log(
                LogLevel.WARN,
                f"Secret {name} is shorter than 4 characters: it is only masked where a"
                " value equals it, not inside longer text",
                source=SCHEDULER,
                metadata={"secret": name},
            )

    def _fail_unrunnable(self, execution_id: str, message: str) -> None:
        """A stored workflow that no longer loads (plugin removed): FAILED before start."""
        self.recorder.cancel_open_tasks(execution_id, Reason.ENGINE_ERROR)
        self.collector.log(execution_id, LogLevel.ERROR, SCHEDULER, message)
        self.collector.flush_execution(execution_id)
        self.recorder.finish_execution(
            execution_id,
            State.FAILED,
            terminal_event=AuditEventType.FAILED,
            terminal_metadata={"error_message": message, "reason": Reason.ENGINE_ERROR.value},
            reason=Reason.ENGINE_ERROR,
            message=message,
        )

    # -- cancelling -------------------------------------------------------------------------

    def request_cancel(self, execution_id: str, by: str, reason: str | None) -> CancelOutcome:
        """Record a cancellation request (any process); the owning engine acts within 250 ms.

        Raises:
            ExecutionNotFound: no such execution.
            ExecutionAlreadyFinished: it already ended.
        """
        return request_cancel(self.writer, self.collector, execution_id, by=by, reason=reason)

    def close(self) -> None:
        """Stop the workers (after :meth:`run` returned) and the orphan reaper; idempotent."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(timeout=5.0)
        if self._own_executor:
            self._executor.close()


def request_cancel(
    writer: Writer,
    collector: LogCollector,
    execution_id: str,
    *,
    by: str,
    reason: str | None,
) -> CancelOutcome:
    """Record a cancellation request without an engine (what ``execution cancel`` uses).

    Raises:
        ExecutionNotFound: no such execution.
        ExecutionAlreadyFinished: it already ended.
    """
    outcome = ExecutionRecorder(writer).request_cancel(execution_id, by=by, reason=reason)
    if outcome.cancelled_now:
        why = f": {reason}" if reason else ""
        collector.log(
            execution_id,
            LogLevel.WARN,
            SCHEDULER,
            f"Execution cancelled while queued, by {by}{why}",
            metadata={
                "cancelled_by": by,
                "reason": reason,
                "pending_task_count": outcome.pending_task_count,
            },
        )
        collector.flush_execution(execution_id)
    return outcome
