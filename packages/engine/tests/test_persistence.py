"""The engine's write path on a real database file: executions, audit, tasks, cancel."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from autokestra_engine.persistence._recorder import (
    EngineOwner,
    ExecutionAlreadyFinished,
    ExecutionOwned,
    ExecutionRecorder,
    NewExecution,
    NewTask,
    load_execution,
)
from autokestra_engine.persistence._transitions import IllegalTransition
from autokestra_obs_audit import InvalidAuditMetadata, verify_chain
from autokestra_obs_schema import (
    AuditEventType,
    ExecutionNotFound,
    Reason,
    State,
    Writer,
    open_reader,
    open_writer,
)

OWNER = EngineOwner("engine-a", 4242, "host-a")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh database path."""
    return tmp_path / "db" / "autokestra.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    """The migrated database's one writer."""
    w = open_writer(db_path)
    yield w
    w.close()


@pytest.fixture
def store(writer: Writer) -> ExecutionRecorder:
    """A store over the writer."""
    return ExecutionRecorder(writer)


def new_execution(eid: str = "e1", owner: EngineOwner | None = OWNER) -> NewExecution:
    """A three-task execution: a -> b, c independent."""
    return NewExecution(
        execution_id=eid,
        workflow_id="wf",
        trigger_type="manual",
        inputs={"name": "ops"},
        workflow_source="id: wf\n",
        tasks=[
            NewTask("a", "core/log.emit", (), 0),
            NewTask("b", "core/log.emit", ("a",), 1),
            NewTask("c", "core/shell.run", (), 2),
        ],
        owner=owner,
    )


def audit(db_path: Path, eid: str = "e1") -> list[tuple[str, dict[str, Any]]]:
    """The audit trail as (event_type, metadata) in order."""
    conn = open_reader(db_path)
    try:
        rows = conn.execute(
            "SELECT event_type, metadata FROM execution_audit_events WHERE execution_id = ?"
            " ORDER BY id",
            (eid,),
        ).fetchall()
    finally:
        conn.close()
    return [(str(kind), json.loads(str(meta))) for kind, meta in rows]


def one(db_path: Path, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """The first row of a query on a fresh read-only connection."""
    conn = open_reader(db_path)
    try:
        rows: list[tuple[Any, ...]] = conn.execute(sql, params).fetchall()
    finally:
        conn.close()
    return rows[0]


class TestCreate:
    def test_execution_tasks_and_created_event(
        self, store: ExecutionRecorder, db_path: Path
    ) -> None:
        """Creation stores the PENDING execution, its task runs in order and CREATED."""
        store.create_execution(new_execution())
        state, inputs, engine_id = one(
            db_path, "SELECT state, inputs, engine_id FROM executions WHERE execution_id='e1'"
        )
        assert (state, json.loads(inputs), engine_id) == ("PENDING", {"name": "ops"}, "engine-a")
        conn = open_reader(db_path)
        tasks = conn.execute(
            "SELECT task_id, position, state, needs FROM task_runs ORDER BY position"
        ).fetchall()
        conn.close()
        assert tasks == [
            ("a", 0, "PENDING", "[]"),
            ("b", 1, "PENDING", '["a"]'),
            ("c", 2, "PENDING", "[]"),
        ]
        assert audit(db_path) == [("CREATED", {"workflow_id": "wf", "trigger_type": "manual"})]

    def test_detached_has_no_owner(self, store: ExecutionRecorder, db_path: Path) -> None:
        """A queued execution has no engine columns, so a server may claim it."""
        store.create_execution(new_execution(owner=None))
        assert one(db_path, "SELECT engine_id, engine_pid, heartbeat_at FROM executions") == (
            None,
            None,
            None,
        )

    def test_duplicate_id_writes_nothing(self, store: ExecutionRecorder, db_path: Path) -> None:
        """A failed creation rolls back as a whole: no second CREATED event."""
        store.create_execution(new_execution())
        with pytest.raises(Exception, match=r"UNIQUE|constraint"):
            store.create_execution(new_execution())
        assert len(audit(db_path)) == 1


class TestExecutionTransitions:
    def test_start_claims_and_audits(self, store: ExecutionRecorder, db_path: Path) -> None:
        """Starting sets RUNNING, started_at, the owner, then STARTED and STATE_CHANGE."""
        store.create_execution(new_execution(owner=None))
        row = store.start_execution("e1", OWNER)
        assert row.state is State.RUNNING
        assert row.started_at is not None
        assert one(db_path, "SELECT engine_id, engine_pid, engine_host FROM executions") == (
            "engine-a",
            4242,
            "host-a",
        )
        assert [kind for kind, _ in audit(db_path)] == ["CREATED", "STARTED", "STATE_CHANGE"]
        assert audit(db_path)[2][1] == {"from_state": "PENDING", "to_state": "RUNNING"}

    def test_start_replay_is_no_op(self, store: ExecutionRecorder, db_path: Path) -> None:
        """Starting twice writes one STARTED event."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        store.start_execution("e1", OWNER)
        assert [kind for kind, _ in audit(db_path)].count("STARTED") == 1

    def test_start_refuses_other_owner(self, store: ExecutionRecorder) -> None:
        """An execution owned by another engine is not claimed."""
        store.create_execution(new_execution())
        with pytest.raises(ExecutionOwned):
            store.start_execution("e1", EngineOwner("engine-b", 1, "h"))

    def test_start_unknown(self, store: ExecutionRecorder) -> None:
        """An unknown id is reported as not found."""
        with pytest.raises(ExecutionNotFound, match="Execution not found: nope"):
            store.start_execution("nope", OWNER)

    def test_finish_writes_change_then_terminal(
        self, store: ExecutionRecorder, db_path: Path
    ) -> None:
        """Finishing writes STATE_CHANGE with reason then the terminal event, chain intact."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        assert store.finish_execution(
            "e1",
            State.FAILED,
            terminal_event=AuditEventType.FAILED,
            terminal_metadata={"error_message": "boom", "failed_task_id": "a"},
            reason=Reason.TASK_FAILED,
            message="Task a failed",
            failed_task_id="a",
        )
        trail = audit(db_path)
        assert [kind for kind, _ in trail] == [
            "CREATED",
            "STARTED",
            "STATE_CHANGE",
            "STATE_CHANGE",
            "FAILED",
        ]
        assert trail[3][1] == {
            "from_state": "RUNNING",
            "to_state": "FAILED",
            "reason": "TASK_FAILED",
        }
        assert trail[4][1]["failed_task_id"] == "a"
        assert isinstance(trail[4][1]["duration_ms"], int)
        state, failed, reason, ended = one(
            db_path, "SELECT state, failed_task_id, reason_code, ended_at FROM executions"
        )
        assert (state, failed, reason) == ("FAILED", "a", "TASK_FAILED")
        assert ended is not None
        conn = open_reader(db_path)
        assert verify_chain(conn, "e1").ok
        conn.close()

    def test_finish_replay_and_illegal(self, store: ExecutionRecorder, db_path: Path) -> None:
        """The same terminal state again is a no-op; another terminal state raises."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        meta = {"task_count": 3}
        assert store.finish_execution(
            "e1", State.SUCCESS, terminal_event=AuditEventType.COMPLETED, terminal_metadata=meta
        )
        assert not store.finish_execution(
            "e1", State.SUCCESS, terminal_event=AuditEventType.COMPLETED, terminal_metadata=meta
        )
        with pytest.raises(IllegalTransition):
            store.finish_execution(
                "e1",
                State.FAILED,
                terminal_event=AuditEventType.FAILED,
                terminal_metadata={"error_message": "x"},
            )
        terminal = [k for k, _ in audit(db_path) if k in {"COMPLETED", "FAILED"}]
        assert terminal == ["COMPLETED"]

    def test_state_and_audit_are_one_transaction(
        self, store: ExecutionRecorder, db_path: Path
    ) -> None:
        """When the audit event is refused, the state change is rolled back with it."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        with pytest.raises(InvalidAuditMetadata):
            store.finish_execution(
                "e1",
                State.CANCELLED,
                terminal_event=AuditEventType.CANCELLED,
                terminal_metadata={"reason": "missing cancelled_by"},
            )
        assert one(db_path, "SELECT state FROM executions") == ("RUNNING",)
        assert [k for k, _ in audit(db_path)] == ["CREATED", "STARTED", "STATE_CHANGE"]

    def test_heartbeat_only_for_owner(self, store: ExecutionRecorder, db_path: Path) -> None:
        """A heartbeat from an engine that does not own the execution changes nothing."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        before = one(db_path, "SELECT heartbeat_at FROM executions")[0]
        store.heartbeat("e1", "engine-b")
        assert one(db_path, "SELECT heartbeat_at FROM executions")[0] == before


class TestCancelRequest:
    def test_records_request_for_running(self, store: ExecutionRecorder, db_path: Path) -> None:
        """A running execution gets the request columns; its engine does the cancelling."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        outcome = store.request_cancel("e1", by="user:alice", reason="wrong input")
        assert outcome.recorded and not outcome.cancelled_now
        at, by, why, state = one(
            db_path,
            "SELECT cancel_requested_at, cancelled_by, cancel_reason, state FROM executions",
        )
        assert at is not None
        assert (by, why, state) == ("user:alice", "wrong input", "RUNNING")

    def test_first_request_wins(self, store: ExecutionRecorder, db_path: Path) -> None:
        """A second request does not overwrite who asked first."""
        store.create_execution(new_execution())
        store.request_cancel("e1", by="user:alice", reason="one")
        outcome = store.request_cancel("e1", by="system", reason="interrupted")
        assert not outcome.recorded
        assert one(db_path, "SELECT cancelled_by, cancel_reason FROM executions") == (
            "user:alice",
            "one",
        )

    def test_queued_is_cancelled_at_once(self, store: ExecutionRecorder, db_path: Path) -> None:
        """An unowned PENDING execution has no engine to notice: it is cancelled here."""
        store.create_execution(new_execution(owner=None))
        outcome = store.request_cancel("e1", by="user:bob", reason=None)
        assert outcome.cancelled_now and outcome.pending_task_count == 3
        assert one(db_path, "SELECT state, reason_code FROM executions") == (
            "CANCELLED",
            "CANCELLED_BY_USER",
        )
        trail = audit(db_path)
        assert trail[-1] == (
            "CANCELLED",
            {
                "cancelled_by": "user:bob",
                "reason": None,
                "pending_task_count": 3,
                "duration_ms": trail[-1][1]["duration_ms"],
            },
        )
        conn = open_reader(db_path)
        states = {s for (s,) in conn.execute("SELECT state FROM task_runs").fetchall()}
        conn.close()
        assert states == {"CANCELLED"}

    def test_finished_and_unknown(self, store: ExecutionRecorder) -> None:
        """Cancelling a finished or unknown execution raises with the CLI's messages."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        store.finish_execution(
            "e1",
            State.SUCCESS,
            terminal_event=AuditEventType.COMPLETED,
            terminal_metadata={"task_count": 3},
        )
        with pytest.raises(ExecutionAlreadyFinished, match="Execution e1 is already SUCCESS"):
            store.request_cancel("e1", by="user:x", reason=None)
        with pytest.raises(ExecutionNotFound, match="Execution not found: zz"):
            store.request_cancel("zz", by="user:x", reason=None)

    def test_from_another_process(self, store: ExecutionRecorder, db_path: Path) -> None:
        """A second process (its own Writer) records a request this process can read."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        code = (
            "import sys\n"
            "from autokestra_engine.persistence._recorder import ExecutionRecorder\n"
            "from autokestra_obs_schema import open_writer\n"
            "w = open_writer(sys.argv[1])\n"
            "ExecutionRecorder(w).request_cancel('e1', by='user:carol', reason='other process')\n"
            "w.close()\n"
        )
        subprocess.run([sys.executable, "-c", code, str(db_path)], check=True, timeout=60)
        with store.writer.locked() as conn:
            row = load_execution(conn, "e1")
        assert row is not None
        assert (row.cancelled_by, row.cancel_reason) == ("user:carol", "other process")


class TestTaskRuns:
    def test_attempts_retry_and_success(self, store: ExecutionRecorder, db_path: Path) -> None:
        """Two attempts: FAILED then WAITING, then SUCCESS with outputs and duration."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        store.start_attempt("e1", "a", 1, masked_inputs={"token": "***SECRET***"})
        store.attempt_spawned("e1", "a", 1, pid=10, pgid=10)
        store.end_attempt(
            "e1",
            "a",
            1,
            State.FAILED,
            reason="PLUGIN_ERROR",
            duration_ms=5,
            exit_code=3,
            error={"message": "exit 3"},
        )
        assert store.task_waiting("e1", "a", Reason.RETRY_BACKOFF)
        assert one(db_path, "SELECT state, reason_code FROM task_runs WHERE task_id='a'") == (
            "WAITING",
            "RETRY_BACKOFF",
        )
        store.start_attempt("e1", "a", 2, masked_inputs={"token": "other"})
        store.end_attempt("e1", "a", 2, State.SUCCESS, reason=None, duration_ms=4, exit_code=0)
        assert store.finish_task("e1", "a", State.SUCCESS, outputs={"message": "hi"})
        state, count, inputs, outputs, duration = one(
            db_path,
            "SELECT state, attempt_count, inputs, outputs, duration_ms FROM task_runs"
            " WHERE task_id='a'",
        )
        assert (state, count) == ("SUCCESS", 2)
        assert json.loads(inputs) == {"token": "***SECRET***"}  # stored once, at attempt 1
        assert json.loads(outputs) == {"message": "hi"}
        assert isinstance(duration, int) and duration >= 0
        conn = open_reader(db_path)
        attempts = conn.execute(
            "SELECT attempt, state, reason, exit_code, pid, pgid FROM task_attempts"
            " WHERE task_id='a' ORDER BY attempt"
        ).fetchall()
        conn.close()
        assert attempts == [
            (1, "FAILED", "PLUGIN_ERROR", 3, 10, 10),
            (2, "SUCCESS", None, 0, None, None),
        ]

    def test_illegal_task_transition(self, store: ExecutionRecorder) -> None:
        """A task run cannot succeed without having run."""
        store.create_execution(new_execution())
        with pytest.raises(IllegalTransition):
            store.finish_task("e1", "a", State.SUCCESS, outputs={})

    def test_cancel_open_tasks(self, store: ExecutionRecorder, db_path: Path) -> None:
        """PENDING and WAITING runs are cancelled with the reason; RUNNING ones are left."""
        store.create_execution(new_execution())
        store.start_attempt("e1", "c", 1, masked_inputs={})
        assert store.cancel_open_tasks("e1", Reason.UPSTREAM_FAILED) == 2
        conn = open_reader(db_path)
        rows = dict(
            conn.execute("SELECT task_id, state || '/' || IFNULL(reason_code, '') FROM task_runs")
        )
        conn.close()
        assert rows == {
            "a": "CANCELLED/UPSTREAM_FAILED",
            "b": "CANCELLED/UPSTREAM_FAILED",
            "c": "RUNNING/",
        }

    def test_a_skip_is_audited_with_the_task_row(
        self, store: ExecutionRecorder, db_path: Path
    ) -> None:
        """SKIPPED writes a task STATE_CHANGE (task_id, states, reason); other ends do not;
        a replayed skip writes nothing more."""
        store.create_execution(new_execution())
        store.start_execution("e1", OWNER)
        assert store.finish_task("e1", "a", State.SKIPPED, reason=Reason.CONDITION_FALSE)
        assert not store.finish_task("e1", "a", State.SKIPPED, reason=Reason.CONDITION_FALSE)
        store.finish_task("e1", "c", State.CANCELLED, reason=Reason.UPSTREAM_FAILED)
        events = audit(db_path)
        kinds = [kind for kind, _ in events]
        assert kinds == ["CREATED", "STARTED", "STATE_CHANGE", "STATE_CHANGE"]
        assert events[-1][1] == {
            "task_id": "a",
            "from_state": "PENDING",
            "to_state": "SKIPPED",
            "reason": "CONDITION_FALSE",
        }
        assert one(db_path, "SELECT state, reason_code FROM task_runs WHERE task_id = 'a'") == (
            "SKIPPED",
            "CONDITION_FALSE",
        )

    def test_unknown_task(self, store: ExecutionRecorder) -> None:
        """A task id the execution does not have is an error, not a silent no-op."""
        store.create_execution(new_execution())
        with pytest.raises(KeyError):
            store.task_waiting("e1", "zz", Reason.RETRY_BACKOFF)


def test_reader_sees_committed_rows_only(store: ExecutionRecorder, db_path: Path) -> None:
    """A read-only connection opened before creation sees the new execution afterwards."""
    reader = open_reader(db_path)
    store.create_execution(new_execution())
    assert isinstance(reader, apsw.Connection)
    assert load_execution(reader, "e1") is not None
    reader.close()
