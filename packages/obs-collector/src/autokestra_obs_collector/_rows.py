"""Log rows: from a ``log()`` call to a buffered tuple, and a batch of them to one transaction.

rows = [("exec-1", None, None, 1764096000000, "INFO", "scheduler", "started", None)]
written = write_rows(writer, rows)    # [True]: committed, log_entry_count updated
"""

from __future__ import annotations

import json
import re
from itertools import chain
from typing import Any

import apsw

from autokestra_obs_schema import LogLevel, StorageError, Writer

#: One buffered row, in INSERT column order; tuples keep log() cheap under a flood.
Row = tuple[str, str | None, int | None, int, str, str, str, str | None]

_INSERT_HEAD = (
    "INSERT INTO execution_logs"
    " (execution_id, task_id, attempt, timestamp, level, source, message, metadata) VALUES "
)
_ROW_PLACEHOLDERS = "(?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT = _INSERT_HEAD + _ROW_PLACEHOLDERS
#: Multi-row INSERTs of these many rows, largest first. apsw releases the GIL around every
#: SQLite step; with producer threads running, each re-acquisition can wait a whole switch
#: interval, so one step per 1000 rows instead of one per row keeps a flush from crawling.
#: The statements are constants made of placeholders only: values are always bound.
_CHUNKS: tuple[tuple[int, str], ...] = tuple(
    (size, _INSERT_HEAD + ", ".join([_ROW_PLACEHOLDERS] * size)) for size in (1000, 100, 10)
)
_COUNT = "UPDATE executions SET log_entry_count = log_entry_count + ? WHERE execution_id = ?"
_DROPPED = "UPDATE executions SET logs_dropped = logs_dropped + ? WHERE execution_id = ?"
#: Constraint failures that belong to one entry, not to the database: retrying cannot help.
_POISON_CODES = frozenset(
    {
        apsw.SQLITE_CONSTRAINT_FOREIGNKEY,
        apsw.SQLITE_CONSTRAINT_CHECK,
        apsw.SQLITE_CONSTRAINT_NOTNULL,
    }
)


# Plain-str values: LogLevel members hash and compare like their names, so one dict maps
# both a member and its exact name to the text bound into the INSERT.
LEVEL_NAMES: dict[object, str] = {level.value: str(level.value) for level in LogLevel}


def parse_level(level: object) -> str:
    try:
        return LogLevel.parse(str(level)).value
    except ValueError:
        return LogLevel.INFO.value


def metadata_json(metadata: Any) -> str:
    try:
        return json.dumps(metadata, ensure_ascii=False, allow_nan=False, default=str)
    except (TypeError, ValueError):
        # NaN, a cycle, a non-string key...: keep the entry, say why its metadata is missing.
        return json.dumps({"unserializable_metadata": type(metadata).__name__})


def is_poison(exc: BaseException) -> bool:
    """True for a constraint failure of one row (unknown execution, bad JSON, NULL)."""
    return (
        isinstance(exc, apsw.ConstraintError)
        and getattr(exc, "extendedresult", None) in _POISON_CODES
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(value: str | int | None) -> str | int | None:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    return value


def sanitize(row: Row) -> Row:
    """Replace lone surrogates (from ``surrogateescape`` decoding) by U+FFFD in every text."""
    cleaned = tuple(_clean(value) for value in row)
    return cleaned  # type: ignore[return-value]  # same shape, each str re-encoded


def write_rows(writer: Writer, batch: list[Row]) -> list[bool]:
    """Insert ``batch`` and bump each execution's ``log_entry_count``, in one transaction.

    Returns:
        Per row, whether it was stored. A row the database can never accept is left out
        (``False``) and the rest committed, so one bad entry never blocks the others.

    Raises:
        StorageError: the transaction failed as a whole (busy, full, I/O); nothing of the
            batch was written.
    """
    try:
        return _insert(writer, batch, rowwise=False)
    except UnicodeEncodeError:
        # A lone surrogate cannot be bound as UTF-8: store U+FFFD instead, never loop on it.
        batch[:] = [sanitize(row) for row in batch]
        return write_rows(writer, batch)
    except StorageError as exc:
        if exc.__cause__ is None or not is_poison(exc.__cause__):
            raise
        return _insert(writer, batch, rowwise=True)


def _insert(writer: Writer, batch: list[Row], *, rowwise: bool) -> list[bool]:
    ok = [True] * len(batch)
    counts: dict[str, int] = {}
    with writer.transaction() as conn:
        if rowwise:
            for i, row in enumerate(batch):
                try:
                    conn.execute(_INSERT, row)
                except apsw.ConstraintError as exc:
                    if not is_poison(exc):
                        raise
                    ok[i] = False
        else:
            start = 0
            for size, statement in _CHUNKS:
                while len(batch) - start >= size:
                    conn.execute(statement, list(chain.from_iterable(batch[start : start + size])))
                    start += size
            if start < len(batch):
                conn.executemany(_INSERT, batch[start:])
        for row, stored in zip(batch, ok, strict=True):
            if stored:
                counts[row[0]] = counts.get(row[0], 0) + 1
        conn.executemany(_COUNT, [(n, eid) for eid, n in counts.items()])
    return ok


def write_drop_summary(writer: Writer, row: Row, dropped: int) -> bool:
    """Store the WARN entry ``row`` and add ``dropped`` to ``executions.logs_dropped``.

    One small transaction of its own (never part of a log batch), so it can succeed where a
    large batch fails for lack of space, and the count and its explanation commit together.

    Returns:
        ``False`` when the execution does not exist (nothing can ever be recorded for it).

    Raises:
        StorageError: the transaction failed (busy, full, I/O); nothing was written.
    """
    try:
        with writer.transaction() as conn:
            conn.execute(_INSERT, sanitize(row))
            conn.execute(_COUNT, (1, row[0]))
            conn.execute(_DROPPED, (dropped, row[0]))
    except StorageError as exc:
        if exc.__cause__ is not None and is_poison(exc.__cause__):
            return False
        raise
    return True
