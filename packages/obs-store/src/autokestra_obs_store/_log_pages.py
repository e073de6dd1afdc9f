"""Pages of an execution's log by log id: the web console's cursor (DESIGN.md §7).

``after`` walks forward from a log id (``/api/executions/<id>/logs?after=``), ``before`` walks
backward (older pages fetched on scroll). Both read on ``idx_logs_cursor (execution_id, id)``,
one statement per page, bounded by the high-water mark read in the same snapshot as the
execution's state: every id at or below it is committed, so a cursor taken from a page
(``next_after``) never skips or repeats an entry, whatever the interleaving of writers.

    page = log_page(store, execution_id, LogFilter(levels=frozenset({"ERROR"})), after=0)
    for record in page.records:
        print(record.id, record.message)
    more = log_page(store, execution_id, LogFilter(), after=page.next_after)
"""

from __future__ import annotations

from dataclasses import dataclass

from ._log_filter import LogFilter
from ._log_sql import PAGE_SIZE, Shape
from ._log_store import LogRecord, LogStore, _Query, id_ordered_family


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of matching entries, oldest first, and where the next pages start.

    Attributes:
        records: the entries, in id order (oldest first), at most the page limit.
        next_after: the cursor for the following forward page: the last id returned when
            the page is full, else the high-water mark (everything up to it was read).
        next_before: the cursor for the preceding backward page (the first id returned);
            None when the page is empty, or is a backward page that found the oldest entry.
        state: the execution's state in the snapshot the page was read from.
        high_water: the highest log id of the execution at that moment (0 without logs).
    """

    records: tuple[LogRecord, ...]
    next_after: int
    next_before: int | None
    state: str
    high_water: int


def log_page(
    store: LogStore,
    execution_id: str,
    filters: LogFilter | None = None,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> LogPage:
    """Read one page of the execution's log by log id.

    Args:
        store: the store to read with.
        execution_id: the execution.
        filters: level, task (a for_each task with its iterations), source, text and
            attempt filters (``since`` and ``tail`` are not used: a cursor replaces them).
        after: entries with a larger id, oldest first (the default, from 0).
        before: entries with a smaller id, the newest ``limit`` of them (still returned
            oldest first); excludes ``after``.
        limit: at most this many entries (1 to 1000).

    Returns:
        The page and its cursors.

    Raises:
        ExecutionNotFound: no execution has this id.
        ValueError: both ``after`` and ``before``, or a limit out of range.
    """
    if after is not None and before is not None:
        raise ValueError("give after or before, not both")
    if not 1 <= limit <= PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {PAGE_SIZE}")
    flt = filters if filters is not None else LogFilter()
    # A for_each task's page holds its iterations' entries too (as `logs --task` does).
    family = id_ordered_family(flt)
    conn = store.connection
    with store._one_snapshot():
        state, high = store.state_and_high_water(execution_id)
        if before is not None:
            upper = min(high, before - 1)
            query = _Query(execution_id, flt, upper, since=False, family=family)
            rows = query.fetch(conn, Shape.BEFORE_ID, before, limit) if upper > 0 else []
            rows.reverse()
            full = len(rows) == limit
            return LogPage(
                records=tuple(rows),
                next_after=rows[-1].id if rows else max(0, upper),
                next_before=rows[0].id if rows and full else None,
                state=state,
                high_water=high,
            )
        start = max(0, after or 0)
        query = _Query(execution_id, flt, high, since=False, family=family)
        found: list[LogRecord] = (
            query.fetch(conn, Shape.AFTER_ID, start, limit) if high > start else []
        )
    full = len(found) == limit
    return LogPage(
        records=tuple(found),
        next_after=found[-1].id if full else max(start, high),
        next_before=found[0].id if found else None,
        state=state,
        high_water=high,
    )
