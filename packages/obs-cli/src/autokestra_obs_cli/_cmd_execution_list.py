"""``workflow execution list``: executions newest first, as a table or ``--json``.

The rows come from obs-store's :func:`list_executions` and the ``--json`` objects from its
:func:`execution_summary_document` (the web console serves the same objects).

    $ workflow execution list --state FAILED --limit 5
    $ workflow execution list --json
"""

from __future__ import annotations

import json

import click
from rich.text import Text

from autokestra_obs_schema import State, escape_control, format_duration_ms, iso_from_ms
from autokestra_obs_store import ExecutionSummary, execution_summary_document, list_executions

from ._context import AppContext, pass_app
from ._styles import state_style
from ._types import COUNT

#: PARENT: the execution whose subflow task started this one (whole, to be copied), else -.
_HEADERS = ("EXECUTION ID", "WORKFLOW", "STATE", "TRIGGER", "CREATED", "DURATION", "PARENT")
#: The column coloured by state.
_STATE_COLUMN = 2


def _duration(summary: ExecutionSummary) -> str:
    return "-" if summary.started_at is None else format_duration_ms(summary.duration_ms)


def _cells(summary: ExecutionSummary) -> tuple[str, ...]:
    return (
        summary.execution_id,
        escape_control(summary.workflow_id, keep_newlines=False),
        summary.state,
        escape_control(summary.trigger_type, keep_newlines=False),
        iso_from_ms(summary.created_at),
        _duration(summary),
        summary.parent_execution_id or "-",
    )


def _print_table(app: AppContext, rows: list[tuple[str, ...]]) -> None:
    """Plain aligned columns, never cut: ids must stay whole to be copied (a rich Table
    would shrink them to the 80 columns a pipe is assumed to have)."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(_HEADERS)]
    app.out.print(
        Text("  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths, strict=True)).rstrip())
    )
    last = len(_HEADERS) - 1
    for row in rows:
        text = Text()
        for index, (cell, width) in enumerate(zip(row, widths, strict=True)):
            if index:
                text.append("  ")
            style = state_style(cell) if index == _STATE_COLUMN else ""
            text.append(cell.ljust(width) if index < last else cell, style=style)
        app.out.print(text)


@click.command("list")
@click.option("--workflow", "workflow_id", metavar="ID", help="Only this workflow's executions.")
@click.option(
    "--state",
    type=click.Choice([state.value for state in State], case_sensitive=False),
    help="Only executions in this state.",
)
@click.option(
    "--limit",
    type=COUNT,
    default=20,
    show_default=True,
    help="At most this many executions (newest first).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of execution objects.")
@pass_app
def execution_list_command(
    app: AppContext, workflow_id: str | None, state: str | None, limit: int, as_json: bool
) -> None:
    """List executions, newest first.

    \b
    Example:
      workflow execution list --workflow hello --state FAILED --limit 5
      workflow execution list --json
    """
    page = list_executions(
        app.reader(),
        workflow_id=workflow_id,
        state=State(state.upper()) if state else None,
        limit=limit,
    )
    if as_json:
        documents = [execution_summary_document(summary) for summary in page]
        click.echo(json.dumps(documents, ensure_ascii=True))
        return
    if not page:
        app.err.print(Text("No executions found"))
        return
    _print_table(app, [_cells(summary) for summary in page])
