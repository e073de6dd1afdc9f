"""The public surface of autokestra_obs_telemetry (and its otlp and testing modules) is pinned."""

from __future__ import annotations

import subprocess
import sys

import autokestra_obs_telemetry
from autokestra_obs_telemetry import otlp, testing


class TestPublicApi:
    def test_package_all_is_pinned(self) -> None:
        """The package re-exports exactly these names, sorted, and each resolves."""
        assert autokestra_obs_telemetry.__all__ == [
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
        for name in autokestra_obs_telemetry.__all__:
            assert hasattr(autokestra_obs_telemetry, name)

    def test_otlp_all_is_pinned(self) -> None:
        """The OTLP module's public names are a fixed, sorted list."""
        assert otlp.__all__ == [
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
        for name in otlp.__all__:
            assert hasattr(otlp, name)

    def test_testing_all_is_pinned(self) -> None:
        """The test helpers are a public module with their own fixed list."""
        assert testing.__all__ == [
            "OtlpReceiver",
            "ReceivedLog",
            "ReceivedSpan",
            "SpanEvent",
            "unused_port",
        ]


class TestImportCost:
    def test_package_import_does_not_load_the_sdk(self) -> None:
        """Importing the package (metrics, settings) loads no OpenTelemetry module."""
        code = (
            "import sys, autokestra_obs_telemetry\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
            "print(loaded)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]"

    def test_otlp_module_loads_the_sdk(self) -> None:
        """The check above can fail: importing the otlp module does load the SDK."""
        code = (
            "import sys, autokestra_obs_telemetry.otlp\nprint('opentelemetry.sdk' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "True"
