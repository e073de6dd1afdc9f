"""Fault injection for tests: an apsw VFS that fails the Nth write or sync, as SQLite's own
test suite does (its "I/O error" and "disk full" loops).

While :func:`inject_faults` is active, every *new* connection of the process (``connect``,
``Writer``, ``open_reader``) goes through :class:`FaultyVFS`. Arm the injector to fail the
Nth write/sync/truncate from now with ``SQLITE_IOERR`` or ``SQLITE_FULL``; run the write path
under test; check that what is visible afterwards is whole; repeat with N + 1 until the path
completes without reaching the fault. :func:`fault_loop` is that loop.

    with inject_faults() as faults:
        points = fault_loop(faults, attempt=write_one_batch, check=assert_whole)
    assert points > 0   # how many injection points the path has

Public so that every package (and the engine's state-transition path) reuses one VFS.

Checks read through :func:`unfaulted_reader`: a read-only connection that is the last one to
close a WAL database asks for a lock its read-only file cannot take; SQLite ignores that, but
apsw raises the error a Python VFS method reported (an artefact of the VFS, not of the code).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import apsw

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
