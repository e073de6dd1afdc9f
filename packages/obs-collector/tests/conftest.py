"""Fixtures: migrated database files with execution rows, a writer, a collector factory."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import Writer
from autokestra_obs_schema.testing import insert_executions, migrated_writer

EXECUTIONS = ("exec-1", "exec-2", "exec-3")


def make_writer(path: Path) -> Writer:
    """A writer on a fresh, migrated database holding the EXECUTIONS rows.

    Routine checkpoints are pushed out of the way: they reset the busy timeout some tests
    shorten on purpose.
    """
    writer = migrated_writer(path, checkpoint_interval_s=3600)
    insert_executions(writer, *EXECUTIONS)
    return writer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "logs.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    w = make_writer(db_path)
    yield w
    w.close()


@pytest.fixture
def report() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def make_collector(writer: Writer, report: io.StringIO) -> Iterator[Callable[..., LogCollector]]:
    made: list[LogCollector] = []

    def factory(**kwargs: Any) -> LogCollector:
        kwargs.setdefault("report", report)
        collector = LogCollector(writer, **kwargs)
        made.append(collector)
        return collector

    yield factory
    for collector in made:
        collector.shutdown(timeout=5)


class DbView:
    """Reads what the collector wrote, on the writer's own connection."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def rows(self, execution_id: str | None = None) -> list[tuple[Any, ...]]:
        """(id, execution_id, task_id, attempt, timestamp, level, source, message, metadata)."""
        sql = (
            "SELECT id, execution_id, task_id, attempt, timestamp, level, source, message,"
            " metadata FROM execution_logs"
        )
        conn = self.writer.connection
        if execution_id is None:
            return [tuple(r) for r in conn.execute(sql + " ORDER BY id")]
        return [
            tuple(r)
            for r in conn.execute(sql + " WHERE execution_id = ? ORDER BY id", (execution_id,))
        ]

    def messages(self, execution_id: str | None = None) -> list[str]:
        return [str(r[7]) for r in self.rows(execution_id)]

    def count(self, execution_id: str) -> int:
        """The execution's log_entry_count column."""
        rows = self.writer.connection.execute(
            "SELECT log_entry_count FROM executions WHERE execution_id = ?", (execution_id,)
        ).fetchall()
        return int(str(rows[0][0]))


@pytest.fixture
def view(writer: Writer) -> DbView:
    return DbView(writer)
