"""``workflow server start``: the long-running engine process (foreground).

Runs executions queued by ``workflow run --detach``, fires the cron triggers of workflows
registered with ``workflow apply``, recovers executions of dead engine processes, runs
retention at start and every 24 h and watches table sizes. SIGTERM or SIGINT stops it
gracefully (exit 0).

$ workflow server start --shutdown-grace 10s
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
from rich.text import Text

from autokestra_engine import EngineConfig, EngineRuntime, Server, ServerTimings
from autokestra_obs_schema import (
    Writer,
    connect,
    escape_control,
    format_bytes,
    iso_from_ms,
    parse_duration_ms,
)
from autokestra_obs_store import PurgeReport, RetentionPolicy, check_sizes, purge

from ._cmd_ui import console_settings, metrics_routes, start_console, token_file_option
from ._context import AppContext, pass_app
from ._engine_wiring import cli_engine_config, plugin_path_option
from ._errors import CliError, domain_errors
from ._telemetry import observers_of, start_otlp_export, stop_otlp_export

if TYPE_CHECKING:  # imported at run time only when export is on
    from autokestra_obs_telemetry.otlp import OtlpExporter
    from autokestra_obs_web import ListenAddress


class _RetentionStopped(Exception):
    """Raised from the purge's progress callback when the server is stopping."""

    def __init__(self, report: PurgeReport) -> None:
        super().__init__("server stopping")
        self.report = report


class StoreMaintenance:
    """The server's retention and size watch, from obs-store (the engine's ``Maintenance``).

    ``stopping`` is asked after every retention batch: a purge of a large backlog (minutes)
    ends at the next batch boundary when the server stops, instead of holding up its exit;
    the next run resumes it.
    """

    def __init__(
        self,
        writer: Writer,
        config: EngineConfig,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.writer = writer
        self.path = Path(config.db_path)
        self.policy = RetentionPolicy(config.retention_days)
        self.threshold = config.table_size_warning_bytes
        self.stopping = stopping

    def _progress(self, report: PurgeReport) -> None:
        if self.stopping():
            raise _RetentionStopped(report)

    def run_retention(self, now_ms: int) -> str:
        """Purge what is older than the retention window; a one-line summary."""
        cutoff = self.policy.cutoff_ms(now_ms)
        try:
            report = purge(self.writer, cutoff, progress=self._progress)
        except _RetentionStopped as stopped:
            report = stopped.report
            return (
                f"stopped by shutdown after {report.log_rows} log entries and "
                f"{report.audit_rows} audit events ({report.batches} batches); the next "
                "run resumes"
            )
        return (
            f"deleted {report.log_rows} log entries and {report.audit_rows} audit events "
            f"older than {iso_from_ms(cutoff)} ({format_bytes(report.bytes_freed)} freed, "
            f"{report.batches} batches, {int(report.elapsed_ms)} ms)"
        )

    def check_sizes(self) -> list[str]:
        """Warnings for tables over ``logging.table_size_warning``."""
        conn = connect(self.path, readonly=True)
        try:
            return [w.message for w in check_sizes(conn, self.path, self.threshold)]
        finally:
            conn.close()


class _EscapedStderr:
    """``sys.stderr`` with control characters made visible: lifecycle lines may quote
    workflow text or exception messages, and stderr is often a terminal."""

    def write(self, text: str, /) -> int:
        sys.stderr.write(escape_control(text))
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextmanager
def _stop_on_signals(server: Server) -> Iterator[None]:
    """SIGTERM and SIGINT ask the server to stop; the previous handlers come back after."""

    def handler(signum: int, frame: FrameType | None) -> None:
        # Only set the flag: writing from a handler could deadlock on the output lock.
        server.stop(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.group("server")
def server_group() -> None:
    """The long-running engine process.

    \b
    Example:
      workflow server start
    """


@server_group.command("start")
@plugin_path_option
@click.option(
    "--shutdown-grace",
    "shutdown_grace",
    metavar="DURATION",
    default=None,
    help="How long running executions may take to finish after SIGTERM/SIGINT before "
    "they are cancelled [default: execution.shutdown_grace, else 30s].",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=None,
    help="Also serve the web console (read-only), /metrics and the webhook endpoint "
    "(POST /webhooks/<workflow id>) on this address; port 0 picks a free one.",
)
@token_file_option
@pass_app
def start_command(
    app: AppContext,
    plugin_paths: tuple[Path, ...],
    shutdown_grace: str | None,
    listen: str | None,
    token_file: Path | None,
) -> None:
    """Run queued executions and cron triggers in the foreground until SIGTERM/SIGINT.

    Prints one status line, then logs its lifecycle to stderr. On SIGTERM or SIGINT it
    stops taking work, lets running executions finish within the shutdown grace, cancels
    the rest, flushes every log and exits 0. With --listen it also serves the web console
    (as `workflow ui` does) from a thread of the same process, with /metrics and
    POST /webhooks/<workflow id>: a request signed with the workflow's trigger secret
    queues an execution (202 with its id); webhook requests need no console token.

    \b
    Example:
      workflow server start --plugin-path ./plugins
      workflow server start --listen 0.0.0.0:8080 --token-file console.token
    """
    console = console_settings(listen, token_file) if listen is not None else None
    config = cli_engine_config(app, plugin_paths)
    if shutdown_grace is not None:
        try:
            grace_ms = parse_duration_ms(shutdown_grace)
        except ValueError as exc:
            raise CliError("Invalid time format. Examples: 5m, 2h, 1d") from exc
        config = dataclasses.replace(config, shutdown_grace_ms=grace_ms)
    try:
        RetentionPolicy(config.retention_days)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    timings = _timings_from_env()
    exporter = start_otlp_export(config)
    try:
        _serve(app, config, timings, exporter, console)
    finally:
        stop_otlp_export(exporter)


def _serve(
    app: AppContext,
    config: EngineConfig,
    timings: ServerTimings,
    exporter: OtlpExporter | None,
    console: tuple[ListenAddress, str | None] | None,
) -> None:
    """Run the server until it is stopped; the runtime is closed before export stops.

    With ``console`` (``--listen``), the web console is served from a thread meanwhile,
    with ``/metrics`` and ``POST /webhooks/<id>`` (signed requests, no console token).
    """
    with EngineRuntime(config, observers=observers_of(exporter)) as runtime:
        with domain_errors():
            # The engine opens the registry and the secrets before the database, so a bad
            # secrets file is reported without creating a database.
            engine = runtime.engine
        maintenance = StoreMaintenance(engine.writer, runtime.config)
        server = runtime.server(err=_EscapedStderr(), maintenance=maintenance, timings=timings)
        maintenance.stopping = lambda: server.stopping
        app.out.print(Text(escape_control(server.status_line())))
        app.out.file.flush()
        web = None
        if console is not None:
            from ._webhook_route import WEBHOOK_PREFIX, webhook_routes

            db_path = Path(config.db_path)
            routes = [
                *webhook_routes(server.webhooks),
                *metrics_routes(
                    db_path, runtime=runtime, exporter=exporter, webhooks=server.webhooks
                ),
            ]
            web = start_console(
                db_path, *console, extra_routes=routes, open_prefixes=(WEBHOOK_PREFIX,)
            )
        try:
            with _stop_on_signals(server):
                server.serve()
        finally:
            if web is not None:
                web.stop(timeout=5.0)


def _timings_from_env() -> ServerTimings:
    """``AUTOKESTRA_SERVER_POLL`` (a duration) shortens the poll interval, for tests and demos."""
    raw = os.environ.get("AUTOKESTRA_SERVER_POLL", "")
    if not raw:
        return ServerTimings()
    try:
        return ServerTimings(poll_interval_s=parse_duration_ms(raw) / 1000)
    except ValueError as exc:
        raise CliError(f"Invalid AUTOKESTRA_SERVER_POLL {raw!r}: {exc}") from exc
