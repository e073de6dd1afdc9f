"""``workflow execution inspect ID``: everything about one execution (CLI.md).

Default: overview and task table (a per-state summary above 50 tasks) with outputs and errors
of finished tasks. ``--task``, ``--show-inputs``, ``--timeline``, ``--audit``, ``--json``,
``--no-truncate`` and ``--verify`` select what is shown; the data comes from one
:class:`ExecutionInspector` snapshot (four queries whatever the task count).

$ workflow execution inspect 0190f3c2-... --timeline
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from autokestra_obs_schema import AutokestraError, State

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors
from ._escape import escape_control

if TYPE_CHECKING:
    from autokestra_obs_store import ExecutionInspector, Inspection


@click.command("inspect")
@click.argument("execution_id", metavar="ID")
@click.option("--task", "task_id", metavar="ID", help="Show one task: needs, attempts, I/O.")
@click.option("--show-inputs", is_flag=True, help="Show resolved inputs per task (secrets masked).")
@click.option("--timeline", is_flag=True, help="ASCII Gantt chart of the tasks.")
@click.option("--audit", is_flag=True, help="Show the audit events in order.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with everything.")
@click.option("--no-truncate", is_flag=True, help="Show values longer than 200 characters in full.")
@click.option(
    "--verify",
    is_flag=True,
    help="Check the audit hash chain and state invariants; exit 1 on the first violation.",
)
@pass_app
def inspect_command(
    app: AppContext,
    *,
    execution_id: str,
    task_id: str | None,
    show_inputs: bool,
    timeline: bool,
    audit: bool,
    as_json: bool,
    no_truncate: bool,
    verify: bool,
) -> None:
    """Inspect an execution: overview, tasks, attempts, I/O, timeline, audit trail.

    \b
    Example:
      workflow execution inspect 0190f3c2-8d1e-7c4a-9b2f-3e5d6a7b8c9d
      workflow execution inspect <id> --task build
      workflow execution inspect <id> --timeline
      workflow execution inspect <id> --json > execution.json
    """
    from autokestra_obs_store import ExecutionInspector, TaskNotFound

    inspector = ExecutionInspector(app.reader())
    try:
        if verify:
            _verify(app, inspector, execution_id)
            return
        snapshot = inspector.snapshot(execution_id)
        if task_id is not None and all(t.task_id != task_id for t in snapshot.tasks):
            raise TaskNotFound(execution_id, task_id)
    except AutokestraError as exc:
        # The id comes from the command line: never echo control characters back raw.
        raise CliError(escape_control(str(exc), keep_newlines=False)) from exc
    if as_json:
        from autokestra_obs_store import inspection_document

        document = inspection_document(snapshot, task_id)
        click.echo(json.dumps(document, ensure_ascii=True, indent=2))
        return
    _human(
        app,
        snapshot,
        task_id=task_id,
        show_inputs=show_inputs,
        timeline=timeline,
        audit=audit,
        truncate=not no_truncate,
    )


def _verify(app: AppContext, inspector: ExecutionInspector, execution_id: str) -> None:
    """Verify the trail; the last line says whether content was authenticated (§6.8)."""
    from rich.text import Text

    from ._settings import configured_retention_days

    with domain_errors():
        verdict = inspector.verify_trail(
            execution_id, retention_days=configured_retention_days(app)
        )
    if verdict.violation is not None:
        raise CliError(
            escape_control(
                f"Audit verification failed for execution {execution_id}: {verdict.violation}",
                keep_newlines=False,
            )
        )
    count = verdict.events
    shown = escape_control(execution_id, keep_newlines=False)
    if count == 0:
        # Only retention removes a finished execution's trail, and only as a whole.
        app.out.print(Text(f"Audit trail of execution {shown}: no events (removed by retention)"))
    else:
        # A live execution has no terminal event yet: say so rather than claim one.
        live = inspector.overview(execution_id).in_progress
        terminal = "no terminal event yet (in progress)" if live else "one terminal event"
        events = f"{count} event{'' if count == 1 else 's'}"
        app.out.print(
            Text(
                f"Audit trail of execution {shown} verified: {events}, hash chain intact, "
                f"{terminal}, legal transitions, state consistent"
            )
        )
    app.out.print(Text(verdict.status))
