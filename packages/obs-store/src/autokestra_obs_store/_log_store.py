"""Reading an execution's logs: filtered, oldest first, page by page, any size.

:class:`LogStore` works on a read-only connection and never imports the engine. Results are
iterators fetched by keyset pagination on ``(timestamp, id)`` in pages of 1000 rows (never
OFFSET), one short statement per page, so memory does not grow with the log and a running
writer's checkpoints are never blocked for long.

    store = LogStore(open_reader(path))
    for record in store.logs_for_execution(execution_id, LogFilter(levels=frozenset({"ERROR"}))):
        print(record.timestamp, record.message)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import chain, compress
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import apsw

from ._errors import ExecutionNotFound
from ._log_filter import LogFilter, like_contains
from ._log_sql import (
    MAX_INT64,
    MIN_INT64,
    PAGE_SIZE,
    STATE_AND_HIGH_WATER_SQL,
    WINDOW_SQL,
    Shape,
    select_sql,
)

if TYPE_CHECKING:
    from ._follow import LogFollower

#: States after which an execution writes no more logs.
TERMINAL_STATES: frozenset[str] = frozenset({"SUCCESS", "FAILED", "CANCELLED"})

Row = tuple[Any, ...]


class LogRecord(NamedTuple):
    """One stored log entry (an immutable record; field names mirror the columns).

    A ``NamedTuple`` rather than a frozen dataclass: a page of rows becomes records in C
    (``tuple.__new__``), about 3x cheaper than a dataclass ``__init__``, which is what keeps
    the store within 1.5x of raw SQL (docs/performance.md).

    Attributes:
        id: the row id, the order of record.
        execution_id: the execution the entry belongs to.
        task_id: the task, or ``None`` for execution-level entries.
        attempt: the attempt number of the task, or ``None`` outside a task attempt.
        timestamp: Unix milliseconds, UTC.
        level: ``DEBUG``, ``INFO``, ``WARN`` or ``ERROR``.
        source: ``scheduler``, ``worker`` or ``plugin:<ns>/<plugin>.<action>``.
        message: the message, as stored (untrusted: escape before printing to a terminal).
        metadata: the parsed metadata object, or ``None``.
    """

    id: int
    execution_id: str
    task_id: str | None
    attempt: int | None
    timestamp: int
    level: str
    source: str
    message: str
    metadata: dict[str, Any] | None


_make_record = partial(tuple.__new__, LogRecord)
#: Rows asked for per forward page: one more than yielded, to see the end without a query.
_PROBE = PAGE_SIZE + 1
_metadata_of = itemgetter(8)
_METADATA = 8


def _parse_metadata(text: str) -> dict[str, Any]:
    value = json.loads(text)
    # The collector always stores an object; anything else is kept, wrapped, not dropped.
    return value if isinstance(value, dict) else {"value": value}


def records_from_rows(rows: Sequence[Row]) -> list[LogRecord]:
    """Turn one page of ``execution_logs`` rows into records, parsing metadata JSON."""
    records = list(map(_make_record, rows))
    # Only the few rows with metadata take a Python-level step (compress runs in C).
    for index in compress(range(len(rows)), map(_metadata_of, rows)):
        row = rows[index]
        records[index] = _make_record((*row[:_METADATA], _parse_metadata(row[_METADATA])))
    return records


#: The SQL function of a ``--grep`` text with non-ASCII letters (``_log_sql._TEXT_FOLD``).
ICONTAINS_FUNCTION = "autokestra_icontains"


def _icontains(*args: apsw.SQLiteValue) -> bool:
    """``needle`` (already casefolded) occurs in ``message``, ignoring case (any script)."""
    message, needle = args
    return isinstance(message, str) and isinstance(needle, str) and needle in message.casefold()


class _Query:
    """One filtered query of one execution: SQL variants and the parameters they share."""

    def __init__(
        self,
        execution_id: str,
        flt: LogFilter,
        upper_id: int,
        *,
        since: bool,
        window: tuple[int, int] | None = None,
    ) -> None:
        #: The execution's (first, last) log timestamps; task queries stay inside them.
        self.window = window
        ascii_text = (flt.text or "").isascii()
        self.flags = {
            "task": flt.task_id is not None,
            "levels": flt.levels is not None,
            "source": bool(flt.source),
            "text": bool(flt.text) and ascii_text,
            "fold": bool(flt.text) and not ascii_text,
            "attempt": flt.attempt is not None,
            "since": since and flt.since_ms is not None,
        }
        params: list[Any] = [execution_id]
        if flt.task_id is not None:
            params.append(flt.task_id)
        if flt.levels is not None:
            chosen = sorted(flt.levels)
            params.extend((chosen * 4)[:4])
        if flt.source:
            params.extend((len(flt.source), flt.source))
        if flt.text:
            # LIKE (index-friendly, C speed) folds ASCII letters; other letters need casefold.
            params.append(like_contains(flt.text) if ascii_text else flt.text.casefold())
        if flt.attempt is not None:
            params.append(flt.attempt)
        if since and flt.since_ms is not None:
            params.append(flt.since_ms)
        self.params = tuple(params)
        self.upper: tuple[int, ...] = (upper_id,)
        if flt.task_id is not None:
            low, high = window if window is not None else (MIN_INT64, MAX_INT64)
            self.forward_tail: tuple[int, ...] = (high, upper_id)
            self.backward_tail: tuple[int, ...] = (low, upper_id)
        else:
            self.forward_tail = self.backward_tail = self.upper

    @property
    def first_timestamp(self) -> int:
        """Where a forward walk may start: the window's start (or the smallest integer)."""
        return self.window[0] if self.window is not None else MIN_INT64

    @property
    def last_timestamp(self) -> int:
        """Where a backward walk may start: the window's end (or the largest integer)."""
        return self.window[1] if self.window is not None else MAX_INT64

    def fetch(self, conn: apsw.Connection, shape: Shape, *extra: int) -> list[Row]:
        sql = select_sql(shape, **self.flags)
        if not (self.flags["task"] and shape.windowed):
            middle = self.upper
        else:
            middle = self.backward_tail if shape.backward else self.forward_tail
        # fetchall: the statement is finished (and its read snapshot released) at once.
        return conn.execute(sql, self.params + middle + extra).fetchall()


class LogStore:
    """Read-only queries over ``execution_logs`` (by execution, by task, tail, follow).

    Args:
        conn: a read-only connection (``autokestra_obs_schema.open_reader``).
    """

    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn
        conn.create_scalar_function(ICONTAINS_FUNCTION, _icontains, 2, deterministic=True)

    @property
    def connection(self) -> apsw.Connection:
        """The read-only connection the store reads with."""
        return self._conn

    def follow(
        self,
        execution_id: str,
        filters: LogFilter | None = None,
        *,
        poll_s: float = 0.1,
        stop: threading.Event | None = None,
        on_idle: Callable[[], object] | None = None,
    ) -> LogFollower:
        """Follow the execution's log until it ends: see :class:`LogFollower`.

        Raises:
            ExecutionNotFound: no execution has this id (raised here, not on iteration).
        """
        from ._follow import LogFollower

        return LogFollower(self, execution_id, filters, poll_s=poll_s, stop=stop, on_idle=on_idle)

    # -- execution state -------------------------------------------------------------

    def state_and_high_water(self, execution_id: str) -> tuple[str, int]:
        """Return the execution's state and its highest visible log id (0 without logs).

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        rows = self._conn.execute(STATE_AND_HIGH_WATER_SQL, (execution_id,)).fetchall()
        if not rows:
            raise ExecutionNotFound(execution_id)
        state, high = rows[0]
        return str(state), int(high or 0)

    def execution_state(self, execution_id: str) -> str:
        """Return the execution's state (``PENDING`` ... ``CANCELLED``).

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        return self.state_and_high_water(execution_id)[0]

    # -- queries ---------------------------------------------------------------------

    def logs_for_execution(
        self, execution_id: str, filters: LogFilter | None = None
    ) -> Iterator[LogRecord]:
        """Every matching entry of the execution, ordered by ``(timestamp, id)``.

        The result is the log as it stood when the call was made: entries written later are
        left to :meth:`follow`. The existence check runs at once, not on first iteration.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        flt = filters if filters is not None else LogFilter()
        _, high = self.state_and_high_water(execution_id)
        return self.existing(execution_id, flt, high)

    def logs_for_task(
        self, execution_id: str, task_id: str, filters: LogFilter | None = None
    ) -> Iterator[LogRecord]:
        """Every matching entry of one task of the execution, ordered by ``(timestamp, id)``.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        flt = filters if filters is not None else LogFilter()
        return self.logs_for_execution(execution_id, flt.with_task(task_id))

    def existing(self, execution_id: str, flt: LogFilter, high: int) -> Iterator[LogRecord]:
        """Matching entries with ``id <= high`` in ``(timestamp, id)`` order (tail applied)."""
        if high <= 0:
            return iter(())
        window = None
        if flt.task_id is not None:
            first, last = self._conn.execute(WINDOW_SQL, (execution_id,)).fetchall()[0]
            if isinstance(first, int) and isinstance(last, int):
                window = (first, last)
        query = _Query(execution_id, flt, high, since=False, window=window)
        if flt.tail is None:
            return chain.from_iterable(self._forward(query, flt.since_ms, None))
        return self._tail(query, flt)

    def _forward(
        self, query: _Query, since_ms: int | None, after: tuple[int, int] | None
    ) -> Iterator[list[LogRecord]]:
        """Forward keyset pages: from ``since_ms`` (inclusive), or after the key ``after``.

        Yields whole pages: callers flatten them with ``chain.from_iterable``, which walks the
        records in C instead of resuming this generator once per record.

        Each page asks for one row more than it yields: a short answer proves the end, so a
        result that fills its last page exactly needs no extra empty query.
        """
        conn = self._conn
        if after is None:
            start = query.first_timestamp
            if since_ms is not None:
                start = max(start, since_ms)
            rows = query.fetch(conn, Shape.FROM_TS, start, _PROBE)
        else:
            rows = self._page_after(query, after)
        while len(rows) > PAGE_SIZE:
            del rows[PAGE_SIZE:]
            yield records_from_rows(rows)
            last = rows[-1]
            rows = self._page_after(query, (last[4], last[0]))
        if rows:
            yield records_from_rows(rows)

    def _page_after(self, query: _Query, key: tuple[int, int]) -> list[Row]:
        """Up to a page and one row after ``key``, in ``(timestamp, id)`` order."""
        timestamp, row_id = key
        rows = query.fetch(self._conn, Shape.SAME_TS_AFTER, timestamp, row_id, _PROBE)
        if len(rows) < _PROBE:
            rows += query.fetch(self._conn, Shape.AFTER_TS, timestamp, _PROBE - len(rows))
        return rows

    def _backward(self, query: _Query, limit: int) -> Iterator[list[Row]]:
        """Backward keyset pages (newest first) of at most ``limit`` rows each."""
        conn = self._conn
        rows = query.fetch(conn, Shape.UNTIL_TS, query.last_timestamp, limit)
        while rows:
            yield rows
            if len(rows) < limit:
                return
            timestamp, row_id = rows[-1][4], rows[-1][0]
            rows = query.fetch(conn, Shape.SAME_TS_BEFORE, timestamp, row_id, limit)
            if len(rows) < limit:
                rows += query.fetch(conn, Shape.BEFORE_TS, timestamp, limit - len(rows))

    def _tail(self, query: _Query, flt: LogFilter) -> Iterator[LogRecord]:
        """The last ``flt.tail`` matching entries (at or after ``since``), oldest first."""
        assert flt.tail is not None
        since = MIN_INT64 if flt.since_ms is None else flt.since_ms
        if flt.tail <= PAGE_SIZE:
            # One backward statement; fewer rows than a page, so holding them is fine.
            page = next(self._backward(query, flt.tail), [])
            kept = [row for row in page if row[4] >= since]
            kept.reverse()
            return iter(records_from_rows(kept))
        # A large tail: walk backward counting (one page in memory), then stream forward from
        # the oldest entry of the tail.
        remaining = flt.tail
        first: tuple[int, int] | None = None
        for page in self._backward(query, PAGE_SIZE):
            for row in page:
                if row[4] < since:
                    remaining = 0
                    break
                first = (row[4], row[0])
                remaining -= 1
                if remaining == 0:
                    break
            if remaining == 0:
                break
        if first is None:
            return iter(())
        return chain.from_iterable(self._forward(query, None, (first[0], first[1] - 1)))
