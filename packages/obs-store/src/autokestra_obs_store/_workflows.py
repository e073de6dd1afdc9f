"""The registered workflows (``workflow apply``), read-only: id, trigger, next cron fire.

The engine owns the writes of the ``workflows`` table (apply, delete, claiming a fire); this
is the read the web console needs without importing the engine.

    for workflow in registered_workflows(open_reader(db_path)):
        print(workflow.workflow_id, workflow.schedule, workflow.next_fire_at)
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

_LIST_SQL = (
    "SELECT workflow_id, source_path, enabled, trigger_type, schedule, created_at,"
    " updated_at, last_fired_at, next_fire_at FROM workflows ORDER BY workflow_id"
)


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One row of ``workflows`` without its source; times are Unix ms (None if never)."""

    workflow_id: str
    source_path: str | None
    enabled: bool
    trigger_type: str
    schedule: str | None
    created_at: int
    updated_at: int
    last_fired_at: int | None
    next_fire_at: int | None


def _opt_int(value: apsw.SQLiteValue) -> int | None:
    return value if isinstance(value, int) else None


def registered_workflows(conn: apsw.Connection) -> list[WorkflowSummary]:
    """Every registered workflow, by id (an empty list before the first ``apply``).

    Args:
        conn: any connection; a read-only one is enough.
    """
    return [
        WorkflowSummary(
            workflow_id=str(row[0]),
            source_path=None if row[1] is None else str(row[1]),
            enabled=bool(row[2]),
            trigger_type=str(row[3]),
            schedule=None if row[4] is None else str(row[4]),
            created_at=_opt_int(row[5]) or 0,
            updated_at=_opt_int(row[6]) or 0,
            last_fired_at=_opt_int(row[7]),
            next_fire_at=_opt_int(row[8]),
        )
        for row in conn.execute(_LIST_SQL).fetchall()
    ]
