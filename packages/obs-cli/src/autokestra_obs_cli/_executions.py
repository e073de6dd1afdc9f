"""``workflow execution list`` and ``workflow execution cancel``.

``list`` reads the ``executions`` table newest first (a table, or ``--json``: the columns with
ISO-8601 timestamps); ``cancel`` records a cancellation request that the engine process
running the execution notices within 250 ms, from any process.

    $ workflow execution list --state FAILED --limit 5
    $ workflow execution cancel 0193a0c4-... --reason "wrong input"
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import apsw
import click
from rich.text import Text

from autokestra_engine import ExecutionAlreadyFinished, ExecutionNotFound, request_cancel
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import iso_from_ms

from ._context import AppContext, pass_app
from ._errors import domain_errors, register_domain_error
from ._escape import escape_control
from ._format import format_duration_ms
from ._inspect_json import mask_source

if TYPE_CHECKING:
    from autokestra_obs_store import TaskView

for _kind in (ExecutionNotFound, ExecutionAlreadyFinished):
    register_domain_error(_kind)

STATES = ("PENDING", "RUNNING", "WAITING", "SUCCESS", "FAILED", "CANCELLED")
#: Columns holding Unix ms timestamps, shown as ISO-8601 in ``--json``.
TIMESTAMP_COLUMNS = frozenset(
    {"created_at", "started_at", "ended_at", "updated_at", "cancel_requested_at", "heartbeat_at"}
)
JSON_COLUMNS = frozenset({"inputs"})
_STYLES = {
    "PENDING": "dim",
    "RUNNING": "cyan",
    "WAITING": "yellow",
    "SUCCESS": "green",
    "FAILED": "red",
    "CANCELLED": "magenta",
}


def _rows(
    conn: apsw.Connection, workflow_id: str | None, state: str | None, limit: int
) -> Iterator[dict[str, Any]]:
    """Executions newest first, every column, filtered by workflow and state."""
    cursor = conn.cursor()
    cursor.execute(
        "SELECT * FROM executions WHERE (?1 IS NULL OR workflow_id = ?1)"
        " AND (?2 IS NULL OR state = ?2)"
        " ORDER BY created_at DESC, execution_id DESC LIMIT ?3",
        (workflow_id, state, limit),
    )
    names: list[str] | None = None
    for row in cursor:
        if names is None:
            names = [column[0] for column in cursor.getdescription()]
        yield dict(zip(names, row, strict=True))


def to_json_object(row: dict[str, Any]) -> dict[str, Any]:
    """An executions row as ``--json`` shows it: ISO timestamps, JSON columns as objects."""
    shown: dict[str, Any] = {}
    for key, value in row.items():
        if key in TIMESTAMP_COLUMNS and value is not None:
            shown[key] = iso_from_ms(int(value))
        elif key in JSON_COLUMNS and isinstance(value, str):
            shown[key] = json.loads(value)
        else:
            shown[key] = value
    return shown


@dataclass(frozen=True, slots=True)
class _StoredInputs:
    """The one field of a task view that :func:`mask_source` reads."""

    inputs: Any


def _mask_sources(conn: apsw.Connection, shown: list[dict[str, Any]]) -> None:
    """Mask literal ``secret: true`` input values in each ``workflow_source``, as inspect does.

    The stored source must keep them (a server re-reads it to run a queued execution); the
    stored task inputs say which input names were masked. One query for every execution.
    """
    ids = [row["execution_id"] for row in shown if row.get("workflow_source")]
    if not ids:
        return
    inputs: dict[str, list[_StoredInputs]] = {}
    for execution_id, text in conn.execute(
        "SELECT execution_id, inputs FROM task_runs WHERE inputs IS NOT NULL"
        " AND execution_id IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),),
    ):
        inputs.setdefault(str(execution_id), []).append(_StoredInputs(json.loads(text)))
    for row in shown:
        tasks = inputs.get(str(row["execution_id"]))
        if tasks:
            row["workflow_source"] = mask_source(
                row["workflow_source"], cast("list[TaskView]", tasks)
            )


def _duration(row: dict[str, Any]) -> str:
    start = row["started_at"]
    if start is None:
        return "-"
    end = row["ended_at"]
    if end is None:
        return format_duration_ms(None)
    return format_duration_ms(int(end) - int(start))


@click.command("list")
@click.option("--workflow", "workflow_id", metavar="ID", help="Only this workflow's executions.")
@click.option(
    "--state",
    type=click.Choice(STATES, case_sensitive=False),
    help="Only executions in this state.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
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
    conn = app.reader()
    rows = _rows(conn, workflow_id, state.upper() if state else None, limit)
    if as_json:
        # Built as a list: --limit bounds it, and the array must be complete to be JSON.
        shown = [to_json_object(row) for row in rows]
        _mask_sources(conn, shown)
        click.echo(json.dumps(shown, ensure_ascii=True))
        return
    headers = ("EXECUTION ID", "WORKFLOW", "STATE", "TRIGGER", "CREATED", "DURATION")
    lines = [
        (
            str(row["execution_id"]),
            escape_control(str(row["workflow_id"]), keep_newlines=False),
            str(row["state"]),
            escape_control(str(row["trigger_type"]), keep_newlines=False),
            iso_from_ms(int(row["created_at"])),
            _duration(row),
        )
        for row in rows
    ]
    if not lines:
        app.err.print(Text("No executions found"))
        return
    # Plain aligned columns, never cut: ids must stay whole to be copied (a rich Table
    # would shrink them to the 80 columns a pipe is assumed to have).
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    app.out.print(
        Text("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    )
    for line in lines:
        text = Text()
        for index, (cell, width) in enumerate(zip(line, widths, strict=True)):
            if index:
                text.append("  ")
            style = _STYLES.get(cell, "") if index == 2 else ""
            text.append(cell.ljust(width) if index < len(line) - 1 else cell, style=style)
        app.out.print(text)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        return "unknown"


@click.command("cancel")
@click.argument("execution_id")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit trail).")
@pass_app
def cancel_command(app: AppContext, execution_id: str, reason: str | None) -> None:
    """Request cancellation of an execution; works from any process.

    The engine process running it stops its tasks within 250 ms and records who asked
    (`user:<login>`) and why. An execution queued with `run --detach` is cancelled at once.

    \b
    Example:
      workflow execution cancel 0193a0c4-5d7e-7c1a-9f00-8d2b6c1e4a10 --reason "wrong input"
    """
    by = f"user:{_login()}"
    writer = app.writer()
    collector = LogCollector(writer)
    try:
        with domain_errors():
            outcome = request_cancel(writer, collector, execution_id, by=by, reason=reason)
    finally:
        collector.shutdown()
    if outcome.cancelled_now:
        app.out.print(Text(f"Execution {execution_id} CANCELLED (it was queued)"))
    elif outcome.recorded:
        app.out.print(Text(f"Cancellation of execution {execution_id} requested by {by}"))
    else:
        app.out.print(Text(f"Cancellation of execution {execution_id} was already requested"))
