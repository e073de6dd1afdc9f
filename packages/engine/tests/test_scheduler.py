"""The scheduler, driven through the Engine facade on real YAML, processes and database."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autokestra_engine import (
    Dag,
    Engine,
    EngineConfig,
    ExecutionRecorder,
    PluginExecutor,
    PluginRegistry,
    SecretStore,
    TaskSpec,
    parse_workflow,
)
from autokestra_engine.run._scheduler import decide
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import State, StorageFull, open_reader, open_writer


class Harness:
    """An engine over a fresh database; workflows given as YAML text."""

    def __init__(self, tmp_path: Path, concurrency: int = 2) -> None:
        self.db = tmp_path / "db" / "autokestra.db"
        self.writer = open_writer(self.db)
        self.collector = LogCollector(self.writer, max_age_s=0.05)
        self.registry = PluginRegistry.discover([])
        config = dataclasses.replace(
            EngineConfig(db_path=self.db), max_concurrent_tasks=concurrency
        )
        self.engine = Engine(
            config,
            writer=self.writer,
            collector=self.collector,
            registry=self.registry,
            secrets=SecretStore(),
            executor=PluginExecutor(self.registry, workdir=tmp_path, grace_ms=500),
        )

    def create(self, yaml_text: str, **inputs: Any) -> str:
        """Create an execution of the workflow."""
        workflow = parse_workflow(yaml_text, self.registry, filename="test.yaml")
        return self.engine.create_execution(workflow, inputs)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on a fresh read-only connection."""
        conn = open_reader(self.db)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    def audit(self, eid: str) -> list[tuple[str, dict[str, Any]]]:
        """The execution's audit trail."""
        return [
            (kind, json.loads(meta))
            for kind, meta in self.rows(
                "SELECT event_type, metadata FROM execution_audit_events"
                " WHERE execution_id = ? ORDER BY id",
                (eid,),
            )
        ]

    def tasks(self, eid: str) -> dict[str, tuple[str, str | None]]:
        """task_id -> (state, reason_code)."""
        return {
            task: (state, reason)
            for task, state, reason in self.rows(
                "SELECT task_id, state, reason_code FROM task_runs WHERE execution_id = ?", (eid,)
            )
        }

    def close(self) -> None:
        """Stop everything."""
        self.engine.close()
        self.collector.shutdown()
        self.writer.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A two-slot engine."""
    h = Harness(tmp_path)
    yield h
    h.close()


FAN_OUT = """
id: fan
tasks:
  - {id: start, type: core/log.emit, inputs: {message: go}}
  - {id: a, type: core/shell.run, needs: [start], inputs: {command: sleep 0.4}}
  - {id: b, type: core/shell.run, needs: [start], inputs: {command: sleep 0.4}}
  - {id: c, type: core/shell.run, needs: [start], inputs: {command: sleep 0.4}}
  - {id: join, type: core/log.emit, needs: [a, b, c], inputs: {message: done}}
"""

FAILING = """
id: failing
tasks:
  - {id: root, type: core/shell.run, inputs: {command: "true"}}
  - {id: bad, type: core/shell.run, needs: [root], inputs: {command: "exit 4"}}
  - {id: after, type: core/shell.run, needs: [bad], inputs: {command: "true"}}
  - {id: after2, type: core/shell.run, needs: [after, side], inputs: {command: "true"}}
  - {id: side, type: core/shell.run, needs: [root], inputs: {command: "sleep 0.3"}}
"""

SLOW = """
id: slow
tasks:
  - {id: sleeper, type: core/shell.run, inputs: {command: "sleep 30"}}
  - {id: later, type: core/log.emit, needs: [sleeper], inputs: {message: never}}
  - {id: later2, type: core/log.emit, needs: [later], inputs: {message: never}}
"""


class TestDag:
    def test_open_is_pending_and_not_dispatched(self) -> None:
        """Open tasks are PENDING ones not handed to the pool yet, in file order."""
        dag = Dag(
            [
                TaskSpec(id="a", type="core/log.emit"),
                TaskSpec(id="b", type="core/log.emit", needs=("a",)),
                TaskSpec(id="c", type="core/log.emit", needs=("b",)),
                TaskSpec(id="d", type="core/log.emit"),
            ]
        )
        states = {t: State.PENDING for t in "abcd"}
        assert dag.open(states, ()) == ["a", "b", "c", "d"]
        assert dag.open(states, ("a",)) == ["b", "c", "d"]
        states["a"] = State.SUCCESS
        assert dag.open(states, ()) == ["b", "c", "d"]


class TestScheduler:
    def test_fan_out_runs_in_parallel_within_the_limit(self, harness: Harness) -> None:
        """Independent tasks overlap in time, never more than max_concurrent_tasks at once."""
        eid = harness.create(FAN_OUT)
        assert harness.engine.run(eid).state is State.SUCCESS
        spans = harness.rows(
            "SELECT task_id, started_at, ended_at FROM task_attempts"
            " WHERE execution_id = ? AND task_id IN ('a', 'b', 'c')",
            (eid,),
        )
        points = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans])
        running = peak = 0
        for _, step in points:
            running += step
            peak = max(peak, running)
        assert peak == 2

    def test_failure_cancels_dependants_only(self, harness: Harness) -> None:
        """A failed task's dependants end UPSTREAM_FAILED; the independent branch finishes."""
        eid = harness.create(FAILING)
        assert harness.engine.run(eid).state is State.FAILED
        assert harness.tasks(eid) == {
            "root": ("SUCCESS", None),
            "bad": ("FAILED", "PLUGIN_ERROR"),
            "after": ("CANCELLED", "UPSTREAM_FAILED"),
            "after2": ("CANCELLED", "UPSTREAM_FAILED"),
            "side": ("SUCCESS", None),
        }
        assert harness.rows("SELECT failed_task_id, reason_code FROM executions") == [
            ("bad", "TASK_FAILED")
        ]
        trail = harness.audit(eid)
        assert [k for k, _ in trail] == [
            "CREATED",
            "STARTED",
            "STATE_CHANGE",
            "STATE_CHANGE",
            "FAILED",
        ]
        assert trail[-1][1]["failed_task_id"] == "bad"

    def test_cancel_request_is_noticed_quickly(self, harness: Harness) -> None:
        """A request recorded while a task runs stops it within a fraction of a second."""
        eid = harness.create(SLOW)
        asked: list[float] = []

        def cancel_soon() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if harness.rows("SELECT pgid FROM task_attempts WHERE pgid IS NOT NULL"):
                    break
                time.sleep(0.02)
            asked.append(time.monotonic())
            # Its own store over the same writer, as `workflow execution cancel` would do.
            harness.engine.request_cancel(eid, "user:tester", "changed my mind")

        thread = threading.Thread(target=cancel_soon)
        thread.start()
        assert harness.engine.run(eid).state is State.CANCELLED
        ended = time.monotonic()
        thread.join()
        assert ended - asked[0] < 2.0  # poll <= 100 ms + SIGTERM to a sleeping shell
        assert harness.tasks(eid) == {
            "sleeper": ("CANCELLED", "CANCELLED_BY_USER"),
            "later": ("CANCELLED", "CANCELLED_BY_USER"),
            "later2": ("CANCELLED", "CANCELLED_BY_USER"),
        }
        kind, meta = harness.audit(eid)[-1]
        assert kind == "CANCELLED"
        assert meta["cancelled_by"] == "user:tester"
        assert meta["reason"] == "changed my mind"
        assert meta["pending_task_count"] == 2
        warns = harness.rows(
            "SELECT task_id, message FROM execution_logs WHERE level = 'WARN'"
            " AND message LIKE 'Cancel%'"
        )
        assert (None, "Cancellation requested by user:tester: changed my mind") in warns
        ((requested_at, noticed_at),) = harness.rows(
            "SELECT e.cancel_requested_at, l.timestamp FROM executions e JOIN execution_logs l"
            " ON l.execution_id = e.execution_id WHERE l.message LIKE 'Cancellation requested%'"
        )
        assert noticed_at - requested_at < 250  # DESIGN: noticed within 250 ms
        assert any(t == "sleeper" and "Cancelling task sleeper" in m for t, m in warns)

    def test_workflow_timeout(self, harness: Harness) -> None:
        """A workflow timeout ends FAILED/TIMEOUT with a TIMEOUT event and no FAILED event."""
        eid = harness.create("timeout: 600ms\n" + SLOW)
        started = time.monotonic()
        assert harness.engine.run(eid).state is State.FAILED
        assert time.monotonic() - started < 5
        assert harness.rows("SELECT reason_code FROM executions") == [("TIMEOUT",)]
        trail = harness.audit(eid)
        kinds = [k for k, _ in trail]
        assert kinds[-1] == "TIMEOUT" and "FAILED" not in kinds
        assert trail[-1][1]["timeout_ms"] == 600
        assert trail[-1][1]["elapsed_ms"] >= 600
        errors = harness.rows(
            "SELECT message FROM execution_logs WHERE level = 'ERROR' AND task_id IS NULL"
        )
        assert any("timed out: limit 600ms, elapsed" in m for (m,) in errors)

    def test_interrupt_cancels_as_system(self, harness: Harness) -> None:
        """The interrupt event (Ctrl+C) records cancelled_by system, reason interrupted."""
        eid = harness.create(SLOW)
        interrupt = threading.Event()
        threading.Timer(0.5, interrupt.set).start()
        assert harness.engine.run(eid, interrupt=interrupt).state is State.CANCELLED
        assert harness.rows("SELECT cancelled_by, cancel_reason, reason_code FROM executions") == [
            ("system", "interrupted", "CANCELLED_BY_SYSTEM")
        ]

    def test_finished_execution_is_not_run_again(self, harness: Harness) -> None:
        """run() on a terminal execution returns its state and writes nothing."""
        eid = harness.create(FAN_OUT.replace("sleep 0.4", "echo quick"))
        assert harness.engine.run(eid).state is State.SUCCESS
        count = len(harness.audit(eid))
        assert harness.engine.run(eid).state is State.SUCCESS
        assert len(harness.audit(eid)) == count

    def test_log_entry_count_is_exact(self, harness: Harness) -> None:
        """executions.log_entry_count equals the execution's rows in execution_logs."""
        eid = harness.create(FAILING)
        harness.engine.run(eid)
        harness.collector.flush()
        (count,) = harness.rows("SELECT log_entry_count FROM executions")[0]
        assert harness.rows("SELECT count(*) FROM execution_logs") == [(count,)]
        assert count > 10


class _FullDiskRecorder(ExecutionRecorder):
    """The real store, except that the loop's heartbeat (its first at 5 s) hits a full disk."""

    def heartbeat(self, execution_id: str, engine_id: str) -> None:
        raise StorageFull("Database or disk is full: injected")


class _TaskEndFullDiskRecorder(ExecutionRecorder):
    """The real store, except that ending task ``full`` hits a full disk."""

    def end_attempt(self, execution_id: str, task_id: str, *args: Any, **kwargs: Any) -> Any:
        if task_id == "full":
            raise StorageFull("Database or disk is full: injected")
        return super().end_attempt(execution_id, task_id, *args, **kwargs)


class TestEngineError:
    def test_scheduler_failure_stops_tasks_and_fails_execution(self, harness: Harness) -> None:
        """A full disk in the loop stops running plugins and ends FAILED/STORAGE_FULL (§6.2)."""
        eid = harness.create(
            "id: broken\ntasks:\n"
            "  - {id: first, type: core/shell.run, inputs: {command: sleep 30}}\n"
            "  - {id: second, type: core/shell.run, inputs: {command: sleep 30}}\n"
        )
        harness.engine.recorder = _FullDiskRecorder(harness.writer)
        started = time.monotonic()
        assert harness.engine.run(eid).state is State.FAILED
        assert time.monotonic() - started < 10
        assert harness.rows("SELECT state, reason_code FROM executions") == [
            ("FAILED", "STORAGE_FULL")
        ]
        assert harness.tasks(eid)["second"] == ("CANCELLED", "STORAGE_FULL")
        assert harness.tasks(eid)["first"][0] == "CANCELLED"
        kind, meta = harness.audit(eid)[-1]
        assert kind == "FAILED" and "disk is full" in meta["error_message"]

    def test_full_disk_ending_a_task_fails_the_execution_storage_full(
        self, harness: Harness
    ) -> None:
        """A task's end that cannot be stored is the database's failure, not the task's (§6.2)."""
        eid = harness.create(
            "id: full\ntasks:\n"
            "  - {id: full, type: core/log.emit, inputs: {message: a}}\n"
            "  - {id: slow, type: core/shell.run, inputs: {command: sleep 30}}\n"
            "  - {id: later, type: core/log.emit, needs: [full], inputs: {message: b}}\n"
        )
        recorder = _TaskEndFullDiskRecorder(harness.writer)
        harness.engine.recorder = recorder
        harness.engine._runner._recorder = recorder
        started = time.monotonic()
        assert harness.engine.run(eid).state is State.FAILED
        assert time.monotonic() - started < 10
        assert harness.rows("SELECT state, reason_code FROM executions") == [
            ("FAILED", "STORAGE_FULL")
        ]
        tasks = harness.tasks(eid)
        assert tasks["full"] == ("CANCELLED", "STORAGE_FULL")
        assert tasks["slow"][0] == "CANCELLED"
        assert tasks["later"] == ("CANCELLED", "STORAGE_FULL")

    def test_task_job_raising_system_exit_fails_the_task_not_the_loop(
        self, harness: Harness
    ) -> None:
        """A job ending in a BaseException still reports an outcome: the run never hangs."""
        eid = harness.create(
            "id: exits\ntasks:\n"
            "  - {id: boom, type: core/log.emit, inputs: {message: a}}\n"
            "  - {id: side, type: core/log.emit, inputs: {message: b}}\n"
        )
        runner = harness.engine._runner
        real_run = runner.run

        def run(ctx: Any, task: TaskSpec, **kwargs: Any) -> Any:
            if task.id == "boom":
                raise SystemExit(1)
            return real_run(ctx, task, **kwargs)

        runner.run = run  # type: ignore[method-assign]  # inject the failure
        result: list[State] = []
        thread = threading.Thread(target=lambda: result.append(harness.engine.run(eid).state))
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), "the execution hung on a dead worker job"
        assert result == [State.FAILED]
        assert harness.tasks(eid) == {
            "boom": ("FAILED", "ENGINE_ERROR"),
            "side": ("SUCCESS", None),
        }


@st.composite
def dags(draw: st.DrawFn) -> list[TaskSpec]:
    """Random acyclic task lists: each task needs only tasks declared before it."""
    count = draw(st.integers(min_value=1, max_value=12))
    tasks: list[TaskSpec] = []
    for index in range(count):
        earlier = [f"t{i}" for i in range(index)]
        needs = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        tasks.append(TaskSpec(id=f"t{index}", type="core/log.emit", needs=tuple(needs)))
    return tasks


def settle(tasks: list[TaskSpec], failed: str | None = None) -> tuple[dict[str, State], list[str]]:
    """Decide tasks until nothing changes: each run succeeds, except ``failed``."""
    dag = Dag(tasks)
    by_id = {task.id: task for task in tasks}
    states = {task.id: State.PENDING for task in tasks}
    order: list[str] = []
    changed = True
    while changed:
        changed = False
        for task_id in dag.open(states, ()):
            task = by_id[task_id]
            verdict = decide(task, {need: states[need] for need in task.needs}, ())
            if verdict.action == "run":
                states[task_id] = State.FAILED if task_id == failed else State.SUCCESS
                order.append(task_id)
                changed = True
            elif verdict.action == "end":
                assert verdict.state is not None
                states[task_id] = verdict.state
                changed = True
    return states, order


def downstream(tasks: list[TaskSpec], task_id: str) -> set[str]:
    found: set[str] = set()
    for task in tasks:  # needs come first in these lists
        if task_id in task.needs or found & set(task.needs):
            found.add(task.id)
    return found


class TestDagProperties:
    @given(dags())
    def test_all_success_runs_every_task_after_its_needs(self, tasks: list[TaskSpec]) -> None:
        """Deciding open tasks until none is left runs each once, needs first."""
        states, order = settle(tasks)
        assert sorted(order) == sorted(states)
        for task in tasks:
            assert all(order.index(need) < order.index(task.id) for need in task.needs)

    @given(dags(), st.data())
    def test_failure_cancels_exactly_its_downstream(
        self, tasks: list[TaskSpec], data: st.DataObject
    ) -> None:
        """With one failed task, what ends CANCELLED is exactly its downstream."""
        failed = data.draw(st.sampled_from([task.id for task in tasks]))
        states, _ = settle(tasks, failed)
        assert states[failed] is State.FAILED  # its upstreams all succeeded: it ran
        cancelled = {task_id for task_id, state in states.items() if state is State.CANCELLED}
        assert cancelled == downstream(tasks, failed)
        assert State.PENDING not in states.values()


def chain(n: int) -> str:
    lines = ["id: chain", "tasks:"]
    for i in range(n):
        needs = f", needs: [t{i - 1}]" if i else ""
        lines.append(f"  - {{id: t{i}, type: core/log.emit{needs}, inputs: {{message: m{i}}}}}")
    return "\n".join(lines) + "\n"


class TestWritesPerTask:
    def test_three_state_transactions_per_task(self, harness: Harness) -> None:
        """A task that succeeds at once costs three write transactions of its own (start,
        process ids, end), log batches aside; and its timestamps stay ordered."""
        state_transactions: list[int] = []

        def count(eid: str) -> int:
            transactions: list[list[str]] = []

            def trace(cursor: Any, sql: str, bindings: Any) -> bool:
                if sql.startswith("BEGIN IMMEDIATE"):
                    transactions.append([])
                elif transactions:
                    transactions[-1].append(sql)
                return True

            harness.writer.connection.exec_trace = trace
            try:
                assert harness.engine.run(eid).state is State.SUCCESS
                harness.collector.flush()
            finally:
                harness.writer.connection.exec_trace = None
            return sum(
                1
                for statements in transactions
                if not any("execution_logs" in sql for sql in statements)
                and any("task_" in sql for sql in statements)
            )

        for n in (1, 6):
            state_transactions.append(count(harness.create(chain(n))))
        assert (state_transactions[1] - state_transactions[0]) / 5 == 3
        rows = harness.rows("SELECT queued_at, started_at, ended_at FROM task_runs")
        assert all(q is not None and q <= s <= e for q, s, e in rows)
