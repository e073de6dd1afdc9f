"""The serving process's own figures: its log collector, OTLP exporter and webhook requests.

Unlike the database metrics these belong to one process (the server that also serves
``/metrics``): how long its log transactions take, how many entries wait in its collector,
how much telemetry its exporter dropped, and how its webhook requests were answered
(``autokestra_webhook_requests_total{workflow_id,outcome}``, docs/telemetry.md).

    metrics = ProcessMetrics(collector=runtime.collector, exporter=exporter, webhooks=receiver)
    registry.register(metrics)
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from autokestra_obs_collector import LogCollector, LogEntry

from ._database import bucket_label

#: Bucket bounds (seconds) of the flush latency histogram: a healthy commit takes a few
#: milliseconds, a struggling disk hundreds.
FLUSH_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class DropCounter(Protocol):
    """Anything that counts telemetry it dropped (the OTLP exporter)."""

    @property
    def dropped(self) -> int:
        """Items dropped since the process started."""
        ...


class WebhookCounts(Protocol):
    """Anything that counts webhook requests (the server's webhook receiver)."""

    def webhook_counts(self) -> Mapping[tuple[str, str], int]:
        """Requests since the process started, by ``(workflow_id, outcome)``."""
        ...


class ProcessMetrics:
    """A prometheus-client collector of this process's collector and exporter figures.

    Args:
        collector: the process's log collector, or ``None`` (a read-only ``workflow ui``):
            its flush latency is observed through :meth:`LogCollector.add_listener`.
        exporter: the process's OTLP exporter, or ``None`` (``autokestra_otlp_dropped_total``
            is then 0).
        webhooks: the process's webhook request counts (``server start --listen``), or
            ``None``: ``autokestra_webhook_requests_total`` is then not exposed.
    """

    def __init__(
        self,
        *,
        collector: LogCollector | None = None,
        exporter: DropCounter | None = None,
        webhooks: WebhookCounts | None = None,
    ) -> None:
        self._collector = collector
        self._exporter = exporter
        self._webhooks = webhooks
        self._lock = threading.Lock()
        self._counts = [0] * (len(FLUSH_BUCKETS_S) + 1)
        self._sum = 0.0
        if collector is not None:
            collector.add_listener(self.observe_flush)

    def observe_flush(self, entries: Sequence[LogEntry], seconds: float) -> None:
        """Record one committed log transaction (the collector's listener)."""
        index = bisect.bisect_left(FLUSH_BUCKETS_S, seconds)
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds

    def describe(self) -> list[Metric]:
        """The metric names this collector produces."""
        return list(self._families(with_values=False))

    def collect(self) -> Iterator[Metric]:
        """Yield the process's metric families."""
        yield from self._families(with_values=True)

    def _families(self, *, with_values: bool) -> Iterator[Metric]:
        flush = HistogramMetricFamily(
            "autokestra_collector_flush_duration_seconds",
            "Duration of this process's log transactions (BEGIN to COMMIT).",
        )
        depth = GaugeMetricFamily(
            "autokestra_collector_queue_depth",
            "Log entries buffered or being written by this process's collector.",
        )
        otlp = CounterMetricFamily(
            "autokestra_otlp_dropped",
            "Telemetry items (engine events, log records) this process could not export.",
        )
        if with_values:
            with self._lock:
                counts, total = list(self._counts), self._sum
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(FLUSH_BUCKETS_S, counts, strict=False):
                cumulative += count
                buckets.append((bucket_label(bound), float(cumulative)))
            buckets.append(("+Inf", float(sum(counts))))
            flush.add_metric([], buckets, total)
            if self._collector is not None:
                depth.add_metric([], self._collector.stats().pending)
            otlp.add_metric([], self._exporter.dropped if self._exporter is not None else 0)
        # A process without a collector (``workflow ui``) has no collector figures to show.
        if self._collector is not None:
            yield from (flush, depth)
        yield otlp
        if self._webhooks is not None:
            yield self._webhook_family(with_values=with_values)

    def _webhook_family(self, *, with_values: bool) -> Metric:
        requests = CounterMetricFamily(
            "autokestra_webhook_requests",
            "Webhook requests this server answered, by workflow (only registered webhook"
            ' workflows; "" for any other id) and outcome.',
            labels=["workflow_id", "outcome"],
        )
        if with_values and self._webhooks is not None:
            for (workflow_id, outcome), count in sorted(self._webhooks.webhook_counts().items()):
                requests.add_metric([workflow_id, outcome], count)
        return requests
