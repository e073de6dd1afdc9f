"""autokestra_obs_schema.testing: the shared temp-database helpers other packages' tests use."""

from __future__ import annotations

from pathlib import Path

import pytest

from autokestra_obs_schema import LATEST_VERSION, State, current_version, open_reader, testing


class TestTestingHelpers:
    def test_public_names_pinned(self) -> None:
        """The module exports exactly its database helpers and the fault-injection VFS."""
        assert testing.__all__ == [
            "FAULT_KINDS",
            "FAULT_VFS_NAME",
            "FaultInjector",
            "FaultyFile",
            "FaultyVFS",
            "fault_loop",
            "inject_faults",
            "insert_executions",
            "migrated_writer",
            "temp_writer",
            "unfaulted_reader",
        ]

    def test_temp_writer_migrates_and_closes(self, tmp_path: Path) -> None:
        """The database is at the latest schema inside the block; the writer is closed after."""
        with testing.temp_writer(tmp_path / "new" / "t.db") as writer, writer.locked() as conn:
            assert current_version(conn) == LATEST_VERSION
        with pytest.raises(Exception, match="closed"), writer.locked() as conn:
            conn.execute("SELECT 1")

    def test_insert_executions_rows(self, tmp_path: Path) -> None:
        """Rows are inserted with the given ids, state and time; exec-1 when no id is given."""
        with testing.temp_writer(tmp_path / "t.db") as writer:
            testing.insert_executions(writer, "a", "b", state=State.PENDING, at_ms=7)
            testing.insert_executions(writer)
            conn = open_reader(writer.path)
            try:
                rows = conn.execute(
                    "SELECT execution_id, state, created_at FROM executions ORDER BY 1"
                ).fetchall()
            finally:
                conn.close()
        assert rows == [("a", "PENDING", 7), ("b", "PENDING", 7), ("exec-1", "RUNNING", 0)]
