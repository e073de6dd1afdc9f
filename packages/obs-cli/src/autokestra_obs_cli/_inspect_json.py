"""The ``--json`` document of ``workflow execution inspect``: one object, timestamps ISO-8601.

``{execution, tasks: [{..., attempts, inputs, outputs, error}], audit_events, timeline}``.
Keys mirror the table columns (DESIGN.md §2); every ``*_at`` column and ``timestamp`` is an
ISO-8601 UTC string (or null); timeline offsets stay integer milliseconds from
``timeline.origin``. Values are never truncated; inputs are stored masked by the engine.

    click.echo(json.dumps(inspection_document(snapshot), ensure_ascii=True, indent=2))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from autokestra_obs_schema import iso_from_ms
from autokestra_obs_store import (
    AttemptView,
    AuditEvent,
    ExecutionOverview,
    Inspection,
    TaskTimeline,
    TaskView,
    Timeline,
)

#: How the engine stores a secret input (DESIGN.md §3).
MASK = "***SECRET***"


def _secret_keys(tasks: Sequence[TaskView]) -> set[str]:
    """Input names stored fully masked: ``secret: true`` plugin inputs (or a whole template)."""
    return {
        str(key)
        for task in tasks
        if isinstance(task.inputs, dict)
        for key, value in task.inputs.items()
        if value == MASK
    }


def mask_source(source: str | None, tasks: Sequence[TaskView]) -> str | None:
    """The workflow source with literal values of secret inputs replaced by the mask.

    A ``secret: true`` plugin input written literally in the workflow file is masked in the
    stored task inputs, but the source as run still holds it. Every ``<key>: <value>`` of such
    an input name (quoted, plain, or a ``|``/``>`` block) gets the mask, unless the value is a
    template (``{{ secrets.X }}`` holds no secret). Over-masking a same-named input elsewhere
    in the file is harmless here.
    """
    keys = _secret_keys(tasks)
    if not source or not keys:
        return source
    names = "|".join(re.escape(key) for key in sorted(keys))
    lead = rf"(?P<lead>(?:^|[\s{{,])[\"']?(?:{names})[\"']?[ \t]*:[ \t]*)"
    pattern = re.compile(
        lead + r"(?P<value>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\n]|'')*'"
        r"|[^\s,}\]#|>](?:[^,}\]#\n]*[^\s,}\]#])?)",
        re.MULTILINE,
    )

    def mask(match: re.Match[str]) -> str:
        if "{{" in match.group("value"):
            return match.group(0)
        return match.group("lead") + '"' + MASK + '"'

    masked = pattern.sub(mask, source)
    # Block scalars: the lines indented under `<key>: |` are the value.
    block = re.compile(
        rf"^(?P<indent>[ \t]*)[\"']?(?:{names})[\"']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*(?:#.*)?$"
    )
    lines = masked.split("\n")
    index = 0
    while index < len(lines):
        found = block.match(lines[index])
        index += 1
        if found is None:
            continue
        depth = len(found.group("indent"))
        body = index
        while body < len(lines) and (
            not lines[body].strip() or len(lines[body]) - len(lines[body].lstrip()) > depth
        ):
            body += 1
        if any("{{" in line for line in lines[index:body]):
            continue
        filled = [i for i in range(index, body) if lines[i].strip()]
        for i in filled:
            lines[i] = lines[i][: len(lines[i]) - len(lines[i].lstrip())] + MASK
        index = body
    return "\n".join(lines)


def _iso(ms: int | None) -> str | None:
    return iso_from_ms(ms) if ms is not None else None


def execution_document(execution: ExecutionOverview) -> dict[str, Any]:
    """The ``execution`` object: every ``executions`` column plus duration and liveness."""
    return {
        "execution_id": execution.execution_id,
        "workflow_id": execution.workflow_id,
        "state": execution.state,
        "in_progress": execution.in_progress,
        "trigger_type": execution.trigger_type,
        "reason_code": execution.reason_code,
        "message": execution.message,
        "failed_task_id": execution.failed_task_id,
        "created_at": _iso(execution.created_at),
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
        "updated_at": _iso(execution.updated_at),
        "duration_ms": execution.duration_ms,
        "log_entry_count": execution.log_entry_count,
        "cancel_requested_at": _iso(execution.cancel_requested_at),
        "cancelled_by": execution.cancelled_by,
        "cancel_reason": execution.cancel_reason,
        "inputs": execution.inputs,
        "workflow_source": execution.workflow_source,
        "engine_id": execution.engine_id,
        "engine_pid": execution.engine_pid,
        "engine_host": execution.engine_host,
        "heartbeat_at": _iso(execution.heartbeat_at),
        "observed_at": _iso(execution.observed_at),
    }


def _attempt(attempt: AttemptView) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "state": attempt.state,
        "reason": attempt.reason,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
        "duration_ms": attempt.duration_ms,
        "exit_code": attempt.exit_code,
        "error": attempt.error,
        "pid": attempt.pid,
        "pgid": attempt.pgid,
    }


def task_document(task: TaskView) -> dict[str, Any]:
    """One task run with its attempts, masked inputs, outputs and error."""
    return {
        "task_id": task.task_id,
        "position": task.position,
        "type": task.type,
        "state": task.state,
        "reason_code": task.reason_code,
        "needs": [dep.task_id for dep in task.needs],
        "need_states": {dep.task_id: dep.state for dep in task.needs},
        "attempt_count": task.attempt_count,
        "created_at": _iso(task.created_at),
        "queued_at": _iso(task.queued_at),
        "started_at": _iso(task.started_at),
        "ended_at": _iso(task.ended_at),
        "duration_ms": task.duration_ms,
        "attempts": [_attempt(a) for a in task.attempts],
        "inputs": task.inputs,
        "outputs": task.outputs,
        "error": task.error,
    }


def _event(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event_type": event.event_type,
        "timestamp": iso_from_ms(event.timestamp),
        "metadata": event.metadata,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _lane(lane: TaskTimeline) -> dict[str, Any]:
    return {
        "task_id": lane.task_id,
        "state": lane.state,
        "critical": lane.critical,
        "running": lane.running,
        "queued_ms": lane.queued_ms,
        "start_ms": lane.start_ms,
        "end_ms": lane.end_ms,
        "duration_ms": lane.duration_ms,
        "segments": [
            {
                "kind": s.kind,
                "attempt": s.attempt,
                "state": s.state,
                "start_ms": s.start_ms,
                "end_ms": s.end_ms,
            }
            for s in lane.segments
        ],
    }


def timeline_document(timeline: Timeline) -> dict[str, Any]:
    """The timeline model: origin (ISO), span, critical path and one lane per task."""
    return {
        "origin": iso_from_ms(timeline.origin),
        "span_ms": timeline.span_ms,
        "critical_path": list(timeline.critical_path),
        "lanes": [_lane(lane) for lane in timeline.lanes],
    }


def inspection_document(inspection: Inspection, task_id: str | None = None) -> dict[str, Any]:
    """The whole ``--json`` object; with ``task_id`` the task lists hold only that task."""
    tasks = inspection.tasks
    lanes = inspection.timeline.lanes
    timeline = timeline_document(inspection.timeline)
    if task_id is not None:
        tasks = tuple(t for t in tasks if t.task_id == task_id)
        timeline["lanes"] = [_lane(lane) for lane in lanes if lane.task_id == task_id]
    execution = execution_document(inspection.execution)
    # Secrets masked (CLI.md): the stored source may hold a literal secret input's value.
    execution["workflow_source"] = mask_source(
        inspection.execution.workflow_source, inspection.tasks
    )
    return {
        "execution": execution,
        "tasks": [task_document(t) for t in tasks],
        "audit_events": [_event(e) for e in inspection.audit_events],
        "timeline": timeline,
    }
