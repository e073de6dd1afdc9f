"""autokestra_obs_telemetry.otlp: executions as OTLP traces, stored log entries as OTLP logs.

Importing it imports the OpenTelemetry SDK: only engine processes that export do
(``workflow run`` and ``workflow server start`` with an OTLP endpoint set).

    from autokestra_obs_telemetry import otlp_settings
    from autokestra_obs_telemetry.otlp import OtlpExporter

    settings = otlp_settings(os.environ)
    exporter = OtlpExporter(settings)          # an engine ExecutionObserver
    engine = Engine(config, ..., observers=[exporter])
    exporter.shutdown()                        # at exit: bounded by settings.shutdown_timeout_s
"""

from ._builder import TraceBuilder
from ._exporter import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DELAY_S,
    DEFAULT_MAX_QUEUE,
    OtlpExporter,
    build_resource,
)
from ._ids import (
    attempt_span_id,
    backoff_span_id,
    execution_span_id,
    task_span_id,
    trace_id_of,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DELAY_S",
    "DEFAULT_MAX_QUEUE",
    "OtlpExporter",
    "TraceBuilder",
    "attempt_span_id",
    "backoff_span_id",
    "build_resource",
    "execution_span_id",
    "task_span_id",
    "trace_id_of",
]
