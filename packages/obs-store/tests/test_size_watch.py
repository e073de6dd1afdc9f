"""Size watch: a table over the threshold yields a warning with the remedy."""

from __future__ import annotations

from pathlib import Path

import pytest

from autokestra_obs_schema import connect, open_writer
from autokestra_obs_store import check_sizes


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    """A database whose log table holds about 2 MiB of messages."""
    path = tmp_path / "autokestra.db"
    writer = open_writer(path)
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES ('e1', 'wf', 'SUCCESS', 1, 1)"
        )
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
            " VALUES ('e1', ?, 'INFO', 'scheduler', ?)",
            [(n, "x" * 1000) for n in range(2000)],
        )
    writer.close()
    return path


class TestCheckSizes:
    def test_lowered_threshold_warns(self, filled_db: Path) -> None:
        """With a 1 MiB threshold the 2 MiB log table is reported, with its remedy."""
        conn = connect(filled_db, readonly=True)
        warnings = check_sizes(conn, filled_db, threshold_bytes=1024 * 1024)
        conn.close()
        assert [w.table for w in warnings] == ["execution_logs"]
        assert warnings[0].bytes > 2_000_000
        assert "over the 1.0 MiB warning threshold" in warnings[0].message
        assert "AUTOKESTRA_LOG_RETENTION_DAYS" in warnings[0].message

    def test_default_threshold_is_quiet(self, filled_db: Path) -> None:
        """Under the 1 GiB default nothing is reported."""
        conn = connect(filled_db, readonly=True)
        assert check_sizes(conn, filled_db) == []
        conn.close()

    def test_threshold_must_be_positive(self, filled_db: Path) -> None:
        """A zero threshold is refused."""
        conn = connect(filled_db, readonly=True)
        with pytest.raises(ValueError, match="threshold"):
            check_sizes(conn, filled_db, threshold_bytes=0)
        conn.close()
