"""Versioned migrations: tables and indexes, round trips, idempotence, newer databases."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from autokestra_obs_schema import (
    LATEST_VERSION,
    STEPS,
    SchemaVersionError,
    Writer,
    connect,
    current_version,
    migrate,
    open_reader,
    register_retention_guard,
    require_current,
    rollback,
    status,
)

EXPECTED_COLUMNS = {
    "executions": {
        "execution_id",
        "workflow_id",
        "state",
        "trigger_type",
        "reason_code",
        "message",
        "created_at",
        "started_at",
        "ended_at",
        "updated_at",
        "log_entry_count",
        "cancel_requested_at",
        "cancelled_by",
        "cancel_reason",
        "inputs",
        "workflow_source",
    },
    "task_runs": {
        "execution_id",
        "task_id",
        "type",
        "state",
        "reason_code",
        "needs",
        "attempt_count",
        "inputs",
        "outputs",
        "error",
        "created_at",
        "started_at",
        "ended_at",
        "duration_ms",
    },
    "task_attempts": {
        "execution_id",
        "task_id",
        "attempt",
        "state",
        "reason",
        "started_at",
        "ended_at",
        "duration_ms",
        "exit_code",
        "error",
    },
    "execution_logs": {
        "id",
        "execution_id",
        "task_id",
        "attempt",
        "timestamp",
        "level",
        "source",
        "message",
        "metadata",
    },
    "execution_audit_events": {"id", "execution_id", "event_type", "timestamp", "metadata"},
}
EXPECTED_INDEXES = {
    "idx_logs_execution": ("execution_logs", ["execution_id", "timestamp"]),
    "idx_logs_task": ("execution_logs", ["task_id", "timestamp"]),
    "idx_audit_execution": ("execution_audit_events", ["execution_id", "timestamp"]),
}


def _columns(conn: apsw.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}


def _tables(conn: apsw.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
    return {str(r[0]) for r in rows}


def _fill(conn: apsw.Connection) -> None:
    """Put a row in every table that exists, so round trips carry data."""
    tables = _tables(conn)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
        " VALUES ('e1', 'wf', 'SUCCESS', 1, 2)"
    )
    conn.execute(
        "INSERT INTO task_runs (execution_id, task_id, type, state, created_at)"
        " VALUES ('e1', 't1', 'core/log.emit', 'SUCCESS', 1)"
    )
    conn.execute(
        "INSERT INTO task_attempts (execution_id, task_id, attempt, state)"
        " VALUES ('e1', 't1', 1, 'SUCCESS')"
    )
    if "execution_logs" in tables:
        conn.execute(
            "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
            " VALUES ('e1', 1, 'INFO', 'scheduler', 'hello')"
        )
    if "execution_audit_events" in tables:
        conn.execute(
            "INSERT INTO execution_audit_events (execution_id, event_type, timestamp, metadata,"
            " hash) VALUES ('e1', 'CREATED', 1, '{}', 'h')"
        )
    conn.execute("COMMIT")


class TestMigrate:
    def test_every_table_column_and_index_exists(self, tmp_path: Path) -> None:
        """After migrate, the DESIGN.md tables, columns and indexes are all present."""
        conn = connect(tmp_path / "a.db")
        migrate(conn)
        for table, columns in EXPECTED_COLUMNS.items():
            assert columns <= _columns(conn, table), table
        for index, (indexed_table, indexed) in EXPECTED_INDEXES.items():
            row = conn.execute(
                "SELECT tbl_name FROM sqlite_schema WHERE type = 'index' AND name = ?", (index,)
            ).fetchone()
            assert row is not None and row[0] == indexed_table, index
            info = conn.execute("SELECT name FROM pragma_index_info(?)", (index,)).fetchall()
            assert [r[0] for r in info] == indexed
        assert current_version(conn) == LATEST_VERSION

    def test_log_and_audit_ids_are_autoincrement(self, tmp_path: Path) -> None:
        """Ids are never reused, even after the newest row is purged."""
        conn = connect(tmp_path / "a.db")
        migrate(conn)
        _fill(conn)
        conn.execute("DELETE FROM execution_logs")
        conn.execute(
            "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
            " VALUES ('e1', 2, 'INFO', 'scheduler', 'again')"
        )
        assert conn.execute("SELECT id FROM execution_logs").fetchall() == [(2,)]
        for table in ("execution_logs", "execution_audit_events"):
            sql = conn.execute("SELECT sql FROM sqlite_schema WHERE name = ?", (table,)).fetchone()
            assert sql is not None and "AUTOINCREMENT" in str(sql[0])

    def test_second_migrate_is_a_noop(self, tmp_path: Path) -> None:
        """Applying twice changes nothing and reports nothing applied."""
        conn = connect(tmp_path / "a.db")
        assert len(migrate(conn)) == len(STEPS)
        schema_before = conn.execute("SELECT sql FROM sqlite_schema ORDER BY name").fetchall()
        assert migrate(conn) == []
        assert conn.execute("SELECT sql FROM sqlite_schema ORDER BY name").fetchall() == (
            schema_before
        )
        rows = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchall()[0][0]
        assert rows == len(STEPS)

    def test_migrate_to_target(self, tmp_path: Path) -> None:
        """A target version stops the migration there."""
        conn = connect(tmp_path / "a.db")
        migrate(conn, target=2)
        assert current_version(conn) == 2
        assert "execution_audit_events" not in _tables(conn)
        assert status(conn).pending == tuple(
            f"{s.version:04d}_{s.name}" for s in STEPS if s.version > 2
        )

    @pytest.mark.parametrize("version", range(LATEST_VERSION))
    def test_round_trip_through_each_version(self, tmp_path: Path, version: int) -> None:
        """migrate -> rollback to an earlier version -> migrate keeps surviving data."""
        conn = connect(tmp_path / "a.db")
        migrate(conn)
        _fill(conn)
        # Dropping the audit table needs no guard: its triggers are dropped first.
        rollback(conn, steps=LATEST_VERSION - version, confirm_data_loss=True)
        assert current_version(conn) == version
        if version >= 1:
            assert conn.execute("SELECT execution_id FROM executions").fetchall() == [("e1",)]
            assert conn.execute("SELECT COUNT(*) FROM task_attempts").fetchall() == [(1,)]
        else:
            assert _tables(conn) - {"sqlite_sequence"} == {"schema_migrations"}
        migrate(conn)
        assert current_version(conn) == LATEST_VERSION
        for table, columns in EXPECTED_COLUMNS.items():
            assert columns <= _columns(conn, table)
        if version >= 2:
            assert conn.execute("SELECT message FROM execution_logs").fetchall() == [("hello",)]

    def test_rollback_from_each_intermediate_version(self, tmp_path: Path) -> None:
        """Upgrading from every intermediate version reaches the same schema."""
        reference = connect(tmp_path / "ref.db")
        migrate(reference)
        expected = reference.execute(
            "SELECT type, name, sql FROM sqlite_schema ORDER BY name"
        ).fetchall()
        for version in range(LATEST_VERSION + 1):
            conn = connect(tmp_path / f"v{version}.db")
            migrate(conn, target=version)
            migrate(conn)
            got = conn.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
            assert got.fetchall() == expected, version

    def test_newer_database_is_refused(self, tmp_path: Path) -> None:
        """A database from a newer Autokestra is refused, naming both versions."""
        conn = connect(tmp_path / "a.db")
        migrate(conn)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 1)",
            (LATEST_VERSION + 1,),
        )
        message = f"version {LATEST_VERSION + 1} is newer.*version {LATEST_VERSION}"
        with pytest.raises(SchemaVersionError, match=message):
            migrate(conn)
        with pytest.raises(SchemaVersionError):
            rollback(conn)
        with pytest.raises(SchemaVersionError):
            require_current(conn)

    def test_reader_refuses_an_old_schema(self, tmp_path: Path) -> None:
        """A read-only open of a partly migrated database says how to fix it."""
        path = tmp_path / "a.db"
        conn = connect(path)
        migrate(conn, target=1)
        conn.close()
        with pytest.raises(SchemaVersionError, match="workflow db migrate"):
            open_reader(path)

    def test_failed_step_leaves_the_previous_version(self, tmp_path: Path) -> None:
        """A step that fails midway is rolled back whole, bookkeeping included."""
        from autokestra_obs_schema import MigrationStep

        broken = (*STEPS[:1], MigrationStep(2, "broken", "CREATE TABLE x (a); SELEC 1;", ""))
        conn = connect(tmp_path / "a.db")
        with pytest.raises(Exception, match="syntax error"):
            migrate(conn, steps=broken)
        assert current_version(conn) == 1
        assert "x" not in _tables(conn)


class TestAuditAppendOnly:
    """Every tampering statement fails against a fresh audit row, from any connection."""

    TAMPERING = (
        "UPDATE execution_audit_events SET metadata = '{\"x\": 1}'",
        "DELETE FROM execution_audit_events",
        "INSERT OR REPLACE INTO execution_audit_events (id, execution_id, event_type,"
        " timestamp, metadata, hash) VALUES (1, 'e1', 'FAILED', 1, '{}', 'forged')",
        "REPLACE INTO execution_audit_events (id, execution_id, event_type, timestamp,"
        " metadata, hash) VALUES (1, 'e1', 'FAILED', 1, '{}', 'forged')",
        "INSERT INTO execution_audit_events (id, execution_id, event_type, timestamp,"
        " metadata, hash) VALUES (1, 'e1', 'FAILED', 1, '{}', 'forged')"
        " ON CONFLICT (id) DO UPDATE SET event_type = 'FAILED'",
    )

    @pytest.fixture
    def fresh(self, writer: Writer) -> Writer:
        with writer.transaction() as conn:
            _fill_fresh(conn)
        return writer

    @pytest.mark.parametrize("statement", TAMPERING)
    def test_tampering_fails_without_guard(self, fresh: Writer, statement: str) -> None:
        """A connection that never registered the retention function cannot tamper."""
        conn = connect(fresh.path)
        with pytest.raises(apsw.Error):
            conn.execute(statement)
        assert _audit_rows(conn) == [(1, "CREATED", "h")]

    @pytest.mark.parametrize("statement", [s for s in TAMPERING if not s.startswith("DELETE")])
    def test_tampering_fails_with_recursive_triggers_off(
        self, fresh: Writer, statement: str
    ) -> None:
        """REPLACE's implicit delete is refused even when recursive triggers are off."""
        conn = connect(fresh.path)
        conn.execute("PRAGMA recursive_triggers = OFF")
        register_retention_guard(conn, cutoff_ms=10**15)  # would allow a delete of anything
        with pytest.raises(apsw.Error):
            conn.execute(statement)
        assert _audit_rows(conn) == [(1, "CREATED", "h")]

    @pytest.mark.parametrize("statement", TAMPERING)
    def test_tampering_fails_with_guard_for_fresh_rows(self, fresh: Writer, statement: str) -> None:
        """Even the retention connection cannot touch rows younger than its cutoff."""
        conn = connect(fresh.path)
        register_retention_guard(conn, cutoff_ms=1_000)  # the row's timestamp is 5_000
        with pytest.raises(apsw.Error):
            conn.execute(statement)
        assert _audit_rows(conn) == [(1, "CREATED", "h")]

    def test_retention_path_deletes_only_old_rows(self, writer: Writer) -> None:
        """With the guard registered, rows older than the cutoff go and younger ones stay."""
        with writer.transaction() as conn:
            _fill_fresh(conn)
            conn.execute(
                "INSERT INTO execution_audit_events (execution_id, event_type, timestamp,"
                " metadata, hash) VALUES ('e1', 'STARTED', 9000, '{}', 'h2')"
            )
        register_retention_guard(writer.connection, cutoff_ms=6_000)
        with writer.transaction() as conn:
            conn.execute("DELETE FROM execution_audit_events WHERE timestamp < 6000")
        with pytest.raises(Exception, match="append-only"), writer.transaction() as conn:
            conn.execute("DELETE FROM execution_audit_events")
        assert _audit_rows(writer.connection) == [(2, "STARTED", "h2")]


def _fill_fresh(conn: apsw.Connection) -> None:
    conn.execute(
        "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
        " VALUES ('e1', 'wf', 'SUCCESS', 1, 2)"
    )
    conn.execute(
        "INSERT INTO execution_audit_events (execution_id, event_type, timestamp, metadata,"
        " hash) VALUES ('e1', 'CREATED', 5000, '{}', 'h')"
    )


def _audit_rows(conn: apsw.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT id, event_type, hash FROM execution_audit_events ORDER BY id"
    ).fetchall()


_OPEN_AT = """
import sys, time
from autokestra_obs_schema import open_writer
start = float(sys.argv[2])
while time.time() < start:
    pass
open_writer(sys.argv[1]).close()
"""


class TestConcurrentFirstOpen:
    def test_processes_opening_one_fresh_database_together_all_succeed(
        self, tmp_path: Path
    ) -> None:
        """Several processes creating and migrating the same new file at once all succeed."""
        import subprocess
        import sys
        import time

        for round_ in range(4):
            path = tmp_path / f"r{round_}" / "a.db"
            start = time.time() + 1.0
            children = [
                subprocess.Popen(
                    [sys.executable, "-c", _OPEN_AT, str(path), repr(start)],
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(4)
            ]
            errors = [c.communicate(timeout=60)[1] for c in children]
            assert [c.returncode for c in children] == [0, 0, 0, 0], errors
            conn = connect(path)
            assert current_version(conn) == LATEST_VERSION
            rows = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchall()
            assert rows == [(LATEST_VERSION,)]
            conn.close()
