"""``workflow apply`` / ``workflow list`` / ``workflow delete``: the registered workflows.

A registered workflow's cron trigger is fired by ``workflow server start``; ``enabled:
false`` in the file pauses it (apply the file again to resume).

$ workflow apply examples/workflows/nightly.yaml
Workflow nightly created: cron '0 2 * * *', next fire 2026-11-26T02:00:00.000Z
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.text import Text

from autokestra_engine import (
    Workflow,
    WorkflowInvalid,
    WorkflowRegistry,
    describe_trigger,
    list_workflows,
    load_workflow,
    workflow_limits,
)
from autokestra_obs_schema import escape_control, iso_from_ms

from ._context import AppContext, pass_app
from ._engine_wiring import cli_engine_config, cli_registry, plugin_path_option
from ._errors import CliError, domain_errors


def _load(app: AppContext, file: Path, plugin_paths: tuple[Path, ...]) -> Workflow:
    config = cli_engine_config(app, plugin_paths)
    with domain_errors():
        registry = cli_registry(config)
    try:
        return load_workflow(file, registry, workflow_limits(config))
    except WorkflowInvalid as exc:
        for problem in exc.problems:
            app.err.print(Text(escape_control(f"{file}: {problem}")))
        count = len(exc.problems)
        raise CliError(
            f"{file}: invalid workflow ({count} problem{'s' if count != 1 else ''})"
        ) from exc


@click.command("apply")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@plugin_path_option
@pass_app
def apply_command(app: AppContext, file: Path, plugin_paths: tuple[Path, ...]) -> None:
    """Register a workflow file (or update it) so the server fires its cron trigger.

    The file is validated first; `enabled: false` pauses its cron trigger.

    \b
    Example:
      workflow apply examples/workflows/nightly.yaml
    """
    workflow = _load(app, file, plugin_paths)
    with domain_errors():
        record, created = WorkflowRegistry(app.writer()).apply(workflow)
    verb = "created" if created else "updated"
    line = f"Workflow {record.workflow_id} {verb}: {describe_trigger(record)}"
    app.out.print(Text(escape_control(line)))


def _iso(ms: int | None) -> str:
    return "-" if ms is None else iso_from_ms(ms)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """List the registered workflows with their triggers and next fire times.

    \b
    Example:
      workflow list --json
    """
    records = list_workflows(app.reader())
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records], ensure_ascii=True, indent=2))
        return
    if not records:
        app.err.print("No workflows registered (use `workflow apply FILE`)")
        return
    headers = ("WORKFLOW ID", "TRIGGER", "SCHEDULE", "ENABLED", "NEXT FIRE", "LAST FIRED")
    lines = [
        (
            escape_control(r.workflow_id, keep_newlines=False),
            escape_control(r.trigger_type, keep_newlines=False),
            escape_control(r.schedule or "-", keep_newlines=False),
            "yes" if r.enabled else "no (paused)",
            _iso(r.next_fire_at),
            _iso(r.last_fired_at),
        )
        for r in records
    ]
    # Plain aligned columns, never cut: a rich Table would shrink ids and times to the 80
    # columns a pipe is assumed to have (`2026-11-26T02:08:46.0…`).
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    for line in (headers, *lines):
        cells = [c.ljust(w) for c, w in zip(line, widths, strict=True)]
        app.out.print(Text("  ".join(cells).rstrip()))


@click.command("delete")
@click.argument("workflow_id")
@pass_app
def delete_command(app: AppContext, workflow_id: str) -> None:
    """Unregister a workflow: its cron trigger stops; its executions stay.

    \b
    Example:
      workflow delete nightly
    """
    if not app.db_path.exists():
        raise CliError(f"Workflow not found: {workflow_id}")
    with domain_errors():
        WorkflowRegistry(app.writer()).delete(workflow_id)
    app.out.print(Text(escape_control(f"Workflow {workflow_id} deleted")))
