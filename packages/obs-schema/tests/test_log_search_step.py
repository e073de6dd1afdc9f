"""The log_search migration: an FTS5 index of execution_logs.message kept by triggers."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from autokestra_obs_schema import (
    STEPS,
    Writer,
    current_version,
    migrate,
    rollback,
    storage_stats,
)
from autokestra_obs_schema.testing import insert_executions

STEP = next(step for step in STEPS if step.name == "log_search")
MATCH = "SELECT rowid FROM execution_logs_fts WHERE execution_logs_fts MATCH ? ORDER BY rowid"
INSERT = (
    "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
    " VALUES ('exec-1', ?, 'INFO', 'worker', ?)"
)


def objects(conn: apsw.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_schema WHERE name LIKE 'execution_logs_fts%'")
    return {str(row[0]) for row in rows}


@pytest.fixture
def before_step(db_path: Path) -> Writer:
    """A database at the version just before the index, holding two log entries."""
    writer = Writer(db_path)
    with writer.locked() as conn:
        migrate(conn, target=STEP.version - 1)
    insert_executions(writer)
    with writer.transaction() as conn:
        conn.execute(INSERT, (1, "disk full on /var"))
        conn.execute(INSERT, (2, "Disk quota exceeded"))
    return writer


def test_apsw_sqlite_has_fts5() -> None:
    assert "ENABLE_FTS5" in apsw.compile_options


def test_migrate_indexes_rows_written_before_it(before_step: Writer) -> None:
    with before_step.locked() as conn:
        applied = migrate(conn)
        assert STEP in applied
        assert conn.execute(MATCH, ("disk",)).fetchall() == [(1,), (2,)]
        assert conn.execute(MATCH, ("quota",)).fetchall() == [(2,)]
    before_step.close()


def test_new_rows_are_indexed_in_their_transaction(before_step: Writer) -> None:
    with before_step.locked() as conn:
        migrate(conn)
    with before_step.transaction() as conn:
        conn.execute(INSERT, (3, "new disk entry"))
        # Inside the writing transaction already: the trigger ran with the insert.
        assert conn.execute(MATCH, ("new",)).fetchall() == [(3,)]
    with before_step.transaction() as conn:
        conn.execute("UPDATE execution_logs SET message = 'renamed' WHERE id = 3")
    with before_step.locked() as conn:
        assert conn.execute(MATCH, ("new",)).fetchall() == []
        assert conn.execute(MATCH, ("renamed",)).fetchall() == [(3,)]
    with before_step.transaction() as conn:
        conn.execute("DELETE FROM execution_logs WHERE id = 3")
    with before_step.locked() as conn:
        assert conn.execute(MATCH, ("renamed",)).fetchall() == []
    before_step.close()


def test_rollback_drops_the_index_and_keeps_the_logs(before_step: Writer) -> None:
    with before_step.locked() as conn:
        migrate(conn, target=STEP.version)  # later steps (if any) are not this test's concern
        assert objects(conn) >= {
            "execution_logs_fts",
            "execution_logs_fts_insert",
            "execution_logs_fts_delete",
            "execution_logs_fts_update",
        }
        undone = rollback(conn, steps=1)
        assert undone == [STEP]
        assert current_version(conn) == STEP.version - 1
        assert objects(conn) == set()
        assert conn.execute("SELECT COUNT(*) FROM execution_logs").fetchall() == [(2,)]
    # Writing logs still works without the triggers' table.
    with before_step.transaction() as conn:
        conn.execute(INSERT, (3, "after rollback"))
    # And migrating again indexes everything, old and new.
    with before_step.locked() as conn:
        migrate(conn)
        assert conn.execute(MATCH, ("rollback",)).fetchall() == [(3,)]
        assert conn.execute(MATCH, ("disk",)).fetchall() == [(1,), (2,)]
    before_step.close()


def test_db_status_reports_the_index(writer: Writer, db_path: Path) -> None:
    insert_executions(writer)
    with writer.transaction() as conn:
        conn.executemany(INSERT, [(i, f"entry {i} with some words") for i in range(2000)])
    with writer.locked() as conn:
        stats = storage_stats(conn, db_path)
    index = stats.tables["execution_logs_fts"]
    assert index.rows == 2000
    # Its b-trees (the shadow tables) are counted, and not also listed on their own.
    assert 0 < index.bytes < stats.tables["execution_logs"].bytes
    assert not any(name.startswith("execution_logs_fts_") for name in stats.tables)
