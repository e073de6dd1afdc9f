"""The SQL of the log queries: fixed fragments, composed by which filters are set.

Every statement is assembled only from the string constants of this module (never from a
value); every value is a bound parameter. Each statement reads at most one page, so a reader
never holds a read transaction open while the caller prints (WAL checkpoints stay possible).

Index use (pinned by ``EXPLAIN QUERY PLAN`` tests):

- keyset pages walk ``idx_logs_execution (execution_id, timestamp[, rowid])``. SQLite does not
  use the rowid part for a row-value ``(timestamp, id) > (?, ?)`` bound, which would rescan a
  burst of equal timestamps on every page; so a page after a key is read as two range scans:
  the rest of the key's timestamp (``timestamp = ? AND id > ?``), then ``timestamp > ?``.
- the follow cursor walks ``idx_logs_cursor (execution_id, id)``.
- ``task_id`` is compared as ``+task_id``: ``idx_logs_task (task_id, timestamp)`` spans every
  execution that ever ran a task of that name, while one execution's rows are bounded.

    sql = select_sql(Shape.AFTER_TS, task=True, levels=False, source=False, text=False,
                     attempt=False, since=False)
"""

from __future__ import annotations

import enum
from functools import lru_cache

#: Rows per page (and per statement) of every query.
PAGE_SIZE = 1000
#: Bounds of SQLite's INTEGER, used as "no bound" for timestamps.
MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1

_SELECT = (
    "SELECT id, execution_id, task_id, attempt, timestamp, level, source, message, metadata"
    " FROM execution_logs WHERE execution_id = ?"
)
# Filter fragments, in the fixed order their parameters are bound.
_TASK = " AND +task_id = ?"
# Always four slots: a smaller level set repeats one of its members, so the SQL text is fixed.
_LEVELS = " AND level IN (?, ?, ?, ?)"
_SOURCE = " AND substr(source, 1, ?) = ?"
_TEXT = " AND message LIKE ? ESCAPE '\\'"
_ATTEMPT = " AND attempt = ?"
_SINCE = " AND timestamp >= ?"
# Every query is bounded by the highest id visible when it started (see _log_store.py).
_UPPER = " AND id <= ?"


class Shape(enum.Enum):
    """Which slice of the index one statement reads; the value is its SQL tail."""

    #: First forward page: ``timestamp >= ?``.
    FROM_TS = " AND timestamp >= ? ORDER BY timestamp, id LIMIT ?"
    #: Forward, rest of the key's timestamp: ``timestamp = ? AND id > ?``.
    SAME_TS_AFTER = " AND timestamp = ? AND id > ? ORDER BY id LIMIT ?"
    #: Forward, later timestamps: ``timestamp > ?``.
    AFTER_TS = " AND timestamp > ? ORDER BY timestamp, id LIMIT ?"
    #: First backward page: ``timestamp <= ?``.
    UNTIL_TS = " AND timestamp <= ? ORDER BY timestamp DESC, id DESC LIMIT ?"
    #: Backward, rest of the key's timestamp: ``timestamp = ? AND id < ?``.
    SAME_TS_BEFORE = " AND timestamp = ? AND id < ? ORDER BY id DESC LIMIT ?"
    #: Backward, earlier timestamps: ``timestamp < ?``.
    BEFORE_TS = " AND timestamp < ? ORDER BY timestamp DESC, id DESC LIMIT ?"
    #: Follow cursor: ``id > ?`` in id order.
    AFTER_ID = " AND id > ? ORDER BY id LIMIT ?"


@lru_cache(maxsize=512)
def select_sql(
    shape: Shape,
    *,
    task: bool,
    levels: bool,
    source: bool,
    text: bool,
    attempt: bool,
    since: bool,
) -> str:
    """Return the statement for ``shape`` with the given filter fragments.

    Parameters bind in this order: execution_id, [task_id], [4 levels], [source length,
    source], [pattern], [attempt], [since], upper id, then the shape's own parameters.
    """
    sql = _SELECT
    if task:
        sql += _TASK
    if levels:
        sql += _LEVELS
    if source:
        sql += _SOURCE
    if text:
        sql += _TEXT
    if attempt:
        sql += _ATTEMPT
    if since:
        sql += _SINCE
    return sql + _UPPER + shape.value


#: State of the execution and the highest log id visible, read in one statement (one
#: snapshot): every id at or below it is committed, since SQLite serializes writers and
#: AUTOINCREMENT ids are assigned inside the write transaction.
STATE_AND_HIGH_WATER_SQL = (
    "SELECT state, (SELECT max(id) FROM execution_logs WHERE execution_id = ?1)"
    " FROM executions WHERE execution_id = ?1"
)
