"""Reading an execution's logs: filtered, oldest first, page by page, any size.

:class:`LogStore` works on a read-only connection and never imports the engine. Results are
iterators fetched by keyset pagination on ``(timestamp, id)`` in pages of 1000 rows (never
OFFSET), one short statement per page, so memory does not grow with the log and a running
writer's checkpoints are never blocked for long.

    store = LogStore(open_reader(path))
    errors = LogFilter(levels=frozenset({LogLevel.ERROR}))
    for record in store.logs_for_execution(execution_id, errors):
        print(record.timestamp, record.message)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Final

import apsw

from autokestra_obs_schema import ExecutionNotFound

from ._log_filter import LogFilter, like_contains
from ._log_sql import (
    ITERATIONS_SQL,
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
    from ._search import SearchFilter, SearchHit

#: Hits ``LogStore.search`` returns when the caller gives no limit (CLI.md: 100).
DEFAULT_SEARCH_LIMIT = 100


def iteration_prefix(task_id: str) -> str:
    """What the ids of a for_each task's iterations start with: ``process[``."""
    return task_id + "["


def id_ordered_family(flt: LogFilter) -> bool:
    """Whether an id-ordered read (follow, the console's pages) includes the iterations of
    the filter's task: always, unless it names one iteration. On ``idx_logs_cursor`` the
    family test costs what the task test does, so no ``task_runs`` lookup is needed, and a
    reader started before a fan-out still gets its iterations."""
    return flt.task_id is not None and "[" not in flt.task_id


def _column(index: int, doc: str) -> Any:
    """A read-only property for column ``index`` of a record (``itemgetter`` runs in C)."""
    return property(itemgetter(index), doc=doc)


class LogRecord(tuple[int, str, str | None, int | None, int, str, str, str, str | None]):
    """One stored log entry: an immutable row of ``execution_logs``, its columns in order.

    A tuple subclass without a ``__new__`` of its own, so ``LogRecord(row)`` is tuple's C
    constructor, run as each row is read; and metadata stays the stored JSON text until
    :attr:`metadata` is read (few entries have any, and the record holds nothing mutable).
    That is what keeps the store within 1.5x of a raw ``fetchall`` (docs/performance.md): a
    ``NamedTuple`` costs about 25% more per record here (its Python ``__new__`` has to be
    bypassed through ``tuple.__new__``), a frozen dataclass about 3x. Records unpack like the
    row they are, the fastest way to read several columns::

        record = LogRecord((7, "e1", "build", 1, 1764091921000, LogLevel.INFO, "w", "hi", None))
        record.message, record.metadata  # ('hi', None)
        id_, execution_id, task_id, attempt, timestamp, level, source, message, _ = record
    """

    __slots__ = ()

    id: Final[int] = _column(0, "The row id, the order of record.")
    execution_id: Final[str] = _column(1, "The execution the entry belongs to.")
    task_id: Final[str | None] = _column(2, "The task, or None for execution-level entries.")
    attempt: Final[int | None] = _column(3, "The task's attempt number, or None outside one.")
    timestamp: Final[int] = _column(4, "Unix milliseconds, UTC.")
    level: Final[str] = _column(5, "DEBUG, INFO, WARN or ERROR.")
    source: Final[str] = _column(6, "scheduler, worker or plugin:<ns>/<plugin>.<action>.")
    message: Final[str] = _column(
        7, "The message as stored (untrusted: escape it before printing to a terminal)."
    )
    metadata_json: Final[str | None] = _column(8, "The metadata as stored (JSON), or None.")

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The metadata object, or ``None``: parsed on each read, a new dict each time."""
        text = self[8]
        if text is None:
            return None
        value = json.loads(text)
        # The collector always stores an object; anything else is kept, wrapped, not dropped.
        return value if isinstance(value, dict) else {"value": value}

    def __repr__(self) -> str:
        return "LogRecord(" + ", ".join(map("{}={!r}".format, _FIELDS, self)) + ")"


#: The column names, in order (what a ``repr`` shows).
_FIELDS = (
    "id",
    "execution_id",
    "task_id",
    "attempt",
    "timestamp",
    "level",
    "source",
    "message",
    "metadata_json",
)
#: Rows asked for per forward page: one more than yielded, to see the end without a query.
_PROBE = PAGE_SIZE + 1


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
        family: bool = False,
    ) -> None:
        #: The execution's (first, last) log timestamps; task queries stay inside them.
        self.window = window
        #: The task's for_each iterations are selected with it (see ``_log_sql``).
        self.family = family = family and flt.task_id is not None
        ascii_text = (flt.text or "").isascii()
        self.flags = {
            "task": flt.task_id is not None,
            "family": family,
            "levels": 0 if flt.levels is None else len(flt.levels),
            "source": bool(flt.source),
            "text": bool(flt.text) and ascii_text,
            "fold": bool(flt.text) and not ascii_text,
            "attempt": flt.attempt is not None,
            "since": since and flt.since_ms is not None,
        }
        params: list[Any] = [execution_id]
        if flt.task_id is not None:
            params.append(flt.task_id)
            if family:
                prefix = iteration_prefix(flt.task_id)
                params.extend((len(prefix), prefix))
        if flt.levels is not None:
            params.extend(sorted(flt.levels))
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
        if flt.task_id is not None and not family:
            low, high = window if window is not None else (MIN_INT64, MAX_INT64)
            self.forward_tail: tuple[int, ...] = (high, upper_id)
            self.backward_tail: tuple[int, ...] = (low, upper_id)
        else:
            self.forward_tail = self.backward_tail = self.upper

    @property
    def first_timestamp(self) -> int:
        """Where a forward walk may start: the window's start (or the smallest integer)."""
        return self.window[0] if self.window is not None else MIN_INT64

    def start(self, since_ms: int | None) -> int:
        """The first timestamp a forward walk reads: ``since_ms`` inside the window."""
        start = self.first_timestamp
        return start if since_ms is None else max(start, since_ms)

    @property
    def last_timestamp(self) -> int:
        """Where a backward walk may start: the window's end (or the largest integer)."""
        return self.window[1] if self.window is not None else MAX_INT64

    def fetch(self, conn: apsw.Connection, shape: Shape, *extra: int) -> list[LogRecord]:
        sql = select_sql(shape, **self.flags)
        if not (self.flags["task"] and shape.windowed) or self.family:
            middle = self.upper
        else:
            middle = self.backward_tail if shape.backward else self.forward_tail
        # Read to the end at once: the statement is finished and its read snapshot released
        # before any record reaches the caller. Each row becomes its record as it is read,
        # so the row tuple is recycled at once instead of a page of rows and a page of
        # records both living until the page is converted.
        return list(map(LogRecord, conn.execute(sql, self.params + middle + extra)))


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

    def search(
        self,
        query: str,
        filters: SearchFilter | None = None,
        *,
        limit: int = DEFAULT_SEARCH_LIMIT,
        before_id: int | None = None,
        highlight: bool = False,
    ) -> Iterator[SearchHit]:
        """Full-text search over every execution's log, newest first: see ``_search.py``.

        Args:
            query: FTS5 query syntax (every word must match, ``"phrase"``, ``prefix*``).
            filters: workflow, task, level set, since, until.
            limit: the most hits to return.
            before_id: keyset cursor: only hits with a smaller log id (the next page).
            highlight: fill each hit's ``highlighted`` message (see ``SearchHit.segments``).

        Raises:
            InvalidSearchQuery: FTS5 cannot parse the query (raised here, not on iteration).
        """
        from ._search import SearchFilter, search_hits

        flt = filters if filters is not None else SearchFilter()
        return search_hits(
            self._conn, query, flt, limit=limit, before_id=before_id, highlight=highlight
        )

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

        The result is the log as it stood when the call was made: entries committed after
        it returns are left to :meth:`follow`. The first page is read at once, so a missing
        execution raises here, not on first iteration.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        flt = filters if filters is not None else LogFilter()
        long_tail = flt.tail is not None and flt.tail > PAGE_SIZE
        # The reads that fix what the answer holds share one snapshot: the task window, the
        # first page and the high-water mark. A batch committed between two of them would
        # otherwise be split: a task window read before it cuts off part of it; entries of it
        # stamped before the first page's last key would be skipped while later ones are
        # returned. The snapshot is released before any record reaches the caller.
        with self._one_snapshot():
            window, family = self._task_scope(execution_id, flt)
            if long_tail:
                # Counting back over several pages needs one fixed bound from the start.
                _, high = self.state_and_high_water(execution_id)
            else:
                # Most answers are one page: one statement, and no high-water read at all.
                query = _Query(
                    execution_id, flt, MAX_INT64, since=False, window=window, family=family
                )
                if flt.tail is not None:
                    page = self._short_tail(query, flt)
                else:
                    page = query.fetch(self._conn, Shape.FROM_TS, query.start(flt.since_ms), _PROBE)
                if len(page) <= PAGE_SIZE:
                    if not page:
                        self.execution_state(execution_id)  # raises ExecutionNotFound
                    return iter(page)
                _, high = self.state_and_high_water(execution_id)
        if long_tail:
            return self._bounded(execution_id, flt, high, window, family)
        # Later pages stop at the high-water mark of the first page's snapshot: entries
        # committed after it are left to follow().
        last, probe = page[PAGE_SIZE - 1], page[PAGE_SIZE]
        del page[PAGE_SIZE:]
        rest = _Query(execution_id, flt, high, since=False, window=window, family=family)
        pages = self._forward(rest, None, (last.timestamp, last.id), probe.timestamp)
        return chain(page, chain.from_iterable(pages))

    def logs_for_task(
        self, execution_id: str, task_id: str, filters: LogFilter | None = None
    ) -> Iterator[LogRecord]:
        """Every matching entry of one task of the execution, ordered by ``(timestamp, id)``.

        A ``for_each`` task's entries include those of its iterations (``task[0]``...);
        ``task[3]`` names one iteration.

        Raises:
            ExecutionNotFound: no execution has this id.
        """
        flt = filters if filters is not None else LogFilter()
        return self.logs_for_execution(execution_id, flt.with_task(task_id))

    def existing(self, execution_id: str, flt: LogFilter, high: int) -> Iterator[LogRecord]:
        """Matching entries with ``id <= high`` in ``(timestamp, id)`` order (tail applied)."""
        window, family = self._task_scope(execution_id, flt)
        return self._bounded(execution_id, flt, high, window, family)

    @contextmanager
    def _one_snapshot(self) -> Iterator[None]:
        """Make the statements run inside read one snapshot of the database.

        A deferred ``BEGIN`` on the read-only connection (a read transaction: it takes no
        lock a writer waits for, and ``BEGIN IMMEDIATE`` is for writes); about 4 µs. Inside
        a caller's own transaction the statements share its snapshot already.
        """
        conn = self._conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _task_scope(self, execution_id: str, flt: LogFilter) -> tuple[tuple[int, int] | None, bool]:
        """For a task query: the execution's first and last log timestamps (``None`` without
        logs), and whether the task has for_each iterations to include. ``(None, False)``
        when no task is asked for."""
        if flt.task_id is None:
            return None, False
        first, last = self._conn.execute(WINDOW_SQL, (execution_id,)).fetchall()[0]
        window = (first, last) if isinstance(first, int) and isinstance(last, int) else None
        return window, self.has_iterations(execution_id, flt.task_id)

    def has_iterations(self, execution_id: str, task_id: str) -> bool:
        """Whether ``task_id`` is a for_each task whose iterations have task runs."""
        if "[" in task_id:
            return False  # an iteration itself (task ids cannot hold "[")
        first = iteration_prefix(task_id) + "0]"
        return bool(self._conn.execute(ITERATIONS_SQL, (execution_id, first)).fetchall())

    def _bounded(
        self,
        execution_id: str,
        flt: LogFilter,
        high: int,
        window: tuple[int, int] | None,
        family: bool,
    ) -> Iterator[LogRecord]:
        """Matching entries with ``id <= high``, every page bounded by it (tail applied)."""
        if high <= 0:
            return iter(())
        query = _Query(execution_id, flt, high, since=False, window=window, family=family)
        if flt.tail is None:
            return chain.from_iterable(self._forward(query, flt.since_ms, None))
        if flt.tail <= PAGE_SIZE:
            return iter(self._short_tail(query, flt))
        return self._long_tail(query, flt)

    def _forward(
        self,
        query: _Query,
        since_ms: int | None,
        after: tuple[int, int] | None,
        next_timestamp: int | None = None,
    ) -> Iterator[list[LogRecord]]:
        """Forward keyset pages: from ``since_ms`` (inclusive), or after the key ``after``.

        Yields whole pages: callers flatten them with ``chain.from_iterable``, which walks the
        records in C instead of resuming this generator once per record.

        Each page asks for one row more than it yields: a short answer proves the end, so a
        result that fills its last page exactly needs no extra empty query, and the extra row
        tells where the next page starts (see :meth:`_page_after`).
        """
        if after is None:
            page = query.fetch(self._conn, Shape.FROM_TS, query.start(since_ms), _PROBE)
        else:
            page = self._page_after(query, after, next_timestamp)
        while len(page) > PAGE_SIZE:
            last, probe = page[PAGE_SIZE - 1], page[PAGE_SIZE]
            del page[PAGE_SIZE:]
            yield page
            page = self._page_after(query, (last.timestamp, last.id), probe.timestamp)
        if page:
            yield page

    def _page_after(
        self, query: _Query, key: tuple[int, int], next_timestamp: int | None = None
    ) -> list[LogRecord]:
        """Up to a page and one row after ``key``, in ``(timestamp, id)`` order.

        ``next_timestamp`` is that of the entry known to follow ``key`` (the previous page's
        extra row): when it is later than the key's, nothing shares the key's timestamp after
        it, and the statement for the rest of that timestamp is skipped (one per page).
        """
        timestamp, row_id = key
        if next_timestamp is not None and next_timestamp > timestamp:
            return query.fetch(self._conn, Shape.AFTER_TS, timestamp, _PROBE)
        rows = query.fetch(self._conn, Shape.SAME_TS_AFTER, timestamp, row_id, _PROBE)
        if len(rows) < _PROBE:
            rows += query.fetch(self._conn, Shape.AFTER_TS, timestamp, _PROBE - len(rows))
        return rows

    def _backward(self, query: _Query, limit: int) -> Iterator[list[LogRecord]]:
        """Backward keyset pages (newest first) of at most ``limit`` rows each."""
        conn = self._conn
        rows = query.fetch(conn, Shape.UNTIL_TS, query.last_timestamp, limit)
        while rows:
            yield rows
            if len(rows) < limit:
                return
            timestamp, row_id = rows[-1].timestamp, rows[-1].id
            rows = query.fetch(conn, Shape.SAME_TS_BEFORE, timestamp, row_id, limit)
            if len(rows) < limit:
                rows += query.fetch(conn, Shape.BEFORE_TS, timestamp, limit - len(rows))

    def _short_tail(self, query: _Query, flt: LogFilter) -> list[LogRecord]:
        """The last ``flt.tail`` (at most a page) matching entries from ``since``, oldest first."""
        assert flt.tail is not None
        # One backward statement; at most a page of rows, so holding them is fine.
        page = next(self._backward(query, flt.tail), [])
        if flt.since_ms is not None:
            since = flt.since_ms
            page = [record for record in page if record.timestamp >= since]
        page.reverse()
        return page

    def _long_tail(self, query: _Query, flt: LogFilter) -> Iterator[LogRecord]:
        """The last ``flt.tail`` (more than a page) matching entries, oldest first.

        Walks backward counting (one page in memory), then streams forward from the oldest
        entry of the tail.
        """
        assert flt.tail is not None
        since = MIN_INT64 if flt.since_ms is None else flt.since_ms
        remaining = flt.tail
        first: tuple[int, int] | None = None
        for page in self._backward(query, PAGE_SIZE):
            for record in page:
                if record.timestamp < since:
                    remaining = 0
                    break
                first = (record.timestamp, record.id)
                remaining -= 1
                if remaining == 0:
                    break
            if remaining == 0:
                break
        if first is None:
            return iter(())
        return chain.from_iterable(self._forward(query, None, (first[0], first[1] - 1)))
