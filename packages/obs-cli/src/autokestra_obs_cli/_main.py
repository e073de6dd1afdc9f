"""The root ``workflow`` command: global options, exit-code policy, subcommand registry.

$ workflow --db ./my.db db status
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from ._cleanup import logs_group
from ._context import DEFAULT_CONFIG_PATH, DEFAULT_DB_PATH, AppContext, color_wanted, make_console
from ._db import db
from ._errors import EXIT_INTERRUPTED
from ._executions import cancel_command, execution_list_command
from ._inspect import inspect_command
from ._inspect_audit import audit_group
from ._logs import logs_command
from ._run import run_command
from ._server import server_group
from ._validate import validate_command
from ._workflows import apply_command, delete_command, list_command


def _debug_enabled() -> bool:
    return os.environ.get("AUTOKESTRA_DEBUG", "") not in ("", "0")


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


class RootGroup(click.Group):
    """The root group, owning the exit-code policy of CLI.md for every command.

    0 success, 1 user-fixable error (``Error: <message>`` on stderr), 2 usage error, 130
    Ctrl+C; never a traceback unless ``AUTOKESTRA_DEBUG=1``.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            click.echo("Interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # The reader (`| head`) has gone: stop quietly, like cat does.
            _silence_stdout()
            sys.exit(0)
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if _debug_enabled():
                raise
            message = str(exc) or type(exc).__name__
            click.echo(f"Error: {message} (set AUTOKESTRA_DEBUG=1 for details)", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def _package_version() -> str:
    try:
        return version("autokestra-obs-cli")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="AUTOKESTRA_DB",
    default=None,
    help=f"Database file [env AUTOKESTRA_DB; default {DEFAULT_DB_PATH}].",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Config file [default ./{DEFAULT_CONFIG_PATH} if present].",
)
@click.option("--no-color", is_flag=True, help="Never colour output (also: NO_COLOR env).")
@click.version_option(_package_version(), "--version", prog_name="workflow")
@click.pass_context
def cli(ctx: click.Context, db_path: Path | None, config_path: Path | None, no_color: bool) -> None:
    """Autokestra: run workflows and read, follow and inspect every execution.

    \b
    Example:
      workflow run examples/workflows/hello.yaml
      workflow execution logs <execution-id> --follow
    """
    if config_path is None and DEFAULT_CONFIG_PATH.is_file():
        config_path = DEFAULT_CONFIG_PATH
    color = color_wanted(no_color)
    ctx.obj = AppContext(
        db_option=db_path,
        config_path=config_path,
        color=color,
        debug=_debug_enabled(),
        out=make_console(stderr=False, color=color),
        err=make_console(stderr=True, color=color and sys.stderr.isatty()),
    )


@cli.group()
def execution() -> None:
    """Executions: list, cancel, read logs, inspect.

    \b
    Example:
      workflow execution list --limit 10
    """


cli.add_command(db)
execution.add_command(logs_command)
execution.add_command(execution_list_command)
execution.add_command(cancel_command)
cli.add_command(run_command)
execution.add_command(inspect_command)
cli.add_command(audit_group)
cli.add_command(logs_group)
cli.add_command(validate_command)
cli.add_command(apply_command)
cli.add_command(list_command)
cli.add_command(delete_command)
cli.add_command(server_group)


def main() -> None:
    """Console-script entry point of ``workflow`` and ``autokestra``."""
    cli.main(prog_name="workflow")
