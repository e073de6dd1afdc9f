"""Full-text search over every execution's stored (already redacted) log messages.

The index is the FTS5 table ``execution_logs_fts`` (obs-schema, migration ``log_search``),
kept by triggers in the transaction of the rows it indexes. A query uses FTS5 syntax: every
word must match (case-insensitively), ``"an exact phrase"``, ``prefix*``. Hits come newest
first in the order of record (log ids), read by keyset pages on the id, so the first page of a
query matching a million entries costs no more than that of one matching a hundred: FTS5
walks its doclist backwards and stops at the page's end.

    store = LogStore(open_reader(path))
    for hit in store.search('"connection refused" db*', SearchFilter(workflow_id="etl")):
        print(hit.workflow_id, hit.record.execution_id, hit.record.message)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import apsw

from autokestra_obs_schema import AutokestraError, LogLevel, iso_from_ms

from ._documents import log_record_document
from ._log_sql import MAX_INT64, MIN_INT64, PAGE_SIZE
from ._log_store import LogRecord

#: Marks around each matched word in :attr:`SearchHit.highlighted`. Control characters: a
#: message containing one is shown without highlight rather than with a forged one.
MATCH_START = "\x02"
MATCH_END = "\x03"

# The hit columns: the LogRecord columns in order, then the execution's workflow.
# FTS5 drives the join (CROSS JOIN fixes the loop order) and consumes ``ORDER BY rowid DESC``
# itself, so a page is read straight off the index, newest first, and stops at its LIMIT; the
# filters are checked on each candidate row (pinned by an EXPLAIN QUERY PLAN test).
_HIT_COLUMNS = (
    "SELECT l.id, l.execution_id, l.task_id, l.attempt, l.timestamp, l.level, l.source,"
    " l.message, l.metadata, e.workflow_id, "
)
_FROM_WHERE = """
FROM execution_logs_fts AS f
CROSS JOIN execution_logs AS l ON l.id = f.rowid
CROSS JOIN executions AS e ON e.execution_id = l.execution_id
WHERE execution_logs_fts MATCH ?1 AND f.rowid < ?2
AND (?3 IS NULL OR e.workflow_id = ?3)
AND (?4 IS NULL OR l.task_id = ?4)
AND l.level IN (?5, ?6, ?7, ?8)
AND l.timestamp >= ?9 AND l.timestamp <= ?10
ORDER BY f.rowid DESC LIMIT ?11
"""
#: A page of hits (without highlight).
SEARCH_SQL = _HIT_COLUMNS + "NULL" + _FROM_WHERE
#: A page of hits with the message's matched words between MATCH_START and MATCH_END.
SEARCH_HIGHLIGHT_SQL = (
    _HIT_COLUMNS + "highlight(execution_logs_fts, 0, char(2), char(3))" + _FROM_WHERE
)


class InvalidSearchQuery(AutokestraError):
    """FTS5 cannot parse the query; the message says where (``Invalid search query: ...``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid search query: {detail}")
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which hits to keep; ``None`` means "do not filter".

    Attributes:
        workflow_id: hits of executions of this workflow only.
        task_id: hits logged by this task only.
        levels: exactly these levels (a set, not a threshold).
        since_ms: hits at or after this Unix-ms timestamp.
        until_ms: hits at or before this Unix-ms timestamp.
    """

    workflow_id: str | None = None
    task_id: str | None = None
    levels: frozenset[str] | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def params(self) -> tuple[str | int | None, ...]:
        """The bound parameters ``?3`` to ``?10`` of the search statements."""
        chosen = sorted(self.levels) if self.levels is not None else [str(v) for v in LogLevel]
        slots: list[str | None] = [*chosen[: len(LogLevel)]]
        slots += [None] * (len(LogLevel) - len(slots))
        return (
            self.workflow_id,
            self.task_id,
            *slots,
            MIN_INT64 if self.since_ms is None else self.since_ms,
            MAX_INT64 if self.until_ms is None else self.until_ms,
        )


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One log entry that matched, with its execution's workflow.

    Attributes:
        record: the entry, exactly as ``LogStore.logs_for_execution`` returns it.
        workflow_id: the workflow of the entry's execution.
        highlighted: the message with matched words between :data:`MATCH_START` and
            :data:`MATCH_END`, when asked for; use :meth:`segments` rather than parse it.
    """

    record: LogRecord
    workflow_id: str
    highlighted: str | None = None

    def segments(self) -> list[tuple[str, bool]]:
        """The message cut into ``(text, matched)`` pieces, in order.

        The whole message as one unmatched piece when no highlight was asked for, or when the
        message itself contains a marker character (untrusted text cannot forge a match).
        """
        message = self.record.message
        marked = self.highlighted
        if marked is None or MATCH_START in message or MATCH_END in message:
            return [(message, False)] if message else []
        pieces: list[tuple[str, bool]] = []
        for i, chunk in enumerate(marked.split(MATCH_START)):
            if i == 0:
                if chunk:
                    pieces.append((chunk, False))
                continue
            matched, _, rest = chunk.partition(MATCH_END)
            if matched:
                pieces.append((matched, True))
            if rest:
                pieces.append((rest, False))
        return pieces


def search_hit_document(hit: SearchHit, iso: Callable[[int], str] = iso_from_ms) -> dict[str, Any]:
    """One hit as ``logs search --json`` shows it: the ``logs --json`` record plus its workflow.

    Args:
        hit: a search hit.
        iso: the Unix-ms to ISO-8601 formatter.

    Returns:
        ``log_record_document``'s keys, in its order, then ``workflow_id``.
    """
    return {**log_record_document(hit.record, iso), "workflow_id": hit.workflow_id}


def _detail(exc: apsw.Error) -> str:
    """FTS5's own words, without apsw's class prefix and FTS5's module prefix."""
    text = str(exc)
    for prefix in ("SQLError: ", "fts5: "):
        text = text.removeprefix(prefix)
    return text.strip() or "FTS5 cannot parse it"


def search_page(
    conn: apsw.Connection,
    query: str,
    flt: SearchFilter,
    *,
    limit: int,
    before_id: int | None = None,
    highlight: bool = False,
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` hit rows with ids below ``before_id``, newest first.

    Rows are the LogRecord columns, then workflow_id, then the highlighted message or NULL.

    Raises:
        InvalidSearchQuery: FTS5 cannot parse ``query``.
    """
    sql = SEARCH_HIGHLIGHT_SQL if highlight else SEARCH_SQL
    upper = MAX_INT64 if before_id is None else before_id
    if not query.strip():
        raise InvalidSearchQuery("the query is empty")
    try:
        return conn.execute(sql, (query, upper, *flt.params(), limit)).fetchall()
    except apsw.SQLError as exc:
        # Every SQLError of this fixed statement on a current schema comes from the MATCH
        # expression: a syntax error, an unknown column filter (`foo:bar`), a bare `*`.
        raise InvalidSearchQuery(_detail(exc)) from exc


def search_hits(
    conn: apsw.Connection,
    query: str,
    flt: SearchFilter,
    *,
    limit: int,
    before_id: int | None,
    highlight: bool,
) -> Iterator[SearchHit]:
    """Every hit up to ``limit``, newest first, read in keyset pages of at most 1000.

    The first page is read at once, so an invalid query raises here, not on iteration.

    Raises:
        InvalidSearchQuery: FTS5 cannot parse ``query``.
        ValueError: ``limit`` is below 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    size = min(limit, PAGE_SIZE)
    first = search_page(conn, query, flt, limit=size, before_id=before_id, highlight=highlight)

    def pages(rows: list[tuple[Any, ...]], size: int) -> Iterator[SearchHit]:
        remaining = limit
        while True:
            for row in rows:
                yield SearchHit(LogRecord(row[:9]), str(row[9]), _text_or_none(row[10]))
            remaining -= len(rows)
            if remaining <= 0 or len(rows) < size:
                return  # the limit is reached, or a short page proved the end
            last_id = rows[-1][0]
            assert isinstance(last_id, int)
            size = min(remaining, PAGE_SIZE)
            rows = search_page(conn, query, flt, limit=size, before_id=last_id, highlight=highlight)

    return pages(first, size)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
