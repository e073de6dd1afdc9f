"""The indexes serve the queries the read side issues, with no temp B-tree for ordering."""

from __future__ import annotations

import pytest

from autokestra_obs_schema import Writer


def _plan(writer: Writer, sql: str, args: tuple[object, ...]) -> str:
    rows = writer.connection.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
    return "\n".join(str(r[3]) for r in rows)


class TestQueryPlans:
    @pytest.mark.parametrize(
        ("sql", "args", "index"),
        [
            (
                "SELECT * FROM execution_logs WHERE execution_id = ? AND timestamp >= ?"
                " ORDER BY timestamp, id",
                ("e", 1),
                "idx_logs_execution",
            ),
            (
                "SELECT * FROM execution_logs WHERE task_id = ? ORDER BY timestamp, id",
                ("t",),
                "idx_logs_task",
            ),
            (
                "SELECT * FROM execution_logs WHERE execution_id = ? AND task_id = ?"
                " ORDER BY timestamp, id",
                ("e", "t"),
                "idx_logs_task",
            ),
            (
                "SELECT * FROM execution_logs WHERE execution_id = ? AND id > ? ORDER BY id",
                ("e", 10),
                "idx_logs_cursor",
            ),
            (
                "SELECT * FROM execution_audit_events WHERE execution_id = ?"
                " ORDER BY timestamp, id",
                ("e",),
                "idx_audit_execution",
            ),
        ],
    )
    def test_query_uses_index_without_temp_btree(
        self, writer: Writer, sql: str, args: tuple[object, ...], index: str
    ) -> None:
        """Each read-side query is an index search, and ORDER BY needs no sort step."""
        plan = _plan(writer, sql, args)
        assert f"USING INDEX {index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
        assert "SCAN" not in plan, plan
