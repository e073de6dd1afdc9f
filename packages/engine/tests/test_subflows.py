"""Subflows: the static checks, and child executions run by a real engine on a real database."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autokestra_engine import (
    MAX_SUBFLOW_DEPTH,
    Engine,
    EngineConfig,
    PluginExecutor,
    PluginRegistry,
    SecretStore,
    Workflow,
    WorkflowInvalid,
    check_subflows,
    parse_workflow,
)
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import Reason, State, open_reader, open_writer

REGISTRY = PluginRegistry.discover([])

CHILD = """
id: child
inputs:
  name: {type: string, required: true}
  times: {type: integer, default: 1}
tasks:
  - id: greet
    type: core/python.run
    inputs:
      args: ["{{ inputs.name }}", "{{ inputs.times }}"]
      script: |
        import json, os, sys
        with open(os.environ["AUTOKESTRA_OUTPUTS"], "w") as out:
            json.dump({"greeting": "hi " + sys.argv[1] * int(sys.argv[2])}, out)
"""

PARENT = """
id: parent
tasks:
  - id: call
    type: core/flow.subflow
    inputs:
      workflow: child
      inputs: {name: ops, times: 2}
  - id: show
    type: core/log.emit
    needs: [call]
    inputs: {message: "{{ tasks.call.outputs.tasks.greet.greeting }}"}
"""

FAILING_CHILD = """
id: failing-child
tasks:
  - {id: boom, type: core/shell.run, inputs: {command: "exit 3"}}
"""

SLOW_CHILD = """
id: slow-child
tasks:
  - {id: nap, type: core/shell.run, inputs: {command: "sleep 30"}}
"""


def parse(text: str) -> Workflow:
    return parse_workflow(textwrap.dedent(text), REGISTRY, filename="test.yaml")


class Harness:
    """An engine whose registered workflows are the ones given; workflows as YAML text."""

    def __init__(self, tmp_path: Path, *registered: str) -> None:
        self.db = tmp_path / "db" / "autokestra.db"
        self.writer = open_writer(self.db)
        self.collector = LogCollector(self.writer, max_age_s=0.05)
        self.registered = {w.id: w for w in map(parse, registered)}
        config = dataclasses.replace(EngineConfig(db_path=self.db), max_concurrent_tasks=2)
        self.engine = Engine(
            config,
            writer=self.writer,
            collector=self.collector,
            registry=REGISTRY,
            secrets=SecretStore(),
            executor=PluginExecutor(REGISTRY, workdir=tmp_path, grace_ms=500),
            workflows=self.registered.get,
        )

    def start(self, text: str) -> str:
        return self.engine.create_execution(parse(text), {})

    def row(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
        conn = open_reader(self.db)
        try:
            rows = conn.execute(sql, params).fetchall()
        finally:
            conn.close()
        assert rows, sql
        return tuple(rows[0])

    def children(self, eid: str) -> list[tuple[str, str, str]]:
        conn = open_reader(self.db)
        try:
            return [
                (str(a), str(b), str(c))
                for a, b, c in conn.execute(
                    "SELECT execution_id, parent_task_id, state FROM executions"
                    " WHERE parent_execution_id = ? ORDER BY created_at",
                    (eid,),
                )
            ]
        finally:
            conn.close()

    def audit(self, eid: str) -> list[tuple[str, dict[str, Any]]]:
        conn = open_reader(self.db)
        try:
            return [
                (str(kind), json.loads(meta))
                for kind, meta in conn.execute(
                    "SELECT event_type, metadata FROM execution_audit_events"
                    " WHERE execution_id = ? ORDER BY id",
                    (eid,),
                )
            ]
        finally:
            conn.close()

    def close(self) -> None:
        self.engine.close()
        self.collector.shutdown()
        self.writer.close()


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def factory(*registered: str) -> Harness:
        made.append(Harness(tmp_path, *registered))
        return made[-1]

    yield factory
    for harness in made:
        harness.close()


class TestStaticChecks:
    def test_template_and_self_call_are_refused_by_the_parser(self) -> None:
        """The callee is a literal id, never the workflow itself (paths given)."""
        with pytest.raises(WorkflowInvalid) as caught:
            parse(
                """
                id: me
                inputs: {target: {type: string, default: x}}
                tasks:
                  - {id: a, type: core/flow.subflow, inputs: {workflow: "{{ inputs.target }}"}}
                  - {id: b, type: core/flow.subflow, inputs: {workflow: me}}
                """
            )
        assert [str(p) for p in caught.value.problems] == [
            "tasks[0].inputs.workflow: must be a literal workflow id (templates are not"
            " allowed here)",
            "tasks[1].inputs.workflow: recursive subflow: me -> me",
        ]

    def test_unknown_callee_and_bad_inputs_are_reported_with_paths(self) -> None:
        """An unknown workflow, an undeclared input, a wrong type, a missing required one."""
        workflow = parse(
            """
            id: p
            tasks:
              - {id: a, type: core/flow.subflow, inputs: {workflow: nope}}
              - {id: b, type: core/flow.subflow,
                 inputs: {workflow: child, inputs: {colour: red, times: many}}}
            """
        )
        child = parse(CHILD)
        problems = [
            str(p)
            for p in check_subflows(workflow, REGISTRY, conn=None, alongside={"child": child})
        ]
        assert problems == [
            "tasks[0].inputs.workflow: unknown workflow 'nope' (register it with `workflow apply`)",
            "tasks[1].inputs.inputs.colour: input 'colour' is not declared by workflow child"
            " (declared: name, times)",
            "tasks[1].inputs.inputs.times: expected integer, got string",
            "tasks[1].inputs.inputs: missing required input 'name' of workflow child",
        ]

    def test_templated_inputs_are_left_to_run_time(self) -> None:
        """A value holding a template is not type-checked statically."""
        workflow = parse(
            """
            id: p
            inputs: {n: {type: string, default: "2"}}
            tasks:
              - {id: a, type: core/flow.subflow,
                 inputs: {workflow: child, inputs: {name: x, times: "{{ inputs.n }}"}}}
            """
        )
        assert (
            check_subflows(workflow, REGISTRY, conn=None, alongside={"child": parse(CHILD)}) == []
        )

    def test_a_call_cycle_through_other_workflows_is_named(self) -> None:
        """a -> b -> a is reported on the task that closes the loop, with the chain."""
        a = parse("id: a\ntasks: [{id: t, type: core/flow.subflow, inputs: {workflow: b}}]")
        b = parse("id: b\ntasks: [{id: t, type: core/flow.subflow, inputs: {workflow: a}}]")
        problems = check_subflows(a, REGISTRY, conn=None, alongside={"a": a, "b": b})
        assert [str(p) for p in problems] == [
            "tasks[0].inputs.workflow: recursive subflow: a -> b -> a"
        ]


class TestRun:
    def test_child_runs_linked_and_its_outputs_reach_downstream(self, make: Any) -> None:
        """The child is its own execution named by the parent; outputs are templated."""
        h = make(CHILD)
        eid = h.start(PARENT)
        assert h.engine.run(eid).state is State.SUCCESS
        [(child, task, state)] = h.children(eid)
        assert (task, state) == ("call", "SUCCESS")
        outputs = json.loads(
            h.row(
                "SELECT outputs FROM task_runs WHERE execution_id = ? AND task_id = 'call'",
                (eid,),
            )[0]
        )
        assert outputs == {
            "execution_id": child,
            "state": "SUCCESS",
            "tasks": {"greet": {"greeting": "hi opsops"}},
        }
        shown = h.row(
            "SELECT outputs FROM task_runs WHERE execution_id = ? AND task_id = 'show'", (eid,)
        )[0]
        assert json.loads(shown) == {"message": "hi opsops"}
        assert h.row("SELECT trigger_type FROM executions WHERE execution_id = ?", (child,)) == (
            "subflow",
        )

    def test_audit_trails_link_both_ways(self, make: Any) -> None:
        """The child's CREATED names the parent; the parent's terminal event names the child."""
        h = make(CHILD)
        eid = h.start(PARENT)
        h.engine.run(eid)
        [(child, _, _)] = h.children(eid)
        created = h.audit(child)[0]
        assert created[0] == "CREATED"
        assert created[1]["parent_execution_id"] == eid
        assert created[1]["parent_task_id"] == "call"
        kind, metadata = h.audit(eid)[-1]
        assert kind == "COMPLETED"
        assert metadata["subflow_execution_ids"] == {"call": child}

    def test_child_failure_fails_the_task_with_the_child_id(self, make: Any) -> None:
        """A failed child fails the task (SUBFLOW_FAILED) and the execution, naming the child."""
        h = make(FAILING_CHILD)
        eid = h.start(
            """
            id: p
            tasks:
              - {id: call, type: core/flow.subflow, inputs: {workflow: failing-child}}
            """
        )
        outcome = h.engine.run(eid)
        [(child, _, state)] = h.children(eid)
        assert state == "FAILED"
        assert outcome.state is State.FAILED
        assert outcome.message is not None
        assert outcome.message.startswith(f"Task call failed: subflow {child} FAILED: Task boom")
        reason, error = h.row(
            "SELECT reason_code, error FROM task_runs WHERE execution_id = ? AND task_id = 'call'",
            (eid,),
        )
        assert reason == Reason.SUBFLOW_FAILED
        assert json.loads(error)["child_execution_id"] == child

    def test_allow_failure_keeps_the_parent_going(self, make: Any) -> None:
        """With allow_failure, a failed child does not fail the parent execution."""
        h = make(FAILING_CHILD)
        eid = h.start(
            """
            id: p
            tasks:
              - {id: call, type: core/flow.subflow, allow_failure: true,
                 inputs: {workflow: failing-child}}
            """
        )
        assert h.engine.run(eid).state is State.SUCCESS

    def test_unknown_workflow_fails_the_task_without_a_child(self, make: Any) -> None:
        """A callee missing at run time fails the task with its name; no child exists."""
        h = make()
        eid = h.start("id: p\ntasks: [{id: c, type: core/flow.subflow, inputs: {workflow: gone}}]")
        outcome = h.engine.run(eid)
        assert outcome.state is State.FAILED
        assert "cannot start subflow gone: unknown workflow 'gone'" in (outcome.message or "")
        assert h.children(eid) == []

    def test_bad_inputs_at_run_time_fail_the_task(self, make: Any) -> None:
        """Inputs resolved at run time are bound by the child's declarations."""
        h = make(CHILD)
        eid = h.start(
            """
            id: p
            tasks:
              - {id: c, type: core/flow.subflow, inputs: {workflow: child, inputs: {times: 2}}}
            """
        )
        outcome = h.engine.run(eid)
        assert outcome.state is State.FAILED
        assert "inputs.name: required input has no value" in (outcome.message or "")

    def test_recursion_stops_at_the_depth_limit(self, make: Any) -> None:
        """A workflow calling itself through the registry stops at MAX_SUBFLOW_DEPTH."""
        loop_a = "id: la\ntasks: [{id: c, type: core/flow.subflow, inputs: {workflow: lb}}]"
        loop_b = "id: lb\ntasks: [{id: c, type: core/flow.subflow, inputs: {workflow: la}}]"
        h = make(loop_a, loop_b)
        eid = h.start(loop_a)
        outcome = h.engine.run(eid)
        assert outcome.state is State.FAILED
        depth, current = 0, eid
        while kids := h.children(current):
            depth, current = depth + 1, kids[0][0]
        assert depth == MAX_SUBFLOW_DEPTH - 1
        message = h.row("SELECT message FROM executions WHERE execution_id = ?", (current,))[0]
        assert f"subflow depth limit {MAX_SUBFLOW_DEPTH} reached: la -> lb" in message

    def test_task_timeout_cancels_the_child(self, make: Any) -> None:
        """A subflow task's timeout cancels the child and fails the task with TIMEOUT."""
        h = make(SLOW_CHILD)
        eid = h.start(
            """
            id: p
            tasks:
              - {id: c, type: core/flow.subflow, timeout: 500ms, inputs: {workflow: slow-child}}
            """
        )
        outcome = h.engine.run(eid)
        assert outcome.state is State.FAILED
        [(_, _, state)] = h.children(eid)
        assert state == "CANCELLED"
        assert h.row(
            "SELECT reason_code FROM task_runs WHERE execution_id = ? AND task_id = 'c'", (eid,)
        ) == (Reason.TIMEOUT,)

    def test_cancelling_the_parent_cancels_the_child(self, make: Any) -> None:
        """A cancel request on the parent reaches the running child, with who asked."""
        h = make(SLOW_CHILD)
        eid = h.start(
            "id: p\ntasks: [{id: c, type: core/flow.subflow, inputs: {workflow: slow-child}}]"
        )
        done: list[State] = []
        runner = threading.Thread(target=lambda: done.append(h.engine.run(eid).state))
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while not h.children(eid) and time.monotonic() < deadline:
                time.sleep(0.05)
            h.engine.request_cancel(eid, "user:tester", "enough")
        finally:
            runner.join(20)
        assert done == [State.CANCELLED]
        [(child, _, state)] = h.children(eid)
        assert state == "CANCELLED"
        by, reason = h.row(
            "SELECT cancelled_by, cancel_reason FROM executions WHERE execution_id = ?", (child,)
        )
        assert by == "user:tester"
        assert reason == f"parent execution {eid} cancelled: enough"
