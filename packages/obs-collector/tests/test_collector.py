"""LogCollector: batching by size and age, ordering, counts, flush and shutdown."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from autokestra_obs_collector import LogCollector, Redactor
from autokestra_obs_collector.testing import ManualClock
from autokestra_obs_schema import LogLevel, Writer

Factory = Callable[..., LogCollector]


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait for the flush thread (a background thread, so some waiting is unavoidable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class TestBatching:
    def test_flushes_at_max_batch(self, make_collector: Factory, view: Any) -> None:
        """99 entries stay buffered; the 100th triggers one transaction with all 100."""
        clock = ManualClock()
        collector = make_collector(clock=clock)
        for i in range(99):
            collector.log("exec-1", LogLevel.INFO, "worker", f"line {i}")
        assert not _wait_until(lambda: collector.stats().written > 0, timeout=0.3)
        collector.log("exec-1", LogLevel.INFO, "worker", "line 99")
        assert _wait_until(lambda: collector.stats().written == 100)
        assert collector.stats().transactions == 1
        assert view.messages("exec-1") == [f"line {i}" for i in range(100)]

    def test_flushes_when_oldest_entry_is_max_age_old(
        self, make_collector: Factory, view: Any
    ) -> None:
        """By the injected clock: nothing is written 999 ms after the first entry, all at 1000."""
        clock = ManualClock()
        collector = make_collector(clock=clock)
        collector.log("exec-1", "INFO", "worker", "first")
        clock.advance(999)
        collector.log("exec-1", "INFO", "worker", "second")
        assert not _wait_until(lambda: collector.stats().written > 0, timeout=0.3)
        clock.advance(1)
        collector.log("exec-1", "INFO", "worker", "third")
        assert _wait_until(lambda: collector.stats().written == 3)
        assert collector.stats().transactions == 1
        assert view.messages("exec-1") == ["first", "second", "third"]

    def test_a_trickle_is_written_within_max_age(self, make_collector: Factory, view: Any) -> None:
        """A single entry with nothing after it is written once it is max_age old (real clock)."""
        collector = make_collector(max_age_s=0.2)
        started = time.monotonic()
        collector.log("exec-1", "INFO", "worker", "alone")
        assert _wait_until(lambda: view.messages("exec-1") == ["alone"], timeout=3)
        assert time.monotonic() - started < 1.5

    def test_backlog_transactions_take_several_batches(
        self, make_collector: Factory, writer: Writer, view: Any
    ) -> None:
        """Entries piled up while the writer was busy go out up to 1000 per transaction."""
        collector = make_collector(clock=ManualClock())
        with writer.locked():  # the flush thread cannot start a transaction meanwhile
            for i in range(2500):
                collector.log("exec-1", "INFO", "worker", f"line {i}")
        assert collector.flush(timeout=10)
        assert len(view.rows("exec-1")) == 2500
        assert collector.stats().transactions <= 4

    def test_configurable_batch_size(self, make_collector: Factory) -> None:
        """max_batch=5 writes after five entries."""
        collector = make_collector(max_batch=5, clock=ManualClock())
        for i in range(5):
            collector.log("exec-1", "INFO", "worker", f"line {i}")
        assert _wait_until(lambda: collector.stats().written == 5)


class TestEntries:
    def test_all_columns_are_stored(self, make_collector: Factory, view: Any) -> None:
        """task_id, attempt, level, source, message and metadata JSON land in their columns."""
        clock = ManualClock(start_ms=1_000)
        collector = make_collector(clock=clock)
        collector.log(
            "exec-1",
            LogLevel.ERROR,
            "plugin:core/shell.run",
            "boom",
            task_id="fetch",
            attempt=2,
            metadata={"exit_code": 3, "nested": {"a": [1, "b"]}},
        )
        collector.log("exec-1", "debug", "scheduler", "plain")
        assert collector.flush(timeout=5)
        first, second = view.rows("exec-1")
        assert first[1:8] == ("exec-1", "fetch", 2, 1_000, "ERROR", "plugin:core/shell.run", "boom")
        assert json.loads(first[8]) == {"exit_code": 3, "nested": {"a": [1, "b"]}}
        assert second[2:4] == (None, None)
        assert second[5] == "DEBUG"
        assert second[8] is None

    def test_nul_and_unicode_survive(self, make_collector: Factory, view: Any) -> None:
        """A message with NUL, U+FFFD and astral characters is stored unchanged."""
        collector = make_collector()
        text = "a\x00b \ufffd \U0001f600 \u00e9"
        collector.log("exec-1", "INFO", "worker", text)
        assert collector.flush(timeout=5)
        assert view.messages("exec-1") == [text]

    def test_log_entry_count_is_maintained(self, make_collector: Factory, view: Any) -> None:
        """Each execution's log_entry_count equals its stored rows."""
        collector = make_collector()
        for i in range(250):
            collector.log(f"exec-{i % 3 + 1}", "INFO", "worker", f"line {i}")
        assert collector.flush(timeout=5)
        for eid in ("exec-1", "exec-2", "exec-3"):
            assert view.count(eid) == len(view.rows(eid))
        assert sum(view.count(e) for e in ("exec-1", "exec-2", "exec-3")) == 250

    def test_lone_surrogates_are_stored_as_replacement_characters(
        self, make_collector: Factory, view: Any, report: io.StringIO
    ) -> None:
        """Text that cannot be UTF-8 (surrogateescape leftovers) is stored with U+FFFD."""
        collector = make_collector(clock=ManualClock())
        collector.log("exec-1", "INFO", "worker", "before")
        collector.log("exec-1", "INFO", "worker", "bad \udc80 name", metadata={"p": "\ud800"})
        collector.log("exec-1", "INFO", "worker", "after")
        assert collector.flush(timeout=5)
        rows = view.rows("exec-1")
        assert [r[7] for r in rows] == ["before", "bad \ufffd name", "after"]
        assert json.loads(rows[1][8]) == {"p": "\ufffd"}
        assert collector.stats().failures == 0
        assert report.getvalue() == ""

    def test_timestamps_never_decrease(self, make_collector: Factory, view: Any) -> None:
        """A clock stepping backwards does not make a later entry older: id order is time order."""
        clock = ManualClock(start_ms=10_000)
        collector = make_collector(clock=clock)
        collector.log("exec-1", "INFO", "worker", "a")
        clock.advance(-5_000)
        collector.log("exec-1", "INFO", "worker", "b")
        clock.advance(6_000)
        collector.log("exec-1", "INFO", "worker", "c")
        assert collector.flush(timeout=5)
        assert [r[4] for r in view.rows("exec-1")] == [10_000, 10_000, 11_000]

    def test_unknown_level_logs_as_info(self, make_collector: Factory, view: Any) -> None:
        """A bad level name does not raise: the entry is kept at INFO."""
        collector = make_collector()
        collector.log("exec-1", "LOUD", "worker", "x")
        assert collector.flush(timeout=5)
        assert view.rows("exec-1")[0][5] == "INFO"

    def test_unserializable_metadata_keeps_the_entry(
        self, make_collector: Factory, view: Any
    ) -> None:
        """NaN metadata (not JSON) is replaced by a note; the message is still stored."""
        collector = make_collector()
        collector.log("exec-1", "INFO", "worker", "x", metadata={"v": float("nan")})
        assert collector.flush(timeout=5)
        assert json.loads(view.rows("exec-1")[0][8]) == {"unserializable_metadata": "dict"}

    def test_redactor_is_applied_before_buffering(self, make_collector: Factory, view: Any) -> None:
        """Messages and metadata of an execution with a redactor are masked; others are not."""
        collector = make_collector()
        collector.set_redactor("exec-1", Redactor(["tok-12345"]))
        collector.log("exec-1", "INFO", "worker", "use tok-12345", metadata={"k": ["tok-12345"]})
        collector.log("exec-2", "INFO", "worker", "use tok-12345")
        collector.clear_redactor("exec-1")
        collector.log("exec-1", "INFO", "worker", "after tok-12345")
        assert collector.flush(timeout=5)
        rows = view.rows("exec-1")
        assert rows[0][7] == "use ***SECRET***"
        assert json.loads(rows[0][8]) == {"k": ["***SECRET***"]}
        assert rows[1][7] == "after tok-12345"
        assert view.messages("exec-2") == ["use tok-12345"]


class TestConcurrency:
    def test_eight_threads_arrive_complete_and_in_order(
        self, make_collector: Factory, view: Any
    ) -> None:
        """8 threads x 10,000 entries: all stored, each thread's entries in its own order."""
        collector = make_collector()
        threads_n, per_thread = 8, 10_000

        def produce(k: int) -> None:
            for i in range(per_thread):
                collector.log("exec-1", "INFO", f"t{k}", str(i))

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert collector.flush(timeout=30)
        rows = view.rows("exec-1")
        assert len(rows) == threads_n * per_thread
        for k in range(threads_n):
            mine = [int(r[7]) for r in rows if r[6] == f"t{k}"]
            assert mine == list(range(per_thread))
        stamps = [r[4] for r in rows]
        assert stamps == sorted(stamps)
        assert view.count("exec-1") == threads_n * per_thread
        assert collector.stats().dropped == 0


class TestFlushAndShutdown:
    def test_flush_execution_is_synchronous(self, make_collector: Factory, view: Any) -> None:
        """flush_execution returns only once the execution's entries are committed."""
        collector = make_collector(clock=ManualClock())
        collector.log("exec-1", "INFO", "worker", "a")
        collector.log("exec-2", "INFO", "worker", "b")
        assert collector.flush_execution("exec-2", timeout=5)
        assert view.messages("exec-2") == ["b"]
        assert view.count("exec-2") == 1

    def test_flush_execution_without_entries_returns_at_once(self, make_collector: Factory) -> None:
        """An execution with nothing buffered needs no write."""
        collector = make_collector(clock=ManualClock())
        assert collector.flush_execution("exec-3", timeout=0)
        assert collector.stats().transactions == 0

    def test_flush_times_out_while_the_writer_is_held(
        self, make_collector: Factory, writer: Writer
    ) -> None:
        """flush(timeout) returns False instead of blocking past its deadline."""
        collector = make_collector(clock=ManualClock())
        with writer.locked():
            collector.log("exec-1", "INFO", "worker", "a")
            started = time.monotonic()
            assert collector.flush(timeout=0.2) is False
            assert time.monotonic() - started < 2
        assert collector.flush(timeout=5)

    def test_shutdown_writes_everything_and_is_idempotent(
        self, writer: Writer, view: Any, report: io.StringIO
    ) -> None:
        """shutdown drains the buffer; a second call is a no-op; later logs are dropped."""
        collector = LogCollector(writer, clock=ManualClock(), report=report)
        for i in range(42):
            collector.log("exec-1", "INFO", "worker", f"line {i}")
        collector.shutdown(timeout=5)
        collector.shutdown(timeout=5)
        assert len(view.rows("exec-1")) == 42
        collector.log("exec-1", "INFO", "worker", "late")
        assert collector.stats().dropped == 1
        assert "after the collector shut down" in report.getvalue()
        assert len(view.rows("exec-1")) == 42


class TestBackpressure:
    def test_a_stuck_write_pauses_producers_once_not_per_entry(
        self, make_collector: Factory, writer: Writer, view: Any
    ) -> None:
        """Past the pacing level a stuck flush costs one short pause; nothing is dropped."""
        collector = make_collector(clock=ManualClock(), max_txn_entries=100)
        with writer.locked():  # the flush thread cannot write meanwhile
            started = time.monotonic()
            for i in range(3000):
                collector.log("exec-1", "INFO", "worker", f"line {i}")
            elapsed = time.monotonic() - started
        assert elapsed < 1.5
        assert collector.flush(timeout=10)
        assert view.messages("exec-1") == [f"line {i}" for i in range(3000)]
        assert collector.stats().dropped == 0

    def test_flood_through_a_small_buffer_loses_nothing(
        self, make_collector: Factory, view: Any
    ) -> None:
        """4 producers through a 300-entry buffer: producers wait for room, nothing is lost."""
        collector = make_collector(max_buffer=300, max_txn_entries=100)

        def produce(k: int) -> None:
            for i in range(2000):
                collector.log("exec-1", "INFO", f"p{k}", str(i))

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert collector.flush(timeout=10)
        rows = view.rows("exec-1")
        assert len(rows) == 8000
        for k in range(4):
            assert [int(r[7]) for r in rows if r[6] == f"p{k}"] == list(range(2000))
        assert collector.stats().dropped == 0
