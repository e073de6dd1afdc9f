"""Listing executions: keyset pages newest first, filters, every id, one execution's outcome."""

from __future__ import annotations

import json

import pytest

from autokestra_obs_schema import ExecutionNotFound, State, Writer, open_reader
from autokestra_obs_schema.testing import insert_executions
from autokestra_obs_store import (
    ExecutionCursor,
    ExecutionSummary,
    all_execution_ids,
    execution_outcome,
    execution_summary_document,
    list_executions,
)


@pytest.fixture
def populated(writer: Writer) -> Writer:
    """Seven executions: two share a created_at (the id breaks the tie), two workflows."""
    for eid, workflow, state, at in (
        ("e1", "a", State.SUCCESS, 1000),
        ("e2", "b", State.FAILED, 2000),
        ("e3", "a", State.FAILED, 3000),
        ("e4a", "a", State.RUNNING, 4000),
        ("e4b", "b", State.SUCCESS, 4000),
        ("e5", "a", State.FAILED, 5000),
        ("e6", "b", State.PENDING, 6000),
    ):
        insert_executions(writer, eid, state=state, workflow_id=workflow, at_ms=at)
    return writer


def _ids(page: list[ExecutionSummary]) -> list[str]:
    return [summary.execution_id for summary in page]


class TestListExecutions:
    def test_newest_first_with_id_tiebreak(self, populated: Writer) -> None:
        """Rows come newest first; equal created_at are ordered by id, descending."""
        conn = open_reader(populated.path)
        try:
            page = list_executions(conn, limit=100)
        finally:
            conn.close()
        assert _ids(page) == ["e6", "e5", "e4b", "e4a", "e3", "e2", "e1"]

    def test_keyset_pages_cover_everything_once(self, populated: Writer) -> None:
        """Walking pages of 2 with each page's last cursor yields every row exactly once."""
        conn = open_reader(populated.path)
        seen: list[str] = []
        before: ExecutionCursor | None = None
        try:
            while True:
                page = list_executions(conn, before=before, limit=2)
                seen.extend(_ids(page))
                if len(page) < 2:
                    break
                before = page[-1].cursor
        finally:
            conn.close()
        assert seen == ["e6", "e5", "e4b", "e4a", "e3", "e2", "e1"]

    def test_cursor_splits_a_created_at_tie(self, populated: Writer) -> None:
        """A cursor on e4b continues with e4a, which has the same created_at."""
        conn = open_reader(populated.path)
        try:
            page = list_executions(conn, before=ExecutionCursor(4000, "e4b"), limit=2)
        finally:
            conn.close()
        assert _ids(page) == ["e4a", "e3"]

    def test_filters_combine_with_paging(self, populated: Writer) -> None:
        """workflow_id and state filter every page; the cursor pages within the filter."""
        conn = open_reader(populated.path)
        try:
            first = list_executions(conn, workflow_id="a", state=State.FAILED, limit=1)
            second = list_executions(
                conn, workflow_id="a", state=State.FAILED, before=first[-1].cursor, limit=1
            )
            third = list_executions(
                conn, workflow_id="a", state=State.FAILED, before=second[-1].cursor, limit=1
            )
        finally:
            conn.close()
        assert (_ids(first), _ids(second), _ids(third)) == (["e5"], ["e3"], [])

    def test_limit_must_be_positive(self, populated: Writer) -> None:
        """A zero limit is a caller error, not an empty page."""
        conn = open_reader(populated.path)
        try:
            with pytest.raises(ValueError, match="limit"):
                list_executions(conn, limit=0)
        finally:
            conn.close()


class TestSummaryDocument:
    def test_document_has_every_column_in_table_order(self, writer: Writer) -> None:
        """The --json object lists the table's columns in order, ISO times, inputs decoded."""
        insert_executions(writer, "e1", at_ms=1_764_091_921_000)
        with writer.transaction() as conn:
            conn.execute(
                "UPDATE executions SET inputs = ? WHERE execution_id = 'e1'", ('{"k": 1}',)
            )
            columns = [row[1] for row in conn.execute("PRAGMA table_info(executions)")]
        reader = open_reader(writer.path)
        try:
            (summary,) = list_executions(reader)
        finally:
            reader.close()
        document = execution_summary_document(summary)
        assert list(document) == columns
        assert document["created_at"] == "2025-11-25T17:32:01.000Z"
        assert document["started_at"] is None
        assert document["inputs"] == {"k": 1}
        json.dumps(document)


class TestAllIdsAndOutcome:
    def test_all_ids_oldest_first(self, populated: Writer) -> None:
        """Every id, oldest first (the order `audit verify --all` reports in)."""
        conn = open_reader(populated.path)
        try:
            assert all_execution_ids(conn) == ["e1", "e2", "e3", "e4a", "e4b", "e5", "e6"]
        finally:
            conn.close()

    def test_outcome_duration_falls_back_to_created(self, writer: Writer) -> None:
        """A never-started execution's duration runs from created_at; the state is the enum."""
        insert_executions(writer, "e1", state=State.CANCELLED, at_ms=1000)
        with writer.transaction() as conn:
            conn.execute(
                "UPDATE executions SET ended_at = 1500, message = 'stop' WHERE execution_id = 'e1'"
            )
        conn = open_reader(writer.path)
        try:
            outcome = execution_outcome(conn, "e1")
            with pytest.raises(ExecutionNotFound):
                execution_outcome(conn, "nope")
        finally:
            conn.close()
        assert (outcome.state, outcome.duration_ms, outcome.message) == (
            State.CANCELLED,
            500,
            "stop",
        )
