"""autokestra_obs_telemetry: Autokestra's telemetry adapters, at the edge of the engine.

Prometheus metrics computed from the database (every process agrees, counts survive
restarts) plus the serving process's own collector and exporter figures; and the settings
that decide whether an engine process exports OTLP. The OTLP exporter itself lives in
``autokestra_obs_telemetry.otlp`` so that importing this package never imports the
OpenTelemetry SDK.

    registry = metrics_registry(Path(".autokestra/autokestra.db"))
    print(metrics_text(registry).decode())       # or mount metrics_app(registry) at /metrics
"""

from ._db_metrics import DatabaseMetrics
from ._exposition import (
    ASGIApp,
    MetricsServer,
    metrics_app,
    metrics_registry,
    metrics_text,
    start_metrics_server,
)
from ._process_metrics import FLUSH_BUCKETS_S, DropCounter, ProcessMetrics
from ._settings import (
    DEFAULT_SERVICE_NAME,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    OtlpSettings,
    TelemetryConfigError,
    otlp_settings,
)

__all__ = [
    "ASGIApp",
    "DEFAULT_SERVICE_NAME",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "DatabaseMetrics",
    "DropCounter",
    "FLUSH_BUCKETS_S",
    "MetricsServer",
    "OtlpSettings",
    "ProcessMetrics",
    "TelemetryConfigError",
    "metrics_app",
    "metrics_registry",
    "metrics_text",
    "otlp_settings",
    "start_metrics_server",
]
