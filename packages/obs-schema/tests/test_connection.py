"""The connection policy: WAL, pragmas, private files, symlinks refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from autokestra_obs_schema import (
    APPLICATION_ID,
    DatabaseNotFound,
    StorageError,
    UnsafeDatabasePath,
    Writer,
    connect,
    open_reader,
)
from autokestra_obs_schema.testing import insert_executions


def _pragma(conn: object, name: str) -> object:
    import apsw

    assert isinstance(conn, apsw.Connection)
    return conn.execute(f"PRAGMA {name}").fetchall()[0][0]


class TestConnectionPolicy:
    def test_policy_pragmas_are_set(self, db_path: Path) -> None:
        """A new connection runs WAL, NORMAL sync, FKs, recursive triggers, secure delete."""
        conn = connect(db_path)
        try:
            assert _pragma(conn, "journal_mode") == "wal"
            assert _pragma(conn, "synchronous") == 1  # NORMAL
            assert _pragma(conn, "foreign_keys") == 1
            assert _pragma(conn, "recursive_triggers") == 1
            assert _pragma(conn, "secure_delete") == 1
            assert _pragma(conn, "application_id") == APPLICATION_ID
            timeout = _pragma(conn, "busy_timeout")
            assert isinstance(timeout, int)
            assert timeout >= 5000
        finally:
            conn.close()

    def test_double_quoted_strings_are_errors(self, db_path: Path) -> None:
        """DQS is off: a double-quoted unknown identifier is an error, not a string."""
        import apsw

        conn = connect(db_path)
        try:
            with pytest.raises(apsw.SQLError):
                conn.execute('SELECT "not_a_column"').fetchall()
        finally:
            conn.close()

    def test_files_are_private(self, writer: Writer, db_path: Path) -> None:
        """The db, -wal and -shm files are 0600 and their folder 0700."""
        insert_executions(writer, at_ms=1000)
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{db_path}{suffix}")
            assert path.exists(), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700

    def test_permissive_umask_still_gives_private_files(self, tmp_path: Path) -> None:
        """Even under umask 000 the files are created 0600."""
        old = os.umask(0)
        try:
            path = tmp_path / "open" / "x.db"
            conn = connect(path)
            conn.execute("CREATE TABLE t (x)")
            conn.close()
        finally:
            os.umask(old)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    def test_symlinked_path_is_refused(self, tmp_path: Path) -> None:
        """A database path that is a symlink is refused, for reading and writing."""
        target = tmp_path / "real.db"
        connect(target).close()
        link = tmp_path / "link.db"
        link.symlink_to(target)
        with pytest.raises(UnsafeDatabasePath):
            connect(link)
        with pytest.raises(UnsafeDatabasePath):
            connect(link, readonly=True)

    def test_dangling_symlink_is_refused(self, tmp_path: Path) -> None:
        """A symlink pointing nowhere is not followed to create a file elsewhere."""
        link = tmp_path / "dangling.db"
        link.symlink_to(tmp_path / "elsewhere.db")
        with pytest.raises(UnsafeDatabasePath):
            connect(link)
        assert not (tmp_path / "elsewhere.db").exists()

    def test_uncreatable_path_is_a_storage_error(self, tmp_path: Path) -> None:
        """A folder that cannot be created gives a StorageError naming the path, not OSError."""
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")
        path = blocker / "sub" / "a.db"
        with pytest.raises(StorageError, match=f"Cannot create database {path}"):
            connect(path)

    def test_readonly_open_of_missing_file_fails(self, tmp_path: Path) -> None:
        """Reading never creates a database."""
        with pytest.raises(DatabaseNotFound):
            open_reader(tmp_path / "missing.db")
        assert not (tmp_path / "missing.db").exists()

    def test_readonly_connection_cannot_write(self, writer: Writer, db_path: Path) -> None:
        """A reader connection refuses writes."""
        import apsw

        conn = open_reader(db_path)
        try:
            with pytest.raises(apsw.ReadOnlyError):
                conn.execute(
                    "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                    " updated_at) VALUES ('x', 'w', 'PENDING', 1, 1)"
                )
        finally:
            conn.close()

    def test_foreign_database_is_refused(self, tmp_path: Path) -> None:
        """A SQLite file of another application is not adopted."""
        path = tmp_path / "other.db"
        conn = connect(path)
        conn.execute("PRAGMA application_id = 42")
        conn.close()
        with pytest.raises(StorageError, match="Not an Autokestra database"):
            connect(path)

    def test_garbage_file_is_refused(self, tmp_path: Path) -> None:
        """A file that is not SQLite gives a StorageError, not an apsw exception."""
        path = tmp_path / "garbage.db"
        path.write_bytes(b"this is not a database" * 300)
        os.chmod(path, 0o600)
        with pytest.raises(StorageError):
            connect(path)
