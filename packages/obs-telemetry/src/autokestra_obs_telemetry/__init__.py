"""autokestra_obs_telemetry: Autokestra's telemetry adapters, at the edge of the engine.

Three public modules, each behind its own third-party dependency so a command loads only what
it uses: ``autokestra_obs_telemetry.metrics`` (Prometheus metrics computed from the database,
prometheus-client), ``autokestra_obs_telemetry.otlp`` (the OTLP/HTTP exporter of traces and
logs, an engine observer; the only module that loads the OpenTelemetry SDK) and
``autokestra_obs_telemetry.testing`` (a real OTLP receiver for tests). This top level holds
only the settings that decide whether a process exports, and imports no third-party code.

    settings = otlp_settings(os.environ, config_otlp)
    if settings is not None:
        from autokestra_obs_telemetry.otlp import OtlpExporter
        exporter = OtlpExporter(settings)
"""

from ._settings import (
    DEFAULT_SERVICE_NAME,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    OtlpSettings,
    TelemetryConfigError,
    otlp_settings,
)

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "OtlpSettings",
    "TelemetryConfigError",
    "otlp_settings",
]
