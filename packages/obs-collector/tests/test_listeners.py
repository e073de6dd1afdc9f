"""LogCollector.add_listener: the tap telemetry exporters read stored entries from."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

from autokestra_obs_collector import LogCollector, LogEntry, Redactor
from autokestra_obs_schema import LogLevel

Factory = Callable[..., LogCollector]


class Recorder:
    """A listener that keeps what it is told."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[LogEntry], float]] = []
        self.lock = threading.Lock()

    def __call__(self, entries: Sequence[LogEntry], seconds: float) -> None:
        with self.lock:
            self.batches.append((list(entries), seconds))

    @property
    def entries(self) -> list[LogEntry]:
        with self.lock:
            return [entry for batch, _ in self.batches for entry in batch]


class TestListeners:
    def test_listener_gets_entries_as_stored(self, make_collector: Factory, view: Any) -> None:
        """Each committed entry reaches the listener redacted, with its level and metadata."""
        collector = make_collector()
        recorder = Recorder()
        collector.add_listener(recorder)
        collector.set_redactor("exec-1", Redactor({"hunter2-secret"}))
        collector.log(
            "exec-1",
            LogLevel.WARN,
            "plugin:core/shell.run",
            "token hunter2-secret leaked",
            task_id="fetch",
            attempt=2,
            metadata={"token": "hunter2-secret", "n": 1},
        )
        collector.log("exec-2", "error", "scheduler", "boom")
        assert collector.flush(timeout=5)
        entries = recorder.entries
        assert [(e.execution_id, e.level, e.message) for e in entries] == [
            ("exec-1", LogLevel.WARN, "token ***SECRET*** leaked"),
            ("exec-2", LogLevel.ERROR, "boom"),
        ]
        first = entries[0]
        assert (first.task_id, first.attempt, first.source) == (
            "fetch",
            2,
            "plugin:core/shell.run",
        )
        assert first.metadata == {"token": "***SECRET***", "n": 1}
        stored = view.rows("exec-1")[0]
        assert (stored[4], stored[7]) == (first.timestamp, first.message)
        assert all(seconds >= 0 for _, seconds in recorder.batches)

    def test_refused_entries_are_not_reported(self, make_collector: Factory, view: Any) -> None:
        """An entry the database refuses (unknown execution) is not reported as stored."""
        collector = make_collector()
        recorder = Recorder()
        collector.add_listener(recorder)
        collector.log("exec-1", LogLevel.INFO, "worker", "kept")
        collector.log("no-such-execution", LogLevel.INFO, "worker", "refused")
        assert collector.flush(timeout=5)
        assert [e.message for e in recorder.entries] == ["kept"]
        assert view.messages() == ["kept"]

    def test_failing_listener_is_removed_and_logging_goes_on(
        self, make_collector: Factory, view: Any, report: io.StringIO
    ) -> None:
        """A listener that raises is reported once and dropped; entries are still written."""
        collector = make_collector()
        calls: list[int] = []

        def broken(entries: Sequence[LogEntry], seconds: float) -> None:
            calls.append(len(entries))
            raise RuntimeError("exporter bug")

        recorder = Recorder()
        collector.add_listener(broken)
        collector.add_listener(recorder)
        for n in range(3):
            collector.log("exec-1", LogLevel.INFO, "worker", f"line {n}")
            assert collector.flush(timeout=5)
        assert calls == [1]
        assert [e.message for e in recorder.entries] == ["line 0", "line 1", "line 2"]
        assert view.messages("exec-1") == ["line 0", "line 1", "line 2"]
        assert report.getvalue().count("a log listener failed") == 1
