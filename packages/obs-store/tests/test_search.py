"""LogStore.search: FTS5 syntax, every filter, order, limit and keyset pages, the index's
lifecycle (same transaction as the rows, retention removes hits), on real database files."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import apsw
import pytest

from autokestra_obs_schema import AutokestraError, Writer, open_reader
from autokestra_obs_store import (
    InvalidSearchQuery,
    LogStore,
    SearchFilter,
    SearchHit,
    purge,
)
from autokestra_obs_store._search import SEARCH_SQL

T0 = 1_764_000_000_000
INSERT = (
    "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level, source,"
    " message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def add_execution(
    writer: Writer, execution_id: str, workflow_id: str, state: str = "SUCCESS"
) -> None:
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (execution_id, workflow_id, state, T0, T0),
        )


def add_log(
    writer: Writer,
    execution_id: str,
    message: str,
    *,
    ts: int,
    level: str = "INFO",
    task_id: str | None = "build",
) -> int:
    with writer.transaction() as conn:
        conn.execute(
            INSERT, (execution_id, task_id, 1, ts, level, "plugin:core/shell.run", message, None)
        )
        return int(conn.last_insert_rowid())


def ids(hits: Iterable[SearchHit]) -> list[int]:
    return [hit.record.id for hit in hits]


@pytest.fixture
def corpus(writer: Writer) -> dict[str, int]:
    """Two workflows, three executions, messages chosen for each kind of query."""
    add_execution(writer, "e1", "etl")
    add_execution(writer, "e2", "etl")
    add_execution(writer, "e3", "deploy")
    entries = [
        ("refused1", "e1", "Connection refused: db-primary:5432", T0 + 1, "ERROR", "load"),
        ("refused2", "e2", "connection REFUSED by cache-1", T0 + 2, "WARN", "fetch"),
        ("refused3", "e3", "CONNECTION was refused twice", T0 + 3, "INFO", None),
        ("timeout", "e3", "timed out after 30s waiting", T0 + 4, "ERROR", "push"),
        ("cafe", "e1", "Café au lait served", T0 + 5, "DEBUG", "load"),
        ("multiline", "e2", "Traceback:\n  ValueError: refused value", T0 + 6, "ERROR", "fetch"),
    ]
    return {
        name: add_log(writer, eid, text, ts=ts, level=level, task_id=task)
        for name, eid, text, ts, level, task in entries
    }


class TestQuerySyntax:
    def test_hits_across_executions_newest_first(
        self, store: LogStore, corpus: dict[str, int]
    ) -> None:
        """One word finds entries of every execution, the newest (highest id) first."""
        hits = list(store.search("refused"))
        assert ids(hits) == [
            corpus["multiline"],
            corpus["refused3"],
            corpus["refused2"],
            corpus["refused1"],
        ]
        assert {hit.record.execution_id for hit in hits} == {"e1", "e2", "e3"}

    def test_every_word_must_match(self, store: LogStore, corpus: dict[str, int]) -> None:
        """Several words are an AND: an entry with only one of them is not a hit."""
        assert ids(store.search("connection refused")) == [
            corpus["refused3"],
            corpus["refused2"],
            corpus["refused1"],
        ]
        assert ids(store.search("connection timed")) == []

    def test_phrase(self, store: LogStore, corpus: dict[str, int]) -> None:
        """A double-quoted phrase matches the words adjacent and in order only."""
        assert ids(store.search('"connection refused"')) == [
            corpus["refused2"],
            corpus["refused1"],
        ]
        assert ids(store.search('"refused connection"')) == []

    def test_prefix(self, store: LogStore, corpus: dict[str, int]) -> None:
        """``word*`` matches every word starting with it."""
        assert ids(store.search("time*")) == [corpus["timeout"]]
        assert ids(store.search("conn*")) == [
            corpus["refused3"],
            corpus["refused2"],
            corpus["refused1"],
        ]

    def test_case_and_accents_are_ignored(self, store: LogStore, corpus: dict[str, int]) -> None:
        """Upper, lower and mixed case find the same entries; accents fold too."""
        lower = ids(store.search("connection"))
        assert lower == ids(store.search("CONNECTION")) == ids(store.search("CoNnEcTiOn"))
        assert len(lower) == 3
        assert ids(store.search("cafe")) == ids(store.search("CAFÉ")) == [corpus["cafe"]]

    @pytest.mark.parametrize(
        ("query", "detail"),
        [
            ("10.0.0.1", 'syntax error near "."'),
            ('"unterminated', "unterminated string"),
            ("nosuchcolumn:word", "no such column: nosuchcolumn"),
            ("AND", 'syntax error near "AND"'),
            ("   ", "the query is empty"),
        ],
    )
    def test_invalid_query_is_a_domain_error(
        self, store: LogStore, corpus: dict[str, int], query: str, detail: str
    ) -> None:
        """A query FTS5 cannot parse raises at the call with FTS5's detail."""
        with pytest.raises(InvalidSearchQuery) as caught:
            store.search(query)
        assert isinstance(caught.value, AutokestraError)
        assert str(caught.value) == f"Invalid search query: {detail}"


class TestFilters:
    def test_workflow(self, store: LogStore, corpus: dict[str, int]) -> None:
        assert ids(store.search("refused", SearchFilter(workflow_id="deploy"))) == [
            corpus["refused3"]
        ]
        assert ids(store.search("refused", SearchFilter(workflow_id="nope"))) == []

    def test_task(self, store: LogStore, corpus: dict[str, int]) -> None:
        assert ids(store.search("refused", SearchFilter(task_id="fetch"))) == [
            corpus["multiline"],
            corpus["refused2"],
        ]

    def test_level_set(self, store: LogStore, corpus: dict[str, int]) -> None:
        """Exactly the listed levels (a set, not a threshold)."""
        one = SearchFilter(levels=frozenset({"WARN"}))
        assert ids(store.search("refused", one)) == [corpus["refused2"]]
        two = SearchFilter(levels=frozenset({"ERROR", "INFO"}))
        assert ids(store.search("refused", two)) == [
            corpus["multiline"],
            corpus["refused3"],
            corpus["refused1"],
        ]

    def test_since_and_until_include_their_bounds(
        self, store: LogStore, corpus: dict[str, int]
    ) -> None:
        assert ids(store.search("refused", SearchFilter(since_ms=T0 + 3))) == [
            corpus["multiline"],
            corpus["refused3"],
        ]
        assert ids(store.search("refused", SearchFilter(until_ms=T0 + 2))) == [
            corpus["refused2"],
            corpus["refused1"],
        ]
        window = SearchFilter(since_ms=T0 + 2, until_ms=T0 + 3)
        assert ids(store.search("refused", window)) == [corpus["refused3"], corpus["refused2"]]

    def test_filters_combine(self, store: LogStore, corpus: dict[str, int]) -> None:
        flt = SearchFilter(workflow_id="etl", task_id="fetch", levels=frozenset({"ERROR"}))
        assert ids(store.search("refused", flt)) == [corpus["multiline"]]

    def test_hit_carries_record_and_workflow(self, store: LogStore, corpus: dict[str, int]) -> None:
        (hit,) = store.search('"served"')
        assert hit.workflow_id == "etl"
        assert tuple(hit.record) == (
            corpus["cafe"],
            "e1",
            "load",
            1,
            T0 + 5,
            "DEBUG",
            "plugin:core/shell.run",
            "Café au lait served",
            None,
        )


class TestLimitAndPages:
    @pytest.fixture
    def many(self, writer: Writer) -> list[int]:
        """2,500 matching entries over five executions (2.5 pages of 1000)."""
        for n in range(5):
            add_execution(writer, f"x{n}", "bulk")
        with writer.transaction() as conn:
            conn.executemany(
                INSERT,
                [
                    (f"x{i % 5}", None, None, T0 + i, "INFO", "worker", f"row {i} needle", None)
                    for i in range(2500)
                ],
            )
        return [
            int(r[0])
            for r in writer.connection.execute("SELECT id FROM execution_logs ORDER BY id")
        ]

    def test_default_limit_is_100_newest(self, store: LogStore, many: list[int]) -> None:
        assert ids(store.search("needle")) == many[::-1][:100]

    @pytest.mark.parametrize("limit", [1, 999, 1000, 1001, 2500, 10_000])
    def test_limit_across_pages(self, store: LogStore, many: list[int], limit: int) -> None:
        """Any limit returns exactly that many newest hits (keyset pages of 1000 inside)."""
        assert ids(store.search("needle", limit=limit)) == many[::-1][:limit]

    def test_before_id_is_the_next_page(self, store: LogStore, many: list[int]) -> None:
        first = ids(store.search("needle", limit=100))
        second = ids(store.search("needle", limit=100, before_id=first[-1]))
        assert second == many[::-1][100:200]

    def test_limit_below_one_is_refused(self, store: LogStore, many: list[int]) -> None:
        with pytest.raises(ValueError, match="limit"):
            store.search("needle", limit=0)

    def test_filters_apply_before_the_limit(self, store: LogStore, many: list[int]) -> None:
        """A filter matching one row in five still yields a full page of matching rows."""
        hits = list(store.search("needle", SearchFilter(task_id=None, since_ms=T0 + 2000)))
        assert ids(hits) == many[::-1][:100]
        assert all(hit.record.timestamp >= T0 + 2000 for hit in hits)


class TestHighlight:
    def test_segments_mark_every_matched_word(
        self, store: LogStore, corpus: dict[str, int]
    ) -> None:
        (hit,) = store.search('"connection refused" cache', highlight=True)
        assert hit.segments() == [
            ("connection REFUSED", True),
            (" by ", False),
            ("cache", True),
            ("-1", False),
        ]

    def test_no_highlight_unless_asked(self, store: LogStore, corpus: dict[str, int]) -> None:
        (hit,) = store.search("cache")
        assert hit.highlighted is None
        assert hit.segments() == [("connection REFUSED by cache-1", False)]

    def test_a_message_with_marker_characters_cannot_forge_a_match(
        self, writer: Writer, store: LogStore
    ) -> None:
        add_execution(writer, "e9", "wf")
        add_log(writer, "e9", "real \x02fake\x03 token", ts=T0)
        (hit,) = store.search("token", highlight=True)
        assert hit.segments() == [("real \x02fake\x03 token", False)]


class TestIndexLifecycle:
    def test_rows_and_index_commit_together(self, writer: Writer, store: LogStore) -> None:
        """A failed transaction leaves neither the row nor its index entry."""
        add_execution(writer, "e1", "wf")
        with pytest.raises(RuntimeError), writer.transaction() as conn:
            conn.execute(INSERT, ("e1", None, None, T0, "INFO", "worker", "ghost entry", None))
            raise RuntimeError("abort the batch")
        assert list(store.search("ghost")) == []
        add_log(writer, "e1", "ghost entry", ts=T0)
        assert len(list(store.search("ghost"))) == 1

    def test_retention_removes_hits(self, writer: Writer, store: LogStore) -> None:
        """purge deletes rows; their index entries go with them (and only theirs)."""
        add_execution(writer, "old", "wf")
        add_execution(writer, "live", "wf", state="RUNNING")
        add_log(writer, "old", "expired needle", ts=T0)
        kept = add_log(writer, "old", "recent needle", ts=T0 + 10_000)
        running = add_log(writer, "live", "running needle", ts=T0)
        report = purge(writer, T0 + 5_000, pause_factor=0)
        assert report.log_rows == 1
        assert ids(store.search("needle")) == [running, kept]
        assert list(store.search("expired")) == []
        check = (
            "INSERT INTO execution_logs_fts (execution_logs_fts, rank)"
            " VALUES ('integrity-check', 1)"
        )
        with writer.transaction() as conn:
            conn.execute(check)  # raises SQLITE_CORRUPT_VTAB if the index disagrees

    def test_the_index_holds_no_text_of_its_own(self, writer: Writer) -> None:
        """External content: the message text lives only in execution_logs."""
        add_execution(writer, "e1", "wf")
        add_log(writer, "e1", "distinctive-marker-word", ts=T0)
        writer.checkpoint()
        tables = {
            str(r[0])
            for r in writer.connection.execute(
                "SELECT name FROM sqlite_schema WHERE name LIKE 'execution_logs_fts%'"
            )
        }
        assert "execution_logs_fts_content" not in tables
        assert "execution_logs_fts_data" in tables

    def test_a_reader_cannot_write_the_index(self, writer: Writer, corpus: dict[str, int]) -> None:
        conn = open_reader(writer.path)
        try:
            with pytest.raises(apsw.ReadOnlyError):
                conn.execute(
                    "INSERT INTO execution_logs_fts (execution_logs_fts) VALUES ('rebuild')"
                )
        finally:
            conn.close()


class TestQueryPlan:
    def test_fts_drives_the_join_and_the_order(self, db: tuple[Writer, Path]) -> None:
        """FTS5 is the outer loop and consumes ORDER BY rowid DESC: no sort of all hits."""
        conn = open_reader(db[1])
        try:
            params = ("x", 10, None, None, "DEBUG", "INFO", "WARN", "ERROR", 0, 1, 100)
            plan = [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + SEARCH_SQL, params)]
        finally:
            conn.close()
        assert plan[0].startswith("SCAN f VIRTUAL TABLE")
        assert plan[1] == "SEARCH l USING INTEGER PRIMARY KEY (rowid=?)"
        assert plan[2].startswith("SEARCH e USING")
        assert not any("TEMP B-TREE" in step for step in plan)
