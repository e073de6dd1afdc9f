"""The one write path of a process: serialized ``BEGIN IMMEDIATE`` transactions.

Two connections of one process writing in tight loops starve WAL checkpoints, so every write
of an engine process (log batches, state changes, audit events) goes through one ``Writer``:

    writer = Writer(Path(".autokestra/autokestra.db"))
    with writer.transaction(durable=True) as conn:
        conn.execute("UPDATE executions SET state = ? WHERE execution_id = ?", ("RUNNING", eid))
    writer.close()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import apsw

from ._connection import BUSY_TIMEOUT_MS, connect
from ._errors import StorageBusy, StorageError, StorageFull

#: A WAL above this size is truncated at the next opportunity (DESIGN.md §2: ≤ 64 MB).
WAL_LIMIT_BYTES = 64 * 1024 * 1024
#: Seconds between routine TRUNCATE checkpoints.
CHECKPOINT_INTERVAL_S = 5.0
#: How long a routine checkpoint waits for readers before giving up until next time.
CHECKPOINT_BUSY_TIMEOUT_MS = 200


def translate_error(exc: BaseException) -> StorageError:
    """Map an apsw exception to the storage error a caller can act on."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, apsw.FullError):
        return StorageFull(f"Database or disk is full: {exc}")
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return StorageBusy(f"Database is busy (locked by another writer): {exc}")
    return StorageError(f"Database error: {exc}")


class Writer:
    """Owns a process's single write connection and serializes its transactions.

    Thread-safe: a re-entrant lock orders transactions from every thread. Nested use of
    :meth:`transaction` on the same thread joins the outer transaction.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._lock = threading.RLock()
        self._depth = 0
        self._clock = clock
        self._checkpoint_interval_s = checkpoint_interval_s
        self._wal_limit_bytes = wal_limit_bytes
        self._last_checkpoint = clock()
        self._wal_path = Path(f"{self.path}-wal")
        self._closed = False

    @property
    def connection(self) -> apsw.Connection:
        """The underlying connection, for reads under :meth:`locked` (never for writes)."""
        return self._conn

    @contextmanager
    def locked(self) -> Iterator[apsw.Connection]:
        """Hold the writer lock without a transaction (migrations manage their own)."""
        with self._lock:
            self._check_open()
            yield self._conn

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[apsw.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction.

        Args:
            durable: commit with ``synchronous=FULL`` so the commit survives power loss
                (state changes and audit events); log batches use the default NORMAL.

        Raises:
            StorageFull: the disk or page limit is full; nothing of the block was written.
            StorageBusy: the write lock was not obtained within the busy timeout.
            StorageError: any other database failure; nothing of the block was written.
        """
        with self._lock:
            self._check_open()
            if self._depth:
                # Joining the outer transaction; its commit decides for both.
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._begin(durable)
            self._depth = 1
            try:
                yield self._conn
                self._commit()
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, apsw.Error):
                    raise translate_error(exc) from exc
                raise
            finally:
                self._depth = 0
                if durable:
                    self._conn.execute("PRAGMA synchronous = NORMAL")
            self._maybe_checkpoint()

    def _begin(self, durable: bool) -> None:
        try:
            if durable:
                self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            if durable:
                self._conn.execute("PRAGMA synchronous = NORMAL")
            raise translate_error(exc) from exc

    def _commit(self) -> None:
        self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        # After SQLITE_FULL or SQLITE_IOERR SQLite may already have rolled back by itself;
        # a second ROLLBACK would raise "cannot rollback" and hide the real cause.
        if self._conn.in_transaction:
            with suppress(apsw.Error):
                self._conn.execute("ROLLBACK")

    def _maybe_checkpoint(self) -> None:
        now = self._clock()
        due = now - self._last_checkpoint >= self._checkpoint_interval_s
        if not due and self._wal_size() < self._wal_limit_bytes:
            return
        # The transaction is committed: a checkpoint that fails (disk full, I/O error) must
        # not make the caller believe it was not. The next commit tries again. (Found by
        # fault injection: transaction() raised for a commit that had been made.)
        with suppress(apsw.Error):
            self.checkpoint()

    def _wal_size(self) -> int:
        try:
            return self._wal_path.stat().st_size
        except FileNotFoundError:
            return 0

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it; ``False`` if readers blocked it.

        A busy checkpoint is not an error: the next one catches up.
        """
        with self._lock:
            self._check_open()
            self._last_checkpoint = self._clock()
            # A reader mid-transaction makes TRUNCATE wait; waiting the full busy timeout
            # would stall every writer of the process, so give up quickly and retry later.
            self._conn.set_busy_timeout(CHECKPOINT_BUSY_TIMEOUT_MS)
            try:
                log_frames, checkpointed = self._conn.wal_checkpoint(
                    mode=apsw.SQLITE_CHECKPOINT_TRUNCATE
                )
            except (apsw.BusyError, apsw.LockedError):
                return False
            finally:
                self._conn.set_busy_timeout(BUSY_TIMEOUT_MS)
            return bool(log_frames == checkpointed)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("Writer is closed")

    def close(self) -> None:
        """Checkpoint and close the connection; idempotent."""
        with self._lock:
            if self._closed:
                return
            with suppress(apsw.Error):
                self._conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
            self._closed = True
            self._conn.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
