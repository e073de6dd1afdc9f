"""Storage statistics: real row counts and page bytes."""

from __future__ import annotations

from autokestra_obs_schema import Writer, connect, storage_stats
from autokestra_obs_schema.testing import insert_executions


class TestStorageStats:
    def test_counts_and_bytes_grow_with_data(self, writer: Writer) -> None:
        """Rows are exact counts and bytes follow the pages the table really uses."""
        insert_executions(writer, at_ms=1000)
        conn = connect(writer.path, readonly=True)
        empty = storage_stats(conn, writer.path)
        with writer.transaction() as w:
            for i in range(500):
                w.execute(
                    "INSERT INTO execution_logs (execution_id, timestamp, level, source,"
                    " message) VALUES ('exec-1', ?, 'INFO', 'test', ?)",
                    (i, "m" * 1000),
                )
        full = storage_stats(conn, writer.path)
        conn.close()
        assert empty.tables["execution_logs"].rows == 0
        assert full.tables["execution_logs"].rows == 500
        assert full.tables["executions"].rows == 1
        assert full.tables["execution_logs"].bytes > 500 * 1000
        assert full.wal_bytes > 0

    def test_oversized_lists_tables_over_threshold(self, writer: Writer) -> None:
        """A lowered threshold reports the tables above it, largest first."""
        insert_executions(writer, at_ms=1000)
        conn = connect(writer.path, readonly=True)
        stats = storage_stats(conn, writer.path)
        conn.close()
        assert stats.oversized(1)[0] == "executions"
        assert stats.oversized(10**12) == []
