"""OTLP export for the engine-running commands (``run``, ``server start``), built on demand.

The exporter exists only when an endpoint is configured (``OTEL_EXPORTER_OTLP_*`` or config
``telemetry.otlp``), and only then is the OpenTelemetry SDK imported: a command that reads
(``execution logs``, ``inspect``...) never loads it, and neither does ``run`` without an
endpoint.

    exporter = start_otlp_export(config)
    runtime = EngineRuntime(config, observers=observers_of(exporter))
    try:
        ...
    finally:
        runtime.close()               # the collector hands over its last entries first
        stop_otlp_export(exporter)    # then what is queued is sent, within 5 s
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from autokestra_engine import EngineConfig, ExecutionObserver
from autokestra_obs_schema import escape_control
from autokestra_obs_telemetry import TelemetryConfigError, otlp_settings

from ._errors import CliError

if TYPE_CHECKING:  # the SDK is imported at run time only when export is on
    from autokestra_obs_telemetry.otlp import OtlpExporter


class _EscapedStderr:
    """``sys.stderr`` with control characters made visible: the exporter's trouble reports
    quote the endpoint (from the environment or the config) and the receiver's errors."""

    def write(self, text: str, /) -> int:
        sys.stderr.write(escape_control(text))
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


def start_otlp_export(
    config: EngineConfig, env: Mapping[str, str] | None = None
) -> OtlpExporter | None:
    """The process's OTLP exporter, or ``None`` when no endpoint is configured.

    Raises:
        CliError: ``telemetry.otlp`` of the config file is invalid.
    """
    try:
        settings = otlp_settings(os.environ if env is None else env, config.telemetry_otlp)
    except TelemetryConfigError as exc:
        where = f"config file {config.config_path}: " if config.config_path else ""
        raise CliError(f"{where}{exc}") from exc
    if settings is None:
        return None
    from autokestra_obs_telemetry.otlp import OtlpExporter

    return OtlpExporter(settings, report=_EscapedStderr())


def observers_of(exporter: OtlpExporter | None) -> list[ExecutionObserver]:
    """The engine observers for ``exporter`` (none without one)."""
    return [] if exporter is None else [exporter]


def stop_otlp_export(exporter: OtlpExporter | None) -> None:
    """Send what the exporter holds, within its shutdown deadline; nothing without one."""
    if exporter is not None:
        exporter.shutdown()
