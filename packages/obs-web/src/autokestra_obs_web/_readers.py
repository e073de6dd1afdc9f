"""A small pool of read-only connections, shared by the request threads of one console.

Opening a reader checks the schema version (a few statements); a busy console would pay it on
every request. Connections are handed to one thread at a time (a connection's read
transaction is per connection, so two requests must never share one at once) and closed
when the console stops.

    pool = ReaderPool(db_path)
    with pool.connection() as conn:
        ExecutionInspector(conn).snapshot(execution_id)
    pool.close()
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw

from autokestra_obs_schema import open_reader

#: Idle connections kept for reuse; more are opened under load and closed after use.
DEFAULT_IDLE = 8


class ReaderPool:
    """Read-only connections to one database file, reused across requests.

    Args:
        db_path: the database file (it must exist and be migrated).
        idle: how many idle connections to keep.
    """

    def __init__(self, db_path: Path, *, idle: int = DEFAULT_IDLE) -> None:
        self.db_path = db_path
        self._idle: list[apsw.Connection] = []
        self._max_idle = idle
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[apsw.Connection]:
        """Lend a read-only connection for the duration of the ``with`` block.

        Raises:
            DatabaseNotFound: the database file does not exist.
            SchemaVersionError: the schema is older or newer than the code.
        """
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = open_reader(self.db_path)
        try:
            yield conn
        finally:
            if conn.in_transaction:  # a failed read left its snapshot open
                conn.execute("ROLLBACK")
            with self._lock:
                keep = not self._closed and len(self._idle) < self._max_idle
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def close(self) -> None:
        """Close the idle connections; connections lent out close when returned."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
