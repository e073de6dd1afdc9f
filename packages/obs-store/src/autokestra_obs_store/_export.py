"""One execution as a bundle: a new Autokestra database holding only that execution.

The bundle is created by obs-schema's own ``open_writer`` (so it is at the latest migration,
file mode 0600, with the full-text index filled by its triggers), then filled with the
execution's rows as stored: the execution (masked inputs and source), its task runs,
attempts, log entries and audit events, ids kept. Nothing else of the source goes in: no
other execution, no registered workflow, and never the audit key (a file beside the source
database, not a row). Every read command opens a bundle with ``--db``.

The source is read in one read transaction (a consistent snapshot) on a read-only
connection; the bundle is written under a temporary name in the target's folder and renamed
into place once complete, so a failed or refused export leaves no file behind.

    report = export_execution(Path(".autokestra/autokestra.db"), "0193a5b2-...",
                              Path("execution-0193a5b2.db"))
    report.log_entries, report.bytes
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import apsw

from autokestra_obs_schema import (
    AutokestraError,
    DatabaseNotFound,
    ExecutionNotFound,
    open_reader,
    open_writer,
)

#: Rows copied per statement batch (memory stays flat for any log size).
_CHUNK = 1000

# (read from the source, write to the bundle) per table, in foreign-key order. Literal
# statements: table and column names cannot be bound, and no SQL is built by formatting.
# Columns are named, so one added by a later migration is copied only once it is listed here
# (a test compares these lists with the schema, so it cannot be forgotten silently).
_COPIES: tuple[tuple[str, str], ...] = (
    (
        "SELECT execution_id, workflow_id, state, trigger_type, reason_code, message,"
        " failed_task_id, created_at, started_at, ended_at, updated_at, log_entry_count,"
        " cancel_requested_at, cancelled_by, cancel_reason, inputs, workflow_source,"
        " engine_id, engine_pid, engine_host, heartbeat_at, logs_dropped, audit_event_count,"
        " audit_head, parent_execution_id, parent_task_id FROM executions WHERE execution_id = ?",
        "INSERT INTO executions (execution_id, workflow_id, state, trigger_type, reason_code,"
        " message, failed_task_id, created_at, started_at, ended_at, updated_at,"
        " log_entry_count, cancel_requested_at, cancelled_by, cancel_reason, inputs,"
        " workflow_source, engine_id, engine_pid, engine_host, heartbeat_at, logs_dropped,"
        " audit_event_count, audit_head, parent_execution_id, parent_task_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "SELECT execution_id, task_id, position, type, state, reason_code, needs,"
        " attempt_count, inputs, outputs, error, created_at, queued_at, started_at, ended_at,"
        " duration_ms FROM task_runs WHERE execution_id = ?",
        "INSERT INTO task_runs (execution_id, task_id, position, type, state, reason_code,"
        " needs, attempt_count, inputs, outputs, error, created_at, queued_at, started_at,"
        " ended_at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "SELECT execution_id, task_id, attempt, state, reason, started_at, ended_at,"
        " duration_ms, exit_code, error, pid, pgid FROM task_attempts WHERE execution_id = ?",
        "INSERT INTO task_attempts (execution_id, task_id, attempt, state, reason, started_at,"
        " ended_at, duration_ms, exit_code, error, pid, pgid)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "SELECT id, execution_id, task_id, attempt, timestamp, level, source, message, metadata"
        " FROM execution_logs WHERE execution_id = ? ORDER BY id",
        "INSERT INTO execution_logs (id, execution_id, task_id, attempt, timestamp, level,"
        " source, message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "SELECT id, execution_id, event_type, timestamp, metadata, prev_hash, hash, keyed_hash"
        " FROM execution_audit_events WHERE execution_id = ? ORDER BY id",
        "INSERT INTO execution_audit_events (id, execution_id, event_type, timestamp, metadata,"
        " prev_hash, hash, keyed_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        # Which key signed the trails, and since when (a key fingerprint and an HMAC, never
        # the key): without it, a bundle verified beside its source's audit.key reads as a
        # removed key record. The bound id only fits the loop's shape.
        "SELECT id, key_id, keyed_since, check_hash FROM audit_key WHERE ? IS NOT NULL",
        "INSERT INTO audit_key (id, key_id, keyed_since, check_hash) VALUES (?, ?, ?, ?)",
    ),
)
_LOGS_COPY = 3
_EXISTS_SQL = "SELECT 1 FROM executions WHERE execution_id = ?"


class ExportRefused(AutokestraError):
    """The bundle cannot be written where asked (an existing file, the source itself)."""


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What a bundle holds: its path, log entry count and size on disk."""

    path: Path
    log_entries: int
    bytes: int


def default_bundle_path(execution_id: str) -> Path:
    """``execution-<id>.db`` in the working directory (CLI.md's default FILE)."""
    return Path(f"execution-{execution_id}.db")


def _refuse_target(source: Path, target: Path, *, force: bool) -> None:
    if os.path.lexists(target):
        if target.exists() and source.exists() and os.path.samefile(source, target):
            raise ExportRefused(f"Refusing to overwrite the database being exported: {target}")
        if not force:
            raise ExportRefused(f"{target} already exists; add --force to replace it")
        if target.is_dir():
            raise ExportRefused(f"{target} is a folder")


def _rows(conn: apsw.Connection, sql: str, execution_id: str) -> Iterator[list[tuple[object, ...]]]:
    cursor = conn.execute(sql, (execution_id,))
    while chunk := list(islice(cursor, _CHUNK)):
        yield chunk


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def export_execution(
    source: Path, execution_id: str, target: Path, *, force: bool = False
) -> ExportReport:
    """Write the bundle of one execution to ``target``.

    Args:
        source: the database to read (opened read-only; its schema must be current).
        execution_id: the execution to export.
        target: the bundle file to create.
        force: replace an existing ``target`` (never the source database itself).

    Returns:
        The bundle's path, log entry count and size in bytes.

    Raises:
        ExecutionNotFound: no execution has this id (no file is written).
        ExportRefused: ``target`` exists (without ``force``), is the source, or is a folder.
        StorageError: the source cannot be read or the bundle cannot be written.
    """
    try:
        reader = open_reader(source)
    except DatabaseNotFound as exc:
        raise ExecutionNotFound(execution_id) from exc
    try:
        reader.execute("BEGIN")  # one snapshot for every table
        try:
            if not reader.execute(_EXISTS_SQL, (execution_id,)).fetchall():
                raise ExecutionNotFound(execution_id)
            _refuse_target(source, target, force=force)
            partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
            try:
                log_entries = _copy(reader, execution_id, partial)
                # A stale -wal beside the old file would be replayed into the new one.
                _remove(target)
                os.replace(partial, target)
            except BaseException:
                _remove(partial)
                raise
        finally:
            reader.execute("COMMIT")
    finally:
        reader.close()
    return ExportReport(path=target, log_entries=log_entries, bytes=target.stat().st_size)


def _copy(reader: apsw.Connection, execution_id: str, bundle: Path) -> int:
    """Create ``bundle`` at the latest schema and copy the execution's rows into it."""
    writer = open_writer(bundle)
    log_entries = 0
    try:
        with writer.transaction(durable=True) as conn:
            for index, (select, insert) in enumerate(_COPIES):
                for chunk in _rows(reader, select, execution_id):
                    conn.executemany(insert, chunk)
                    if index == _LOGS_COPY:
                        log_entries += len(chunk)
    finally:
        writer.close()  # checkpoints: the bundle is one self-contained file
    return log_entries
