"""``workflow execution export ID``: write one execution as a bundle database.

The bundle is a new Autokestra database (mode 0600) holding only that execution: its row,
task runs, attempts, log entries and audit events, inputs and source masked as stored; never
the audit key. Every read command opens it with ``--db FILE``.

    $ workflow execution export 0193a5b2-... -o incident-4711.db
    Exported execution 0193a5b2-... to incident-4711.db (1532 log entries, 412.0 KiB)
    $ workflow --db incident-4711.db execution logs 0193a5b2-...
"""

from __future__ import annotations

from pathlib import Path

import click

from autokestra_obs_schema import AutokestraError, escape_control, format_bytes
from autokestra_obs_store import default_bundle_path, export_execution

from ._context import AppContext, pass_app
from ._errors import CliError


@click.command("export")
@click.argument("execution_id", metavar="ID")
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(path_type=Path),
    metavar="FILE",
    default=None,
    help="The bundle file to write [default: execution-<ID>.db].",
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@pass_app
def export_command(app: AppContext, *, execution_id: str, output: Path | None, force: bool) -> None:
    """Write one execution (tasks, attempts, logs, audit trail) to a bundle database.

    The bundle holds only that execution, secrets masked as stored and never the audit key;
    read it with any command and --db FILE.

    \b
    Examples:
      workflow execution export 0190f3c2-8d1e-7c4a-9b2f-3e5d6a7b8c9d
      workflow execution export <id> -o incident.db --force
      workflow --db incident.db execution logs <id>
    """
    target = output if output is not None else default_bundle_path(execution_id)
    try:
        report = export_execution(app.db_path, execution_id, target, force=force)
    except AutokestraError as exc:
        raise CliError(escape_control(str(exc), keep_newlines=False)) from exc
    shown_id = escape_control(execution_id, keep_newlines=False)
    shown_path = escape_control(str(report.path), keep_newlines=False)
    click.echo(
        f"Exported execution {shown_id} to {shown_path} "
        f"({report.log_entries} log entries, {format_bytes(report.bytes)})",
        err=True,
    )
