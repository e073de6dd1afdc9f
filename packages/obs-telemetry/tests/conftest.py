"""Fixtures of obs-telemetry's tests: a real migrated database file with known rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer, open_writer


class Rows:
    """Inserts rows the way the engine leaves them, straight through the writer."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def execution(self, execution_id: str, workflow_id: str, state: str) -> None:
        """Insert an execution row in ``state``."""
        with self.writer.transaction() as conn:
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, ?, ?, 1, 1)",
                (execution_id, workflow_id, state),
            )

    def task(
        self, execution_id: str, task_id: str, task_type: str, state: str, *, ms: int | None
    ) -> None:
        """Insert a task run row with its duration."""
        with self.writer.transaction() as conn:
            conn.execute(
                "INSERT INTO task_runs (execution_id, task_id, type, state, created_at,"
                " duration_ms) VALUES (?, ?, ?, ?, 1, ?)",
                (execution_id, task_id, task_type, state, ms),
            )

    def logs(self, execution_id: str, levels: list[str], dropped: int = 0) -> None:
        """One log row per level, plus a collector drop report of ``dropped`` entries."""
        rows: list[tuple[str, str, str | None]] = [(execution_id, lv, None) for lv in levels]
        if dropped:
            rows.append((execution_id, "WARN", json.dumps({"dropped_entries": dropped})))
        with self.writer.transaction() as conn:
            conn.executemany(
                "INSERT INTO execution_logs (execution_id, timestamp, level, source, message,"
                " metadata) VALUES (?, 1, ?, 'worker', 'x', ?)",
                rows,
            )


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    """A migrated database in the test's folder and its writer."""
    w = open_writer(tmp_path / "autokestra.db")
    yield w
    w.close()


@pytest.fixture
def rows(writer: Writer) -> Rows:
    """Row inserters on the test's database."""
    return Rows(writer)


@pytest.fixture
def populated(writer: Writer, rows: Rows) -> Writer:
    """Executions in every state of two workflows, task runs of two types, some logs."""
    rows.execution("e1", "etl", "SUCCESS")
    rows.execution("e2", "etl", "FAILED")
    rows.execution("e3", "report", "SUCCESS")
    rows.execution("e4", "report", "RUNNING")
    rows.execution("e5", "report", "PENDING")
    rows.task("e1", "a", "core/shell.run", "SUCCESS", ms=300)
    rows.task("e2", "a", "core/shell.run", "FAILED", ms=1500)
    rows.task("e3", "a", "core/log.emit", "SUCCESS", ms=40)
    rows.task("e4", "a", "core/log.emit", "RUNNING", ms=None)
    rows.logs("e1", ["INFO", "INFO", "ERROR"], dropped=4)
    return writer
