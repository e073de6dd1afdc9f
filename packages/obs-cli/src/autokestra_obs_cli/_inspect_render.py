"""Human output of ``workflow execution inspect``: overview, task table, details, audit trail.

Every function returns ``rich.text.Text`` lines built from already-escaped strings (never
markup), so untrusted values (task outputs, errors, metadata) cannot restyle the terminal.
States are colour-coded; the console drops the styles when colour is off.

    for line in overview_lines(snapshot.execution):
        console.print(line)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text

from autokestra_obs_schema import (
    AuditEventType,
    State,
    escape_control,
    format_duration_ms,
    iso_from_ms,
)
from autokestra_obs_store import AuditEvent, ExecutionOverview, TaskView

from ._styles import state_style

#: Rendered values longer than this are cut (CLI.md), unless --no-truncate.
TRUNCATE_AT = 200
TRUNCATED = "... (truncated)"
#: Above this many tasks the default view is a per-state summary (CLI.md).
SUMMARY_THRESHOLD = 50

#: The order of the per-state counts of a large execution: finished first, then live.
_STATE_ORDER = (
    State.SUCCESS,
    State.FAILED,
    State.CANCELLED,
    State.SKIPPED,
    State.RUNNING,
    State.WAITING,
    State.PENDING,
)
#: Tasks listed under the counts of a large execution.
_NOTABLE_STATES = frozenset({State.FAILED, State.RUNNING, State.WAITING})


def render_value(value: Any, *, truncate: bool) -> str:
    """One value as shown: strings as they are, anything else as compact JSON; escaped,
    and cut at 200 characters with ``... (truncated)`` when ``truncate``."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = escape_control(text)
    if truncate and len(text) > TRUNCATE_AT:
        text = text[:TRUNCATE_AT] + TRUNCATED
    return text


def _plain(text: str) -> str:
    return escape_control(text, keep_newlines=False)


def _state(state: str) -> Text:
    return Text(state, style=state_style(state))


def _when(ms: int | None) -> str:
    return iso_from_ms(ms) if ms is not None else "-"


def _indent_block(text: str, indent: str) -> list[Text]:
    """A possibly multi-line value, continuation lines indented under the first."""
    # A trailing newline (shell scripts end with one) would print a blank indented line.
    first, *rest = text.rstrip("\n").split("\n")
    return [Text(indent + first), *(Text(indent + "  " + line) for line in rest)]


def _field(label: str, value: str | Text, width: int = 13) -> Text:
    line = Text(f"  {label + ':':<{width}} ")
    line.append(value if isinstance(value, Text) else Text(value))
    return line


def _subflow_links(execution: ExecutionOverview) -> list[Text]:
    """``Parent:`` of a subflow's child and one ``Subflow:`` per child, ids whole to copy."""
    lines = []
    if execution.parent_execution_id:
        parent = _plain(execution.parent_execution_id)
        lines.append(_field("Parent", f"{parent} (task {_plain(execution.parent_task_id or '-')})"))
    for child in execution.children:
        lines.append(
            _field(
                "Subflow",
                f"{_plain(child.execution_id)} ({_plain(child.workflow_id)}, task"
                f" {_plain(child.task_id)}, {_plain(child.state)})",
            )
        )
    return lines


def overview_lines(execution: ExecutionOverview) -> list[Text]:
    """The execution's overview block (CLI.md: workflow, id, state, trigger, times, ...)."""
    lines = [Text(f"Execution {_plain(execution.execution_id)}")]
    gone = execution.engine_gone_since
    if execution.in_progress and gone is None:
        lines.append(Text("Execution in progress", style="yellow"))
    state = _state(execution.state)
    if execution.reason_code:
        state.append(f" ({_plain(execution.reason_code)})")
    if gone is not None:
        # Nothing will end it until an engine starts (DESIGN.md §6.4): never "in progress".
        state.append(f" (engine gone since {iso_from_ms(gone)})")
    lines.append(_field("Workflow", _plain(execution.workflow_id)))
    lines.append(_field("State", state))
    lines.append(_field("Trigger", _plain(execution.trigger_type)))
    lines.extend(_subflow_links(execution))
    lines.append(_field("Created", _when(execution.created_at)))
    lines.append(_field("Started", _when(execution.started_at)))
    lines.append(_field("Ended", _when(execution.ended_at)))
    duration = format_duration_ms(execution.duration_ms)
    if execution.in_progress and execution.duration_ms is not None:
        duration += " elapsed"
    lines.append(_field("Duration", duration))
    entries = str(execution.log_entry_count)
    if execution.logs_dropped:
        entries += f" ({execution.logs_dropped} dropped)"
    lines.append(_field("Log entries", entries))
    if execution.in_progress and execution.engine_pid is not None:
        # A live execution whose engine stopped beating is the first thing to suspect when
        # nothing moves; show who runs it and how fresh its heartbeat is.
        engine = f"pid {execution.engine_pid}"
        if execution.engine_host:
            engine += f" on {_plain(execution.engine_host)}"
        if execution.heartbeat_at is not None:
            age = max(0, execution.observed_at - execution.heartbeat_at)
            engine += f", heartbeat {format_duration_ms(age)} ago"
        lines.append(_field("Engine", engine))
    if execution.failed_task_id:
        lines.append(_field("Failed task", _plain(execution.failed_task_id)))
    if execution.message:
        lines.append(_field("Reason", render_value(execution.message, truncate=True)))
    if execution.cancelled_by:
        cancelled = _plain(execution.cancelled_by)
        if execution.cancel_reason:
            cancelled += f": {_plain(execution.cancel_reason)}"
        lines.append(_field("Cancelled by", cancelled))
    return lines


def _same_day(tasks: Sequence[TaskView], origin: int) -> bool:
    day = iso_from_ms(origin)[:10]
    stamps = [t for task in tasks for t in (task.started_at, task.ended_at) if t is not None]
    return all(iso_from_ms(stamp)[:10] == day for stamp in stamps)


def task_table(tasks: Sequence[TaskView], origin: int) -> list[Text]:
    """An aligned table: task, type, state, attempts, duration, start, end.

    Start and end show the time of day when the whole execution ran within one UTC day
    (the date is in the overview), full ISO-8601 otherwise, so the table fits 80 columns.
    """
    short = _same_day(tasks, origin)

    def clock(ms: int | None) -> str:
        if ms is None:
            return "-"
        return iso_from_ms(ms)[11:23] if short else iso_from_ms(ms)

    rows: list[tuple[str, ...]] = []
    for task in tasks:
        duration = format_duration_ms(task.duration_ms)
        if not task.finished and task.started_at is not None:
            duration += " elapsed"
        end = clock(task.ended_at)
        rows.append(
            (
                _plain(task.task_id),
                _plain(task.type),
                task.state,
                str(task.attempt_count),
                duration,
                clock(task.started_at),
                end,
            )
        )
    header = ("TASK", "TYPE", "STATE", "ATTEMPTS", "DURATION", "START", "END")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [Text("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())]
    lines[0].stylize("bold")
    for row in rows:
        line = Text()
        for index, (cell, width) in enumerate(zip(row, widths, strict=True)):
            if index:
                line.append("  ")
            padded = cell.ljust(width) if index < len(row) - 1 else cell
            line.append(padded, style=state_style(cell) if index == 2 else "")
        lines.append(line)
    return lines


def _mapping_lines(value: Any, indent: str, truncate: bool) -> list[Text]:
    """A JSON object as ``key: value`` lines; string lists (stderr tails) one item a line."""
    if not isinstance(value, dict):
        return _indent_block(render_value(value, truncate=truncate), indent)
    if not value:
        return [Text(indent + "{}")]
    lines: list[Text] = []
    for key, item in value.items():
        label = _plain(str(key))
        if isinstance(item, list) and item and all(isinstance(x, str) for x in item):
            lines.append(Text(f"{indent}{label}:"))
            for entry in item:
                lines.extend(_indent_block(render_value(entry, truncate=truncate), indent + "  "))
        else:
            lines.extend(_indent_block(f"{label}: {render_value(item, truncate=truncate)}", indent))
    return lines


def _io_lines(task: TaskView, *, show_inputs: bool, truncate: bool, indent: str) -> list[Text]:
    lines: list[Text] = []
    if show_inputs:
        lines.append(Text(f"{indent}inputs:"))
        lines.extend(
            _mapping_lines(task.inputs, indent + "  ", truncate)
            if task.inputs is not None
            else [Text(f"{indent}  (none)")]
        )
    for child in task.child_execution_ids:
        lines.append(Text(f"{indent}subflow: {_plain(child)}"))
    if task.finished and task.outputs is not None:
        lines.append(Text(f"{indent}outputs:"))
        lines.extend(_mapping_lines(task.outputs, indent + "  ", truncate))
    if task.error is not None:
        lines.append(Text(f"{indent}error:", style="red"))
        lines.extend(_mapping_lines(task.error, indent + "  ", truncate))
    if task.state == State.SKIPPED:
        # A skipped task has no attempt, output or error: its reason is the whole story.
        lines.append(Text(f"{indent}skipped: {_plain(task.reason_code or '-')}"))
    return lines


def details_lines(tasks: Iterable[TaskView], *, show_inputs: bool, truncate: bool) -> list[Text]:
    """Per task: inputs (with ``--show-inputs``), outputs of finished tasks, errors."""
    lines: list[Text] = []
    for task in tasks:
        body = _io_lines(task, show_inputs=show_inputs, truncate=truncate, indent="    ")
        if not body:
            continue
        head = Text(f"  {_plain(task.task_id)} ")
        head.append(_state(task.state))
        lines.extend([head, *body])
    return [Text(""), Text("Task details", style="bold"), *lines] if lines else []


def _state_counts(label: str, tasks: Sequence[TaskView], style: str = "") -> Text:
    """``<label>: <n> (SUCCESS 3, FAILED 1)``: the states present, in the usual order."""
    counts = Counter(task.state for task in tasks)
    line = Text(f"{label}: {len(tasks)} (", style=style)
    for index, state in enumerate(s for s in _STATE_ORDER if counts[s]):
        if index:
            line.append(", ")
        line.append(_state(state))
        line.append(f" {counts[state]}")
    line.append(")")
    return line


def summary_lines(tasks: Sequence[TaskView], origin: int) -> list[Text]:
    """The view of a large execution: counts per state, then the failed and running tasks."""
    line = _state_counts("Tasks", tasks)
    notable = [t for t in tasks if t.state in _NOTABLE_STATES]
    lines = [line]
    if notable:
        lines.extend([Text(""), Text("Failed and running tasks", style="bold")])
        lines.extend(task_table(notable, origin))
    return lines


def iteration_lines(task_id: str, iterations: Sequence[TaskView], origin: int) -> list[Text]:
    """``--task`` of a for_each task: its iterations' counts per state, then their table
    (up to SUMMARY_THRESHOLD of them; beyond, only the failed and running ones)."""
    lines = [Text(""), _state_counts("Iterations", iterations, style="bold")]
    if len(iterations) <= SUMMARY_THRESHOLD:
        lines.extend(task_table(iterations, origin))
        return lines
    notable = [t for t in iterations if t.state in _NOTABLE_STATES]
    if notable:
        lines.extend(task_table(notable, origin))
    lines.append(
        Text(
            f"Showing the failed and running iterations of {len(iterations)}; use --task "
            f"'{_plain(task_id)}[N]' for one iteration, --json for all."
        )
    )
    return lines


def summary_hint(count: int) -> Text:
    """The hint that ends a summary view (CLI.md: use --task)."""
    return Text(
        f"Summary of {count} tasks (more than {SUMMARY_THRESHOLD}); use --task ID for one "
        "task's attempts, inputs, outputs and error."
    )


def task_detail_lines(
    task: TaskView, execution: ExecutionOverview, *, truncate: bool
) -> list[Text]:
    """``--task ID``: dependencies and their states, every attempt, inputs, outputs, error."""
    state = _state(task.state)
    if task.reason_code:
        state.append(f" ({_plain(task.reason_code)})")
    needs = Text()
    for index, dep in enumerate(task.needs):
        if index:
            needs.append(", ")
        needs.append(f"{_plain(dep.task_id)} (")
        needs.append(_state(dep.state or "MISSING"))
        needs.append(")")
    duration = format_duration_ms(task.duration_ms)
    if not task.finished and task.started_at is not None:
        duration += " elapsed"
    lines = [
        Text(
            f"Task {_plain(task.task_id)} of execution {_plain(execution.execution_id)} "
            f"({_plain(execution.workflow_id)})",
            style="bold",
        ),
        _field("Type", _plain(task.type)),
        _field("State", state),
        _field("Needs", needs if task.needs else Text("-")),
        _field("Queued", _when(task.queued_at)),
        _field("Started", _when(task.started_at)),
        _field("Ended", _when(task.ended_at)),
        _field("Duration", duration),
        _field("Attempts", str(task.attempt_count)),
    ]
    for child in task.child_execution_ids:
        lines.append(_field("Subflow", _plain(child)))
    lines.extend(_attempt_lines(task, truncate=truncate))
    lines.extend(_task_io_blocks(task, truncate=truncate))
    return lines


def _attempt_lines(task: TaskView, *, truncate: bool) -> list[Text]:
    """The attempts table of ``--task``, then each failed attempt's error message."""
    if not task.attempts:
        return []
    header = ("#", "STATE", "REASON", "DURATION", "EXIT", "STARTED", "ENDED")
    rows = [
        (
            str(a.attempt),
            a.state,
            render_value(a.reason or "-", truncate=truncate).replace("\n", " "),
            format_duration_ms(a.duration_ms) + (" elapsed" if a.running else ""),
            "-" if a.exit_code is None else str(a.exit_code),
            _when(a.started_at),
            _when(a.ended_at),
        )
        for a in task.attempts
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    head = Text(
        "    " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()
    )
    head.stylize("bold")
    lines = [head]
    for row in rows:
        line = Text("   ")
        for index, (cell, width) in enumerate(zip(row, widths, strict=True)):
            line.append(" " if index == 0 else "  ")
            line.append(cell.ljust(width), style=state_style(cell) if index == 1 else "")
        lines.append(line)
    for a in task.attempts:
        if a.error is not None and isinstance(a.error, dict) and a.error.get("message"):
            message = render_value(a.error["message"], truncate=truncate)
            lines.extend(_indent_block(f"attempt {a.attempt} error: {message}", "    "))
    return lines


def _task_io_blocks(task: TaskView, *, truncate: bool) -> list[Text]:
    """``--task``'s inputs, outputs and error blocks ("(none)" when absent)."""
    lines = [Text("  Inputs:")]
    lines.extend(
        _mapping_lines(task.inputs, "    ", truncate)
        if task.inputs is not None
        else [Text("    (none)")]
    )
    lines.append(Text("  Outputs:"))
    lines.extend(
        _mapping_lines(task.outputs, "    ", truncate)
        if task.outputs is not None
        else [Text("    (none)")]
    )
    lines.append(Text("  Error:", style="red" if task.error is not None else ""))
    lines.extend(
        _mapping_lines(task.error, "    ", truncate)
        if task.error is not None
        else [Text("    (none)")]
    )
    return lines


def _metadata_text(metadata: dict[str, Any], *, truncate: bool) -> str:
    # One line per event: a multi-line value (a stack trace) shows its newlines as \x0a.
    return "  ".join(
        f"{_plain(str(k))}={render_value(v, truncate=truncate)}".replace("\n", "\\x0a")
        for k, v in metadata.items()
    )


def audit_lines(events: Sequence[AuditEvent], *, truncate: bool) -> list[Text]:
    """``--audit``: events in order; STATE_CHANGE as ``from -> to``; metadata as key=value."""
    lines = [Text(f"Audit trail ({len(events)} events)", style="bold")]
    id_w = max((len(str(e.id)) for e in events), default=1) + 1
    type_w = max((len(e.event_type) for e in events), default=7)
    for event in events:
        line = Text(f"  {'#' + str(event.id):<{id_w}}  {iso_from_ms(event.timestamp)}  ")
        line.append(event.event_type, style="bold")
        line.append(" " * (type_w - len(event.event_type)))
        metadata = dict(event.metadata)
        if event.event_type == AuditEventType.STATE_CHANGE:
            source = metadata.pop("from_state", "?")
            target = metadata.pop("to_state", "?")
            task_id = metadata.pop("task_id", None)
            line.append("  ")
            if task_id is not None:
                # A task run's transition (a skip), told apart from the execution's own.
                line.append(f"task {_plain(str(task_id))}: ")
            line.append(_state(_plain(str(source))))
            line.append(" -> ")
            line.append(_state(_plain(str(target))))
        rest = _metadata_text(metadata, truncate=truncate)
        if rest:
            line.append("  " + rest)
        line.rstrip()
        lines.append(line)
    return lines
