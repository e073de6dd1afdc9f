"""EXPLAIN QUERY PLAN for every statement the store issues: indexed, never a scan or sort."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from autokestra_obs_schema import open_reader, open_writer
from autokestra_obs_store import LogStore
from autokestra_obs_store._log_sql import (
    ITERATIONS_SQL,
    STATE_AND_HIGH_WATER_SQL,
    WINDOW_SQL,
    Shape,
    select_sql,
)

FLAGS = ("task", "family", "source", "text", "fold", "attempt", "since")
# Which index each shape must walk: the keyset shapes the (execution_id, timestamp) index,
# the follow cursor and the console's pages by id the (execution_id, id) one.
EXPECTED_INDEX = {
    Shape.FROM_TS: "idx_logs_execution (execution_id=? AND timestamp>?)",
    Shape.SAME_TS_AFTER: "idx_logs_execution (execution_id=? AND timestamp=? AND rowid>?",
    Shape.AFTER_TS: "idx_logs_execution (execution_id=? AND timestamp>?)",
    Shape.UNTIL_TS: "idx_logs_execution (execution_id=? AND timestamp<?)",
    Shape.SAME_TS_BEFORE: "idx_logs_execution (execution_id=? AND timestamp=? AND rowid<?",
    Shape.BEFORE_TS: "idx_logs_execution (execution_id=? AND timestamp<?)",
    Shape.AFTER_ID: "idx_logs_cursor (execution_id=? AND id>? AND id<?)",
    Shape.BEFORE_ID: "idx_logs_cursor (execution_id=? AND id<?)",
}
# With --task, keyset shapes walk the task index inside the execution's time window.
EXPECTED_TASK_INDEX = {
    Shape.FROM_TS: "idx_logs_task (task_id=? AND timestamp>? AND timestamp<?)",
    Shape.SAME_TS_AFTER: "idx_logs_task (task_id=? AND timestamp=? AND rowid>? AND rowid<?)",
    Shape.AFTER_TS: "idx_logs_task (task_id=? AND timestamp>? AND timestamp<?)",
    Shape.UNTIL_TS: "idx_logs_task (task_id=? AND timestamp>? AND timestamp<?)",
    Shape.SAME_TS_BEFORE: "idx_logs_task (task_id=? AND timestamp=? AND rowid<?)",
    Shape.BEFORE_TS: "idx_logs_task (task_id=? AND timestamp>? AND timestamp<?)",
    Shape.AFTER_ID: EXPECTED_INDEX[Shape.AFTER_ID],
    Shape.BEFORE_ID: EXPECTED_INDEX[Shape.BEFORE_ID],
}


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[apsw.Connection]:
    """A read-only connection to an empty, migrated database, with the store's functions."""
    path: Path = tmp_path_factory.mktemp("plans") / "plans.db"
    open_writer(path).close()
    reader = open_reader(path)
    LogStore(reader)  # registers the --grep function of non-ASCII texts
    yield reader
    reader.close()


def plan(conn: apsw.Connection, sql: str) -> list[str]:
    """The detail lines of EXPLAIN QUERY PLAN for ``sql`` (parameters bound to NULL)."""
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?")).fetchall()
    return [str(row[3]) for row in rows]


# Shapes a since filter is applied in as a fragment (the keyset shapes start at it instead);
# levels is how many levels the filter keeps (0: no level filter).
COMBINATIONS: list[tuple[Shape, dict[str, Any]]] = [
    (shape, {**dict(zip(FLAGS, bits, strict=True)), "levels": levels})
    for shape in Shape
    for bits in itertools.product((False, True), repeat=len(FLAGS))
    for levels in range(5)
    if (shape is Shape.AFTER_ID or not bits[-1])
    and not (bits[3] and bits[4])
    and (bits[0] or not bits[1])  # family refines a task filter
]


def case_id(shape: Shape, flags: dict[str, Any]) -> str:
    """``FROM_TS-task+levels2``: the shape and the filters set."""
    named = [k if v is True else f"{k}{v}" for k, v in flags.items() if v]
    return f"{shape.name}-{'+'.join(named) or 'none'}"


class TestQueryPlans:
    @pytest.mark.parametrize(
        ("shape", "flags"),
        COMBINATIONS,
        ids=[case_id(shape, flags) for shape, flags in COMBINATIONS],
    )
    def test_every_statement_is_an_index_range_without_sorting(
        self, conn: apsw.Connection, shape: Shape, flags: dict[str, Any]
    ) -> None:
        """Every filter combination searches the expected index and needs no temp b-tree."""
        details = plan(conn, select_sql(shape, **flags))
        assert len(details) == 1, details
        (detail,) = details
        assert detail.startswith("SEARCH execution_logs USING"), detail
        # A for_each task with its iterations walks the execution's index (one range in
        # order) where the task index would need a range per task id and a sort.
        by_task = flags["task"] and not flags["family"]
        expected = EXPECTED_TASK_INDEX if by_task else EXPECTED_INDEX
        assert expected[shape] in detail, detail
        assert "TEMP B-TREE" not in detail
        assert not any(line.startswith("SCAN") for line in details)

    def test_state_and_high_water_is_two_index_seeks(self, conn: apsw.Connection) -> None:
        """The follow poll reads the state by primary key and max(id) from idx_logs_cursor."""
        details = plan(conn, STATE_AND_HIGH_WATER_SQL.replace("?1", "?"))
        joined = " | ".join(details)
        assert "SEARCH executions USING INDEX sqlite_autoindex_executions_1" in joined
        assert "SEARCH execution_logs USING COVERING INDEX idx_logs_cursor" in joined
        assert "SCAN" not in joined and "TEMP" not in joined

    def test_task_window_is_two_index_seeks(self, conn: apsw.Connection) -> None:
        """The --task window (first and last timestamps) reads two ends of idx_logs_execution."""
        details = plan(conn, WINDOW_SQL.replace("?1", "?"))
        searches = [d for d in details if d.startswith("SEARCH")]
        assert len(searches) == 2
        assert all("COVERING INDEX idx_logs_execution (execution_id=?)" in d for d in searches)
        # "SCAN CONSTANT ROW" is the outer SELECT without a FROM, not a table scan.
        assert not any(d.startswith("SCAN execution_logs") or "TEMP" in d for d in details)

    def test_iterations_check_is_one_primary_key_seek(self, conn: apsw.Connection) -> None:
        """Whether a task has for_each iterations is one seek on task_runs' primary key."""
        details = plan(conn, ITERATIONS_SQL)
        assert len(details) == 1 and details[0].startswith("SEARCH task_runs USING"), details
        assert "execution_id=? AND task_id=?" in details[0]

    def test_the_naive_cursor_query_would_not_qualify(self, conn: apsw.Connection) -> None:
        """The check can fail: ordering by timestamp under an id range needs a sort."""
        details = plan(
            conn,
            "SELECT id FROM execution_logs WHERE +execution_id = ? AND id > ?"
            " ORDER BY timestamp, id",
        )
        assert any("TEMP B-TREE" in line for line in details)
