"""The workflow registry: workflows applied with ``workflow apply``, whose cron triggers fire.

A registered workflow keeps the YAML it was applied with; the server re-parses it at each
fire (plugins may have changed since). Cron schedules are evaluated in UTC with croniter;
five fields (minute resolution) or six, the sixth being seconds (``* * * * * */5``).

    registry = WorkflowRegistry(writer)
    record, created = registry.apply(workflow)
    for due in registry.due(now_ms()):
        ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import apsw
from croniter import croniter

from autokestra_obs_schema import AutokestraError, Writer, iso_from_ms, now_ms

from ..language._model import Workflow
from ..language._plugin_registry import PluginRegistry
from ..language._problems import Problem
from ..language._secret_analysis import secret_input_values
from ..language._subflows import callee_problems
from ..language._workflow_parser import parse_workflow


class WorkflowNotRegistered(AutokestraError, LookupError):
    """No registered workflow has this id."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"Workflow not found: {workflow_id}")
        self.workflow_id = workflow_id


class RegistryError(AutokestraError, ValueError):
    """A workflow cannot be registered as it is (the message says why)."""


def validate_schedule(schedule: str) -> None:
    """Raise :class:`RegistryError` unless ``schedule`` is a 5- or 6-field cron expression."""
    fields = schedule.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(schedule):
        raise RegistryError(
            f"Invalid cron schedule {schedule!r}: expected 5 fields (minute hour day month "
            "weekday) or 6 (with seconds last), e.g. '*/5 * * * *'"
        )


def next_fire_ms(schedule: str, after_ms: int) -> int:
    """The first time strictly after ``after_ms`` (Unix ms) that ``schedule`` matches, in UTC."""
    validate_schedule(schedule)
    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    nxt = croniter(schedule, start).get_next(datetime)
    if not isinstance(nxt, datetime):  # pragma: no cover - croniter returns what it is asked
        raise RegistryError(f"croniter returned {nxt!r}")
    return int(nxt.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class RegisteredWorkflow:
    """One row of the ``workflows`` table (column names are the ``--json`` keys)."""

    workflow_id: str
    source: str
    source_path: str | None
    enabled: bool
    trigger_type: str
    schedule: str | None
    created_at: int
    updated_at: int
    last_fired_at: int | None
    next_fire_at: int | None

    def to_json(self) -> dict[str, object]:
        """The row as ``workflow list --json`` prints it (timestamps ISO-8601, no source)."""

        def iso(ms: int | None) -> str | None:
            return None if ms is None else iso_from_ms(ms)

        return {
            "workflow_id": self.workflow_id,
            "enabled": self.enabled,
            "trigger_type": self.trigger_type,
            "schedule": self.schedule,
            "source_path": self.source_path,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "last_fired_at": iso(self.last_fired_at),
            "next_fire_at": iso(self.next_fire_at),
        }


_COLUMNS = (
    "SELECT workflow_id, source, source_path, enabled, trigger_type, schedule, created_at,"
    " updated_at, last_fired_at, next_fire_at FROM workflows"
)
_LIST = _COLUMNS + " ORDER BY workflow_id"
_GET = _COLUMNS + " WHERE workflow_id = ?"
_DUE = (
    _COLUMNS + " WHERE enabled = 1 AND next_fire_at IS NOT NULL AND next_fire_at <= ?"
    " ORDER BY next_fire_at, workflow_id"
)
_INSERT = """
INSERT INTO workflows (workflow_id, source, source_path, enabled, trigger_type, schedule,
                       created_at, updated_at, last_fired_at, next_fire_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)
"""
_UPDATE = """
UPDATE workflows SET source = ?, source_path = ?, enabled = ?, trigger_type = ?, schedule = ?,
                     updated_at = ?, next_fire_at = ?
WHERE workflow_id = ?
"""
# Compare-and-set on next_fire_at: of two servers that saw the same due fire, one wins.
_CLAIM_FIRE = """
UPDATE workflows SET last_fired_at = ?, next_fire_at = ?
WHERE workflow_id = ? AND enabled = 1 AND next_fire_at = ?
"""
_DELETE = "DELETE FROM workflows WHERE workflow_id = ?"


def _row(row: tuple[apsw.SQLiteValue, ...]) -> RegisteredWorkflow:
    def opt_int(value: apsw.SQLiteValue) -> int | None:
        return value if isinstance(value, int) else None

    return RegisteredWorkflow(
        workflow_id=str(row[0]),
        source=str(row[1]),
        source_path=None if row[2] is None else str(row[2]),
        enabled=bool(row[3]),
        trigger_type=str(row[4]),
        schedule=None if row[5] is None else str(row[5]),
        created_at=int(row[6]) if isinstance(row[6], int) else 0,
        updated_at=int(row[7]) if isinstance(row[7], int) else 0,
        last_fired_at=opt_int(row[8]),
        next_fire_at=opt_int(row[9]),
    )


def _check_cron_inputs(workflow: Workflow) -> None:
    """A cron fire (or a webhook request) gives no inputs: every required one needs a default."""
    missing = [
        name for name, spec in workflow.inputs.items() if spec.required and spec.default is None
    ]
    if missing:
        raise RegistryError(
            f"Workflow {workflow.id} has a {workflow.trigger.type} trigger but required inputs"
            " without a "
            f"default: {', '.join(sorted(missing))}"
        )


def list_workflows(conn: apsw.Connection) -> list[RegisteredWorkflow]:
    """Every registered workflow, by id (any connection, read-only is enough)."""
    return [_row(r) for r in conn.execute(_LIST).fetchall()]


def get_workflow(conn: apsw.Connection, workflow_id: str) -> RegisteredWorkflow:
    """One registered workflow.

    Raises:
        WorkflowNotRegistered: no workflow has this id.
    """
    rows = conn.execute(_GET, (workflow_id,)).fetchall()
    if not rows:
        raise WorkflowNotRegistered(workflow_id)
    return _row(rows[0])


def registered_workflow(
    conn: apsw.Connection, workflow_id: str, plugins: PluginRegistry
) -> Workflow | None:
    """A registered workflow, parsed as it would run now; None when no workflow has this id.

    What a subflow task starts, and what ``validate`` checks subflow tasks against.

    Raises:
        WorkflowInvalid: it is registered but no longer loads (a plugin was removed).
    """
    rows = conn.execute(_GET, (workflow_id,)).fetchall()
    if not rows:
        return None
    record = _row(rows[0])
    return parse_workflow(record.source, plugins, filename=f"registered workflow {workflow_id}")


def check_subflows(
    workflow: Workflow,
    plugins: PluginRegistry,
    *,
    conn: apsw.Connection | None,
    alongside: Mapping[str, Workflow] | None = None,
) -> list[Problem]:
    """``validate``'s check of a workflow's subflow tasks against what they call.

    Args:
        workflow: a parsed workflow.
        plugins: to parse registered workflows.
        conn: a connection to the database whose registered workflows are callable (None:
            only ``alongside`` ones are).
        alongside: workflows validated together, by id: they count as registered (and win
            over a registered one), so a parent and its child validate before ``apply``.

    Returns:
        Every problem with its path (see :func:`callee_problems`).
    """
    together = dict(alongside or {})

    def lookup(workflow_id: str) -> Workflow | None:
        if workflow_id in together:
            return together[workflow_id]
        return None if conn is None else registered_workflow(conn, workflow_id, plugins)

    return callee_problems(workflow, lookup)


class WorkflowRegistry:
    """Writes of the ``workflows`` table, through the process's one writer."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def apply(
        self, workflow: Workflow, *, now: int | None = None
    ) -> tuple[RegisteredWorkflow, bool]:
        """Register or update ``workflow``; returns the stored row and whether it is new.

        A cron workflow's next fire is kept when its schedule and enabled flag did not
        change (re-applying does not postpone a fire), otherwise computed from now.
        ``enabled: false`` pauses the cron trigger; re-enabling schedules from now, so
        fires missed while paused are not replayed.

        Raises:
            RegistryError: invalid schedule, required inputs a cron fire cannot give, or a
                ``secret: true`` task input given a value in clear by the file (a literal or
                an input's default): the stored source would hold it, and a masked copy
                could not run.
        """
        defaults = {n: spec.default for n, spec in workflow.inputs.items() if spec.has_default}
        declared = secret_input_values(workflow, defaults)
        if declared:
            raise RegistryError(f"Workflow {workflow.id}: {declared.refusal('registered')}")
        at = now_ms() if now is None else now
        trigger_type = workflow.trigger.type
        schedule = workflow.trigger.schedule if trigger_type == "cron" else None
        if trigger_type == "cron":
            if not schedule:
                raise RegistryError(f"Workflow {workflow.id} has a cron trigger without schedule")
            validate_schedule(schedule)
        if trigger_type in ("cron", "webhook"):
            _check_cron_inputs(workflow)
        with self.writer.transaction() as conn:
            rows = conn.execute(_GET, (workflow.id,)).fetchall()
            old = _row(rows[0]) if rows else None
            next_fire: int | None = None
            if schedule is not None and workflow.enabled:
                keep = (
                    old is not None
                    and old.schedule == schedule
                    and old.enabled
                    and old.next_fire_at is not None
                )
                next_fire = (
                    old.next_fire_at if keep and old is not None else next_fire_ms(schedule, at)
                )
            params = (
                workflow.source,
                workflow.source_path,
                int(workflow.enabled),
                trigger_type,
                schedule,
            )
            if old is None:
                conn.execute(_INSERT, (workflow.id, *params, at, at, next_fire))
            else:
                conn.execute(_UPDATE, (*params, at, next_fire, workflow.id))
            stored = _row(conn.execute(_GET, (workflow.id,)).fetchall()[0])
        return stored, old is None

    def delete(self, workflow_id: str) -> None:
        """Unregister a workflow (its past executions stay).

        Raises:
            WorkflowNotRegistered: no workflow has this id.
        """
        with self.writer.transaction() as conn:
            conn.execute(_DELETE, (workflow_id,))
            if conn.changes() == 0:
                raise WorkflowNotRegistered(workflow_id)

    def due(self, now: int) -> list[RegisteredWorkflow]:
        """Enabled cron workflows whose next fire is at or before ``now``."""
        with self.writer.locked() as conn:
            return [_row(r) for r in conn.execute(_DUE, (now,)).fetchall()]

    def claim_fire(self, conn: apsw.Connection, due: RegisteredWorkflow, now: int) -> int | None:
        """Advance a due workflow's next fire; call inside the transaction creating its run.

        Fires missed while no server ran are not replayed: the next fire is computed from
        ``now``, so a server down for a day fires once, not 1,440 times.

        Returns:
            The new next fire time, or None when another server claimed this fire first
            (or the workflow was changed or paused meanwhile).
        """
        if due.schedule is None or due.next_fire_at is None:
            return None
        upcoming = next_fire_ms(due.schedule, max(now, due.next_fire_at))
        conn.execute(_CLAIM_FIRE, (now, upcoming, due.workflow_id, due.next_fire_at))
        return upcoming if conn.changes() == 1 else None


def describe_trigger(record: RegisteredWorkflow) -> str:
    """One line about a registered workflow's trigger, for ``apply`` and the server."""
    if record.trigger_type != "cron":
        return f"trigger {record.trigger_type}"
    if not record.enabled:
        return f"cron {record.schedule!r} paused (enabled: false)"
    nxt = "-" if record.next_fire_at is None else iso_from_ms(record.next_fire_at)
    return f"cron {record.schedule!r}, next fire {nxt}"
