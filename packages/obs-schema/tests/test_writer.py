"""The Writer: serialized BEGIN IMMEDIATE transactions, durability, failures, checkpoints."""

from __future__ import annotations

import threading
from pathlib import Path

import apsw
import pytest

from autokestra_obs_schema import StorageError, StorageFull, Writer, connect
from autokestra_obs_schema.testing import insert_executions


def _count(writer: Writer, table: str = "execution_logs") -> int:
    conn = connect(writer.path, readonly=True)
    try:
        queries = {
            "execution_logs": "SELECT COUNT(*) FROM execution_logs",
            "executions": "SELECT COUNT(*) FROM executions",
        }
        value = conn.execute(queries[table]).fetchall()[0][0]
        assert isinstance(value, int)
        return value
    finally:
        conn.close()


def _log(conn: apsw.Connection, message: str, execution_id: str = "exec-1") -> None:
    conn.execute(
        "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
        " VALUES (?, 1, 'INFO', 'test', ?)",
        (execution_id, message),
    )


class TestTransactions:
    def test_commit_is_visible_to_other_connections(self, writer: Writer) -> None:
        """A committed transaction is seen by a separate reader."""
        insert_executions(writer, at_ms=1000)
        with writer.transaction() as conn:
            _log(conn, "one")
        assert _count(writer) == 1

    def test_error_rolls_back_everything(self, writer: Writer) -> None:
        """An exception inside the block leaves nothing of it behind."""
        insert_executions(writer, at_ms=1000)
        with pytest.raises(RuntimeError), writer.transaction() as conn:
            _log(conn, "one")
            raise RuntimeError("boom")
        assert _count(writer) == 0
        assert not writer.connection.in_transaction

    def test_constraint_violation_becomes_storage_error(self, writer: Writer) -> None:
        """apsw errors surface as StorageError with the transaction rolled back."""
        insert_executions(writer, at_ms=1000)
        with pytest.raises(StorageError), writer.transaction() as conn:
            _log(conn, "one")
            _log(conn, "orphan", execution_id="no-such-execution")  # foreign key
        assert _count(writer) == 0

    def test_transaction_is_immediate(self, writer: Writer) -> None:
        """The write lock is taken at BEGIN: another writer cannot start meanwhile."""
        insert_executions(writer, at_ms=1000)
        other = connect(writer.path)
        other.set_busy_timeout(50)
        with writer.transaction(), pytest.raises(apsw.BusyError):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()

    def test_nested_transaction_joins_outer(self, writer: Writer) -> None:
        """A nested block commits or rolls back with its outer transaction."""
        insert_executions(writer, at_ms=1000)
        with pytest.raises(RuntimeError), writer.transaction() as conn:
            with writer.transaction() as inner:
                _log(inner, "inner")
            _log(conn, "outer")
            raise RuntimeError("outer fails")
        assert _count(writer) == 0

    def test_durable_commits_with_full_sync_then_restores_normal(self, writer: Writer) -> None:
        """durable=True runs the commit under synchronous=FULL, then back to NORMAL."""
        seen: list[object] = []
        with writer.transaction(durable=True) as conn:
            seen.append(conn.execute("PRAGMA synchronous").fetchall()[0][0])
        seen.append(writer.connection.execute("PRAGMA synchronous").fetchall()[0][0])
        assert seen == [2, 1]

    def test_threads_are_serialized(self, writer: Writer) -> None:
        """Eight threads writing at once lose nothing and never interleave a transaction."""
        insert_executions(writer, at_ms=1000)
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(50):
                    with writer.transaction() as conn:
                        _log(conn, f"{n}-{i}-a")
                        _log(conn, f"{n}-{i}-b")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        rows = writer.connection.execute("SELECT message FROM execution_logs ORDER BY id")
        messages = [str(r[0]) for r in rows]
        assert len(messages) == 800
        # Each transaction's two rows are adjacent: no other thread wrote between them.
        for first, second in zip(messages[::2], messages[1::2], strict=True):
            assert first.endswith("-a") and second == first[:-1] + "b"

    def test_closed_writer_refuses_work(self, db_path: Path) -> None:
        """After close, a transaction raises StorageError instead of touching a dead handle."""
        w = Writer(db_path)
        w.close()
        w.close()  # idempotent
        with pytest.raises(StorageError), w.transaction():
            pass


class TestStorageFull:
    def test_disk_full_surfaces_as_storage_full_with_nothing_written(self, writer: Writer) -> None:
        """A full database raises StorageFull and leaves none of the transaction."""
        insert_executions(writer, at_ms=1000)
        with writer.transaction() as conn:
            _log(conn, "before")
        pages = writer.connection.execute("PRAGMA page_count").fetchall()[0][0]
        writer.connection.execute(f"PRAGMA max_page_count = {int(str(pages)) + 2}")
        with pytest.raises(StorageFull), writer.transaction() as conn:
            for i in range(200):
                _log(conn, f"{i}" + "x" * 4000)
        assert not writer.connection.in_transaction
        assert _count(writer) == 1
        # The writer is still usable once space is back.
        writer.connection.execute("PRAGMA max_page_count = 1073741823")
        with writer.transaction() as conn:
            _log(conn, "after")
        assert _count(writer) == 2

    def test_message_names_the_cause_not_cannot_rollback(self, writer: Writer) -> None:
        """The error says the disk is full, never apsw's 'cannot rollback'."""
        insert_executions(writer, at_ms=1000)
        pages = writer.connection.execute("PRAGMA page_count").fetchall()[0][0]
        writer.connection.execute(f"PRAGMA max_page_count = {int(str(pages)) + 1}")
        with pytest.raises(StorageFull) as caught, writer.transaction() as conn:
            for i in range(100):
                _log(conn, "y" * 8000 + str(i))
        assert "full" in str(caught.value).lower()
        assert "cannot rollback" not in str(caught.value).lower()


class TestCheckpoint:
    def test_wal_is_truncated_periodically(self, db_path: Path) -> None:
        """With a zero interval every commit checkpoints, so the WAL stays small."""
        w = Writer(db_path, checkpoint_interval_s=0.0)
        try:
            with w.locked() as conn:
                from autokestra_obs_schema import migrate

                migrate(conn)
            insert_executions(w, at_ms=1000)
            for i in range(200):
                with w.transaction() as conn:
                    _log(conn, "z" * 2000 + str(i))
            wal = Path(f"{db_path}-wal")
            assert wal.stat().st_size < 64 * 1024
        finally:
            w.close()

    def test_wal_limit_forces_a_checkpoint(self, db_path: Path) -> None:
        """Past the WAL size limit a checkpoint runs even before the interval."""
        w = Writer(db_path, checkpoint_interval_s=3600.0, wal_limit_bytes=256 * 1024)
        try:
            with w.locked() as conn:
                from autokestra_obs_schema import migrate

                migrate(conn)
            insert_executions(w, at_ms=1000)
            for i in range(400):
                with w.transaction() as conn:
                    _log(conn, "w" * 4000 + str(i))
            assert Path(f"{db_path}-wal").stat().st_size < 2 * 256 * 1024
        finally:
            w.close()

    def test_checkpoint_gives_up_quickly_when_a_reader_holds_a_snapshot(
        self, writer: Writer
    ) -> None:
        """A reader mid-transaction makes checkpoint() return False, not hang."""
        insert_executions(writer, at_ms=1000)
        reader = connect(writer.path, readonly=True)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM executions").fetchall()
        with writer.transaction() as conn:
            _log(conn, "while reading")
        assert writer.checkpoint() is False
        reader.execute("COMMIT")
        reader.close()
        assert writer.checkpoint() is True
