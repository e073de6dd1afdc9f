"""Log retention: delete expired log rows and audit events of finished executions, in batches.

Rows of an execution are deleted only once the execution is terminal (SUCCESS, FAILED,
CANCELLED): log rows whose own ``timestamp`` is strictly before the cutoff, and audit events
as a whole trail once every event of the execution is before the cutoff (a hash chain with
its older half cut off would fail verification). Each batch
of at most ``batch_size`` rows is one short ``BEGIN IMMEDIATE`` transaction on the process's
``Writer``, so collectors of the same database never wait long for the write lock, and a
purge killed at any point leaves only whole batches done: running it again finishes the job.

    from autokestra_obs_schema import open_writer
    from autokestra_obs_store import RetentionPolicy, purge

    writer = open_writer(".autokestra/autokestra.db")
    report = purge(writer, RetentionPolicy.from_settings(os.environ).cutoff_ms())
    print(report.log_rows, report.audit_rows, report.bytes_freed)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path

import apsw

from autokestra_obs_schema import (
    RETENTION_GUARD_FUNCTION,
    TERMINAL_STATES,
    AutokestraError,
    Writer,
    connect,
    now_ms,
    register_retention_guard,
)

#: Environment variable naming the retention window in whole days (DESIGN.md §4).
RETENTION_ENV = "AUTOKESTRA_LOG_RETENTION_DAYS"
#: Retention window used when neither the environment nor the config file sets one.
DEFAULT_RETENTION_DAYS = 30
#: Upper bound of the window: a larger value is surely a typo (and would overflow ms maths).
MAX_RETENTION_DAYS = 36_500
#: Rows per delete transaction (DESIGN.md §4).
DEFAULT_BATCH_SIZE = 1000
#: Pause after each batch, relative to how long the batch held the write lock.
DEFAULT_PAUSE_FACTOR = 1.0
#: Shortest pause after a batch, in seconds.
MIN_PAUSE_S = 0.002
#: Batches between the purge's PASSIVE WAL checkpoints (see ``_Checkpointer``).
DEFAULT_CHECKPOINT_EVERY = 1
DAY_MS = 86_400_000

#: The terminal states, bound as one JSON list (the SQL text never spells a state).
_TERMINAL_STATES_JSON = json.dumps(sorted(TERMINAL_STATES))

# Candidates: terminal executions with at least one expired row (one index seek each).
_LOG_CANDIDATES = """
SELECT e.execution_id FROM executions AS e
WHERE e.state IN (SELECT value FROM json_each(:terminal))
AND EXISTS (SELECT 1 FROM execution_logs AS l
            WHERE l.execution_id = e.execution_id AND l.timestamp < :cutoff)
ORDER BY e.execution_id
"""
# An audit trail is a hash chain: deleting its older half would make every verification of
# the rest report tampering. So a trail goes as a whole, once all of it is before the cutoff
# (its last event, the terminal one, included); a trail straddling the cutoff stays whole.
_AUDIT_CANDIDATES = """
SELECT e.execution_id FROM executions AS e
WHERE e.state IN (SELECT value FROM json_each(:terminal))
AND EXISTS (SELECT 1 FROM execution_audit_events AS a
            WHERE a.execution_id = e.execution_id AND a.timestamp < :cutoff)
AND NOT EXISTS (SELECT 1 FROM execution_audit_events AS a
                WHERE a.execution_id = e.execution_id AND a.timestamp >= :cutoff)
ORDER BY e.execution_id
"""

# Byte estimate of one row: the byte lengths of its values, plus the copies of its key
# columns held by the table's indexes, plus 8 bytes per integer. It is computed from the
# rows themselves (not from page counts), so a dry run reports the same figure as a purge.
# Each statement is a complete literal (table names cannot be bound parameters, and no SQL
# is built by formatting), which is why the estimate is spelled out twice per table.
_SELECT_LOGS = """
SELECT id,
    3 * length(CAST(execution_id AS BLOB)) + 2 * coalesce(length(CAST(task_id AS BLOB)), 0)
    + length(CAST(level AS BLOB)) + length(CAST(source AS BLOB))
    + length(CAST(message AS BLOB)) + coalesce(length(CAST(metadata AS BLOB)), 0) + 56
FROM execution_logs WHERE execution_id = ? AND timestamp < ? ORDER BY timestamp LIMIT ?
"""
_COUNT_LOGS = """
SELECT COUNT(*), coalesce(SUM(
    3 * length(CAST(execution_id AS BLOB)) + 2 * coalesce(length(CAST(task_id AS BLOB)), 0)
    + length(CAST(level AS BLOB)) + length(CAST(source AS BLOB))
    + length(CAST(message AS BLOB)) + coalesce(length(CAST(metadata AS BLOB)), 0) + 56
), 0) FROM execution_logs WHERE execution_id = ? AND timestamp < ?
"""
_SELECT_AUDIT = """
SELECT id,
    2 * length(CAST(execution_id AS BLOB)) + length(CAST(event_type AS BLOB))
    + length(CAST(metadata AS BLOB)) + coalesce(length(CAST(prev_hash AS BLOB)), 0)
    + length(CAST(hash AS BLOB)) + 32
FROM execution_audit_events WHERE execution_id = ? AND timestamp < ? ORDER BY timestamp LIMIT ?
"""
_COUNT_AUDIT = """
SELECT COUNT(*), coalesce(SUM(
    2 * length(CAST(execution_id AS BLOB)) + length(CAST(event_type AS BLOB))
    + length(CAST(metadata AS BLOB)) + coalesce(length(CAST(prev_hash AS BLOB)), 0)
    + length(CAST(hash AS BLOB)) + 32
), 0) FROM execution_audit_events WHERE execution_id = ? AND timestamp < ?
"""
_DELETE_LOG = "DELETE FROM execution_logs WHERE id = ?"
_DELETE_AUDIT = "DELETE FROM execution_audit_events WHERE id = ?"
# The count shown by `inspect` stays equal to the rows present (it is maintained with them).
_DECREMENT_COUNT = (
    "UPDATE executions SET log_entry_count = max(0, log_entry_count - ?) WHERE execution_id = ?"
)


class RetentionConfigError(AutokestraError, ValueError):
    """The retention window setting is not a whole number of days in range."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long log rows and audit events of finished executions are kept."""

    days: int = DEFAULT_RETENTION_DAYS

    def __post_init__(self) -> None:
        if not 1 <= self.days <= MAX_RETENTION_DAYS:
            raise RetentionConfigError(
                f"Invalid retention of {self.days} days ({RETENTION_ENV} or "
                f"logging.retention_days): must be between 1 and {MAX_RETENTION_DAYS}"
            )

    def cutoff_ms(self, now: int | None = None) -> int:
        """The cutoff: rows with a timestamp strictly before it are expired."""
        return (now_ms() if now is None else now) - self.days * DAY_MS

    @classmethod
    def from_settings(
        cls, env: Mapping[str, str], config_days: object | None = None
    ) -> RetentionPolicy:
        """Resolve the window: the environment wins over the config file, else 30 days.

        Args:
            env: the process environment (``AUTOKESTRA_LOG_RETENTION_DAYS``).
            config_days: ``logging.retention_days`` from the config file, if any.

        Raises:
            RetentionConfigError: the chosen value is not a whole number of days in range.
        """
        raw = env.get(RETENTION_ENV, "").strip()
        if raw:  # an empty variable counts as unset, as for every AUTOKESTRA_* setting
            return cls(_parse_days(raw, RETENTION_ENV))
        if config_days is not None:
            if isinstance(config_days, bool) or not isinstance(config_days, int | str):
                raise RetentionConfigError(
                    f"Invalid logging.retention_days {config_days!r}: must be a whole "
                    "number of days"
                )
            return cls(_parse_days(str(config_days).strip(), "logging.retention_days"))
        return cls()


def _parse_days(text: str, name: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise RetentionConfigError(
            f"Invalid {name} {text!r}: must be a whole number of days between 1 and "
            f"{MAX_RETENTION_DAYS}"
        )
    days = int(text)
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise RetentionConfigError(
            f"Invalid {name} {text!r}: must be between 1 and {MAX_RETENTION_DAYS} days"
        )
    return days


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge deleted (or, for a dry run, would delete).

    ``bytes_freed`` is an estimate from the deleted rows' value lengths and their index
    entries (see ``_SELECT_LOGS``); ``longest_batch_ms`` is the longest time one batch held
    the database write lock (from ``BEGIN IMMEDIATE`` acquired to ``COMMIT`` done, including
    the writer's periodic WAL checkpoint when one follows that commit); ``last_batch_ms`` is
    that time for the latest batch (progress callbacks see every batch's). ``checkpoints``
    and ``longest_checkpoint_ms`` count the WAL checkpoints the purge ran between batches.
    """

    cutoff_ms: int
    log_rows: int = 0
    audit_rows: int = 0
    bytes_freed: int = 0
    batches: int = 0
    longest_batch_ms: float = 0.0
    last_batch_ms: float = 0.0
    checkpoints: int = 0
    longest_checkpoint_ms: float = 0.0
    elapsed_ms: float = 0.0
    dry_run: bool = False


#: Called after every committed batch with the totals so far.
ProgressCallback = Callable[[PurgeReport], None]


def _candidates(conn: apsw.Connection, query: str, cutoff_ms: int) -> list[str]:
    params = {"cutoff": cutoff_ms, "terminal": _TERMINAL_STATES_JSON}
    return [str(row[0]) for row in conn.execute(query, params).fetchall()]


def _count(conn: apsw.Connection, query: str, execution_id: str, cutoff_ms: int) -> tuple[int, int]:
    row = conn.execute(query, (execution_id, cutoff_ms)).fetchall()[0]
    rows, size = row
    return (rows if isinstance(rows, int) else 0, size if isinstance(size, int) else 0)


def _dry_run(writer: Writer, cutoff_ms: int, started: float) -> PurgeReport:
    logs = audits = size = 0
    with writer.locked() as conn:
        # One read transaction: the figures are of one consistent snapshot.
        conn.execute("BEGIN")
        try:
            for execution_id in _candidates(conn, _LOG_CANDIDATES, cutoff_ms):
                n, b = _count(conn, _COUNT_LOGS, execution_id, cutoff_ms)
                logs, size = logs + n, size + b
            for execution_id in _candidates(conn, _AUDIT_CANDIDATES, cutoff_ms):
                m, c = _count(conn, _COUNT_AUDIT, execution_id, cutoff_ms)
                audits, size = audits + m, size + c
        finally:
            conn.execute("COMMIT")
    return PurgeReport(
        cutoff_ms=cutoff_ms,
        log_rows=logs,
        audit_rows=audits,
        bytes_freed=size,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        dry_run=True,
    )


class _TablePurge:
    """Deletes one table's expired rows, batch by batch, walking the candidate executions."""

    def __init__(self, candidates: str, select: str, delete: str, *, counts_logs: bool) -> None:
        self.candidates = candidates
        self.select = select
        self.delete = delete
        self.counts_logs = counts_logs

    def batch(
        self, conn: apsw.Connection, pending: list[str], cutoff_ms: int, batch_size: int
    ) -> tuple[int, int]:
        """Delete up to ``batch_size`` rows; drop finished executions from ``pending``."""
        deleted = size = 0
        while pending and deleted < batch_size:
            execution_id = pending[0]
            rows = conn.execute(
                self.select, (execution_id, cutoff_ms, batch_size - deleted)
            ).fetchall()
            if rows:
                conn.executemany(self.delete, [(row[0],) for row in rows])
                if self.counts_logs:
                    conn.execute(_DECREMENT_COUNT, (len(rows), execution_id))
                deleted += len(rows)
                size += sum(int(row[1]) for row in rows if isinstance(row[1], int))
            if deleted < batch_size:
                # Fewer rows than asked for: this execution has nothing older left.
                pending.pop(0)
        return deleted, size


class _Checkpointer:
    """Copies the WAL back into the database between batches without blocking any writer.

    Deletes rewrite many pages (``secure_delete`` zeroes them), so the WAL grows fast. Left
    to the writer's periodic TRUNCATE checkpoint, one commit would carry a long WAL copy
    during which every writer waits (measured: 2 s). A PASSIVE checkpoint takes no write
    lock and waits for nobody; on its own connection it does not even hold the writer's
    in-process lock, so collectors keep writing while it copies. It writes no rows: the
    one-writer rule (DESIGN.md §2) is about write transactions, and this is none.
    """

    def __init__(self, path: Path, every: int) -> None:
        self.path = path
        self.every = every
        self.batches = 0
        self.conn: apsw.Connection | None = None

    def after_batch(self) -> float | None:
        """Run a PASSIVE checkpoint every ``every`` batches; returns its duration (ms)."""
        self.batches += 1
        if self.every < 1 or self.batches % self.every:
            return None
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = connect(self.path)
            self.conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        except apsw.Error:
            return None  # best effort: the writer's own checkpoints still run
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def purge(
    writer: Writer,
    cutoff_ms: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    pause_factor: float = DEFAULT_PAUSE_FACTOR,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> PurgeReport:
    """Delete log rows and audit events older than ``cutoff_ms`` of terminal executions.

    "Older than" is strict: a row whose timestamp equals the cutoff is kept. Rows of
    executions that are not terminal are never touched; execution and task rows stay. An
    execution's audit events go together, once all of them are older than the cutoff.

    Args:
        writer: the process's one writer; every batch is its own transaction on it.
        cutoff_ms: Unix ms; rows with ``timestamp < cutoff_ms`` are deleted.
        batch_size: rows per transaction.
        dry_run: count what would be deleted and delete nothing.
        progress: called after each committed batch with the totals so far.
        pause_factor: after each batch, leave the write lock free for this many times as
            long as the batch held it (at least ``MIN_PAUSE_S``). Another process waiting
            for the lock polls with growing sleeps (SQLite's busy handler); without a pause
            the purge would win every race and starve it (measured: 130 ms waits).
        checkpoint_every: run a PASSIVE WAL checkpoint after this many batches (0: never),
            so the writer's blocking checkpoints find little left to copy.

    Returns:
        The totals; ``bytes_freed`` is an estimate (see :class:`PurgeReport`).

    Raises:
        StorageError: a batch failed; the batches before it stay committed.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    if dry_run:
        return _dry_run(writer, cutoff_ms, started)
    report = PurgeReport(cutoff_ms=cutoff_ms)
    checkpointer = _Checkpointer(writer.path, checkpoint_every)
    with writer.locked() as conn:
        register_retention_guard(conn, cutoff_ms)
    try:
        for table in (
            _TablePurge(_LOG_CANDIDATES, _SELECT_LOGS, _DELETE_LOG, counts_logs=True),
            _TablePurge(_AUDIT_CANDIDATES, _SELECT_AUDIT, _DELETE_AUDIT, counts_logs=False),
        ):
            # Terminal states are final, so a candidate found now stays deletable; an
            # execution that ends during the purge is left for the next run.
            with writer.locked() as conn:
                pending = _candidates(conn, table.candidates, cutoff_ms)
            while pending:
                with writer.transaction() as conn:
                    locked_at = time.perf_counter()
                    deleted, size = table.batch(conn, pending, cutoff_ms, batch_size)
                held_s = time.perf_counter() - locked_at
                held_ms = held_s * 1000
                if not deleted:
                    continue
                checkpoint_ms = checkpointer.after_batch()
                if pause_factor > 0:
                    time.sleep(max(MIN_PAUSE_S, held_s * pause_factor))
                report = _with_batch(
                    report,
                    (deleted, 0) if table.counts_logs else (0, deleted),
                    size=size,
                    held_ms=held_ms,
                    checkpoint_ms=checkpoint_ms,
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
                if progress is not None:
                    progress(report)
    finally:
        checkpointer.close()
        _drop_guard(writer)
    return replace(report, elapsed_ms=(time.perf_counter() - started) * 1000)


def _with_batch(
    report: PurgeReport,
    rows: tuple[int, int],
    *,
    size: int,
    held_ms: float,
    checkpoint_ms: float | None,
    elapsed_ms: float,
) -> PurgeReport:
    """The totals after one more committed batch of ``rows`` (log rows, audit rows)."""
    return replace(
        report,
        log_rows=report.log_rows + rows[0],
        audit_rows=report.audit_rows + rows[1],
        bytes_freed=report.bytes_freed + size,
        batches=report.batches + 1,
        longest_batch_ms=max(report.longest_batch_ms, held_ms),
        last_batch_ms=held_ms,
        checkpoints=report.checkpoints + (checkpoint_ms is not None),
        longest_checkpoint_ms=max(report.longest_checkpoint_ms, checkpoint_ms or 0.0),
        elapsed_ms=elapsed_ms,
    )


def _drop_guard(writer: Writer) -> None:
    """Withdraw the purge's permission to delete audit events.

    Without the function the audit table's DELETE trigger refuses every delete again, so the
    permission lasts exactly as long as the purge.
    """
    with writer.locked() as conn, suppress(apsw.Error):
        conn.create_scalar_function(RETENTION_GUARD_FUNCTION, None, 1)
