"""Retention: exactly the expired rows of terminal executions go, in batches, resumably."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from autokestra_obs_schema import StorageError, Writer, audit_digest, connect, open_writer
from autokestra_obs_store import (
    PurgeReport,
    RetentionConfigError,
    RetentionPolicy,
    purge,
)

CUTOFF = 1_000_000


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database path in a fresh folder."""
    return tmp_path / "db" / "autokestra.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    """A migrated database and its writer."""
    w = open_writer(db_path)
    yield w
    w.close()


def add_execution(writer: Writer, execution_id: str, state: str) -> None:
    """Insert an execution row in ``state``."""
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, 'wf', ?, 1, 1)",
            (execution_id, state),
        )


def add_logs(writer: Writer, execution_id: str, timestamps: list[int]) -> None:
    """Insert one log row per timestamp and keep log_entry_count in step, like the collector."""
    with writer.transaction() as conn:
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
            " VALUES (?, ?, 'INFO', 'scheduler', ?)",
            [(execution_id, ts, f"line at {ts}") for ts in timestamps],
        )
        conn.execute(
            "UPDATE executions SET log_entry_count = log_entry_count + ? WHERE execution_id = ?",
            (len(timestamps), execution_id),
        )


def add_audit(writer: Writer, execution_id: str, timestamps: list[int]) -> None:
    """Append a hash-chained audit event per timestamp."""
    with writer.transaction() as conn:
        prev: str | None = None
        for ts in timestamps:
            digest = audit_digest(prev, execution_id, "STATE_CHANGE", ts, "{}")
            conn.execute(
                "INSERT INTO execution_audit_events"
                " (execution_id, event_type, timestamp, metadata, prev_hash, hash)"
                " VALUES (?, 'STATE_CHANGE', ?, '{}', ?, ?)",
                (execution_id, ts, prev, digest),
            )
            prev = digest


def timestamps(conn: apsw.Connection, table: str, execution_id: str) -> list[int]:
    """Sorted timestamps left in a table for one execution."""
    query = {
        "logs": "SELECT timestamp FROM execution_logs WHERE execution_id = ? ORDER BY 1",
        "audit": "SELECT timestamp FROM execution_audit_events WHERE execution_id = ? ORDER BY 1",
    }[table]
    return [int(r[0]) for r in conn.execute(query, (execution_id,)).fetchall()]  # type: ignore[arg-type]  # INTEGER column


def seed_both_sides(writer: Writer) -> None:
    """Every state, each with rows before, at and after the cutoff."""
    around = [CUTOFF - 1000, CUTOFF - 1, CUTOFF, CUTOFF + 1]
    for state in ("SUCCESS", "FAILED", "CANCELLED", "RUNNING", "PENDING", "WAITING"):
        add_execution(writer, state.lower(), state)
        add_logs(writer, state.lower(), around)
        add_audit(writer, state.lower(), around)


class TestRetentionPolicy:
    def test_default_is_thirty_days(self) -> None:
        """With nothing set the window is 30 days."""
        assert RetentionPolicy.from_settings({}).days == 30

    def test_environment_wins_over_config(self) -> None:
        """AUTOKESTRA_LOG_RETENTION_DAYS overrides logging.retention_days."""
        env = {"AUTOKESTRA_LOG_RETENTION_DAYS": "7"}
        assert RetentionPolicy.from_settings(env, config_days=90).days == 7
        assert RetentionPolicy.from_settings({}, config_days=90).days == 90

    def test_empty_environment_counts_as_unset(self) -> None:
        """An empty AUTOKESTRA_LOG_RETENTION_DAYS falls back to the config value."""
        env = {"AUTOKESTRA_LOG_RETENTION_DAYS": " "}
        assert RetentionPolicy.from_settings(env, config_days="12").days == 12

    @pytest.mark.parametrize("raw", ["abc", "-1", "0", "1.5", "36501", "٣"])
    def test_invalid_environment_is_a_clear_error(self, raw: str) -> None:
        """A value that is not a whole number of days in range names the variable."""
        with pytest.raises(RetentionConfigError, match="AUTOKESTRA_LOG_RETENTION_DAYS"):
            RetentionPolicy.from_settings({"AUTOKESTRA_LOG_RETENTION_DAYS": raw})

    @pytest.mark.parametrize("value", [True, 2.5, [3], "x"])
    def test_invalid_config_value_is_a_clear_error(self, value: object) -> None:
        """A bad config value names logging.retention_days."""
        with pytest.raises(RetentionConfigError, match=r"logging\.retention_days"):
            RetentionPolicy.from_settings({}, config_days=value)

    def test_cutoff_is_now_minus_window(self) -> None:
        """The cutoff is the given now minus days * 86,400,000 ms."""
        assert RetentionPolicy(2).cutoff_ms(now=10 * 86_400_000) == 8 * 86_400_000


class TestPurge:
    def test_strictly_older_rows_of_terminal_executions_go(
        self, writer: Writer, db_path: Path
    ) -> None:
        """Rows before the cutoff go; rows at or after it, and of live executions, stay."""
        seed_both_sides(writer)
        report = purge(writer, CUTOFF)
        assert report.log_rows == 6
        conn = connect(db_path, readonly=True)
        for state in ("success", "failed", "cancelled"):
            assert timestamps(conn, "logs", state) == [CUTOFF, CUTOFF + 1]
        for state in ("running", "pending", "waiting"):
            assert len(timestamps(conn, "logs", state)) == 4
            assert len(timestamps(conn, "audit", state)) == 4
        conn.close()

    def test_audit_trails_go_whole(self, writer: Writer, db_path: Path) -> None:
        """A trail entirely before the cutoff goes; one straddling it stays whole and valid."""
        seed_both_sides(writer)
        add_execution(writer, "old", "SUCCESS")
        add_audit(writer, "old", [CUTOFF - 3, CUTOFF - 2, CUTOFF - 1])
        report = purge(writer, CUTOFF)
        assert report.audit_rows == 3
        conn = connect(db_path, readonly=True)
        assert timestamps(conn, "audit", "old") == []
        for state in ("success", "failed", "cancelled"):
            assert len(timestamps(conn, "audit", state)) == 4
        conn.close()
        later = purge(writer, CUTOFF + 2)
        assert later.audit_rows == 12  # now whole trails of the three finished executions

    def test_log_entry_count_follows_the_rows(self, writer: Writer) -> None:
        """log_entry_count is decremented in the same transaction as the deletes."""
        seed_both_sides(writer)
        purge(writer, CUTOFF)
        rows = writer.connection.execute(
            "SELECT e.log_entry_count, (SELECT COUNT(*) FROM execution_logs AS l"
            " WHERE l.execution_id = e.execution_id) FROM executions AS e"
        ).fetchall()
        assert all(count == present for count, present in rows)

    def test_batches_are_separate_transactions(self, writer: Writer) -> None:
        """2,500 expired log rows with batches of 1,000 take three transactions of <= 1,000."""
        add_execution(writer, "big", "SUCCESS")
        add_logs(writer, "big", list(range(2500)))
        add_audit(writer, "big", [10, 20])
        begins: list[str] = []

        def trace(_cursor: apsw.Cursor, sql: str, _bindings: object) -> bool:
            if sql.strip().upper().startswith("BEGIN IMMEDIATE"):
                begins.append(sql)
            return True

        seen: list[PurgeReport] = []
        writer.connection.exec_trace = trace
        try:
            report = purge(writer, CUTOFF, progress=seen.append)
        finally:
            writer.connection.exec_trace = None
        assert [r.log_rows for r in seen] == [1000, 2000, 2500, 2500]
        assert [r.audit_rows for r in seen] == [0, 0, 0, 2]
        assert report.batches == 4
        assert len(begins) == 4  # one transaction per batch, nothing else
        assert report.longest_batch_ms > 0

    def test_batches_span_executions(self, writer: Writer) -> None:
        """A batch fills up across several small executions."""
        for n in range(5):
            add_execution(writer, f"e{n}", "SUCCESS")
            add_logs(writer, f"e{n}", list(range(300)))
        report = purge(writer, CUTOFF, batch_size=1000)
        assert report.log_rows == 1500
        assert report.batches == 2

    def test_dry_run_deletes_nothing_and_predicts_the_purge(
        self, writer: Writer, db_path: Path
    ) -> None:
        """A dry run reports the same rows and bytes a purge then deletes, and writes nothing."""
        seed_both_sides(writer)
        writer.checkpoint()
        before = db_path.read_bytes()
        planned = purge(writer, CUTOFF, dry_run=True)
        writer.checkpoint()
        assert planned.dry_run
        assert db_path.read_bytes() == before
        done = purge(writer, CUTOFF)
        assert (planned.log_rows, planned.audit_rows) == (done.log_rows, done.audit_rows)
        assert planned.bytes_freed == done.bytes_freed > 0

    def test_audit_rows_are_protected_again_after_a_purge(self, writer: Writer) -> None:
        """The deletion permission lasts only for the purge: a later DELETE is refused."""
        seed_both_sides(writer)
        purge(writer, CUTOFF + 10)
        with (
            pytest.raises(StorageError),
            writer.transaction() as conn,
        ):
            conn.execute("DELETE FROM execution_audit_events WHERE execution_id = 'running'")

    def test_nothing_expired_is_a_no_op(self, writer: Writer) -> None:
        """An empty database, or nothing old enough, deletes nothing in no batches."""
        assert purge(writer, CUTOFF).batches == 0
        add_execution(writer, "fresh", "SUCCESS")
        add_logs(writer, "fresh", [CUTOFF + 5])
        report = purge(writer, CUTOFF)
        assert (report.log_rows, report.audit_rows, report.batches) == (0, 0, 0)

    def test_batch_size_must_be_positive(self, writer: Writer) -> None:
        """A zero batch size is refused."""
        with pytest.raises(ValueError, match="batch_size"):
            purge(writer, CUTOFF, batch_size=0)


_CHILD = textwrap.dedent(
    """
    import sys, time
    from autokestra_obs_schema import open_writer
    from autokestra_obs_store import purge

    writer = open_writer(sys.argv[1])

    def progress(report):
        print(report.log_rows, flush=True)
        time.sleep(0.2)  # the parent kills us somewhere in here

    purge(writer, int(sys.argv[2]), batch_size=100, progress=progress)
    print("done", flush=True)
    """
)


class TestResume:
    def test_a_killed_purge_resumes(self, writer: Writer, db_path: Path) -> None:
        """SIGKILL mid-purge keeps whole batches only; a rerun deletes exactly the rest."""
        add_execution(writer, "old", "SUCCESS")
        add_logs(writer, "old", [*range(1000), CUTOFF, CUTOFF + 1])
        add_audit(writer, "old", [1, 2])
        add_execution(writer, "live", "RUNNING")
        add_logs(writer, "live", list(range(50)))
        with subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(db_path), str(CUTOFF)],
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            assert child.stdout is not None
            lines = [child.stdout.readline() for _ in range(3)]
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert child.returncode == -signal.SIGKILL
        assert lines == ["100\n", "200\n", "300\n"]
        conn = connect(db_path, readonly=True)
        left = len(timestamps(conn, "logs", "old"))
        # Whole batches only: 3 or 4 were committed before the kill, never a partial one.
        assert left in (702, 602)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        report = purge(writer, CUTOFF, batch_size=100)
        assert report.log_rows == left - 2
        assert report.audit_rows == 2
        assert timestamps(conn, "logs", "old") == [CUTOFF, CUTOFF + 1]
        assert timestamps(conn, "audit", "old") == []
        assert len(timestamps(conn, "logs", "live")) == 50
        count = conn.execute(
            "SELECT log_entry_count FROM executions WHERE execution_id = 'old'"
        ).fetchall()
        assert count == [(2,)]
        conn.close()
