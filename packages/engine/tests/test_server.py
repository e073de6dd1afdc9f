"""The server's claims and cron fires, on a real database with a real engine."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from autokestra_engine import (
    Engine,
    EngineConfig,
    PluginRegistry,
    SecretStore,
    Server,
    ServerTimings,
    WorkflowRegistry,
    parse_workflow,
)
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import StorageError, Writer, ms_from_iso, open_writer

QUICK = """
id: quick
tasks:
  - {id: a, type: core/log.emit, inputs: {message: hi}}
"""
TICKER = """
id: ticker
trigger: {type: cron, schedule: "* * * * * *"}
tasks:
  - {id: a, type: core/log.emit, inputs: {message: tick}}
"""
T0 = ms_from_iso("2026-11-25T10:00:00Z")


@dataclass
class Rig:
    """A server over a real engine, writer and collector, with a settable clock."""

    server: Server
    engine: Engine
    writer: Writer
    err: io.StringIO
    now: list[int]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """One engine process's parts around a fresh database."""
    config = EngineConfig(db_path=tmp_path / "a.db", plugin_paths=[])
    writer = open_writer(config.db_path)
    collector = LogCollector(writer)
    plugins = PluginRegistry.discover([])
    engine = Engine(
        config,
        writer=writer,
        collector=collector,
        registry=plugins,
        secrets=SecretStore.load(config, {}),
    )
    err = io.StringIO()
    now = [T0]
    server = Server(config, engine=engine, registry=plugins, err=err, clock=lambda: now[0])
    yield Rig(server, engine, writer, err, now)
    engine.close()
    collector.shutdown()
    writer.close()


class TestClaims:
    def test_claims_oldest_unowned_pending_once(self, rig: Rig) -> None:
        """Queued runs are claimed oldest first, each once; a foreground-owned one never."""
        wf = parse_workflow(QUICK, rig.server.plugins, filename="q.yaml")
        first = rig.engine.create_execution(wf, {}, detached=True)
        owned = rig.engine.create_execution(wf, {})  # a foreground run owns its execution
        second = rig.engine.create_execution(wf, {}, detached=True)
        assert rig.server.claim_next() == first
        assert rig.server.claim_next() == second
        assert rig.server.claim_next() is None
        rows = rig.writer.connection.execute(
            "SELECT execution_id, engine_id FROM executions ORDER BY created_at"
        ).fetchall()
        assert {eid for eid, owner in rows if owner == rig.engine.engine_id} == {
            first,
            owned,
            second,
        }

    def test_tick_runs_queued_executions(self, rig: Rig) -> None:
        """A tick claims a queued run and runs it to SUCCESS in a worker thread."""
        wf = parse_workflow(QUICK, rig.server.plugins, filename="q.yaml")
        eid = rig.engine.create_execution(wf, {}, detached=True)
        rig.server.tick()
        assert rig.server.running() in ([eid], [])
        deadline = time.monotonic() + 30
        while rig.server.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        state = rig.writer.connection.execute(
            "SELECT state FROM executions WHERE execution_id = ?", (eid,)
        ).fetchall()
        assert state == [("SUCCESS",)]
        assert f"Execution {eid} ended SUCCESS" in rig.err.getvalue()


class TestCronFires:
    def test_due_fire_creates_one_cron_execution(self, rig: Rig) -> None:
        """A due cron workflow fires once per due time, with trigger_type cron."""
        wf = parse_workflow(TICKER, rig.server.plugins, filename="t.yaml")
        WorkflowRegistry(rig.writer).apply(wf, now=T0)
        assert rig.server.fire_due() == []  # next fire is T0 + 1 s
        rig.now[0] = T0 + 1000
        (created,) = rig.server.fire_due()
        assert rig.server.fire_due() == []  # claimed: not again at the same time
        rig.now[0] = T0 + 2000
        assert len(rig.server.fire_due()) == 1
        trigger = rig.writer.connection.execute(
            "SELECT trigger_type, state, engine_id FROM executions WHERE execution_id = ?",
            (created,),
        ).fetchall()
        assert trigger == [("cron", "PENDING", None)]
        assert "Cron fired ticker" in rig.err.getvalue()

    def test_invalid_stored_workflow_is_skipped(self, rig: Rig) -> None:
        """A stored workflow that no longer parses is skipped with an ERROR line."""
        wf = parse_workflow(TICKER, rig.server.plugins, filename="t.yaml")
        WorkflowRegistry(rig.writer).apply(wf, now=T0)
        with rig.writer.transaction() as conn:
            conn.execute("UPDATE workflows SET source = 'id: ticker\ntasks: 5\n'")
        rig.now[0] = T0 + 1000
        assert rig.server.fire_due() == []
        assert "Cron fire of ticker skipped" in rig.err.getvalue()


class _CountingMaintenance:
    """A Maintenance that records its calls; retention may be told to fail."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def run_retention(self, now_ms: int) -> str:
        self.calls.append("retention")
        if self.fail:
            raise RuntimeError("disk I/O error")
        return "deleted 0 log entries"

    def check_sizes(self) -> list[str]:
        self.calls.append("sizes")
        return ["Table execution_logs is 2.0 GiB, over the 1.0 GiB warning threshold"]


class TestMaintenance:
    def serve_briefly(self, rig: Rig, maintenance: _CountingMaintenance) -> None:
        """Serve for half a second with the given maintenance, then stop."""
        rig.server.maintenance = maintenance
        thread = threading.Thread(target=rig.server.serve)
        thread.start()
        time.sleep(0.5)
        rig.server.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()

    def test_start_checks_sizes_then_runs_retention_and_checks_again(self, rig: Rig) -> None:
        """At start: a size check, retention, a size check after it; each warning a WARN."""
        maintenance = _CountingMaintenance()
        self.serve_briefly(rig, maintenance)
        assert maintenance.calls == ["sizes", "retention", "sizes"]
        assert rig.err.getvalue().count("WARN  server: Table execution_logs is 2.0 GiB") == 2

    def test_failed_retention_still_checks_sizes(self, rig: Rig) -> None:
        """A retention failure is an ERROR line; the size check still runs."""
        maintenance = _CountingMaintenance(fail=True)
        self.serve_briefly(rig, maintenance)
        assert maintenance.calls == ["sizes", "retention", "sizes"]
        assert "ERROR server: Maintenance failed: disk I/O error" in rig.err.getvalue()


class TestPollErrors:
    def test_a_failed_poll_is_logged_and_the_server_keeps_serving(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A busy database during a claim is an ERROR line; the next poll runs the execution."""
        rig.server.timings = ServerTimings(poll_interval_s=0.02, poll_error_backoff_s=0.05)
        wf = parse_workflow(QUICK, rig.server.plugins, filename="q.yaml")
        eid = rig.engine.create_execution(wf, {}, detached=True)
        real_claim = rig.server.claim_next
        failures = [StorageError("Database is busy (locked by another writer)")]

        def claim_once_busy() -> str | None:
            if failures:
                raise failures.pop()
            return real_claim()

        monkeypatch.setattr(rig.server, "claim_next", claim_once_busy)
        thread = threading.Thread(target=rig.server.serve)
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = rig.writer.connection.execute(
                "SELECT state FROM executions WHERE execution_id = ?", (eid,)
            ).fetchall()
            if state == [("SUCCESS",)]:
                break
            time.sleep(0.05)
        rig.server.stop()
        thread.join(timeout=30)
        assert state == [("SUCCESS",)]
        assert "ERROR server: Poll failed: Database is busy" in rig.err.getvalue()
