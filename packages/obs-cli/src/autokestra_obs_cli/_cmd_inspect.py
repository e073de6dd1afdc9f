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

from autokestra_obs_schema import AutokestraError, State, escape_control

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors

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


def _human(
    app: AppContext,
    snapshot: Inspection,
    *,
    task_id: str | None,
    show_inputs: bool,
    timeline: bool,
    audit: bool,
    truncate: bool,
) -> None:
    import io
    import sys

    from rich.text import Text

    if isinstance(sys.stdout, io.TextIOWrapper):
        # A stdout whose encoding cannot show some character (PYTHONIOENCODING=ascii) gets
        # \xNN/\uNNNN escapes instead of an encoding error, as `logs` does.
        sys.stdout.reconfigure(errors="backslashreplace")

    from autokestra_obs_store import in_task_family

    from ._inspect_render import (
        SUMMARY_THRESHOLD,
        audit_lines,
        details_lines,
        iteration_lines,
        overview_lines,
        summary_hint,
        summary_lines,
        task_detail_lines,
        task_table,
    )
    from ._inspect_timeline import render_timeline

    execution = snapshot.execution
    origin = execution.started_at or execution.created_at
    lines: list[Text] = []
    if task_id is not None:
        task = next(t for t in snapshot.tasks if t.task_id == task_id)
        lines.extend(task_detail_lines(task, execution, truncate=truncate))
        iterations = [
            t for t in snapshot.tasks if t.task_id != task_id and in_task_family(t.task_id, task_id)
        ]
        if iterations:
            lines.extend(iteration_lines(task_id, iterations, origin))
    elif not (timeline or audit):
        lines.extend(overview_lines(execution))
        lines.append(Text(""))
        if len(snapshot.tasks) > SUMMARY_THRESHOLD:
            lines.extend(summary_lines(snapshot.tasks, origin))
            notable = [t for t in snapshot.tasks if t.state == State.FAILED]
            lines.extend(details_lines(notable, show_inputs=show_inputs, truncate=truncate))
            lines.extend([Text(""), summary_hint(len(snapshot.tasks))])
        elif snapshot.tasks:
            lines.extend(task_table(snapshot.tasks, origin))
            lines.extend(details_lines(snapshot.tasks, show_inputs=show_inputs, truncate=truncate))
        else:
            lines.append(Text("No task runs recorded yet"))
    if timeline:
        if lines:
            lines.append(Text(""))
        lines.extend(Text(line) for line in render_timeline(snapshot, app.out.width))
    if audit:
        if lines:
            lines.append(Text(""))
        lines.extend(audit_lines(snapshot.audit_events, truncate=truncate))
    # One print call: rendering 500 rows line by line costs more than the queries.
    app.out.print(Text("\n").join(lines), soft_wrap=True)
