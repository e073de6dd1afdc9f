"""otlp_settings: the standard OTEL_* variables, then config telemetry.otlp; env wins."""

from __future__ import annotations

import pytest

from autokestra_obs_telemetry import (
    DEFAULT_SERVICE_NAME,
    OtlpSettings,
    TelemetryConfigError,
    otlp_settings,
)


class TestOtlpSettings:
    def test_nothing_set_means_no_export(self) -> None:
        """Without an endpoint in the environment or the config, nothing is exported."""
        assert otlp_settings({}) is None
        assert otlp_settings({}, {}) is None

    def test_base_endpoint_gives_both_signals(self) -> None:
        """OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: v1/traces and v1/logs are appended."""
        settings = otlp_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
        assert settings == OtlpSettings(
            traces_endpoint="http://collector:4318/v1/traces",
            logs_endpoint="http://collector:4318/v1/logs",
        )
        assert settings.service_name == DEFAULT_SERVICE_NAME == "autokestra"
        assert settings.shutdown_timeout_s == 5.0

    def test_signal_endpoints_are_used_as_given(self) -> None:
        """A _TRACES_ or _LOGS_ endpoint alone turns on that signal only, URL unchanged."""
        traces = otlp_settings({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom"})
        assert traces is not None
        assert (traces.traces_endpoint, traces.logs_endpoint) == ("http://t:1/custom", None)
        logs = otlp_settings({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:1/x"})
        assert logs is not None
        assert (logs.traces_endpoint, logs.logs_endpoint) == (None, "http://l:1/x")

    def test_environment_wins_over_config(self) -> None:
        """The config's endpoint is used only when the environment sets none."""
        config = {"endpoint": "http://from-config:4318", "service_name": "etl-prod"}
        from_config = otlp_settings({}, config)
        assert from_config is not None
        assert from_config.traces_endpoint == "http://from-config:4318/v1/traces"
        assert from_config.service_name == "etl-prod"
        from_env = otlp_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}, config)
        assert from_env is not None
        assert from_env.logs_endpoint == "http://env:4318/v1/logs"

    def test_config_headers_yield_to_environment_headers(self) -> None:
        """Config headers are passed only when no OTEL_*HEADERS variable is set."""
        config = {"endpoint": "http://c:4318", "headers": {"x-api-key": "k"}}
        alone = otlp_settings({}, config)
        assert alone is not None
        assert alone.headers == {"x-api-key": "k"}
        env = {"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=from-env"}
        overridden = otlp_settings(env, config)
        assert overridden is not None
        assert overridden.headers == {}

    def test_disabling_variables(self) -> None:
        """OTEL_SDK_DISABLED turns export off; OTEL_*_EXPORTER=none one signal."""
        base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
        assert otlp_settings({**base, "OTEL_SDK_DISABLED": "true"}) is None
        no_logs = otlp_settings({**base, "OTEL_LOGS_EXPORTER": "none"})
        assert no_logs is not None
        assert no_logs.logs_endpoint is None
        assert no_logs.traces_endpoint is not None
        both_off = {**base, "OTEL_LOGS_EXPORTER": "none", "OTEL_TRACES_EXPORTER": "none"}
        assert otlp_settings(both_off) is None

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            ({"endpoint": "collector:4318"}, "telemetry.otlp.endpoint must be an http"),
            ({"endpoint": "http://c", "headers": ["a"]}, "telemetry.otlp.headers"),
            ({"endpoint": "http://c", "shutdown_timeout": -1}, "shutdown_timeout"),
            ({"endpoint": "http://c", "service_name": ""}, "service_name"),
            ({"endpoint": "http://c", "bogus": 1}, "unknown key telemetry.otlp.bogus"),
        ],
    )
    def test_bad_config_values_are_named(self, config: dict[str, object], message: str) -> None:
        """Each unusable config value raises one line naming the key."""
        with pytest.raises(TelemetryConfigError, match=message):
            otlp_settings({}, config)
