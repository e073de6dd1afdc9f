"""The helpers other packages' tests use: MemorySink, capture(), MemoryCollector, ManualClock."""

from __future__ import annotations

from autokestra_obs_collector import Redactor
from autokestra_obs_collector.testing import ManualClock, MemoryCollector, capture
from autokestra_obs_schema import SECRET_MASK as MASK
from autokestra_obs_schema import LogLevel


class TestCaptureHelper:
    def test_capture_closes_and_collects(self) -> None:
        """capture() yields a capture and its sink; leaving the block flushes the last line."""
        with capture() as (cap, sink):
            cap.feed("stdout", b"hello\n::error::boom\nno newline")
        assert sink.messages() == ["hello", "boom", "no newline"]
        assert sink.levels() == [LogLevel.INFO, LogLevel.ERROR, LogLevel.INFO]


class TestMemoryCollector:
    def test_records_redacted_entries_with_monotonic_stamps(self) -> None:
        """Entries are redacted like the real collector's and stamped without going back."""
        clock = ManualClock(start_ms=100)
        collector = MemoryCollector(clock=clock)
        collector.set_redactor("e", Redactor(["sekrit-1"]))
        collector.log("e", "info", "worker", "a sekrit-1", task_id="t", attempt=1)
        clock.advance(-50)
        collector.log("e", LogLevel.WARN, "worker", "b", metadata={"k": "sekrit-1"})
        assert collector.messages("e") == [f"a {MASK}", "b"]
        assert collector.entries[1].metadata == {"k": MASK}
        assert [e.timestamp for e in collector.entries] == [100, 100]
        assert collector.flush() and collector.flush_execution("e")
        collector.shutdown()
        assert collector.closed


class TestManualClock:
    def test_moves_only_when_told(self) -> None:
        """The clock returns the same time until advanced."""
        clock = ManualClock(start_ms=5)
        assert clock() == clock() == 5
        assert clock.advance(10) == 15 == clock()
