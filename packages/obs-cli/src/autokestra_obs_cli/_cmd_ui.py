"""``workflow ui``: serve the read-only web console for the database (no engine needed).

Also the console part of ``workflow server start --listen`` (:func:`console_settings`,
:func:`start_console`), so both commands apply the same address and token rules.

The app also answers ``/metrics`` (Prometheus text, computed from the database). Binds
``--listen`` (default 127.0.0.1:8080; port 0 picks a free one), prints ``Listening on
http://HOST:PORT/`` on stderr once bound, and serves until Ctrl+C or SIGTERM (exit 0). A
non-loopback address needs ``--token-file`` (a 0600 file holding the token).

$ workflow ui --listen 127.0.0.1:8080
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from autokestra_obs_schema import escape_control

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from autokestra_engine import EngineRuntime
    from autokestra_obs_telemetry.metrics import DropCounter, WebhookCounts
    from autokestra_obs_web import ListenAddress, WebServer


def token_file_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--token-file FILE``: the console token (required for a non-loopback address)."""
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="File (mode 0600) holding the token that requests must carry; required "
        "for a non-loopback address.",
    )(func)


def console_settings(listen: str, token_file: Path | None) -> tuple[ListenAddress, str | None]:
    """Parse ``--listen`` and read ``--token-file``; refuse a non-loopback address without one.

    Raises:
        CliError: a malformed address, an unusable token file, or ``refusing to listen on
            <addr> without --token-file``.
    """
    from autokestra_obs_web import check_listen, parse_listen, read_token_file

    with domain_errors():
        address = parse_listen(listen)
        token = read_token_file(token_file) if token_file is not None else None
        check_listen(address, token=token)
    return address, token


def _cannot_listen(address: ListenAddress, exc: OSError) -> CliError:
    shown = escape_control(str(address), keep_newlines=False)
    return CliError(f"cannot listen on {shown}: {exc.strerror or exc}")


def metrics_routes(
    db_path: Path,
    *,
    runtime: EngineRuntime | None = None,
    exporter: DropCounter | None = None,
    webhooks: WebhookCounts | None = None,
) -> list[BaseRoute]:
    """``/metrics`` (DESIGN.md §8) for the console app, behind the console's token.

    Args:
        db_path: the database the metrics are computed from.
        runtime: the engine runtime of ``server start``, whose collector's figures are added.
        exporter: this process's OTLP exporter, whose drops are counted.
        webhooks: the server's webhook receiver, whose requests are counted.
    """
    from starlette.routing import Route

    from autokestra_obs_telemetry.metrics import metrics_app, metrics_registry

    registry = metrics_registry(
        db_path,
        collector=runtime.collector if runtime is not None else None,
        exporter=exporter,
        webhooks=webhooks,
    )
    # A Route, not a Mount: a Mount answers /metrics with a redirect to /metrics/.
    return [Route("/metrics", metrics_app(registry), methods=["GET", "HEAD"])]


def start_console(
    db_path: Path,
    address: ListenAddress,
    token: str | None,
    *,
    extra_routes: list[BaseRoute] | None = None,
    open_prefixes: tuple[str, ...] = (),
) -> WebServer:
    """Bind ``address``, print the Listening line, serve the console from a thread.

    For ``workflow server start --listen``: the engine loop keeps the main thread.
    ``open_prefixes`` are paths of extra routes that authenticate requests themselves
    (the signed webhook endpoint): the console token is not asked there.

    Raises:
        CliError: the address cannot be bound.
    """
    from autokestra_obs_web import WebServer, bind, bound_address, create_app

    try:
        sock = bind(address)
    except OSError as exc:
        raise _cannot_listen(address, exc) from exc
    click.echo(f"Listening on http://{bound_address(sock, address)}/", err=True)
    app = create_app(
        db_path, token=token, extra_routes=extra_routes or (), open_prefixes=open_prefixes
    )
    server = WebServer(app, sock)
    server.start()
    return server


@click.command("ui")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default="127.0.0.1:8080",
    show_default=True,
    help="Address to serve on; port 0 picks a free port.",
)
@token_file_option
@pass_app
def ui_command(app: AppContext, listen: str, token_file: Path | None) -> None:
    """Serve the read-only web console: executions, live logs, timeline, audit.

    Reads the database only (no engine runs). Ctrl+C or SIGTERM stops it (exit 0).
    A non-loopback address needs --token-file; requests then need
    `Authorization: Bearer <token>` or a session from /login.

    \b
    Example:
      workflow ui
      workflow ui --listen 0.0.0.0:8080 --token-file ~/.autokestra/console.token
    """
    from autokestra_obs_schema import open_reader
    from autokestra_obs_web import create_app, serve

    address, token = console_settings(listen, token_file)
    with domain_errors():
        # Fail now, with the CLI's message, on a missing or too old database.
        open_reader(app.db_path).close()
    try:
        routes = metrics_routes(app.db_path)
        serve(create_app(app.db_path, token=token, extra_routes=routes), address)
    except OSError as exc:
        raise _cannot_listen(address, exc) from exc
