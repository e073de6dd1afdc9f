"""Crash recovery: executions of a dead engine end FAILED (ENGINE_LOST), orphans are killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_engine import EngineOwner, ExecutionRecorder, recover_lost_executions
from autokestra_engine.operations import _recovery
from autokestra_engine.operations._recovery import find_lost_executions
from autokestra_engine.persistence._recorder import NewExecution, NewTask
from autokestra_obs_audit import verify_chain
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import Writer, open_writer, pid_alive

HOST = socket.gethostname()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    """A migrated database."""
    w = open_writer(tmp_path / "a.db")
    yield w
    w.close()


@pytest.fixture
def collector(writer: Writer) -> Iterator[LogCollector]:
    """The process's collector over the writer."""
    c = LogCollector(writer)
    yield c
    c.shutdown()


def start(
    writer: Writer, execution_id: str, owner: EngineOwner, *, tasks: tuple[str, ...] = ("a", "b")
) -> ExecutionRecorder:
    """Create and start an execution owned by ``owner`` with PENDING tasks."""
    store = ExecutionRecorder(writer)
    store.create_execution(
        NewExecution(
            execution_id=execution_id,
            workflow_id="wf",
            trigger_type="manual",
            inputs={},
            workflow_source="id: wf\n",
            tasks=[NewTask(t, "core/shell.run", (), n) for n, t in enumerate(tasks)],
            owner=owner,
        )
    )
    store.start_execution(execution_id, owner)
    return store


def row(writer: Writer, query: str, *args: object) -> list[tuple[object, ...]]:
    """Rows of a query on the writer's connection."""
    return [tuple(r) for r in writer.connection.execute(query, args).fetchall()]


class TestPidAlive:
    def test_live_and_dead(self) -> None:
        """This process is alive; an exited, reaped child is not."""
        assert pid_alive(os.getpid())
        assert not pid_alive(dead_pid())

    def test_zombie_is_dead(self) -> None:
        """An exited child not yet reaped (a zombie) counts as dead."""
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        time.sleep(0.5)
        try:
            assert not pid_alive(child.pid)
        finally:
            child.wait()


class TestRecovery:
    def test_lost_execution_fails_with_engine_lost(
        self, writer: Writer, collector: LogCollector
    ) -> None:
        """RUNNING under a dead pid: FAILED ENGINE_LOST, tasks ended, audit and ERROR log."""
        owner = EngineOwner("engine-dead", dead_pid(), HOST)
        store = start(writer, "e1", owner)
        store.start_attempt("e1", "a", 1, masked_inputs={})
        lost = recover_lost_executions(writer, collector)
        assert [x.execution_id for x in lost] == ["e1"]
        assert row(writer, "SELECT state, reason_code FROM executions") == [
            ("FAILED", "ENGINE_LOST")
        ]
        assert row(
            writer, "SELECT task_id, state, reason_code FROM task_runs ORDER BY task_id"
        ) == [("a", "FAILED", "ENGINE_LOST"), ("b", "CANCELLED", "ENGINE_LOST")]
        assert row(writer, "SELECT state, reason FROM task_attempts") == [("FAILED", "ENGINE_LOST")]
        events = row(
            writer,
            "SELECT event_type FROM execution_audit_events WHERE execution_id = 'e1' ORDER BY id",
        )
        assert [e[0] for e in events][-2:] == ["STATE_CHANGE", "FAILED"]
        assert verify_chain(writer.connection, "e1").ok
        logs = row(writer, "SELECT level, message FROM execution_logs WHERE level = 'ERROR'")
        assert len(logs) == 1
        assert "was lost" in str(logs[0][1])
        assert "ENGINE_LOST" in str(logs[0][1])

    def test_orphan_plugin_group_is_killed(self, writer: Writer, collector: LogCollector) -> None:
        """A plugin process group still alive after its engine died is SIGKILLed."""
        owner = EngineOwner("engine-dead", dead_pid(), HOST)
        store = start(writer, "e1", owner)
        store.start_attempt("e1", "a", 1, masked_inputs={})
        with subprocess.Popen(["sleep", "60"], start_new_session=True) as orphan:
            store.attempt_spawned("e1", "a", 1, pid=orphan.pid, pgid=orphan.pid)
            lost = recover_lost_executions(writer, collector)
            assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert lost[0].killed_process_groups == (orphan.pid,)

    def test_live_owner_other_host_and_terminal_are_left_alone(
        self, writer: Writer, collector: LogCollector
    ) -> None:
        """A live owner, an owner on another host and finished executions are untouched."""
        start(writer, "live", EngineOwner("engine-live", os.getpid() + 0, HOST))
        start(writer, "remote", EngineOwner("engine-remote", dead_pid(), "other-host"))
        with subprocess.Popen(["sleep", "30"]) as sibling:
            start(writer, "sibling", EngineOwner("engine-sib", sibling.pid, HOST))
            assert recover_lost_executions(writer, collector) == []
            sibling.kill()
        states = row(writer, "SELECT execution_id, state FROM executions ORDER BY 1")
        assert states == [("live", "RUNNING"), ("remote", "RUNNING"), ("sibling", "RUNNING")]

    def test_stale_heartbeat_of_a_reused_pid_counts_as_lost(self, writer: Writer) -> None:
        """A running owner pid with a heartbeat older than the limit is presumed reused."""
        with subprocess.Popen(["sleep", "30"]) as other:
            start(writer, "e1", EngineOwner("engine-old", other.pid, HOST))
            with writer.transaction() as conn:
                conn.execute("UPDATE executions SET heartbeat_at = 1")
            lost = find_lost_executions(writer.connection, host=HOST)
            other.kill()
        assert [x[0] for x in lost] == ["e1"]

    def test_stopped_owner_with_a_stale_heartbeat_is_not_lost(
        self, writer: Writer, collector: LogCollector
    ) -> None:
        """An owner stopped by Ctrl+Z (SIGSTOP) that started before its heartbeat is alive."""
        with subprocess.Popen(["sleep", "30"]) as owner:
            time.sleep(1.5)  # /proc start times are exact to the second only
            start(writer, "e1", EngineOwner("engine-stopped", owner.pid, HOST))
            os.kill(owner.pid, signal.SIGSTOP)
            try:
                ((beat,),) = row(writer, "SELECT heartbeat_at FROM executions")
                assert isinstance(beat, int)
                later = beat + 10 * 60_000  # ten minutes without a heartbeat
                assert find_lost_executions(writer.connection, host=HOST, now=later) == []
                assert recover_lost_executions(writer, collector, clock=lambda: later) == []
            finally:
                owner.kill()
        assert row(writer, "SELECT state FROM executions") == [("RUNNING",)]

    def test_own_pid_under_another_engine_id_is_a_previous_incarnation(
        self, writer: Writer
    ) -> None:
        """Our pid with a foreign engine id (container PID 1 restarted) is lost; ours is not."""
        start(writer, "previous", EngineOwner("engine-before-restart", os.getpid(), HOST))
        start(writer, "mine", EngineOwner("engine-me", os.getpid(), HOST))
        conn = writer.connection
        assert find_lost_executions(conn, host=HOST) == []  # engine id unknown: keep all
        lost = find_lost_executions(conn, host=HOST, own_engine_id="engine-me")
        assert [x[0] for x in lost] == ["previous"]

    def test_a_concurrent_sweep_that_ends_it_first_leaves_one_error_entry(
        self, writer: Writer, collector: LogCollector, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Two sweeps racing on one lost execution: one ends it, one ERROR entry is logged."""
        owner = EngineOwner("engine-dead", dead_pid(), HOST)
        store = start(writer, "e1", owner)
        store.start_attempt("e1", "a", 1, masked_inputs={})
        store.attempt_spawned("e1", "a", 1, pid=dead_pid(), pgid=dead_pid())
        real_kill = _recovery.kill_process_group
        raced: list[int] = []

        def kill_while_another_sweep_runs(pgid: int, started_at: int | None) -> bool:
            if not raced:  # the other process's sweep wins the race meanwhile
                raced.append(pgid)
                assert len(recover_lost_executions(writer, collector)) == 1
            return real_kill(pgid, started_at)

        monkeypatch.setattr(_recovery, "kill_process_group", kill_while_another_sweep_runs)
        assert recover_lost_executions(writer, collector) == []
        collector.flush()
        errors = row(writer, "SELECT COUNT(*) FROM execution_logs WHERE level = 'ERROR'")
        assert errors == [(1,)]
        assert row(writer, "SELECT state FROM executions") == [("FAILED",)]

    def test_recovery_is_idempotent(self, writer: Writer, collector: LogCollector) -> None:
        """A second sweep finds nothing and writes nothing."""
        start(writer, "e1", EngineOwner("engine-dead", dead_pid(), HOST))
        assert len(recover_lost_executions(writer, collector)) == 1
        audit_before = row(writer, "SELECT COUNT(*) FROM execution_audit_events")
        assert recover_lost_executions(writer, collector) == []
        assert row(writer, "SELECT COUNT(*) FROM execution_audit_events") == audit_before
