"""The figures behind the Prometheus metrics, read from the database (DESIGN.md §8).

Computed from the tables, not from one process's memory, so every process that serves
``/metrics`` agrees and the counts survive restarts. Executions and task runs are counted in
full at each call (grouped scans of two small tables); log entries are counted incrementally:
a :class:`LogTally` remembers the highest log id counted, and the next call reads only the
rows after it (a range scan of the primary key), so a scrape costs the same on a log of ten
million rows as on an empty one after the first.

    conn = open_reader(db_path)
    snapshot = metrics_snapshot(conn)
    later = metrics_snapshot(conn, logs=snapshot.logs)   # counts only the new log rows
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import apsw

from autokestra_obs_schema import TERMINAL_STATES, LogLevel, State

#: Upper bounds (seconds) of the task duration histogram's buckets; ``+Inf`` is implied.
#: From a quick shell step to an hour-long job: the range workflows of this engine span.
TASK_DURATION_BUCKETS_S: tuple[float, ...] = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)

_TERMINAL = tuple(sorted(str(state) for state in TERMINAL_STATES))
# The statements are literals, values always bound: one placeholder per terminal state and
# one per bucket bound (checked below, so a new state or bucket cannot go unnoticed).
_EXECUTIONS_SQL = (
    "SELECT workflow_id, state, COUNT(*) FROM executions"
    " WHERE state IN (?, ?, ?, ?) GROUP BY workflow_id, state"
)
_OPEN_SQL = "SELECT state, COUNT(*) FROM executions WHERE state NOT IN (?, ?, ?, ?) GROUP BY state"
_TASK_RUNS_SQL = (
    "SELECT type, state, COUNT(*) FROM task_runs WHERE state IN (?, ?, ?, ?) GROUP BY type, state"
)
_DURATIONS_SQL = (
    "SELECT type, COUNT(*), TOTAL(duration_ms),"
    " SUM(duration_ms <= ?), SUM(duration_ms <= ?), SUM(duration_ms <= ?),"
    " SUM(duration_ms <= ?), SUM(duration_ms <= ?), SUM(duration_ms <= ?),"
    " SUM(duration_ms <= ?), SUM(duration_ms <= ?), SUM(duration_ms <= ?),"
    " SUM(duration_ms <= ?), SUM(duration_ms <= ?), SUM(duration_ms <= ?)"
    " FROM task_runs WHERE state IN (?, ?, ?, ?) AND duration_ms IS NOT NULL GROUP BY type"
)
assert _DURATIONS_SQL.count("?") == len(TASK_DURATION_BUCKETS_S) + len(_TERMINAL)
assert _EXECUTIONS_SQL.count("?") == _OPEN_SQL.count("?") == len(_TERMINAL)
assert _TASK_RUNS_SQL.count("?") == len(_TERMINAL)
_LOG_LEVELS_SQL = "SELECT level, COUNT(*), MAX(id) FROM execution_logs WHERE id > ? GROUP BY level"
#: The collector's drop reports: one WARN entry per episode, its count in ``dropped_entries``.
_DROPPED_SQL = (
    "SELECT TOTAL(json_extract(metadata, '$.dropped_entries')) FROM execution_logs"
    " WHERE id > ? AND id <= ? AND level = ? AND metadata IS NOT NULL"
)


@dataclass(frozen=True, slots=True)
class DurationHistogram:
    """Task run durations of one task type, in Prometheus' cumulative form.

    Attributes:
        buckets: per bound of :data:`TASK_DURATION_BUCKETS_S`, how many durations are at
            most that many seconds (cumulative, so never decreasing).
        count: how many durations in all (the ``+Inf`` bucket).
        sum_seconds: their total.
    """

    buckets: tuple[int, ...]
    count: int
    sum_seconds: float


@dataclass(frozen=True, slots=True)
class LogTally:
    """Log entries counted so far, and where counting resumes.

    Attributes:
        after_id: the highest ``execution_logs.id`` counted (0: none yet).
        by_level: entries per level name.
        dropped: entries the collectors reported as dropped (never stored).
    """

    after_id: int = 0
    by_level: Mapping[str, int] = field(default_factory=dict)
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Every database figure of ``/metrics``, read in one snapshot.

    Attributes:
        executions: terminal executions by ``(workflow_id, state)``.
        running: executions started and not yet terminal.
        queued: executions waiting for an engine (PENDING).
        task_runs: terminal task runs by ``(type, state)``.
        task_durations: duration histograms of terminal task runs that ran, by type.
        logs: log entries by level and drops, with the resume point of the next call.
        db_size_bytes: the database file plus its write-ahead log, on disk.
    """

    executions: Mapping[tuple[str, str], int]
    running: int
    queued: int
    task_runs: Mapping[tuple[str, str], int]
    task_durations: Mapping[str, DurationHistogram]
    logs: LogTally
    db_size_bytes: int


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def metrics_snapshot(conn: apsw.Connection, *, logs: LogTally | None = None) -> MetricsSnapshot:
    """Read the metrics' figures in one read transaction.

    Args:
        conn: a read-only connection (``open_reader``); never written.
        logs: the tally of the previous call on this database, to count only newer log
            rows; ``None`` counts every stored row.

    Returns:
        The figures; pass its ``logs`` to the next call.
    """
    previous = logs or LogTally()
    bounds_ms = [round(bound * 1000) for bound in TASK_DURATION_BUCKETS_S]
    cursor = conn.cursor()
    own_transaction = not conn.in_transaction
    if own_transaction:
        cursor.execute("BEGIN")
    try:
        executions = {
            (str(workflow_id), str(state)): int(count)
            for workflow_id, state, count in cursor.execute(_EXECUTIONS_SQL, _TERMINAL)
        }
        open_counts = {
            str(state): int(count) for state, count in cursor.execute(_OPEN_SQL, _TERMINAL)
        }
        task_runs = {
            (str(task_type), str(state)): int(count)
            for task_type, state, count in cursor.execute(_TASK_RUNS_SQL, _TERMINAL)
        }
        durations = {
            str(row[0]): DurationHistogram(
                buckets=tuple(int(n) for n in row[3:]),
                count=int(row[1]),
                sum_seconds=float(row[2]) / 1000,
            )
            for row in cursor.execute(_DURATIONS_SQL, (*bounds_ms, *_TERMINAL))
        }
        tally = _count_logs(cursor, previous)
    finally:
        if own_transaction:
            cursor.execute("COMMIT")
    queued = open_counts.pop(str(State.PENDING), 0)
    path = conn.filename
    return MetricsSnapshot(
        executions=executions,
        running=sum(open_counts.values()),
        queued=queued,
        task_runs=task_runs,
        task_durations=durations,
        logs=tally,
        db_size_bytes=_file_size(path) + _file_size(f"{path}-wal"),
    )


def _count_logs(cursor: apsw.Cursor, previous: LogTally) -> LogTally:
    """Add the log rows after ``previous.after_id`` to its counts."""
    by_level = dict(previous.by_level)
    last_id = previous.after_id
    for level, count, max_id in cursor.execute(_LOG_LEVELS_SQL, (previous.after_id,)):
        by_level[str(level)] = by_level.get(str(level), 0) + int(count)
        last_id = max(last_id, int(max_id))
    dropped = previous.dropped
    if last_id > previous.after_id:
        row = cursor.execute(
            _DROPPED_SQL, (previous.after_id, last_id, LogLevel.WARN.value)
        ).fetchone()
        dropped += int(row[0]) if row is not None and row[0] else 0
    return LogTally(after_id=last_id, by_level=by_level, dropped=dropped)
