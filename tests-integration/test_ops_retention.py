"""End to end: `workflow logs cleanup` (dry run, kill and resume) and the size warning."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from e2e import WORKFLOW, rows

from autokestra_obs_schema import audit_digest, connect, now_ms, open_writer

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
OLD_ROWS = 150_000


def seed(db: Path, old_rows: int = OLD_ROWS) -> None:
    """A finished execution with 150,000 (``old_rows``) 60-day-old rows and 10 fresh ones;
    a running one with 500 old rows; 20 old audit events each."""
    writer = open_writer(db)
    old, fresh = now_ms() - 60 * DAY_MS, now_ms()
    with writer.transaction() as conn:
        for eid, state in (("done", "SUCCESS"), ("live", "RUNNING")):
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, 'wf', ?, ?, ?)",
                (eid, state, old, old),
            )
            prev: str | None = None
            for n in range(20):
                digest = audit_digest(prev, eid, "STATE_CHANGE", old + n, "{}")
                conn.execute(
                    "INSERT INTO execution_audit_events (execution_id, event_type, timestamp,"
                    " metadata, prev_hash, hash) VALUES (?, 'STATE_CHANGE', ?, '{}', ?, ?)",
                    (eid, old + n, prev, digest),
                )
                prev = digest
        insert = (
            "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
            " VALUES (?, ?, 'INFO', 'scheduler', ?)"
        )
        conn.executemany(insert, [("done", old + n, f"old {n}") for n in range(old_rows)])
        conn.executemany(insert, [("done", fresh, "fresh") for _ in range(10)])
        conn.executemany(insert, [("live", old + n, "live old") for n in range(500)])
    writer.close()


def cli(db: Path, *args: str) -> list[str]:
    """argv of `workflow --db DB ARGS`."""
    return [WORKFLOW, "--db", str(db), *args]


def env(**extra: str) -> dict[str, str]:
    """CLI environment without a retention override unless given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKESTRA_")}
    return {**base, "NO_COLOR": "1", **extra}


def counts(db: Path) -> dict[tuple[str, str], int]:
    """Log and audit rows per (table, execution)."""
    found = {}
    for eid, n in rows(db, "SELECT execution_id, COUNT(*) FROM execution_logs GROUP BY 1"):
        found["logs", str(eid)] = int(n)
    for eid, n in rows(db, "SELECT execution_id, COUNT(*) FROM execution_audit_events GROUP BY 1"):
        found["audit", str(eid)] = int(n)
    return found


class TestCleanup:
    def test_dry_run_kill_and_resume(self, tmp_path: Path) -> None:
        """Dry run deletes nothing; a SIGKILLed cleanup leaves whole batches; a rerun finishes."""
        db = tmp_path / "ak.db"
        seed(db)
        before = counts(db)
        dry = subprocess.run(
            cli(db, "logs", "cleanup", "--dry-run"),
            env=env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.startswith(f"Would delete {OLD_ROWS} log entries and 20 audit events")
        assert counts(db) == before

        with subprocess.Popen(
            cli(db, "logs", "cleanup"),
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as killed:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                left = rows(db, "SELECT COUNT(*) FROM execution_logs WHERE execution_id = 'done'")
                if left[0][0] < OLD_ROWS + 10 - 5000:
                    break
                time.sleep(0.05)
            killed.send_signal(signal.SIGKILL)
            assert killed.wait(timeout=10) == -signal.SIGKILL
        partial = counts(db)
        deleted = before["logs", "done"] - partial["logs", "done"]
        assert 0 < deleted < OLD_ROWS, "the kill must land mid-purge"
        assert deleted % 1000 == 0  # only whole 1,000-row batches were committed
        conn = connect(db, readonly=True)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()

        rerun = subprocess.run(
            cli(db, "logs", "cleanup"),
            env=env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert rerun.returncode == 0, rerun.stderr
        assert rerun.stdout.startswith(
            f"Deleted {OLD_ROWS - deleted} log entries and 20 audit events ("
        )
        assert counts(db) == {
            ("logs", "done"): 10,  # the fresh rows
            ("logs", "live"): 500,  # a running execution is never touched
            ("audit", "live"): 20,
        }


class TestSizeWarning:
    def test_lowered_threshold_warns_in_server_and_db_status(self, tmp_path: Path) -> None:
        """With a 1 MiB threshold the server logs a WARN at start and db status warns too."""
        db = tmp_path / "ak.db"
        seed(db)
        small = env(AUTOKESTRA_TABLE_SIZE_WARNING="1MiB", AUTOKESTRA_SERVER_POLL="100ms")
        status = subprocess.run(
            cli(db, "db", "status"), env=small, capture_output=True, text=True, check=False
        )
        assert status.returncode == 0, status.stderr
        assert "Warning: Table execution_logs is" in status.stderr
        err = tmp_path / "server.err"
        with err.open("w") as stderr:
            server = subprocess.Popen(
                cli(db, "server", "start"),
                cwd=tmp_path,
                env=small,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            deadline = time.monotonic() + 60
            # Both the start-up size warning and the start-up retention's summary (a SIGTERM
            # would end the retention at its next batch).
            while "Retention: deleted" not in err.read_text():
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=60) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        text = err.read_text()
        assert "WARN  server: Table execution_logs is" in text
        assert "shorter retention" in text
        # The server's start-up retention ran too: the finished execution's old rows are gone.
        assert "Retention: deleted 150000 log entries" in text


class TestServerStopDuringRetention:
    def test_sigterm_ends_a_long_startup_retention_at_a_batch_boundary(
        self, tmp_path: Path
    ) -> None:
        """SIGTERM during the start-up purge of a large backlog: exit 0 within seconds."""
        db = tmp_path / "ak.db"
        backlog = 4 * OLD_ROWS  # about 5 s of purging on an idle 2-CPU VM
        seed(db, backlog)
        err = tmp_path / "server.err"
        with err.open("w") as stderr:
            server = subprocess.Popen(
                cli(db, "server", "start"),
                cwd=tmp_path,
                env=env(AUTOKESTRA_SERVER_POLL="100ms"),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            deadline = time.monotonic() + 60
            while "Retention (30 days): starting" not in err.read_text():
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.05)
            time.sleep(0.2)
            server.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            assert server.wait(timeout=30) == 0
            assert time.monotonic() - stopped_at < 5, err.read_text()
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        text = err.read_text()
        assert "Retention: stopped by shutdown after " in text, text
        assert text.index("Retention: stopped by shutdown") < text.index("Stopped: logs flushed")
        left = rows(db, "SELECT COUNT(*) FROM execution_logs WHERE execution_id = 'done'")[0][0]
        assert 10 < left < backlog + 10  # part done; the next run resumes it
