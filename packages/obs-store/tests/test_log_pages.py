"""Pages of a log by log id (the web console's cursor) and the registered-workflows read."""

from __future__ import annotations

import pytest

from autokestra_obs_schema import ExecutionNotFound, Writer
from autokestra_obs_store import (
    LogFilter,
    LogStore,
    log_page,
    registered_workflows,
)
from autokestra_obs_store.testing import T0, success_execution, write_execution


def _logs(writer: Writer, execution_id: str, count: int, level: str = "INFO") -> list[int]:
    ids = []
    with writer.transaction() as conn:
        for n in range(count):
            conn.execute(
                "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
                " source, message) VALUES (?, 'fetch', 1, ?, ?, 'worker', ?)",
                (execution_id, T0 + n, level, f"line {n}"),
            )
            ids.append(conn.last_insert_rowid())
    return ids


class TestLogPage:
    def test_forward_pages_cover_every_entry_once(self, writer: Writer, store: LogStore) -> None:
        """Following next_after from 0 reads each entry exactly once, in id order."""
        eid = write_execution(writer, success_execution())
        ids = _logs(writer, eid, 25)
        seen: list[int] = []
        after = 0
        while True:
            page = log_page(store, eid, after=after, limit=10)
            seen += [r.id for r in page.records]
            if page.next_after == after:
                break
            after = page.next_after
        assert seen == ids
        assert page.state == "SUCCESS" and page.high_water == ids[-1]

    def test_backward_pages_from_the_newest(self, writer: Writer, store: LogStore) -> None:
        """before= walks back from the newest entry; the last page has no next_before."""
        eid = write_execution(writer, success_execution())
        ids = _logs(writer, eid, 15)
        newest = log_page(store, eid, before=2**63 - 1, limit=10)
        assert [r.id for r in newest.records] == ids[5:]
        assert newest.next_before == ids[5]
        older = log_page(store, eid, before=newest.next_before, limit=10)
        assert [r.id for r in older.records] == ids[:5]
        assert older.next_before is None

    def test_filters_apply_and_cursor_skips_unmatched(
        self, writer: Writer, store: LogStore
    ) -> None:
        """A filtered page's cursor moves to the high-water mark past non-matching rows."""
        eid = write_execution(writer, success_execution())
        _logs(writer, eid, 5)
        errors = _logs(writer, eid, 2, level="ERROR")
        _logs(writer, eid, 3)
        page = log_page(store, eid, LogFilter(levels=frozenset({"ERROR"})), after=0)
        assert [r.id for r in page.records] == errors
        assert page.next_after == page.high_water

    def test_a_for_each_task_page_holds_its_iterations(
        self, writer: Writer, store: LogStore
    ) -> None:
        """task=each gives each's and each[i]'s entries (not eachother's), both ways;
        task=each[1] one iteration."""
        eid = write_execution(writer, success_execution())
        with writer.transaction() as conn:
            for n, task in enumerate(["each", "each[0]", "eachother", "each[1]", "x"]):
                conn.execute(
                    "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp,"
                    " level, source, message) VALUES (?, ?, 1, ?, 'INFO', 'worker', ?)",
                    (eid, task, T0 + n, task),
                )
        family = LogFilter(task_id="each")
        forward = log_page(store, eid, family, after=0)
        assert [r.message for r in forward.records] == ["each", "each[0]", "each[1]"]
        backward = log_page(store, eid, family, before=2**63 - 1, limit=2)
        assert [r.message for r in backward.records] == ["each[0]", "each[1]"]
        one = log_page(store, eid, LogFilter(task_id="each[1]"), after=0)
        assert [r.message for r in one.records] == ["each[1]"]

    def test_unknown_execution_and_bad_arguments(self, store: LogStore) -> None:
        """An unknown id raises ExecutionNotFound; after with before is refused."""
        with pytest.raises(ExecutionNotFound):
            log_page(store, "nope")
        with pytest.raises(ValueError, match="not both"):
            log_page(store, "nope", after=1, before=2)
        with pytest.raises(ValueError, match="limit"):
            log_page(store, "nope", limit=0)


class TestRegisteredWorkflows:
    def test_reads_the_registry(self, writer: Writer, store: LogStore) -> None:
        """Every registered workflow by id with its trigger and next fire."""
        assert registered_workflows(store.connection) == []
        with writer.transaction() as conn:
            for wid, fire in (("nightly", T0), ("adhoc", None)):
                conn.execute(
                    "INSERT INTO workflows (workflow_id, source, enabled, trigger_type,"
                    " schedule, created_at, updated_at, next_fire_at)"
                    " VALUES (?, 'id: x', 1, ?, ?, ?, ?, ?)",
                    (wid, "cron" if fire else "manual", "0 2 * * *" if fire else None,
                     T0, T0, fire),
                )  # fmt: skip
        found = registered_workflows(store.connection)
        assert [w.workflow_id for w in found] == ["adhoc", "nightly"]
        assert found[1].next_fire_at == T0 and found[1].schedule == "0 2 * * *"
        assert found[0].next_fire_at is None and found[0].enabled
