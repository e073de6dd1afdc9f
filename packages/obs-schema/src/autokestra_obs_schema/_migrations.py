"""Versioned migrations: apply, roll back and report the schema version.

Each step commits in its own ``BEGIN IMMEDIATE`` transaction together with its row in
``schema_migrations``, so a crash leaves the database at a whole version.

    conn = connect(path)
    migrate(conn)            # to the latest version; a no-op when already there
    rollback_impact(conn, steps=1)                    # {"workflows": 3}: rows it would delete
    rollback(conn, steps=1, confirm_data_loss=True)  # undo the newest step
    status(conn).current     # -> 5
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import apsw

from ._errors import RollbackWouldDeleteRows, SchemaVersionError
from ._steps import LATEST_VERSION, STEPS, MigrationStep
from ._time import now_ms
from ._writer import translate_error

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Where a database stands against the code's migration registry."""

    current: int
    latest: int
    applied: tuple[str, ...]
    pending: tuple[str, ...]


def _has_bookkeeping(conn: apsw.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    return row is not None


def current_version(conn: apsw.Connection) -> int:
    """Return the newest applied version, 0 for an empty database."""
    if not _has_bookkeeping(conn):
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def _refuse_newer(version: int) -> None:
    if version > LATEST_VERSION:
        raise SchemaVersionError(
            f"Database schema version {version} is newer than this Autokestra supports "
            f"(version {LATEST_VERSION}); upgrade Autokestra to use it"
        )


def _run_step(
    conn: apsw.Connection,
    sql: str,
    bookkeeping: tuple[str, tuple[object, ...]],
    expected_version: int,
) -> bool:
    """Run one step if the database is still at ``expected_version``; ``False`` if not.

    The version is read again under the write lock: another process opening the same fresh
    database may have applied (or undone) the step since this one looked.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) != expected_version:
                conn.execute("COMMIT")
                return False
            conn.execute(sql)
            conn.execute(*bookkeeping)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except apsw.Error as exc:
        raise translate_error(exc) from exc
    return True


def migrate(
    conn: apsw.Connection, target: int | None = None, steps: Sequence[MigrationStep] = STEPS
) -> list[MigrationStep]:
    """Apply every pending step up to ``target`` (default: the latest).

    Returns:
        The steps applied, oldest first; empty when the database was already there.

    Raises:
        SchemaVersionError: the database is newer than the code, or ``target`` is unknown.
    """
    latest = steps[-1].version if steps else 0
    goal = latest if target is None else target
    if not 0 <= goal <= latest:
        raise SchemaVersionError(f"Unknown schema version {goal} (latest is {latest})")
    try:
        conn.execute(_BOOKKEEPING)
    except apsw.Error as exc:  # found by fault injection: a raw apsw error escaped here
        raise translate_error(exc) from exc
    version = current_version(conn)
    _refuse_newer(version)
    applied: list[MigrationStep] = []
    for step in steps:
        if version < step.version <= goal:
            done = _run_step(
                conn,
                step.up,
                (
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.name, now_ms()),
                ),
                expected_version=step.version - 1,
            )
            if done:
                applied.append(step)
            else:
                _refuse_newer(current_version(conn))
    return applied


_DROPPED_TABLE = re.compile(r"^DROP TABLE (\w+);", re.MULTILINE)
#: A table a ``down`` step creates or renames into place: one it drops too is rebuilt (rows
#: copied across, as when a CHECK constraint changes) or scratch, not lost.
_REBUILT_TABLE = re.compile(
    r"^(?:CREATE TABLE (\w+)|ALTER TABLE \w+ RENAME TO (\w+))", re.MULTILINE
)
#: A fixed count statement per table a step's ``down`` drops (table names cannot be bound
#: parameters, and SQL is never built by formatting); a test pins that every one is here.
ROW_COUNT_SQL: dict[str, str] = {
    "executions": "SELECT count(*) FROM executions",
    "task_runs": "SELECT count(*) FROM task_runs",
    "task_attempts": "SELECT count(*) FROM task_attempts",
    "execution_logs": "SELECT count(*) FROM execution_logs",
    "execution_audit_events": "SELECT count(*) FROM execution_audit_events",
    "workflows": "SELECT count(*) FROM workflows",
    "audit_key": "SELECT count(*) FROM audit_key",
    "webhook_deliveries": "SELECT count(*) FROM webhook_deliveries",
}
#: Tables derived from others (an index rebuilt from its content table): dropping them loses
#: no row, so a rollback that only drops them needs no confirmation.
DERIVED_TABLES = frozenset({"execution_logs_fts"})


def _steps_to_undo(
    conn: apsw.Connection, steps: int, registry: Sequence[MigrationStep]
) -> list[MigrationStep]:
    """The applied steps ``rollback(steps)`` would undo, newest first; refuses a bad count."""
    if steps < 0:
        raise SchemaVersionError("Cannot roll back a negative number of steps")
    version = current_version(conn)
    _refuse_newer(version)
    applied = sorted(
        (step for step in registry if step.version <= version),
        key=lambda s: s.version,
        reverse=True,
    )
    if steps > len(applied):
        raise SchemaVersionError(
            f"Cannot roll back {steps} migrations: only {len(applied)} are applied"
        )
    return applied[:steps]


def rollback_impact(
    conn: apsw.Connection, steps: int = 1, registry: Sequence[MigrationStep] = STEPS
) -> dict[str, int]:
    """Count the rows ``rollback(conn, steps)`` would delete, per table; changes nothing.

    Returns:
        ``{table: rows}`` for every table the undone steps drop that holds rows (empty when
        the rollback loses no row), in the order the tables would be dropped.

    Raises:
        SchemaVersionError: ``steps`` is negative or above the number of applied steps, or
            the database is newer than the code.
    """
    counts: dict[str, int] = {}
    for step in _steps_to_undo(conn, steps, registry):
        rebuilt = {name for pair in _REBUILT_TABLE.findall(step.down) for name in pair if name}
        for table in _DROPPED_TABLE.findall(step.down):
            if table in DERIVED_TABLES or table in rebuilt:
                continue
            rows = int(str(conn.execute(ROW_COUNT_SQL[table]).fetchall()[0][0]))
            if rows:
                counts[table] = rows
    return counts


def rollback(
    conn: apsw.Connection,
    steps: int = 1,
    registry: Sequence[MigrationStep] = STEPS,
    *,
    confirm_data_loss: bool = False,
) -> list[MigrationStep]:
    """Undo the newest ``steps`` applied steps, newest first.

    A rollback that would delete rows (a dropped table that is not empty) runs only with
    ``confirm_data_loss=True``; without it nothing changes (DESIGN.md §6.10).

    Returns:
        The steps rolled back, in the order they were undone.

    Raises:
        SchemaVersionError: ``steps`` is negative or above the number of applied steps (the
            message names it), or the database is newer than the code.
        RollbackWouldDeleteRows: rows would be deleted and ``confirm_data_loss`` is false.
    """
    to_undo = _steps_to_undo(conn, steps, registry)
    if not confirm_data_loss:
        impact = rollback_impact(conn, steps, registry)
        if impact:
            raise RollbackWouldDeleteRows(impact)
    undone: list[MigrationStep] = []
    for step in to_undo:
        if not _run_step(
            conn,
            step.down,
            ("DELETE FROM schema_migrations WHERE version = ?", (step.version,)),
            expected_version=step.version,
        ):
            break  # another process changed the schema meanwhile: stop, undo nothing more
        undone.append(step)
    return undone


def status(conn: apsw.Connection, registry: Sequence[MigrationStep] = STEPS) -> MigrationStatus:
    """Report the applied and pending steps of the database."""
    version = current_version(conn)
    latest = registry[-1].version if registry else 0
    return MigrationStatus(
        current=version,
        latest=latest,
        applied=tuple(f"{s.version:04d}_{s.name}" for s in registry if s.version <= version),
        pending=tuple(f"{s.version:04d}_{s.name}" for s in registry if s.version > version),
    )


def require_current(conn: apsw.Connection) -> None:
    """Refuse a database whose schema is not exactly the code's (for read-only users).

    Raises:
        SchemaVersionError: with the command that fixes it.
    """
    version = current_version(conn)
    _refuse_newer(version)
    if version < LATEST_VERSION:
        raise SchemaVersionError(
            f"Database schema is at version {version}, this Autokestra needs "
            f"{LATEST_VERSION}: run `workflow db migrate`"
        )
