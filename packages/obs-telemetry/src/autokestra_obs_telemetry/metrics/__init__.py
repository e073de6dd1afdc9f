"""autokestra_obs_telemetry.metrics: Prometheus metrics, from the database and this process.

The database figures of DESIGN.md §8 (executions, task runs, durations, log entries, drops,
size) computed at each scrape through obs-store, plus the serving process's collector and
OTLP exporter figures; rendered with prometheus-client. Mount :func:`metrics_app` at
``/metrics`` of an ASGI app, or serve it alone with :func:`start_metrics_server`.

    from autokestra_obs_telemetry.metrics import metrics_app, metrics_registry

    registry = metrics_registry(Path(".autokestra/autokestra.db"), collector=collector)
    routes = [Route("/metrics", metrics_app(registry), methods=["GET", "HEAD"])]
"""

from ._database import DatabaseMetrics
from ._exposition import (
    MetricsApp,
    MetricsServer,
    metrics_app,
    metrics_registry,
    metrics_text,
    start_metrics_server,
)
from ._process import FLUSH_BUCKETS_S, DropCounter, ProcessMetrics, WebhookCounts

__all__ = [
    "DatabaseMetrics",
    "DropCounter",
    "FLUSH_BUCKETS_S",
    "MetricsApp",
    "MetricsServer",
    "ProcessMetrics",
    "WebhookCounts",
    "metrics_app",
    "metrics_registry",
    "metrics_text",
    "start_metrics_server",
]
