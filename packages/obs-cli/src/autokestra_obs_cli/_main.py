"""The root ``workflow`` command: global options, exit-code policy, subcommand registry.

$ workflow --db ./my.db db status
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import click

from autokestra_obs_schema import DEFAULT_DB_PATH, escape_control

from ._context import DEFAULT_CONFIG_PATH, AppContext, color_wanted
from ._errors import EXIT_INTERRUPTED
from ._version import VERSION

#: Subcommands by name -> "module:attribute", imported only when invoked (or listed by
#: --help): `workflow execution logs` must not pay for importing the engine, YAML and cron.
ROOT_COMMANDS: dict[str, str] = {
    "apply": "._cmd_workflows:apply_command",
    "audit": "._cmd_audit_verify:audit_group",
    "db": "._cmd_db:db_group",
    "delete": "._cmd_workflows:delete_command",
    "list": "._cmd_workflows:list_command",
    "logs": "._cmd_logs_cleanup:log_maintenance_group",
    "run": "._cmd_run:run_command",
    "server": "._cmd_server:server_group",
    "ui": "._cmd_ui:ui_command",
    "validate": "._cmd_validate:validate_command",
}
EXECUTION_COMMANDS: dict[str, str] = {
    "cancel": "._cmd_execution_cancel:cancel_command",
    "export": "._cmd_execution_export:export_command",
    "inspect": "._cmd_inspect:inspect_command",
    "list": "._cmd_execution_list:execution_list_command",
    "logs": "._cmd_logs:logs_command",
}


def _debug_enabled() -> bool:
    return os.environ.get("AUTOKESTRA_DEBUG", "") not in ("", "0")


def _escape_click_error(exc: click.ClickException) -> click.ClickException:
    """Make every piece of user text in ``exc`` visible-safe before click prints it.

    The one exit point of every error (DESIGN.md §6.7): whatever a command or click itself
    put in a message (a hostile id, a path with an ESC, a bidi override) is shown through the
    one escaper, on one line. Escaping is idempotent (a backslash is left as is), so text a
    command already escaped is unchanged.
    """
    # click declares these attributes Final for its own code; rewriting them in place keeps
    # click's own rendering (usage line, hint) of every exception class intact.
    setattr(exc, "message", escape_control(exc.message, keep_newlines=False))  # noqa: B010
    if isinstance(exc, click.FileError):
        safe = escape_control(exc.ui_filename, keep_newlines=False)
        setattr(exc, "ui_filename", safe)  # noqa: B010
    return exc


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


class LazyGroup(click.Group):
    """A group whose subcommands are imported the first time they are looked up."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is not None and cmd_name not in self.commands:
            module_name, attribute = target.split(":")
            module = importlib.import_module(module_name, __package__)
            self.add_command(getattr(module, attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


class RootGroup(LazyGroup):
    """The root group, owning the exit-code policy of CLI.md for every command.

    0 success, 1 user-fixable error (``Error: <message>`` on stderr), 2 usage error, 130
    Ctrl+C; never a traceback unless ``AUTOKESTRA_DEBUG=1``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader (`| head`) has gone: stop quietly with success, like cat does.
            # Caught here because click's main turns EPIPE into a bare exit 1 otherwise.
            _silence_stdout()
            raise click.exceptions.Exit(0) from None

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            click.echo("Interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            _escape_click_error(exc).show()
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if _debug_enabled():
                raise
            message = escape_control(str(exc) or type(exc).__name__, keep_newlines=False)
            click.echo(f"Error: {message} (set AUTOKESTRA_DEBUG=1 for details)", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(
    cls=RootGroup,
    lazy=ROOT_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
@click.version_option(VERSION, "--version", prog_name="workflow")
@click.pass_context
def cli(ctx: click.Context, db_path: Path | None, config_path: Path | None, no_color: bool) -> None:
    """Autokestra: run workflows and read, follow and inspect every execution.

    \b
    Example:
      workflow run examples/workflows/hello.yaml
      workflow execution logs <execution-id> --follow
    """
    explicit_config = config_path is not None
    if config_path is None and DEFAULT_CONFIG_PATH.is_file():
        config_path = DEFAULT_CONFIG_PATH
    color = color_wanted(no_color)
    app = ctx.obj = AppContext(
        db_option=db_path,
        config_path=config_path,
        color=color,
        debug=_debug_enabled(),
    )
    if explicit_config and not ctx.resilient_parsing:
        # An explicit --config is always read and validated, whatever else is given
        # (DESIGN.md §6.11): `--db X` must not make a typo in the config path go unnoticed.
        app.engine_config()


@cli.group(cls=LazyGroup, lazy=EXECUTION_COMMANDS)
def execution() -> None:
    """Executions: list, cancel, read logs, inspect, export.

    \b
    Example:
      workflow execution list --limit 10
    """
