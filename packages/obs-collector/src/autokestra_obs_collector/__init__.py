"""autokestra_obs_collector: the write side of execution logs.

A buffered, batching ``LogCollector`` (one transaction per batch through the process's
``Writer``), ``AttemptCapture`` for plugin stdout/stderr, and the ``Redactor`` every entry
passes through before it is buffered.

    from autokestra_obs_collector import LogCollector, Redactor
    from autokestra_obs_schema import LogLevel

    collector = LogCollector(writer)
    collector.set_redactor(execution_id, Redactor(secret_values))
    collector.log(execution_id, LogLevel.INFO, "scheduler", "execution started")
    collector.flush_execution(execution_id)
    collector.shutdown()
"""

from ._capture import (
    LEVEL_PREFIXES,
    AttemptCapture,
    CaptureCounts,
    OutputCapture,
    Sink,
    level_of,
)
from ._collector import COLLECTOR_SOURCE, LogCollector, LogOutcome, StoredListener
from ._entry import LogEntry
from ._lines import LineSplitter, Piece
from ._observers import (
    AttemptEnded,
    AttemptStarted,
    ExecutionEnded,
    ExecutionObserver,
    ExecutionStarted,
    Observers,
    TaskEnded,
    TaskStarted,
)
from ._redact import MIN_SECRET_LENGTH, TOKEN_SHAPES, Redactor, secret_forms
from ._stats import CollectorStats

__all__ = [
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
