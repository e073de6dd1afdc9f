"""The Prometheus metrics computed from the database (DESIGN.md §8), as a custom collector.

Each scrape opens a read-only connection, reads :func:`autokestra_obs_store.metrics_snapshot`
in one read transaction, and closes it: no snapshot is held between scrapes, so the writer's
checkpoints are never pinned. Log entry counts resume from the previous scrape's tally.

    registry = CollectorRegistry()
    registry.register(DatabaseMetrics(Path(".autokestra/autokestra.db")))
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from autokestra_obs_schema import LogLevel, open_reader
from autokestra_obs_store import (
    TASK_DURATION_BUCKETS_S,
    LogTally,
    MetricsSnapshot,
    metrics_snapshot,
)


def bucket_label(bound: float) -> str:
    """A bucket's ``le`` label as Prometheus clients write it (``0.1``, ``1.0``, ``+Inf``)."""
    return repr(float(bound))


class DatabaseMetrics:
    """A prometheus-client collector of the database figures; safe across scrape threads.

    Args:
        db_path: the database file (opened read-only at each scrape).
    """

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._lock = threading.Lock()
        self._logs: LogTally | None = None

    def read(self) -> MetricsSnapshot:
        """Read one snapshot of the figures (what a scrape renders).

        Raises:
            DatabaseNotFound: the database file does not exist.
            SchemaVersionError: the database's schema is not this code's.
        """
        with self._lock:
            conn = open_reader(self._db_path)
            try:
                snapshot = metrics_snapshot(conn, logs=self._logs)
            finally:
                conn.close()
            self._logs = snapshot.logs
            return snapshot

    def describe(self) -> list[Metric]:
        """The metric names this collector produces, without reading the database."""
        return list(_families(None))

    def collect(self) -> Iterator[Metric]:
        """Read the database and yield every metric family."""
        yield from _families(self.read())


def _families(snapshot: MetricsSnapshot | None) -> Iterator[Metric]:
    """The metric families, filled from ``snapshot`` (empty families when ``None``)."""
    executions = CounterMetricFamily(
        "autokestra_executions",
        "Executions that reached a terminal state, by workflow and state.",
        labels=["workflow_id", "state"],
    )
    running = GaugeMetricFamily(
        "autokestra_executions_running", "Executions started and not yet terminal."
    )
    queued = GaugeMetricFamily(
        "autokestra_executions_queued", "Executions waiting for an engine (PENDING)."
    )
    task_runs = CounterMetricFamily(
        "autokestra_task_runs",
        "Task runs that reached a terminal state, by task type and state.",
        labels=["type", "state"],
    )
    durations = HistogramMetricFamily(
        "autokestra_task_duration_seconds",
        "Duration of terminal task runs that started (first attempt to end, retries included).",
        labels=["type"],
    )
    log_entries = CounterMetricFamily(
        "autokestra_log_entries", "Log entries stored, by level.", labels=["level"]
    )
    dropped = CounterMetricFamily(
        "autokestra_log_entries_dropped",
        "Log entries the engines could not store (reported by their collectors).",
    )
    db_size = GaugeMetricFamily(
        "autokestra_db_size_bytes", "The database file and its write-ahead log, on disk."
    )
    if snapshot is not None:
        for (workflow_id, state), count in sorted(snapshot.executions.items()):
            executions.add_metric([workflow_id, state], count)
        running.add_metric([], snapshot.running)
        queued.add_metric([], snapshot.queued)
        for (task_type, state), count in sorted(snapshot.task_runs.items()):
            task_runs.add_metric([task_type, state], count)
        for task_type, histogram in sorted(snapshot.task_durations.items()):
            buckets = [
                (bucket_label(bound), float(count))
                for bound, count in zip(TASK_DURATION_BUCKETS_S, histogram.buckets, strict=True)
            ]
            buckets.append(("+Inf", float(histogram.count)))
            durations.add_metric([task_type], buckets, histogram.sum_seconds)
        # Every level, zero included: a rate() over a series that appears late misses its start.
        for level in LogLevel:
            log_entries.add_metric([level.value], snapshot.logs.by_level.get(level.value, 0))
        dropped.add_metric([], snapshot.logs.dropped)
        db_size.add_metric([], snapshot.db_size_bytes)
    yield from (executions, running, queued, task_runs, durations, log_entries, dropped, db_size)
