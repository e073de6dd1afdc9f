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
- a ``--task`` query walks ``idx_logs_task (task_id, timestamp)`` inside the execution's time
  window (its first and last log timestamps), with ``+execution_id`` checked per row: that
  index alone spans every execution that ever ran a task of that name, and the execution's
  own index would read all of its other tasks' rows (99% of a 100-task execution). The
  window's lower bound is folded into the start key of forward pages and its upper bound
  into the start of backward ones, so each statement has one lower and one upper bound.
- the follow cursor compares ``+task_id`` (new rows are few; the cursor index is right).
- a ``--task`` query for a ``for_each`` task whose iterations exist (``--task process`` means
  ``process`` and ``process[0]``, ``process[1]``...) walks the execution's own index with the
  family test per row: one index range in ``(timestamp, id)`` order, where the task index
  would need one range per task id and a sort per page. The iterations of a fan-out are
  usually most of its execution's rows anyway.

    sql = select_sql(Shape.AFTER_TS, task=True, levels=0, source=False, text=False,
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
_SELECT_BY_TASK = (
    "SELECT id, execution_id, task_id, attempt, timestamp, level, source, message, metadata"
    " FROM execution_logs WHERE +execution_id = ? AND task_id = ?"
)
# Filter fragments, in the fixed order their parameters are bound.
_TASK = " AND +task_id = ?"
# A task and its for_each iterations: the task id, then the length and text of "<task>[".
# Task ids cannot hold "[" (^[A-Za-z0-9_-]{1,64}$), so the prefix names iterations only.
_FAMILY = " AND (+task_id = ? OR substr(task_id, 1, ?) = ?)"
# One slot per chosen level: an IN list longer than its set (a member repeated, one SQL text
# for all) cost 5-10% more on a level query, measured.
_LEVELS = (
    "",
    " AND level = ?",
    " AND level IN (?, ?)",
    " AND level IN (?, ?, ?)",
    " AND level IN (?, ?, ?, ?)",
)
_SOURCE = " AND substr(source, 1, ?) = ?"
_TEXT = " AND message LIKE ? ESCAPE '\\'"
# A text with non-ASCII letters: SQLite's LIKE folds ASCII case only, so such a search goes
# through a Python function (registered by LogStore) that compares casefolded strings.
_TEXT_FOLD = " AND autokestra_icontains(message, ?)"
_ATTEMPT = " AND attempt = ?"
_SINCE = " AND timestamp >= ?"
# The far end of the execution's time window, for task queries (see the module docstring).
_WINDOW_END_FORWARD = " AND timestamp <= ?"
_WINDOW_END_BACKWARD = " AND timestamp >= ?"
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
    #: Backward by id (the web console's older pages): ``id < ?``, newest first.
    BEFORE_ID = " AND id < ? ORDER BY id DESC LIMIT ?"

    @property
    def windowed(self) -> bool:
        """Whether a task query of this shape carries the window's far end (keyset shapes)."""
        return self not in (Shape.AFTER_ID, Shape.BEFORE_ID)

    @property
    def backward(self) -> bool:
        """Whether the shape walks from newer to older entries."""
        return self in (Shape.UNTIL_TS, Shape.SAME_TS_BEFORE, Shape.BEFORE_TS)


@lru_cache(maxsize=512)
def select_sql(
    shape: Shape,
    *,
    task: bool,
    levels: int,
    source: bool,
    text: bool,
    attempt: bool,
    since: bool,
    fold: bool = False,
    family: bool = False,
) -> str:
    """Return the statement for ``shape`` with the given filter fragments.

    Parameters bind in this order: execution_id, [task_id, or with ``family`` task_id,
    prefix length, prefix], [levels], [source length, source], [pattern (``text``) or
    casefolded text (``fold``)], [attempt], [since], [window end: task (not family) and
    keyset shapes], upper id, then the shape's own parameters.
    """
    by_task_index = task and shape.windowed and not family
    sql = _SELECT_BY_TASK if by_task_index else _SELECT
    if task and not by_task_index:
        sql += _FAMILY if family else _TASK
    sql += _LEVELS[levels]
    if source:
        sql += _SOURCE
    if text:
        sql += _TEXT
    elif fold:
        sql += _TEXT_FOLD
    if attempt:
        sql += _ATTEMPT
    if since:
        sql += _SINCE
    if by_task_index:
        sql += _WINDOW_END_BACKWARD if shape.backward else _WINDOW_END_FORWARD
    return sql + _UPPER + shape.value


#: First and last log timestamps of the execution (two seeks on idx_logs_execution).
WINDOW_SQL = (
    "SELECT (SELECT timestamp FROM execution_logs WHERE execution_id = ?1"
    " ORDER BY timestamp LIMIT 1),"
    " (SELECT timestamp FROM execution_logs WHERE execution_id = ?1"
    " ORDER BY timestamp DESC LIMIT 1)"
)

#: Whether a task has for_each iterations: the row of its first one (``<task>[0]``).
ITERATIONS_SQL = "SELECT 1 FROM task_runs WHERE execution_id = ? AND task_id = ?"

#: State of the execution and the highest log id visible, read in one statement (one
#: snapshot): every id at or below it is committed, since SQLite serializes writers and
#: AUTOINCREMENT ids are assigned inside the write transaction.
STATE_AND_HIGH_WATER_SQL = (
    "SELECT state, (SELECT max(id) FROM execution_logs WHERE execution_id = ?1)"
    " FROM executions WHERE execution_id = ?1"
)
