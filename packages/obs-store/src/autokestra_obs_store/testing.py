"""Realistic executions for tests of the packages above obs-store (public test helpers).

Executions shaped like the engine's (task runs with needs, attempts with retries and
backoff, masked inputs, outputs, errors with a stderr tail, a hash-chained audit trail),
written through a ``Writer``, the way structlog ships ``capture_logs`` for its users' tests.

    writer = open_writer(tmp_path / "a.db")
    execution_id = write_execution(writer, success_execution())
"""

from ._inspect_fixtures import (
    T0,
    AttemptRecord,
    ExecutionRecord,
    TaskRecord,
    failure_execution,
    make_execution_id,
    retry_execution,
    running_execution,
    success_execution,
    wide_execution,
    write_execution,
)

__all__ = [
    "AttemptRecord",
    "ExecutionRecord",
    "T0",
    "TaskRecord",
    "failure_execution",
    "make_execution_id",
    "retry_execution",
    "running_execution",
    "success_execution",
    "wide_execution",
    "write_execution",
]
