"""metrics_snapshot: the database figures behind /metrics, checked against a known data set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from autokestra_obs_schema import Writer, open_reader
from autokestra_obs_store import TASK_DURATION_BUCKETS_S, LogTally, metrics_snapshot


@pytest.fixture
def reader(writer: Writer) -> Iterator[apsw.Connection]:
    conn = open_reader(writer.path)
    yield conn
    conn.close()


def add_execution(writer: Writer, execution_id: str, workflow_id: str, state: str) -> None:
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, ?, ?, 1, 1)",
            (execution_id, workflow_id, state),
        )


def add_task(
    writer: Writer, execution_id: str, task_id: str, task_type: str, state: str, *, ms: int | None
) -> None:
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO task_runs (execution_id, task_id, type, state, created_at, duration_ms)"
            " VALUES (?, ?, ?, ?, 1, ?)",
            (execution_id, task_id, task_type, state, ms),
        )


def add_logs(writer: Writer, execution_id: str, rows: list[tuple[str, str | None]]) -> None:
    """One log row per (level, metadata JSON)."""
    with writer.transaction() as conn:
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, timestamp, level, source, message,"
            " metadata) VALUES (?, 1, ?, 'collector', 'x', ?)",
            [(execution_id, level, meta) for level, meta in rows],
        )


@pytest.fixture
def populated(writer: Writer) -> Writer:
    """Two workflows, executions in every state, task runs of two types, some logs."""
    add_execution(writer, "e1", "etl", "SUCCESS")
    add_execution(writer, "e2", "etl", "SUCCESS")
    add_execution(writer, "e3", "etl", "FAILED")
    add_execution(writer, "e4", "report", "CANCELLED")
    add_execution(writer, "e5", "report", "RUNNING")
    add_execution(writer, "e6", "report", "PENDING")
    add_execution(writer, "e7", "etl", "PENDING")
    add_task(writer, "e1", "a", "core/shell.run", "SUCCESS", ms=50)
    add_task(writer, "e1", "b", "core/shell.run", "SUCCESS", ms=700)
    add_task(writer, "e2", "a", "core/shell.run", "FAILED", ms=4000)
    add_task(writer, "e3", "a", "core/wait.sleep", "SUCCESS", ms=2500)
    add_task(writer, "e4", "a", "core/wait.sleep", "CANCELLED", ms=None)  # never started
    add_task(writer, "e5", "a", "core/wait.sleep", "RUNNING", ms=None)
    add_logs(
        writer,
        "e1",
        [
            ("INFO", None),
            ("INFO", None),
            ("WARN", None),
            ("ERROR", None),
            ("WARN", json.dumps({"dropped_entries": 7})),
        ],
    )
    return writer


class TestMetricsSnapshot:
    def test_executions_by_workflow_and_terminal_state(
        self, populated: Writer, reader: apsw.Connection
    ) -> None:
        """Terminal executions are counted per (workflow, state); open ones are gauges."""
        snapshot = metrics_snapshot(reader)
        assert snapshot.executions == {
            ("etl", "SUCCESS"): 2,
            ("etl", "FAILED"): 1,
            ("report", "CANCELLED"): 1,
        }
        assert (snapshot.running, snapshot.queued) == (1, 2)

    def test_task_runs_and_duration_histogram(
        self, populated: Writer, reader: apsw.Connection
    ) -> None:
        """Terminal task runs by (type, state); durations bucketed cumulatively by type."""
        snapshot = metrics_snapshot(reader)
        assert snapshot.task_runs == {
            ("core/shell.run", "SUCCESS"): 2,
            ("core/shell.run", "FAILED"): 1,
            ("core/wait.sleep", "SUCCESS"): 1,
            ("core/wait.sleep", "CANCELLED"): 1,
        }
        shell = snapshot.task_durations["core/shell.run"]
        assert shell.count == 3
        assert shell.sum_seconds == pytest.approx(4.75)
        expected = [
            sum(ms <= bound * 1000 for ms in (50, 700, 4000)) for bound in TASK_DURATION_BUCKETS_S
        ]
        assert list(shell.buckets) == expected
        assert shell.buckets[0] == 1  # 50 ms <= 0.1 s
        sleep = snapshot.task_durations["core/wait.sleep"]
        assert (sleep.count, sleep.sum_seconds) == (1, 2.5)
        assert sleep.buckets[TASK_DURATION_BUCKETS_S.index(2.5)] == 1  # bounds are inclusive

    def test_log_entries_by_level_and_dropped(
        self, populated: Writer, reader: apsw.Connection
    ) -> None:
        """Every stored entry counts under its level; drop reports add their counts."""
        logs = metrics_snapshot(reader).logs
        assert dict(logs.by_level) == {"INFO": 2, "WARN": 2, "ERROR": 1}
        assert logs.dropped == 7
        assert logs.after_id == 5

    def test_log_counts_resume_from_the_previous_tally(
        self, populated: Writer, reader: apsw.Connection
    ) -> None:
        """A second call adds only newer rows to the tally it is given."""
        first = metrics_snapshot(reader).logs
        add_logs(populated, "e2", [("DEBUG", None), ("WARN", json.dumps({"dropped_entries": 3}))])
        second = metrics_snapshot(reader, logs=first).logs
        assert dict(second.by_level) == {"INFO": 2, "WARN": 3, "ERROR": 1, "DEBUG": 1}
        assert (second.dropped, second.after_id) == (10, 7)
        # A tally that already counted everything is returned as is.
        assert metrics_snapshot(reader, logs=second).logs == second

    def test_counts_survive_deleted_rows(self, populated: Writer, reader: apsw.Connection) -> None:
        """Rows removed after being counted (retention) do not lower a running tally."""
        first = metrics_snapshot(reader).logs
        with populated.transaction() as conn:
            conn.execute("DELETE FROM execution_logs")
        assert metrics_snapshot(reader, logs=first).logs == first

    def test_empty_database(self, writer: Writer, reader: apsw.Connection) -> None:
        """A new database has zero everywhere and a real size."""
        snapshot = metrics_snapshot(reader)
        assert snapshot.executions == {}
        assert (snapshot.running, snapshot.queued) == (0, 0)
        assert snapshot.task_durations == {}
        assert snapshot.logs == LogTally()
        assert snapshot.db_size_bytes == Path(writer.path).stat().st_size + (
            Path(f"{writer.path}-wal").stat().st_size if Path(f"{writer.path}-wal").exists() else 0
        )
        assert snapshot.db_size_bytes > 0

    def test_one_read_transaction_and_no_write(
        self, populated: Writer, reader: apsw.Connection
    ) -> None:
        """The reader is left outside any transaction; inside the caller's, it reads in it."""
        metrics_snapshot(reader)
        assert not reader.in_transaction
        reader.execute("BEGIN")
        try:
            assert metrics_snapshot(reader).queued == 2
            assert reader.in_transaction
        finally:
            reader.execute("COMMIT")
