"""Running a subflow task: a child execution of a registered workflow, in this engine.

An attempt of a ``core/flow.subflow`` task creates the child (its own row, task runs, logs
and audit trail; ``parent_execution_id`` / ``parent_task_id`` name the parent), runs it to
its end on a thread of its own, and reports it as an attempt: SUCCESS with outputs
``{execution_id, state, tasks}`` (each child task's stored outputs by task id), FAILED with
``subflow <child id> FAILED: <its message>``. Cancelling the parent (its stop event) or the
task's timeout asks the child to cancel and waits for it to end, so no child outlives the
task that started it.

    runner = TaskRunner(..., in_process={SUBFLOW_TYPE: SubflowRunner(engine, lookup)})
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from autokestra_obs_schema import AutokestraError, LogLevel, Reason, State, now_ms

from ..language._model import TaskSpec, Workflow
from ..language._subflows import MAX_SUBFLOW_DEPTH, WorkflowLookup
from ..persistence._recorder import (
    ExecutionAlreadyFinished,
    ParentLink,
    load_execution,
    load_task_outputs,
)
from ._executor import AttemptResult, Outcome
from ._worker import ExecutionContext, human_ms

if TYPE_CHECKING:
    from ._engine import Engine

#: The trigger type of a child execution (``execution list`` shows it).
SUBFLOW_TRIGGER = "subflow"
#: How often the waiting attempt checks its stop event and deadline.
_WAIT_S = 0.05


class SubflowRunner:
    """The in-process action of ``core/flow.subflow`` (see :class:`~._worker.InProcessAction`).

    Args:
        engine: the engine that runs the parent; it creates and runs the child too.
        lookup: registered workflows by id (None: no registry, every subflow fails).
    """

    def __init__(self, engine: Engine, lookup: WorkflowLookup | None) -> None:
        self._engine = engine
        self._lookup = lookup

    def run_attempt(
        self,
        ctx: ExecutionContext,
        task: TaskSpec,
        *,
        attempt: int,
        values: dict[str, Any],
        timeout_ms: int,
    ) -> AttemptResult:
        """Create the child, run it to its end, and report how it ended as this attempt."""
        started = now_ms()
        workflow_id = str(values.get("workflow"))
        child_inputs = values.get("inputs") or {}
        try:
            workflow = self._callee(ctx, workflow_id, child_inputs)
            child_id = self._engine.create_execution(
                workflow,
                child_inputs,
                SUBFLOW_TRIGGER,
                parent=ParentLink(ctx.execution_id, task.id),
                inherited_secrets=ctx.secret_values(),
            )
        except AutokestraError as exc:
            message = f"cannot start subflow {workflow_id}: {exc}"
            return _result(started, "failed", error={"message": message, "type": "subflow"})
        ctx.add_child(task.id, child_id)
        ctx.log(
            LogLevel.INFO,
            f"Subflow {child_id} started (workflow {workflow_id})",
            task_id=task.id,
            attempt=attempt,
            metadata={"child_execution_id": child_id, "workflow_id": workflow_id},
        )
        stopped = self._wait(ctx, task, child_id, timeout_ms)
        outcome = self._engine.outcome(child_id)
        ctx.log(
            LogLevel.INFO if outcome.state is State.SUCCESS else LogLevel.WARN,
            f"Subflow {child_id} ended {outcome.state}"
            + (f": {outcome.message}" if outcome.message else ""),
            task_id=task.id,
            attempt=attempt,
            metadata={"child_execution_id": child_id, "state": outcome.state.value},
        )
        if outcome.state is State.SUCCESS:
            with self._engine.writer.locked() as conn:
                tasks = load_task_outputs(conn, child_id, [t.id for t in workflow.all_tasks])
            outputs = {"execution_id": child_id, "state": outcome.state.value, "tasks": tasks}
            return _result(started, "success", outputs=outputs)
        what = f"subflow {child_id} {outcome.state}" + (
            f": {outcome.message}" if outcome.message else ""
        )
        error = {"message": what, "type": "subflow", "child_execution_id": child_id}
        if stopped == "timeout":
            error = {**error, "type": "timeout", "message": f"{what} (task timeout)"}
        return _result(started, stopped or "failed", error=error)

    def _callee(self, ctx: ExecutionContext, workflow_id: str, inputs: Any) -> Workflow:
        """The workflow to start, once the depth limit and its inputs allow it.

        Raises:
            SubflowRefused: no registry, an unknown id, the depth limit, or bad inputs.
        """
        chain = self._ancestry(ctx.execution_id)
        if len(chain) >= MAX_SUBFLOW_DEPTH:
            path = " -> ".join([*chain, workflow_id])
            raise SubflowRefused(
                f"subflow depth limit {MAX_SUBFLOW_DEPTH} reached: {path} (recursive subflow?)"
            )
        if self._lookup is None:
            raise SubflowRefused("no workflow registry")
        workflow = self._lookup(workflow_id)
        if workflow is None:
            raise SubflowRefused(
                f"unknown workflow {workflow_id!r} (register it with `workflow apply`)"
            )
        if not isinstance(inputs, dict):
            raise SubflowRefused(f"inputs: expected a mapping, got {type(inputs).__name__}")
        return workflow

    def _ancestry(self, execution_id: str) -> list[str]:
        """Workflow ids from the root execution down to ``execution_id``'s (bounded walk)."""
        chain: list[str] = []
        current: str | None = execution_id
        with self._engine.writer.locked() as conn:
            while current is not None and len(chain) <= MAX_SUBFLOW_DEPTH:
                row = load_execution(conn, current)
                if row is None:
                    break
                chain.append(row.workflow_id)
                current = row.parent_execution_id
        return chain[::-1]

    def _wait(
        self, ctx: ExecutionContext, task: TaskSpec, child_id: str, timeout_ms: int
    ) -> Outcome | None:
        """Run the child on its own thread until it ends; cancel it on a stop or a timeout.

        Returns:
            ``cancelled`` when the parent stopped it, ``timeout`` when the task's timeout
            did, None when it ended by itself.
        """
        done = threading.Event()

        def run_child() -> None:
            try:
                self._engine.run(child_id)
            except Exception as exc:  # reported as the child's end (it stays as stored)
                ctx.log(LogLevel.ERROR, f"subflow {child_id}: {exc}", task_id=task.id)
            finally:
                done.set()

        threading.Thread(target=run_child, name=f"autokestra-subflow-{child_id}").start()
        token = ctx.stop_token(task.id)
        deadline = time.monotonic() + timeout_ms / 1000
        stopped: Outcome | None = None
        while not done.wait(_WAIT_S):
            if stopped is not None:
                continue
            if token.is_set():
                stopped = "cancelled"
                what = "timed out" if token.reason_code == Reason.TIMEOUT else "cancelled"
                detail = f": {token.reason}" if token.reason else ""
                why = {
                    "by": token.cancelled_by or "system",
                    "reason": f"parent execution {ctx.execution_id} {what}{detail}",
                }
            elif time.monotonic() >= deadline:
                stopped = "timeout"
                why = {
                    "by": "system",
                    "reason": f"subflow task {task.id} timed out after {human_ms(timeout_ms)}",
                }
            else:
                continue
            ctx.log(
                LogLevel.WARN,
                f"Cancelling subflow {child_id}: {why['reason']}",
                task_id=task.id,
                metadata={"child_execution_id": child_id},
            )
            with contextlib.suppress(ExecutionAlreadyFinished):  # it ended meanwhile
                self._engine.request_cancel(child_id, why["by"], why["reason"])
        return stopped


class SubflowRefused(AutokestraError):
    """A subflow that cannot start: the message says why (it becomes the attempt's error)."""


def _result(
    started: int,
    outcome: Outcome,
    *,
    outputs: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> AttemptResult:
    ended = now_ms()
    reason = Reason.SUBFLOW_FAILED if outcome == "failed" else None
    return AttemptResult(
        outcome=outcome,
        exit_code=None,
        signal=None,
        outputs=outputs or {},
        error=error,
        duration_ms=max(0, ended - started),
        pid=None,
        pgid=None,
        started_at=started,
        ended_at=ended,
        reason=reason,
    )
