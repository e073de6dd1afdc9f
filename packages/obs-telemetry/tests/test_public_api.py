"""The public surface of autokestra_obs_telemetry (and its otlp and testing modules) is pinned."""

from __future__ import annotations

import subprocess
import sys

import autokestra_obs_telemetry
from autokestra_obs_telemetry import metrics, otlp, testing


class TestPublicApi:
    def test_package_all_is_pinned(self) -> None:
        """The top level re-exports exactly the settings, sorted, and each resolves."""
        assert autokestra_obs_telemetry.__all__ == [
            "DEFAULT_SERVICE_NAME",
            "DEFAULT_SHUTDOWN_TIMEOUT_S",
            "OtlpSettings",
            "TelemetryConfigError",
            "otlp_settings",
        ]
        for name in autokestra_obs_telemetry.__all__:
            assert hasattr(autokestra_obs_telemetry, name)

    def test_metrics_all_is_pinned(self) -> None:
        """The metrics module's public names are a fixed, sorted list."""
        assert metrics.__all__ == [
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
        for name in metrics.__all__:
            assert hasattr(metrics, name)

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
            "execution_id",
            "unused_port",
        ]


class TestImportCost:
    def test_top_level_imports_no_third_party_telemetry_code(self) -> None:
        """`import autokestra_obs_telemetry` (what a command reads settings with) is light."""
        code = (
            "import sys, autokestra_obs_telemetry\n"
            "print(sorted(m for m in sys.modules"
            " if m.split('.')[0] in ('opentelemetry', 'prometheus_client', 'google')))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]"

    def test_metrics_module_does_not_load_the_sdk(self) -> None:
        """Serving /metrics (workflow ui) loads prometheus-client but no OpenTelemetry module."""
        code = (
            "import sys, autokestra_obs_telemetry.metrics\n"
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')),"
            " 'prometheus_client' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[] True"

    def test_otlp_module_loads_the_sdk(self) -> None:
        """The check above can fail: importing the otlp module does load the SDK."""
        code = (
            "import sys, autokestra_obs_telemetry.otlp\nprint('opentelemetry.sdk' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "True"
