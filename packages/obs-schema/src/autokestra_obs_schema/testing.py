"""Test helpers: a migrated database file with its writer, and execution rows to hang data on.

Every package's tests need a real, migrated database file (WAL does not apply to
``:memory:``) and a few ``executions`` rows, because logs, task runs and audit events have
foreign keys to them. These helpers are that set-up, written once; a ``conftest.py`` wraps
them in fixtures (this module does not import pytest).

    @pytest.fixture
    def writer(tmp_path: Path) -> Iterator[Writer]:
        with temp_writer(tmp_path / "test.db") as w:
            insert_executions(w, "exec-1", "exec-2")
            yield w

Fault injection, as SQLite's own test suite does it (its "I/O error" and "disk full" loops):
while :func:`inject_faults` is active every *new* connection of the process goes through
:class:`FaultyVFS`; arm it to fail the Nth write/sync/truncate with ``SQLITE_IOERR`` or
``SQLITE_FULL``, run the write path, check that what is visible is whole, repeat with N + 1
until the path completes untouched (:func:`fault_loop`). Checks read through
:func:`unfaulted_reader`: a read-only connection that is the last to close a WAL database asks
for a lock its read-only file cannot take; SQLite ignores that, but apsw raises the error a
Python VFS method reported (an artefact of the VFS, not of the code under test).

    with inject_faults() as faults:
        points = fault_loop(faults, attempt=write_one_batch, check=assert_whole)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from ._open import open_writer
from ._vocabulary import State
from ._writer import CHECKPOINT_INTERVAL_S, Writer

__all__ = [
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


def migrated_writer(
    path: Path | str, *, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
) -> Writer:
    """Open (creating it) a database migrated to the latest schema, and its writer.

    Args:
        path: the database file; its folder is created if missing.
        checkpoint_interval_s: the writer's routine checkpoint interval (a long one keeps
            checkpoints out of tests that shorten the busy timeout on purpose).

    Returns:
        The writer; the caller closes it.
    """
    return open_writer(path, checkpoint_interval_s=checkpoint_interval_s)


@contextmanager
def temp_writer(
    path: Path | str, *, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
) -> Iterator[Writer]:
    """:func:`migrated_writer` as a context manager: the writer is closed on exit."""
    writer = migrated_writer(path, checkpoint_interval_s=checkpoint_interval_s)
    try:
        yield writer
    finally:
        writer.close()


def insert_executions(
    writer: Writer,
    *execution_ids: str,
    state: State = State.RUNNING,
    workflow_id: str = "wf",
    at_ms: int = 0,
) -> None:
    """Insert minimal ``executions`` rows (one transaction), for rows that reference them.

    Args:
        writer: the database's writer.
        execution_ids: the ids to insert (``"exec-1"`` when none is given).
        state: the state of every inserted row.
        workflow_id: their workflow.
        at_ms: their ``created_at`` and ``updated_at``.
    """
    with writer.transaction() as conn:
        for execution_id in execution_ids or ("exec-1",):
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?)",
                (execution_id, workflow_id, state.value, at_ms, at_ms),
            )


#: The VFS name registered while faults are injected.
FAULT_VFS_NAME = "autokestra-faults"
#: Which error an armed injector raises.
FAULT_KINDS = ("ioerr", "full")


@dataclass
class FaultInjector:
    """Counts the I/O operations that change files and fails the one it is armed for.

    Attributes:
        operations: writes, syncs and truncates seen so far (all files, all connections).
        fired: how many faults were raised.
        persistent: once reached, fail every later operation too (a disk that stays full).
    """

    operations: int = 0
    fired: int = 0
    persistent: bool = False
    _fail_at: int | None = None
    _kind: str = "ioerr"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, nth: int, kind: str = "ioerr", *, persistent: bool = False) -> None:
        """Fail the ``nth`` operation from now (1 = the next one) with ``kind``.

        Args:
            nth: which upcoming write/sync/truncate fails.
            kind: ``"ioerr"`` (SQLITE_IOERR) or ``"full"`` (SQLITE_FULL).
            persistent: keep failing every operation after it until :meth:`disarm`.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        with self._lock:
            self._fail_at = self.operations + nth
            self._kind = kind
            self.persistent = persistent

    def disarm(self) -> None:
        """Stop failing operations."""
        with self._lock:
            self._fail_at = None
            self.persistent = False

    def tick(self, operation: str) -> None:
        """Count one operation; raise the armed fault when it is reached."""
        with self._lock:
            self.operations += 1
            due = self._fail_at is not None and (
                self.operations == self._fail_at
                or (self.persistent and self.operations > self._fail_at)
            )
            if not due:
                return
            self.fired += 1
            kind = self._kind
        if kind == "full":
            raise apsw.FullError(f"injected disk full at {operation}")
        raise apsw.IOError(f"injected I/O error at {operation}")


class FaultyFile(apsw.VFSFile):
    """A file of :class:`FaultyVFS`: writes, syncs and truncates may fail on purpose."""

    def __init__(
        self,
        injector: FaultInjector,
        parent: str,
        name: apsw.URIFilename | str | None,
        flags: list[int],
    ) -> None:
        super().__init__(parent, name, flags)
        self._injector = injector

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802  # apsw's method name
        self._injector.tick("write")
        super().xWrite(data, offset)

    def xSync(self, flags: int) -> None:  # noqa: N802
        self._injector.tick("sync")
        super().xSync(flags)

    def xTruncate(self, newsize: int) -> None:  # noqa: N802
        self._injector.tick("truncate")
        super().xTruncate(newsize)


class FaultyVFS(apsw.VFS):
    """A VFS over the default one whose files report to a :class:`FaultInjector`."""

    def __init__(self, injector: FaultInjector, name: str = FAULT_VFS_NAME) -> None:
        self._injector = injector
        self._parent = apsw.vfs_names()[0]
        super().__init__(name, self._parent, makedefault=True)

    def xOpen(  # noqa: N802  # apsw's method name
        self, name: apsw.URIFilename | str | None, flags: list[int]
    ) -> FaultyFile:
        return FaultyFile(self._injector, self._parent, name, flags)


@contextmanager
def inject_faults() -> Iterator[FaultInjector]:
    """Make :class:`FaultyVFS` the default VFS for the block; yields its (disarmed) injector.

    Only connections opened inside the block use it; close them inside the block too.
    """
    injector = FaultInjector()
    vfs = FaultyVFS(injector)
    try:
        yield injector
    finally:
        injector.disarm()
        vfs.unregister()


def unfaulted_reader(path: Path | str) -> apsw.Connection:
    """A read-only connection through the real VFS, for checks between injected faults."""
    parent = next(name for name in apsw.vfs_names() if name != FAULT_VFS_NAME)
    return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY, vfs=parent)


def fault_loop(
    injector: FaultInjector,
    attempt: Callable[[], object],
    check: Callable[[bool], None],
    *,
    kind: str = "ioerr",
    persistent: bool = False,
    setup: Callable[[], None] | None = None,
    limit: int = 10_000,
) -> int:
    """Fail the 1st, 2nd, ... operation of ``attempt`` until it completes untouched.

    For each N: ``setup()`` (disarmed), arm the Nth operation, run ``attempt()`` (an
    exception is expected once the fault fires), disarm, then ``check(raised)`` where
    ``raised`` says whether ``attempt`` raised.

    Returns:
        The number of injection points: attempts in which the fault fired.

    Raises:
        AssertionError: from ``check``; or ``attempt`` raised without a fault firing; or
            the path never completed within ``limit`` points.
    """
    for nth in range(1, limit + 1):
        if setup is not None:
            setup()
        fired_before = injector.fired
        injector.arm(nth, kind, persistent=persistent)
        raised = False
        try:
            attempt()
        except Exception:
            raised = True
            if injector.fired == fired_before:
                injector.disarm()
                raise
        finally:
            injector.disarm()
        fired = injector.fired > fired_before
        check(raised)
        if not fired:
            return nth - 1  # every earlier N fired: that many injection points
    raise AssertionError(f"the path still reached a fault after {limit} injection points")
