"""The public surface of autokestra_obs_collector is a deliberate list."""

from __future__ import annotations

import autokestra_obs_collector
from autokestra_obs_collector import testing


class TestPublicApi:
    def test_all_is_pinned_and_sorted(self) -> None:
        """__all__ lists exactly the public names, sorted."""
        assert autokestra_obs_collector.__all__ == [
            "AttemptCapture",
            "AttemptEnded",
            "AttemptStarted",
            "COLLECTOR_SOURCE",
            "CaptureCounts",
            "CollectorStats",
            "ExecutionEnded",
            "ExecutionObserver",
            "ExecutionStarted",
            "LEVEL_PREFIXES",
            "LineSplitter",
            "LogCollector",
            "LogEntry",
            "LogOutcome",
            "MIN_SECRET_LENGTH",
            "Observers",
            "OutputCapture",
            "Piece",
            "Redactor",
            "Sink",
            "StoredListener",
            "TOKEN_SHAPES",
            "TaskEnded",
            "TaskStarted",
            "level_of",
            "secret_forms",
        ]
        assert sorted(autokestra_obs_collector.__all__) == autokestra_obs_collector.__all__
        for name in autokestra_obs_collector.__all__:
            assert hasattr(autokestra_obs_collector, name)

    def test_testing_module_is_pinned(self) -> None:
        """The testing helpers are a public module with their own fixed list."""
        assert testing.__all__ == [
            "CapturedLine",
            "ManualClock",
            "MemoryCollector",
            "MemorySink",
            "capture",
        ]
