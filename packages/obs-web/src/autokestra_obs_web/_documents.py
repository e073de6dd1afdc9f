"""The JSON documents the console serves: the CLI's ``--json`` objects, one serializer each.

ADAPTER, to be pointed at obs-store: the tidy-up moves the CLI's ``--json`` serializers
(``execution_summary_document``, ``inspection_document``, ``log_record_document``) and a keyset
execution listing into obs-store as public functions. Until that lands on main, this module
holds the same code so the views are written against their final names; once it lands, each
function here becomes a re-export of obs-store's and nothing else in obs-web changes. Every
view and template reads these documents: an HTML page and its JSON twin come from one
object, never from two assemblies of the same rows.

    doc = inspection_document(ExecutionInspector(conn).snapshot(execution_id))
    doc["execution"]["state"], [task["task_id"] for task in doc["tasks"]]
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from autokestra_obs_schema import SECRET_MASK, iso_from_ms
from autokestra_obs_store import (
    AttemptView,
    AuditEvent,
    ExecutionOverview,
    Inspection,
    LogRecord,
    TaskTimeline,
    TaskView,
    Timeline,
)


def _iso(ms: int | None) -> str | None:
    return iso_from_ms(ms) if ms is not None else None


# -- masking the workflow source (as the CLI's inspect --json does) --------------------------


def _secret_keys(inputs: Sequence[Any]) -> set[str]:
    """Input names stored fully masked: ``secret: true`` plugin inputs (or a whole template)."""
    return {
        str(key)
        for value in inputs
        if isinstance(value, dict)
        for key, item in value.items()
        if item == SECRET_MASK
    }


def mask_source(source: str | None, task_inputs: Sequence[Any]) -> str | None:
    """The workflow source with literal values of secret inputs replaced by the mask.

    A ``secret: true`` plugin input written literally in the workflow file is masked in the
    stored task inputs, but the source as run still holds it: every ``<key>: <value>`` of
    such an input name gets the mask unless the value is a template.
    """
    keys = _secret_keys(task_inputs)
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
        return match.group("lead") + '"' + SECRET_MASK + '"'

    masked = pattern.sub(mask, source)
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
        for i in range(index, body):
            if lines[i].strip():
                lines[i] = lines[i][: len(lines[i]) - len(lines[i].lstrip())] + SECRET_MASK
        index = body
    return "\n".join(lines)


# -- inspect --json ----------------------------------------------------------------------------


def execution_document(execution: ExecutionOverview) -> dict[str, Any]:
    """The ``execution`` object of ``inspect --json``."""
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


def _task(task: TaskView) -> dict[str, Any]:
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


def _timeline(timeline: Timeline) -> dict[str, Any]:
    return {
        "origin": iso_from_ms(timeline.origin),
        "span_ms": timeline.span_ms,
        "critical_path": list(timeline.critical_path),
        "lanes": [_lane(lane) for lane in timeline.lanes],
    }


def inspection_document(inspection: Inspection) -> dict[str, Any]:
    """The whole ``inspect --json`` object (secrets masked, values never truncated)."""
    execution = execution_document(inspection.execution)
    execution["workflow_source"] = mask_source(
        inspection.execution.workflow_source, [task.inputs for task in inspection.tasks]
    )
    return {
        "execution": execution,
        "tasks": [_task(t) for t in inspection.tasks],
        "audit_events": [_event(e) for e in inspection.audit_events],
        "timeline": _timeline(inspection.timeline),
    }


# -- logs --json ---------------------------------------------------------------------------


def log_record_document(record: LogRecord) -> dict[str, Any]:
    """One entry as ``logs --json`` prints it (timestamp ISO-8601, metadata an object)."""
    return {
        "id": record.id,
        "execution_id": record.execution_id,
        "task_id": record.task_id,
        "attempt": record.attempt,
        "timestamp": iso_from_ms(record.timestamp),
        "level": record.level,
        "source": record.source,
        "message": record.message,
        "metadata": record.metadata,
    }


# -- execution list --json -------------------------------------------------------------------

_TIMESTAMP_COLUMNS = frozenset(
    {"created_at", "started_at", "ended_at", "updated_at", "cancel_requested_at", "heartbeat_at"}
)

# Newest first by (created_at, execution_id); the cursor is the last row's key.
_LIST_SQL = (
    "SELECT * FROM executions WHERE (?1 IS NULL OR workflow_id = ?1)"
    " AND (?2 IS NULL OR state = ?2)"
    " AND (?3 IS NULL OR created_at < ?3 OR (created_at = ?3 AND execution_id < ?4))"
    " ORDER BY created_at DESC, execution_id DESC LIMIT ?5"
)
_TASK_INPUTS_SQL = (
    "SELECT execution_id, inputs FROM task_runs WHERE inputs IS NOT NULL"
    " AND execution_id IN (SELECT value FROM json_each(?))"
)


@dataclass(frozen=True, slots=True)
class ExecutionListPage:
    """A page of ``execution list --json`` objects, newest first, and the next page's key."""

    executions: list[dict[str, Any]]
    #: ``(created_at ms, execution_id)`` of the last row when more may follow, else None.
    next_before: tuple[int, str] | None


def execution_summary_document(row: dict[str, Any]) -> dict[str, Any]:
    """An ``executions`` row as ``execution list --json`` shows it."""
    shown: dict[str, Any] = {}
    for key, value in row.items():
        if key in _TIMESTAMP_COLUMNS and value is not None:
            shown[key] = iso_from_ms(int(value))
        elif key == "inputs" and isinstance(value, str):
            shown[key] = json.loads(value)
        else:
            shown[key] = value
    return shown


def list_executions(
    conn: apsw.Connection,
    *,
    workflow_id: str | None = None,
    state: str | None = None,
    before: tuple[int, str] | None = None,
    limit: int = 50,
) -> ExecutionListPage:
    """One keyset page of executions, newest first, as ``execution list --json`` objects.

    Args:
        conn: a read-only connection.
        workflow_id: only this workflow's executions.
        state: only executions in this state.
        before: the ``(created_at, execution_id)`` key of the previous page's last row.
        limit: page size.
    """
    created, last_id = before if before is not None else (None, None)
    cursor = conn.cursor()
    cursor.execute(_LIST_SQL, (workflow_id, state, created, last_id, limit + 1))
    names: list[str] = []
    raw: list[dict[str, Any]] = []
    for row in cursor:
        if not names:
            names = [column[0] for column in cursor.getdescription()]
        raw.append(dict(zip(names, row, strict=True)))
    more = len(raw) > limit
    del raw[limit:]
    shown = [execution_summary_document(row) for row in raw]
    with_source = [row["execution_id"] for row in shown if row.get("workflow_source")]
    if with_source:
        inputs: dict[str, list[Any]] = {}
        for execution_id, text in conn.execute(_TASK_INPUTS_SQL, (json.dumps(with_source),)):
            inputs.setdefault(str(execution_id), []).append(json.loads(str(text)))
        for row in shown:
            found = inputs.get(str(row["execution_id"]))
            if found:
                row["workflow_source"] = mask_source(row["workflow_source"], found)
    last = raw[-1] if raw and more else None
    next_before = (int(last["created_at"]), str(last["execution_id"])) if last else None
    return ExecutionListPage(executions=shown, next_before=next_before)
