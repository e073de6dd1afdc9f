"""ExecutionInspector on real database files filled through a Writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw
import pytest

from autokestra_obs_schema import SECRET_MASK, ExecutionNotFound, Writer, open_reader
from autokestra_obs_store import (
    ExecutionInspector,
    TaskNotFound,
    execution_summary_document,
    inspection_document,
    list_executions,
)
from autokestra_obs_store.testing import (
    T0,
    ExecutionRecord,
    cancelled_execution,
    failure_execution,
    fan_out_execution,
    retry_execution,
    running_execution,
    success_execution,
    wide_execution,
    write_execution,
)


def _inspector(path: Path, now: int = T0 + 10_000) -> tuple[ExecutionInspector, apsw.Connection]:
    conn = open_reader(path)
    return ExecutionInspector(conn, clock=lambda: now), conn


def _write(db: tuple[Writer, Path], record: ExecutionRecord) -> str:
    return write_execution(db[0], record)


class TestOverview:
    def test_finished_execution(self, db: tuple[Writer, Path]) -> None:
        """A finished execution reports its row and ended - started as duration."""
        eid = _write(db, failure_execution())
        inspector, _ = _inspector(db[1])
        overview = inspector.overview(eid)
        assert overview.workflow_id == "ci"
        assert overview.state == "FAILED"
        assert overview.reason_code == "PLUGIN_ERROR"
        assert overview.failed_task_id == "build"
        assert overview.ended_at is not None and overview.started_at is not None
        assert overview.duration_ms == overview.ended_at - overview.started_at
        assert overview.log_entry_count == 31
        assert not overview.in_progress

    def test_running_execution_reports_elapsed(self, db: tuple[Writer, Path]) -> None:
        """A live execution's duration is the time since it started, by the inspector's clock."""
        record = running_execution()
        eid = _write(db, record)
        inspector, _ = _inspector(db[1], now=T0 + 60_000)
        overview = inspector.overview(eid)
        assert overview.in_progress
        assert record.started is not None
        assert overview.duration_ms == T0 + 60_000 - record.started

    def test_unknown_execution(self, db: tuple[Writer, Path]) -> None:
        """Every method raises ExecutionNotFound with the CLI message for an unknown id."""
        inspector, _ = _inspector(db[1])
        for call in (
            lambda: inspector.overview("nope"),
            lambda: inspector.tasks("nope"),
            lambda: inspector.task("nope", "a"),
            lambda: inspector.audit_trail("nope"),
            lambda: inspector.timeline("nope"),
            lambda: inspector.snapshot("nope"),
            lambda: inspector.verify("nope"),
        ):
            with pytest.raises(ExecutionNotFound, match=r"^Execution not found: nope$"):
                call()


class TestTasks:
    def test_tasks_in_declaration_order_with_needs_states(self, db: tuple[Writer, Path]) -> None:
        """Tasks come in declaration order with their dependencies' states."""
        eid = _write(db, failure_execution())
        inspector, _ = _inspector(db[1])
        tasks = inspector.tasks(eid)
        assert [t.task_id for t in tasks] == ["checkout", "build", "lint", "test", "deploy"]
        deploy = tasks[-1]
        assert [(d.task_id, d.state) for d in deploy.needs] == [
            ("test", "CANCELLED"),
            ("lint", "SUCCESS"),
        ]
        assert deploy.reason_code == "UPSTREAM_FAILED"
        assert deploy.attempts == ()

    def test_attempts_error_and_outputs_decoded(self, db: tuple[Writer, Path]) -> None:
        """Attempts carry reason, duration and exit code; JSON columns come back decoded."""
        eid = _write(db, retry_execution())
        inspector, _ = _inspector(db[1])
        flaky = inspector.task(eid, "flaky")
        assert [a.attempt for a in flaky.attempts] == [1, 2, 3]
        assert [a.state for a in flaky.attempts] == ["FAILED", "FAILED", "SUCCESS"]
        assert flaky.attempts[0].reason == "exit code 1; retry in 1s"
        assert flaky.attempts[0].duration_ms == 800
        assert flaky.attempts[0].exit_code == 1
        assert flaky.attempts[0].error["stderr_tail"] == ["connection refused"]
        assert flaky.outputs == {"exit_code": 0}
        assert flaky.attempt_count == 3

    def test_masked_inputs_stay_masked(self, db: tuple[Writer, Path]) -> None:
        """Inputs are returned exactly as stored: secrets as ***SECRET***."""
        eid = _write(db, success_execution())
        inspector, _ = _inspector(db[1])
        load = inspector.task(eid, "load")
        assert load.inputs["env"] == {"PGPASSWORD": SECRET_MASK}

    def test_running_task_reports_elapsed(self, db: tuple[Writer, Path]) -> None:
        """A running task and its running attempt report their elapsed time."""
        record = running_execution()
        eid = _write(db, record)
        inspector, _ = _inspector(db[1], now=T0 + 10_000)
        download = inspector.task(eid, "download")
        assert download.state == "RUNNING"
        started = record.tasks[1].attempts[0].start
        assert download.duration_ms == T0 + 10_000 - started
        assert download.attempts[0].running
        assert download.attempts[0].duration_ms == T0 + 10_000 - started

    def test_unknown_task(self, db: tuple[Writer, Path]) -> None:
        """task() of a missing task id raises TaskNotFound naming both ids."""
        eid = _write(db, success_execution())
        inspector, _ = _inspector(db[1])
        with pytest.raises(TaskNotFound, match=rf"^Task not found: nope in execution {eid}$"):
            inspector.task(eid, "nope")

    def test_other_executions_do_not_leak_in(self, db: tuple[Writer, Path]) -> None:
        """Only the requested execution's tasks and events are returned."""
        first = _write(db, success_execution(seed=10))
        _write(db, failure_execution(seed=11))
        inspector, _ = _inspector(db[1])
        snapshot = inspector.snapshot(first)
        assert {t.task_id for t in snapshot.tasks} == {"fetch", "transform", "notify", "load"}
        assert [e.event_type for e in snapshot.audit_events] == [
            "CREATED",
            "STARTED",
            "COMPLETED",
        ]


class TestAuditTrail:
    def test_events_in_order_with_metadata(self, db: tuple[Writer, Path]) -> None:
        """Audit events come in write order with metadata decoded."""
        eid = _write(db, cancelled_execution())
        inspector, _ = _inspector(db[1])
        events = inspector.audit_trail(eid)
        assert [e.event_type for e in events] == ["CREATED", "STARTED", "CANCELLED"]
        assert events[-1].metadata["cancelled_by"] == "user:alice"
        assert events[0].prev_hash is None
        assert events[1].prev_hash == events[0].hash

    def test_type_filter(self, db: tuple[Writer, Path]) -> None:
        """types= selects only the listed event types."""
        eid = _write(db, cancelled_execution())
        inspector, _ = _inspector(db[1])
        events = inspector.audit_trail(eid, types={"CREATED", "CANCELLED"})
        assert [e.event_type for e in events] == ["CREATED", "CANCELLED"]


class _Counter:
    """Counts the SQL statements a connection runs (apsw exec tracer)."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.statements: list[str] = []
        conn.exec_trace = self._trace

    def _trace(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        del cursor, bindings
        self.statements.append(sql)
        return True


class TestQueryCount:
    @pytest.mark.parametrize(
        "method",
        ["snapshot", "tasks", "timeline", "overview", "audit_trail", "verify"],
    )
    def test_same_count_for_10_and_500_tasks(self, db: tuple[Writer, Path], method: str) -> None:
        """Each method runs the same number of statements for 10 tasks as for 500."""
        small = _write(db, wide_execution(10, seed=21))
        large = _write(db, wide_execution(500, seed=22))
        inspector, conn = _inspector(db[1])
        counts = []
        for eid in (small, large):
            counter = _Counter(conn)
            getattr(inspector, method)(eid)
            counts.append(len(counter.statements))
        assert counts[0] == counts[1]
        assert counts[0] <= 6  # BEGIN, the reads, COMMIT

    @pytest.mark.parametrize("method", ["snapshot", "tasks", "timeline", "verify"])
    def test_same_count_for_10_and_200_iterations(
        self, db: tuple[Writer, Path], method: str
    ) -> None:
        """A for_each task of 200 iterations costs as many statements as one of 10."""
        small = _write(db, fan_out_execution(10, seed=31))
        large = _write(db, fan_out_execution(200, seed=32))
        inspector, conn = _inspector(db[1])
        counts = []
        for eid in (small, large):
            counter = _Counter(conn)
            result = getattr(inspector, method)(eid)
            counts.append(len(counter.statements))
            if method == "snapshot":
                iterations = [t for t in result.tasks if t.task_id.startswith("process[")]
                assert len(iterations) == (10 if eid == small else 200)
                assert all(t.attempts for t in iterations)
        assert counts[0] == counts[1]
        assert counts[0] <= 6

    def test_snapshot_of_500_tasks_is_complete(self, db: tuple[Writer, Path]) -> None:
        """The whole-set reads return all 500 tasks and every attempt (retries included)."""
        record = wide_execution(500, seed=22)
        eid = _write(db, record)
        inspector, _ = _inspector(db[1])
        snapshot = inspector.snapshot(eid)
        assert len(snapshot.tasks) == 500
        assert sum(len(t.attempts) for t in snapshot.tasks) == sum(
            len(t.attempts) for t in record.tasks
        )
        assert len(snapshot.timeline.lanes) == 500

    def test_task_runs_four_reads(self, db: tuple[Writer, Path]) -> None:
        """task() reads execution, task, dependency states and attempts: no N+1 over needs."""
        eid = _write(db, wide_execution(40, seed=23))
        inspector, conn = _inspector(db[1])
        counter = _Counter(conn)
        inspector.task(eid, "task-033")
        reads = [s for s in counter.statements if s.lstrip().upper().startswith("SELECT")]
        assert len(reads) == 4


def _link(db: tuple[Writer, Path], child: str, parent: str, task_id: str) -> None:
    """Make ``child`` a subflow child of ``parent``'s task, as the engine records it."""
    with db[0].transaction() as conn:
        conn.execute(
            "UPDATE executions SET parent_execution_id = ?, parent_task_id = ?"
            " WHERE execution_id = ?",
            (parent, task_id, child),
        )


class TestSubflowLinks:
    def test_parent_and_children_are_read_with_the_overview(self, db: tuple[Writer, Path]) -> None:
        """The child names its parent; the parent lists its children, oldest first, on the
        subflow task too; the statement count is the one of an execution without children."""
        parent = _write(db, success_execution())
        plain = _write(db, success_execution(seed=30))
        first = _write(db, failure_execution(t0=T0 + 1))
        second = _write(db, retry_execution(t0=T0 + 2))
        _link(db, first, parent, "load")
        _link(db, second, parent, "load")
        inspector, conn = _inspector(db[1])
        counts = []
        for eid in (plain, parent):
            counter = _Counter(conn)
            inspector.snapshot(eid)
            counts.append(len(counter.statements))
        assert counts[0] == counts[1]
        snapshot = inspector.snapshot(parent)
        assert [(c.execution_id, c.task_id, c.state) for c in snapshot.execution.children] == [
            (first, "load", "FAILED"),
            (second, "load", "SUCCESS"),
        ]
        load = next(t for t in snapshot.tasks if t.task_id == "load")
        assert load.child_execution_ids == (first, second)
        assert all(t.child_execution_ids == () for t in snapshot.tasks if t.task_id != "load")
        child = inspector.overview(first)
        assert (child.parent_execution_id, child.parent_task_id) == (parent, "load")
        assert child.children == ()

    def test_documents_and_list_carry_the_links(self, db: tuple[Writer, Path]) -> None:
        """inspect --json and execution list --json name the parent and the children."""
        parent = _write(db, success_execution())
        child = _write(db, failure_execution(t0=T0 + 1))
        _link(db, child, parent, "load")
        inspector, conn = _inspector(db[1])
        document = inspection_document(inspector.snapshot(parent))
        assert document["execution"]["parent_execution_id"] is None
        assert document["execution"]["children"] == [
            {
                "execution_id": child,
                "task_id": "load",
                "workflow_id": document["execution"]["children"][0]["workflow_id"],
                "state": "FAILED",
            }
        ]
        summaries = {
            s["execution_id"]: s for s in map(execution_summary_document, list_executions(conn))
        }
        assert summaries[child]["parent_execution_id"] == parent
        assert summaries[child]["parent_task_id"] == "load"
        assert summaries[parent]["parent_execution_id"] is None
