"""Opening the database with Autokestra's explicit connection policy.

Every connection of every process goes through :func:`connect`, so WAL, durability, busy
handling and foreign keys are never left to SQLite's defaults.

    conn = connect(Path(".autokestra/autokestra.db"))
    reader = connect(Path(".autokestra/autokestra.db"), readonly=True)
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import apsw

from ._errors import DatabaseNotFound, StorageBusy, StorageError, UnsafeDatabasePath

#: ``PRAGMA application_id`` of an Autokestra database ("AKst").
APPLICATION_ID = 0x414B5374
#: Milliseconds a connection waits for a lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 10_000


def _refuse_symlink(path: Path) -> None:
    """Refuse the database file, or its ``-wal``/``-shm``, being a symlink (dangling or not).

    Symlinks in parent folders are fine (``/var/lib`` or macOS ``/tmp`` often are one): the
    path is resolved up to its folder before SQLite sees it.
    """
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.is_symlink():
            raise UnsafeDatabasePath(f"Refusing database path that is a symlink: {candidate}")


def _resolved(path: Path) -> Path:
    """``path`` with its folder's symlinks resolved, the file name itself untouched.

    SQLite's ``SQLITE_OPEN_NOFOLLOW`` refuses a symlink anywhere in the path, so the folders
    are resolved here, and only the last component keeps the no-follow protection.
    """
    return Path(os.path.realpath(path.parent)) / path.name


def _make_private_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents, each 0700 whatever the umask.

    ``Path.mkdir(parents=True)`` gives the parents the umask's default mode (0777 under
    umask 000), so every level is made and chmod-ed here. Returns the folders created,
    outermost first, so a failed open can remove them again.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists() and not current.is_symlink():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created: list[Path] = []
    for level in reversed(missing):
        try:
            level.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it meanwhile: its mode is its own business
        created.append(level)
        os.chmod(level, 0o700)  # mkdir's mode is filtered by the umask
    return created


def _create_private_file(path: Path) -> list[Path]:
    """Create the database file 0600 in 0700 folders before SQLite sees it.

    SQLite creates ``-wal`` and ``-shm`` with the permissions of the main file, so creating the
    main file first with 0600 makes all three private.

    Returns:
        What this call created (the file last), for :func:`_remove_created` on failure.
    """
    created = _make_private_folders(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return created
    except OSError:
        _remove_created(created)
        raise
    os.fchmod(fd, 0o600)
    os.close(fd)
    return [*created, path]


def _remove_created(created: list[Path]) -> None:
    """Undo :func:`_create_private_file` after a failed open: no new file is left behind."""
    for item in reversed(created):
        try:
            if item.is_dir():
                item.rmdir()
            else:
                for extra in (Path(f"{item}-wal"), Path(f"{item}-shm")):
                    extra.unlink(missing_ok=True)
                item.unlink(missing_ok=True)
        except OSError:
            continue  # not empty (another process uses it) or already gone


def _enable_wal(conn: apsw.Connection) -> str:
    """Switch to WAL, waiting out another process that is switching the same new file.

    Changing the journal mode needs an exclusive lock, and SQLite answers SQLITE_BUSY at once
    (without calling the busy handler) while another connection converts the file: several
    processes opening one fresh database together hit it. Retry within the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchall()[0][0]
            if str(mode).lower() != "wal":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchall()[0][0]
            return str(mode).lower()
        except apsw.BusyError:
            if time.monotonic() >= deadline:
                raise StorageBusy("Database is busy: could not enable WAL journal mode") from None
            time.sleep(0.01)


def _apply_policy(conn: apsw.Connection, *, readonly: bool) -> None:
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    # DQS off: a misspelled column in double quotes is an error, not a string literal.
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_FKEY, 1)
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 1)
    for pragma in (
        "PRAGMA foreign_keys = ON",
        "PRAGMA recursive_triggers = ON",
        "PRAGMA secure_delete = ON",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA temp_store = MEMORY",
    ):
        conn.execute(pragma)
    if readonly:
        return
    mode = _enable_wal(conn)
    if mode != "wal":
        raise StorageError(f"Could not enable WAL journal mode (got {mode!r})")
    current = conn.execute("PRAGMA application_id").fetchall()[0][0]
    if current == 0:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")  # integer constant, not input
    elif current != APPLICATION_ID:
        raise StorageError("Not an Autokestra database (application_id differs)")


def connect(path: Path | str, *, readonly: bool = False) -> apsw.Connection:
    """Open the database at ``path`` with the explicit connection policy.

    A writable open creates the file (0600) and its folder (0700) when missing.

    Args:
        path: the database file.
        readonly: open without write access; the file must exist.

    Returns:
        An apsw connection in autocommit mode: callers open explicit transactions.

    Raises:
        UnsafeDatabasePath: the path is a symlink.
        DatabaseNotFound: ``readonly`` and no file exists.
        StorageError: the file is not a usable Autokestra database, or it (or its folder)
            cannot be created.
    """
    given = Path(path)  # what messages name: the path the user wrote
    db_path = _resolved(given)
    _refuse_symlink(db_path)
    created: list[Path] = []
    if readonly:
        if not db_path.exists():
            raise DatabaseNotFound(f"No database at {given}")
        flags = apsw.SQLITE_OPEN_READONLY
    else:
        try:
            created = _create_private_file(db_path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StorageError(f"Cannot create database {given}: {reason}") from exc
        flags = apsw.SQLITE_OPEN_READWRITE
    flags |= apsw.SQLITE_OPEN_NOFOLLOW
    conn: apsw.Connection | None = None
    try:
        conn = apsw.Connection(str(db_path), flags=flags)
        _apply_policy(conn, readonly=readonly)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        _remove_created(created)
        if isinstance(exc, apsw.NotADBError):
            raise StorageError(f"Not a database: {given}") from exc
        if isinstance(exc, apsw.CantOpenError):
            raise StorageError(f"Cannot open database {given}: {exc}") from exc
        if isinstance(exc, apsw.Error):
            raise StorageError(f"Cannot open database {given}: {exc}") from exc
        raise
    return conn


def file_mode(path: Path) -> int:
    """Return the permission bits of ``path`` (for status output and tests)."""
    return stat.S_IMODE(path.stat().st_mode)
