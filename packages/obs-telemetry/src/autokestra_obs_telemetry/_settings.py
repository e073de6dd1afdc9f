"""Whether and where an engine process exports OTLP: the standard variables, then the config.

Reading the settings imports no OpenTelemetry code, so a command can decide cheaply whether
to build the exporter (``autokestra_obs_telemetry.otlp``, which imports the SDK) at all.

    settings = otlp_settings(os.environ, config.otlp)
    if settings is not None:
        from autokestra_obs_telemetry.otlp import OtlpExporter
        exporter = OtlpExporter(settings)

Precedence, as for every Autokestra setting: the environment wins over the config file.
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` are full URLs
used as given; ``OTEL_EXPORTER_OTLP_ENDPOINT`` and ``telemetry.otlp.endpoint`` are base URLs
to which ``v1/traces`` and ``v1/logs`` are appended. ``OTEL_SDK_DISABLED=true`` turns export
off; ``OTEL_TRACES_EXPORTER=none`` / ``OTEL_LOGS_EXPORTER=none`` turn one signal off.
Headers, timeout, compression and certificates are read from their ``OTEL_EXPORTER_OTLP_*``
variables by the OpenTelemetry exporter itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autokestra_obs_schema import AutokestraError

#: ``service.name`` when neither ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` nor the
#: config names one.
DEFAULT_SERVICE_NAME = "autokestra"
#: How long a process waits at exit for its telemetry to be sent (DESIGN.md §8: 5 s).
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0

_HEADER_VARIABLES = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
)

#: Keys accepted under ``telemetry.otlp`` in the config file.
CONFIG_KEYS = ("endpoint", "headers", "service_name", "shutdown_timeout")


class TelemetryConfigError(AutokestraError, ValueError):
    """A ``telemetry.otlp`` value of the config file is not usable (one line says which)."""


@dataclass(frozen=True, slots=True)
class OtlpSettings:
    """Where an engine process sends its traces and logs.

    Attributes:
        traces_endpoint: the full ``…/v1/traces`` URL, or ``None`` when traces are off.
        logs_endpoint: the full ``…/v1/logs`` URL, or ``None`` when logs are off.
        headers: request headers from the config file; empty when an
            ``OTEL_EXPORTER_OTLP_*HEADERS`` variable is set (the exporter reads those).
        service_name: ``service.name`` unless the environment names one.
        shutdown_timeout_s: the most a process waits at exit to send what it holds.
    """

    traces_endpoint: str | None
    logs_endpoint: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    service_name: str = DEFAULT_SERVICE_NAME
    shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _signal_off(env: Mapping[str, str], variable: str) -> bool:
    return (env.get(variable) or "").strip().lower() == "none"


def _join(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path}"


def _config_endpoint(config: Mapping[str, Any]) -> str | None:
    endpoint = config.get("endpoint")
    if endpoint is None:
        return None
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise TelemetryConfigError(
            f"telemetry.otlp.endpoint must be an http:// or https:// URL, got {endpoint!r}"
        )
    return endpoint


def _config_headers(config: Mapping[str, Any]) -> dict[str, str]:
    headers = config.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise TelemetryConfigError("telemetry.otlp.headers must map header names to strings")
    return dict(headers)


def _shutdown_timeout(config: Mapping[str, Any]) -> float:
    value = config.get("shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TelemetryConfigError(
            f"telemetry.otlp.shutdown_timeout must be seconds (a number >= 0), got {value!r}"
        )
    return float(value)


def otlp_settings(
    env: Mapping[str, str], config: Mapping[str, Any] | None = None
) -> OtlpSettings | None:
    """Resolve the OTLP export settings; ``None`` when nothing asks for export.

    Args:
        env: the environment (``os.environ``).
        config: the ``telemetry.otlp`` mapping of the config file, if any.

    Returns:
        The settings, or ``None`` when no endpoint is set or export is disabled.

    Raises:
        TelemetryConfigError: a config value is unusable.
    """
    config = config or {}
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise TelemetryConfigError(
            f"unknown key telemetry.otlp.{unknown[0]} (known: {', '.join(CONFIG_KEYS)})"
        )
    base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip() or _config_endpoint(config)
    traces = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip() or (
        _join(base, "v1/traces") if base else None
    )
    logs = (env.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or "").strip() or (
        _join(base, "v1/logs") if base else None
    )
    if _signal_off(env, "OTEL_TRACES_EXPORTER"):
        traces = None
    if _signal_off(env, "OTEL_LOGS_EXPORTER"):
        logs = None
    if _is_true(env.get("OTEL_SDK_DISABLED")) or (traces is None and logs is None):
        return None
    service_name = config.get("service_name", DEFAULT_SERVICE_NAME)
    if not isinstance(service_name, str) or not service_name:
        raise TelemetryConfigError("telemetry.otlp.service_name must be a non-empty string")
    return OtlpSettings(
        traces_endpoint=traces,
        logs_endpoint=logs,
        headers={} if any(env.get(name) for name in _HEADER_VARIABLES) else _config_headers(config),
        service_name=service_name,
        shutdown_timeout_s=_shutdown_timeout(config),
    )
