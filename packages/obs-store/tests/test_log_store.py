"""LogStore queries on a real database file: filters, ordering, pagination, tail."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw
import pytest

from autokestra_obs_schema import ExecutionNotFound, Writer, open_reader
from autokestra_obs_store import (
    InvalidFilter,
    LogFilter,
    LogRecord,
    LogStore,
)
from autokestra_obs_store._log_sql import PAGE_SIZE, STATE_AND_HIGH_WATER_SQL, WINDOW_SQL

Entry = tuple[str | None, int | None, int, str, str, str, str | None]


def add_execution(writer: Writer, execution_id: str, state: str = "RUNNING") -> None:
    """Insert an executions row (logs need it: foreign keys are on)."""
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, 'wf', ?, 0, 0)",
            (execution_id, state),
        )


def add_logs(writer: Writer, execution_id: str, entries: Sequence[Entry]) -> None:
    """Insert log rows (task_id, attempt, timestamp, level, source, message, metadata)."""
    with writer.transaction() as conn:
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
            " source, message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(execution_id, *entry) for entry in entries],
        )


def entry(
    message: str,
    timestamp: int,
    *,
    task: str | None = "build",
    attempt: int | None = 1,
    level: str = "INFO",
    source: str = "plugin:core/shell.run",
    metadata: dict[str, Any] | None = None,
) -> Entry:
    """One log entry tuple for :func:`add_logs`."""
    meta = None if metadata is None else json.dumps(metadata)
    return (task, attempt, timestamp, level, source, message, meta)


def messages(records: Iterator[LogRecord]) -> list[str]:
    """The messages of ``records``, in order."""
    return [record.message for record in records]


class TestLogsForExecution:
    def test_returns_records_oldest_first_with_parsed_metadata(
        self, writer: Writer, store: LogStore
    ) -> None:
        """Entries come back ordered by timestamp, with every column and metadata parsed."""
        add_execution(writer, "e1")
        add_logs(
            writer,
            "e1",
            [
                entry("second", 20, metadata={"k": [1, 2]}),
                entry("first", 10, task=None, attempt=None, source="scheduler"),
            ],
        )
        records = list(store.logs_for_execution("e1", LogFilter()))
        assert [r.message for r in records] == ["first", "second"]
        first, second = records
        assert first == LogRecord((2, "e1", None, None, 10, "INFO", "scheduler", "first", None))
        assert second.metadata == {"k": [1, 2]}
        assert second.task_id == "build" and second.attempt == 1

    def test_unknown_execution_raises_at_call_time(self, store: LogStore) -> None:
        """An unknown id raises ExecutionNotFound before any iteration."""
        with pytest.raises(ExecutionNotFound, match="Execution not found: nope"):
            store.logs_for_execution("nope", LogFilter())

    def test_empty_execution_yields_nothing(self, writer: Writer, store: LogStore) -> None:
        """An execution without logs yields an empty iterator."""
        add_execution(writer, "e1")
        assert list(store.logs_for_execution("e1")) == []

    def test_other_executions_are_excluded(self, writer: Writer, store: LogStore) -> None:
        """Only the requested execution's entries are returned."""
        add_execution(writer, "e1")
        add_execution(writer, "e2")
        add_logs(writer, "e1", [entry("mine", 1)])
        add_logs(writer, "e2", [entry("theirs", 1)])
        assert messages(store.logs_for_execution("e1")) == ["mine"]

    def test_equal_timestamps_are_ordered_by_id_across_pages(
        self, writer: Writer, store: LogStore
    ) -> None:
        """A burst of entries sharing one millisecond pages in id order, none lost."""
        add_execution(writer, "e1")
        count = PAGE_SIZE * 2 + 37
        add_logs(writer, "e1", [entry(f"line {i}", 5) for i in range(count)])
        add_logs(writer, "e1", [entry("later", 6), entry("earlier", 4)])
        got = messages(store.logs_for_execution("e1"))
        assert got == ["earlier", *[f"line {i}" for i in range(count)], "later"]

    @pytest.mark.parametrize("count", [1, 999, 1_000, 1_001, 2_000, 2_001])
    @pytest.mark.parametrize("spread", [0, 7])
    def test_page_boundaries(
        self, writer: Writer, store: LogStore, count: int, spread: int
    ) -> None:
        """Results of about one or two pages, distinct or equal timestamps: complete, once."""
        add_execution(writer, "e1")
        add_logs(writer, "e1", [entry(f"{i}", i // spread if spread else 3) for i in range(count)])
        assert messages(store.logs_for_execution("e1")) == [f"{i}" for i in range(count)]
        got = messages(store.logs_for_task("e1", "build", LogFilter(levels=frozenset({"INFO"}))))
        assert got == [f"{i}" for i in range(count)]

    def test_pagination_over_many_pages_with_mixed_timestamps(
        self, writer: Writer, store: LogStore
    ) -> None:
        """Thousands of entries with repeated timestamps come back complete and sorted."""
        add_execution(writer, "e1")
        rows = [entry(f"{i}", (i * 7919) % 997) for i in range(5_500)]
        add_logs(writer, "e1", rows)
        records = list(store.logs_for_execution("e1"))
        assert len(records) == 5_500
        keys = [(r.timestamp, r.id) for r in records]
        assert keys == sorted(keys)
        assert len({r.id for r in records}) == 5_500

    def test_snapshot_excludes_rows_written_after_the_call(
        self, writer: Writer, store: LogStore
    ) -> None:
        """Entries committed after the call (even mid-iteration) are left to follow."""
        add_execution(writer, "e1")
        add_logs(writer, "e1", [entry(f"{i}", i) for i in range(PAGE_SIZE + 5)])
        iterator = store.logs_for_execution("e1")
        next(iterator)
        add_logs(writer, "e1", [entry("late", 10_000)])
        assert len(list(iterator)) == PAGE_SIZE + 4


class TestFilters:
    @pytest.fixture
    def loaded(self, writer: Writer) -> None:
        """An execution with varied levels, tasks, sources, attempts and times."""
        add_execution(writer, "e1")
        add_logs(
            writer,
            "e1",
            [
                entry("scheduled", 100, task=None, attempt=None, source="scheduler"),
                entry("compiling", 200, level="DEBUG"),
                entry("Build FAILED", 300, level="ERROR"),
                entry("retrying", 400, level="WARN", source="worker"),
                entry("compiling again", 500, attempt=2),
                entry("test ok", 600, task="test", source="plugin:acme/probe.run"),
                entry("100% done_now", 700, task="test"),
                entry("path C:\\tmp it's", 800, task="test"),
            ],
        )

    @pytest.mark.usefixtures("loaded")
    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            (LogFilter(levels=frozenset({"ERROR", "WARN"})), ["Build FAILED", "retrying"]),
            (LogFilter(levels=frozenset({"DEBUG"})), ["compiling"]),
            (
                LogFilter(levels=frozenset({"DEBUG", "ERROR", "WARN"})),
                ["compiling", "Build FAILED", "retrying"],
            ),
            (
                LogFilter(levels=frozenset({"DEBUG", "INFO", "WARN", "ERROR"}), text="ing"),
                ["compiling", "retrying", "compiling again"],
            ),
            (LogFilter(since_ms=600), ["test ok", "100% done_now", "path C:\\tmp it's"]),
            (LogFilter(task_id="test"), ["test ok", "100% done_now", "path C:\\tmp it's"]),
            (LogFilter(source="plugin:acme"), ["test ok"]),
            (LogFilter(source="sched"), ["scheduled"]),
            (LogFilter(source="Sched"), []),
            (LogFilter(text="COMPIL"), ["compiling", "compiling again"]),
            (LogFilter(text="failed"), ["Build FAILED"]),
            (LogFilter(text="%"), ["100% done_now"]),
            (LogFilter(text="_"), ["100% done_now"]),
            (LogFilter(text="0%"), ["100% done_now"]),
            (LogFilter(text="C:\\t"), ["path C:\\tmp it's"]),
            (LogFilter(text="'"), ["path C:\\tmp it's"]),
            (LogFilter(text="%_"), []),
            (LogFilter(attempt=2), ["compiling again"]),
            (LogFilter(attempt=1, task_id="build", levels=frozenset({"INFO"})), []),
            (LogFilter(tail=2), ["100% done_now", "path C:\\tmp it's"]),
            (LogFilter(tail=2, task_id="build"), ["retrying", "compiling again"]),
            (LogFilter(tail=50, since_ms=700), ["100% done_now", "path C:\\tmp it's"]),
            (
                LogFilter(levels=frozenset({"INFO"}), since_ms=200, source="plugin"),
                ["compiling again", "test ok", "100% done_now", "path C:\\tmp it's"],
            ),
        ],
    )
    def test_filter_selects_exactly(
        self, store: LogStore, flt: LogFilter, expected: list[str]
    ) -> None:
        """Each filter (and combination) selects exactly the matching entries, in order."""
        assert messages(store.logs_for_execution("e1", flt)) == expected

    def test_longest_text_filter_is_accepted_by_sqlite(
        self, writer: Writer, store: LogStore
    ) -> None:
        """A grep text at the length limit, of 4-byte characters and wildcards, still runs."""
        add_execution(writer, "e1")
        needle = ("\U0001f600%_" * 2000)[:4096]
        add_logs(writer, "e1", [entry("a" + needle + "b", 1), entry("other", 2)])
        assert messages(store.logs_for_execution("e1", LogFilter(text=needle))) == [
            "a" + needle + "b"
        ]

    def test_text_with_non_ascii_letters_ignores_case(
        self, writer: Writer, store: LogStore
    ) -> None:
        """--grep is case-insensitive for every letter (CLI.md), not only ASCII ones: É/é,
        Ü/ü and Greek capitals match either way, wildcards stay literal, other executions
        stay out."""
        add_execution(writer, "e1", "SUCCESS")
        add_execution(writer, "e2")
        add_logs(
            writer,
            "e1",
            [
                entry("ÉCHEC de la tâche", 1),
                entry("échec 100%_x", 2),
                entry("Grüße aus ÜBERLINGEN", 3),
                entry("ΣΟΦΙΑ", 4),
                entry("plain ascii", 5),
            ],
        )
        add_logs(writer, "e2", [entry("échec ailleurs", 1)])

        def grep(text: str) -> list[str]:
            return messages(store.logs_for_execution("e1", LogFilter(text=text)))

        assert grep("échec") == ["ÉCHEC de la tâche", "échec 100%_x"]
        assert grep("ÉCHEC 100%_") == ["échec 100%_x"]
        assert grep("über") == ["Grüße aus ÜBERLINGEN"]
        assert grep("σοφ") == ["ΣΟΦΙΑ"]
        assert grep("é%") == []
        follower = store.follow("e1", LogFilter(text="ÉCHEC"))
        assert messages(iter(follower)) == ["ÉCHEC de la tâche", "échec 100%_x"]

    @pytest.mark.usefixtures("loaded")
    def test_logs_for_task(self, store: LogStore) -> None:
        """logs_for_task restricts to one task, keeping other filters."""
        flt = LogFilter(text="ok")
        assert messages(store.logs_for_task("e1", "test", flt)) == ["test ok"]
        assert messages(store.logs_for_task("e1", "nope")) == []

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"levels": frozenset()},
            {"levels": frozenset({"TRACE"})},
            {"attempt": 0},
            {"tail": 0},
            {"text": "x" * 4097},
        ],
    )
    def test_invalid_filter_values_are_refused(self, kwargs: dict[str, Any]) -> None:
        """A filter with an impossible value raises InvalidFilter."""
        with pytest.raises(InvalidFilter):
            LogFilter(**kwargs)


class TestTaskQueries:
    def test_task_rows_of_concurrent_executions_are_excluded(
        self, writer: Writer, store: LogStore
    ) -> None:
        """Another execution's rows of the same task id, interleaved in time, never leak in."""
        add_execution(writer, "e1")
        add_execution(writer, "e2")
        add_execution(writer, "e0")
        add_logs(writer, "e0", [entry(f"before {i}", i) for i in range(50)])
        for i in range(2_600):
            if i % 500 == 0:
                add_logs(writer, "e2", [entry(f"other {i}", 100 + i // 2)])
        add_logs(writer, "e1", [entry(f"mine {i}", 100 + i // 2) for i in range(2_600)])
        add_logs(writer, "e1", [entry("edge other task", 99, task="x")])
        add_logs(writer, "e1", [entry("first", 99), entry("last", 5_000)])
        add_logs(writer, "e2", [entry("later other", 5_000)])
        expected = ["first", *[f"mine {i}" for i in range(2_600)], "last"]
        assert messages(store.logs_for_task("e1", "build")) == expected
        got = messages(store.logs_for_task("e1", "build", LogFilter(tail=1_500)))
        assert got == expected[-1_500:]
        got = messages(store.logs_for_task("e1", "build", LogFilter(tail=5)))
        assert got == expected[-5:]
        got = messages(store.logs_for_task("e1", "build", LogFilter(since_ms=1_399)))
        assert got == [f"mine {i}" for i in range(2_598, 2_600)] + ["last"]


def add_task_runs(writer: Writer, execution_id: str, task_ids: Sequence[str]) -> None:
    """Insert PENDING task runs (the store checks a for_each task's iterations by them)."""
    with writer.transaction() as conn:
        conn.executemany(
            "INSERT INTO task_runs (execution_id, task_id, position, type, state, needs,"
            " created_at) VALUES (?, ?, 0, 'core/log.emit', 'PENDING', '[]', 0)",
            [(execution_id, task_id) for task_id in task_ids],
        )


class TestForEachTaskQueries:
    @pytest.fixture
    def fanned(self, writer: Writer) -> None:
        """e1: task `each` with 3 iterations logging over 2,500 interleaved rows, a task
        `eachother` (same prefix, not an iteration) and `build`; e2: the same ids."""
        add_execution(writer, "e1")
        add_execution(writer, "e2")
        add_task_runs(writer, "e1", ["each", "each[0]", "each[1]", "each[2]", "build"])
        rows = [entry("each starts", 1, task="each", attempt=None)]
        for i in range(2_500):
            rows.append(entry(f"it {i}", 2 + i, task=f"each[{i % 3}]"))
            rows.append(entry(f"noise {i}", 2 + i, task="eachother"))
        rows.append(entry("each ends", 3_000, task="each", attempt=None))
        add_logs(writer, "e1", rows)
        add_logs(writer, "e2", [entry("other execution", 5, task="each[0]")])

    @pytest.mark.usefixtures("fanned")
    def test_a_for_each_task_includes_every_iteration(self, store: LogStore) -> None:
        """--task each gives each's and each[i]'s entries in order, over pages; nothing of
        a task that only shares the prefix, nor of another execution."""
        got = messages(store.logs_for_task("e1", "each"))
        assert got == ["each starts", *[f"it {i}" for i in range(2_500)], "each ends"]

    @pytest.mark.usefixtures("fanned")
    def test_one_iteration_and_filters(self, store: LogStore) -> None:
        """each[1] names one iteration; tail and grep apply to the whole family."""
        one = messages(store.logs_for_task("e1", "each[1]"))
        assert one == [f"it {i}" for i in range(1, 2_500, 3)]
        tail = messages(store.logs_for_task("e1", "each", LogFilter(tail=1_200)))
        assert tail == [*[f"it {i}" for i in range(1_301, 2_500)], "each ends"]
        assert messages(store.logs_for_task("e1", "each", LogFilter(text="it 249"))) == [
            "it 249",
            *[f"it {i}" for i in range(2_490, 2_500)],
        ]

    @pytest.mark.usefixtures("fanned")
    def test_a_task_without_iterations_keeps_the_task_index(self, store: LogStore) -> None:
        """A task with no iteration rows is read through idx_logs_task, as before."""
        plans: list[str] = []

        def trace(_cursor: apsw.Cursor, sql: str, _bindings: Any) -> bool:
            if sql.startswith("SELECT id"):
                plans.append(sql)
            return True

        store.connection.exec_trace = trace
        try:
            assert len(messages(store.logs_for_task("e1", "eachother"))) == 2_500
        finally:
            store.connection.exec_trace = None
        assert plans and all("AND task_id = ?" in sql for sql in plans)

    def test_follow_includes_iterations_written_later(
        self, writer: Writer, store: LogStore
    ) -> None:
        """A follower of a for_each task started before its iterations prints them too."""
        add_execution(writer, "e3")
        add_task_runs(writer, "e3", ["each"])
        add_logs(writer, "e3", [entry("queued", 1, task="each", attempt=None)])
        follower = store.follow("e3", LogFilter(task_id="each"), poll_s=0.01)
        records = iter(follower)
        assert next(records).message == "queued"
        add_task_runs(writer, "e3", ["each[0]"])
        add_logs(writer, "e3", [entry("iteration", 2, task="each[0]"), entry("x", 2, task="b")])
        assert next(records).message == "iteration"
        with writer.transaction() as conn:
            conn.execute("UPDATE executions SET state = 'SUCCESS' WHERE execution_id = 'e3'")
        assert list(records) == []


class TestTail:
    def test_large_tail_streams_the_last_entries(self, writer: Writer, store: LogStore) -> None:
        """A tail larger than a page returns exactly the last N entries, oldest first."""
        add_execution(writer, "e1")
        add_logs(writer, "e1", [entry(f"{i}", i // 3) for i in range(4_000)])
        got = messages(store.logs_for_execution("e1", LogFilter(tail=2_501)))
        assert got == [f"{i}" for i in range(1_499, 4_000)]

    def test_tail_larger_than_the_log_returns_everything(
        self, writer: Writer, store: LogStore
    ) -> None:
        """A tail above the number of entries returns them all."""
        add_execution(writer, "e1")
        add_logs(writer, "e1", [entry(f"{i}", 1) for i in range(1_500)])
        for tail in (1_500, 1_501, 10_000):
            got = messages(store.logs_for_execution("e1", LogFilter(tail=tail)))
            assert got == [f"{i}" for i in range(1_500)]

    def test_large_tail_with_filters_and_since(self, writer: Writer, store: LogStore) -> None:
        """Tail counts only matching entries at or after since."""
        add_execution(writer, "e1")
        add_logs(
            writer,
            "e1",
            [entry(f"{i}", i, level="ERROR" if i % 2 else "INFO") for i in range(5_000)],
        )
        flt = LogFilter(tail=1_200, levels=frozenset({"ERROR"}), since_ms=3_001)
        got = messages(store.logs_for_execution("e1", flt))
        assert got == [f"{i}" for i in range(3_001, 5_000, 2)]
        flt = LogFilter(tail=1_100, levels=frozenset({"ERROR"}))
        got = messages(store.logs_for_execution("e1", flt))
        assert got == [f"{i}" for i in range(2_801, 5_000, 2)]


class TestQueryPlans:
    def test_store_reads_one_page_per_statement(self, writer: Writer, tmp_path: Path) -> None:
        """No statement stays open between pages: a checkpoint can truncate mid-iteration."""
        add_execution(writer, "e1")
        add_logs(writer, "e1", [entry(f"{i}", i) for i in range(PAGE_SIZE * 3)])
        conn = open_reader(writer.path)
        try:
            iterator = LogStore(conn).logs_for_execution("e1")
            next(iterator)
            add_logs(writer, "e1", [entry("x", 1)])
            assert not conn.in_transaction
            assert writer.checkpoint() is True
            assert sum(1 for _ in iterator) == PAGE_SIZE * 3 - 1
        finally:
            conn.close()

    def test_readonly_connection_is_enough(self, writer: Writer) -> None:
        """The store works on a connection that cannot write."""
        add_execution(writer, "e1")
        conn = open_reader(writer.path)
        try:
            with pytest.raises(apsw.ReadOnlyError):
                conn.execute("DELETE FROM execution_logs")
            assert list(LogStore(conn).logs_for_execution("e1")) == []
        finally:
            conn.close()


def commit_before(
    conn: apsw.Connection, trigger: Callable[[str, list[str]], bool], action: Callable[[], None]
) -> None:
    """Run ``action`` once, just before the first statement for which ``trigger`` is true."""
    seen: list[str] = []
    done: list[bool] = []

    def tracer(_cursor: Any, sql: str, _bindings: Any) -> bool:
        if not done and trigger(sql, seen):
            done.append(True)
            action()
        seen.append(sql)
        return True

    conn.exec_trace = tracer


class TestOneSnapshot:
    """A transaction committed while a call reads is in its answer whole or not at all."""

    @pytest.mark.parametrize("tail", [None, 5, PAGE_SIZE + 500])
    def test_task_query_never_splits_one_writers_transaction(
        self, writer: Writer, tail: int | None
    ) -> None:
        """One collector's batch, committed just after the task window is read: all or nothing.

        Read in separate snapshots, the window (first and last timestamps) would end inside
        the batch: its entry stamped in the window's last millisecond returned, the next one,
        a millisecond later in the same transaction, cut off.
        """
        add_execution(writer, "e1")
        add_logs(writer, "e1", [entry(f"m{i}", 1000 + i) for i in range(10)])
        conn = open_reader(writer.path)
        try:
            store = LogStore(conn)
            commit_before(
                conn,
                lambda _sql, seen: bool(seen) and seen[-1] == WINDOW_SQL,
                lambda: add_logs(
                    writer, "e1", [entry("A same ms", 1009), entry("B next ms", 1010)]
                ),
            )
            got = [
                r.message
                for r in store.logs_for_execution("e1", LogFilter(task_id="build", tail=tail))
            ]
        finally:
            conn.close()
        assert ("A same ms" in got) == ("B next ms" in got), got[-3:]

    def test_multi_page_answer_never_splits_a_transaction(self, writer: Writer) -> None:
        """A batch committed between the first page and the high-water read: all or nothing.

        With two writers (engine and CLI, or two engine processes) a batch can hold an entry
        stamped before the first page's last entry. Read in separate snapshots it would be
        skipped (later pages start after that key) while its sibling, stamped later, is
        returned: an answer equal to no moment's log.
        """
        add_execution(writer, "e1")
        add_logs(writer, "e1", [entry(f"m{i}", 1000 + i) for i in range(PAGE_SIZE + 500)])
        conn = open_reader(writer.path)
        try:
            store = LogStore(conn)
            commit_before(
                conn,
                lambda sql, _seen: sql == STATE_AND_HIGH_WATER_SQL,
                lambda: add_logs(writer, "e1", [entry("early stamp", 1500), entry("late", 9000)]),
            )
            got = [r.message for r in store.logs_for_execution("e1")]
        finally:
            conn.close()
        assert ("early stamp" in got) == ("late" in got)
