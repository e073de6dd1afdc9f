"""DESIGN.md §6 primitives of obs-schema: paths, the audit key, the reserve, guarded rollback."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import (
    AUDIT_KEY_BYTES,
    RESERVE_BYTES,
    AuditKeyError,
    RollbackWouldDeleteRows,
    SchemaVersionError,
    StorageError,
    StorageReserve,
    UnsafeDatabasePath,
    Writer,
    connect,
    current_version,
    load_audit_key,
    load_or_create_audit_key,
    open_reader,
    open_writer,
    rollback,
    rollback_impact,
)
from autokestra_obs_schema._migrations import (
    _DROPPED_TABLE,
    _REBUILT_TABLE,
    DERIVED_TABLES,
    ROW_COUNT_SQL,
)
from autokestra_obs_schema._steps import STEPS
from autokestra_obs_schema.testing import insert_executions


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_000() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


class TestPaths:
    def test_symlink_in_a_parent_folder_is_followed(self, tmp_path: Path) -> None:
        """A db under a symlinked folder (/var/lib, macOS /tmp) opens, reads and writes."""
        real = tmp_path / "real"
        real.mkdir()
        (tmp_path / "link").symlink_to(real)
        path = tmp_path / "link" / "state" / "autokestra.db"
        writer = open_writer(path)
        insert_executions(writer)
        writer.close()
        assert (real / "state" / "autokestra.db").is_file()
        reader = open_reader(path)
        try:
            assert reader.execute("SELECT count(*) FROM executions").fetchall() == [(1,)]
        finally:
            reader.close()

    @pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
    def test_the_file_and_its_wal_and_shm_must_not_be_symlinks(
        self, tmp_path: Path, suffix: str
    ) -> None:
        """Only the database file and its -wal/-shm are refused as symlinks."""
        target = tmp_path / "elsewhere"
        target.write_bytes(b"")
        path = tmp_path / "autokestra.db"
        Path(f"{path}{suffix}").symlink_to(target)
        with pytest.raises(UnsafeDatabasePath, match="symlink"):
            connect(path)

    def test_a_failed_open_leaves_no_file_behind(self, tmp_path: Path) -> None:
        """An open that fails after creating the file removes it and the folders it made."""
        garbage = tmp_path / "garbage.db"
        garbage.write_bytes(b"x" * 4096)
        before = sorted(p.name for p in tmp_path.iterdir())
        with pytest.raises(StorageError):
            connect(garbage)  # existing file: kept as it was
        assert garbage.read_bytes() == b"x" * 4096
        assert sorted(p.name for p in tmp_path.iterdir()) == before

    def test_a_failed_open_of_a_new_file_removes_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A new file whose open fails is removed, and so are the folders created for it."""
        import apsw

        def refuse(*args: object, **kwargs: object) -> None:
            raise apsw.CantOpenError("unable to open database file")

        monkeypatch.setattr(apsw, "Connection", refuse)
        with pytest.raises(StorageError, match="Cannot open database"):
            connect(tmp_path / "a" / "b" / "autokestra.db")
        assert list(tmp_path.iterdir()) == []

    def test_every_created_folder_is_private_under_umask_000(
        self, tmp_path: Path, umask_000: None
    ) -> None:
        """Each folder level created for the db is 0700 even with umask 000; the file 0600."""
        path = tmp_path / "one" / "two" / "three" / "autokestra.db"
        open_writer(path).close()
        for folder in (tmp_path / "one", tmp_path / "one" / "two", path.parent):
            assert _mode(folder) == 0o700, folder
        assert _mode(path) == 0o600


class TestAuditKey:
    def test_created_once_private_and_32_bytes(self, tmp_path: Path, umask_000: None) -> None:
        """The key is 32 random bytes, 0600 whatever the umask, and the same on every load."""
        db = tmp_path / "autokestra.db"
        assert load_audit_key(db) is None
        key = load_or_create_audit_key(db)
        path = tmp_path / "audit.key"
        assert path.read_bytes() == key.secret
        assert len(key.secret) == AUDIT_KEY_BYTES
        assert _mode(path) == 0o600
        assert load_or_create_audit_key(db).secret == key.secret
        assert load_audit_key(db) == key
        assert key.secret.hex() not in repr(key)
        assert [p.name for p in tmp_path.iterdir()] == ["audit.key"]  # no temporary left

    def test_a_short_key_is_refused(self, tmp_path: Path) -> None:
        """A truncated key file is an error naming the file, never silently replaced."""
        (tmp_path / "audit.key").write_bytes(b"short")
        with pytest.raises(AuditKeyError, match="is 5 bytes, not 32"):
            load_or_create_audit_key(tmp_path / "autokestra.db")
        assert (tmp_path / "audit.key").read_bytes() == b"short"

    def test_a_symlinked_key_is_refused(self, tmp_path: Path) -> None:
        """The key file must be a regular file, not a symlink."""
        (tmp_path / "real").write_bytes(b"k" * 32)
        (tmp_path / "audit.key").symlink_to(tmp_path / "real")
        with pytest.raises(AuditKeyError, match="symlink"):
            load_audit_key(tmp_path / "autokestra.db")

    def test_key_never_enters_the_database(self, tmp_path: Path) -> None:
        """Neither the key nor its hex form is anywhere in the database file."""
        db = tmp_path / "autokestra.db"
        key = load_or_create_audit_key(db)
        writer = open_writer(db)
        with writer.transaction() as conn:
            conn.execute(
                "INSERT INTO audit_key (id, key_id, keyed_since, check_hash) VALUES (1, ?, 1, ?)",
                (key.key_id, key.record_check(1)),
            )
        writer.close()
        data = db.read_bytes()
        assert key.secret not in data
        assert key.secret.hex().encode() not in data


class TestReserve:
    def test_ensure_creates_the_reserve(self, writer: Writer) -> None:
        """A 1 MiB, fully written, private reserve file sits next to the db."""
        reserve = StorageReserve(writer.path)
        before = reserve.present  # only an engine holds one (open_writer does not)
        assert not before
        assert reserve.ensure()
        assert reserve.present
        assert reserve.path == Path(f"{writer.path}-reserve")
        assert reserve.path.stat().st_size == RESERVE_BYTES
        assert reserve.path.stat().st_blocks * 512 >= RESERVE_BYTES  # not sparse
        assert _mode(reserve.path) == 0o600

    def test_release_then_ensure(self, writer: Writer) -> None:
        """release() frees it once; ensure() recreates it; both are idempotent."""
        reserve = StorageReserve(writer.path)
        assert reserve.ensure()
        assert reserve.release()
        present_after_release = reserve.present
        assert not present_after_release
        assert not reserve.release()
        assert reserve.ensure()
        assert reserve.present
        assert reserve.ensure()

    def test_a_partial_reserve_is_completed(self, writer: Writer) -> None:
        """A short reserve (a crash while writing it) is rewritten whole."""
        reserve = StorageReserve(writer.path)
        reserve.path.write_bytes(b"\0" * 100)
        assert not reserve.present
        assert reserve.ensure()
        assert reserve.path.stat().st_size == RESERVE_BYTES

    def test_no_room_leaves_no_partial_reserve(self, tmp_path: Path) -> None:
        """Where 1 MiB does not fit, ensure() says so and leaves nothing behind."""
        reserve = StorageReserve(tmp_path / "autokestra.db", size=RESERVE_BYTES)
        import resource
        import signal

        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, old_limit[1]))
        try:
            assert not reserve.ensure()
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
            signal.signal(signal.SIGXFSZ, old_handler)
        assert not reserve.path.exists()


class TestGuardedRollback:
    def test_steps_above_the_applied_count_is_an_error_naming_it(self, writer: Writer) -> None:
        """99999999999999999999 steps is refused with that number; no table is dropped."""
        with writer.locked() as conn:
            version = current_version(conn)
            with pytest.raises(SchemaVersionError, match="99999999999999999999 migrations"):
                rollback(conn, steps=99999999999999999999, confirm_data_loss=True)
            assert current_version(conn) == version
            tables = conn.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
            assert int(str(tables.fetchall()[0][0])) > 5

    def test_rows_to_delete_need_confirmation(self, writer: Writer) -> None:
        """A rollback that would delete rows names them and changes nothing unconfirmed."""
        insert_executions(writer)
        with writer.locked() as conn:
            version = current_version(conn)
            impact = rollback_impact(conn, steps=version)
            assert impact["executions"] == 1
            with pytest.raises(RollbackWouldDeleteRows) as caught:
                rollback(conn, steps=version)
            assert str(caught.value) == (
                f"rollback would delete {sum(impact.values())} rows from "
                f"{', '.join(impact)}; add --yes to confirm"
            )
            assert caught.value.rows == impact
            assert current_version(conn) == version
            undone = rollback(conn, steps=version, confirm_data_loss=True)
            assert len(undone) == version
            assert current_version(conn) == 0

    def test_an_empty_table_needs_no_confirmation(self, writer: Writer) -> None:
        """Rolling back a step whose tables are empty asks nothing."""
        with writer.locked() as conn:
            assert rollback_impact(conn, steps=1) == {}
            assert len(rollback(conn, steps=1)) == 1

    def test_every_dropped_table_has_a_count_statement(self) -> None:
        """Each table a step's down drops for good has its fixed count statement."""
        dropped = {
            t
            for step in STEPS
            for t in _DROPPED_TABLE.findall(step.down)
            if t not in {n for pair in _REBUILT_TABLE.findall(step.down) for n in pair if n}
        }
        assert dropped
        assert dropped <= set(ROW_COUNT_SQL) | DERIVED_TABLES
