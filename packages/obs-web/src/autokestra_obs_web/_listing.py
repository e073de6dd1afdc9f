"""One page of the executions list and where the next one starts (keyset, never OFFSET).

obs-store's ``list_executions`` pages by ``(created_at, execution_id)``; the console asks for
one row more than it shows, to know whether an ``Older`` link (or ``Link: rel="next"``) is
due without a second query. The rows become the ``execution list --json`` objects through
obs-store's one serializer, for the page and its JSON twin alike.

    page = list_page(conn, state=State.FAILED, limit=50)
    page.executions[0]["execution_id"], page.next_before
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from autokestra_obs_schema import State
from autokestra_obs_store import ExecutionCursor, execution_summary_document, list_executions


@dataclass(frozen=True, slots=True)
class ExecutionListPage:
    """``execution list --json`` objects, newest first, and the next page's cursor."""

    executions: list[dict[str, Any]]
    #: The last row's key when older executions match, else None.
    next_before: ExecutionCursor | None


def list_page(
    conn: apsw.Connection,
    *,
    workflow_id: str | None = None,
    state: State | None = None,
    before: ExecutionCursor | None = None,
    limit: int = 50,
) -> ExecutionListPage:
    """Read one page of executions, newest first.

    Args:
        conn: a read-only connection.
        workflow_id: only this workflow's executions.
        state: only executions in this state.
        before: the previous page's cursor.
        limit: rows shown on the page.
    """
    rows = list_executions(
        conn, workflow_id=workflow_id, state=state, before=before, limit=limit + 1
    )
    more = len(rows) > limit
    shown = rows[:limit]
    return ExecutionListPage(
        executions=[execution_summary_document(row) for row in shown],
        next_before=shown[-1].cursor if more else None,
    )
