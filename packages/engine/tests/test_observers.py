"""Engine observers: every stored transition and log batch, after the commit, as stored."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autokestra_engine import (
    AttemptEnded,
    AttemptStarted,
    EngineConfig,
    EngineRuntime,
    ExecutionEnded,
    ExecutionStarted,
    Observers,
    TaskEnded,
    TaskStarted,
    parse_workflow,
)
from autokestra_obs_collector import LogEntry
from autokestra_obs_schema import Reason, State, open_reader

RETRY_THEN_FAIL = """
id: observed
tasks:
  - id: flaky
    type: core/shell.run
    retry: {max: 1, backoff: {type: fixed, delay: 100ms}}
    inputs:
      command: |
        if [ -f marker ]; then echo recovered; else touch marker; echo broken >&2; exit 1; fi
  - id: boom
    type: core/shell.run
    needs: [flaky]
    inputs: {command: "echo failing; exit 3"}
  - id: after
    type: core/log.emit
    needs: [boom]
    inputs: {message: never}
"""


class Recording:
    """An observer that keeps every call, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[Any] = []
        self.entries: list[LogEntry] = []

    def _add(self, event: object) -> None:
        with self.lock:
            self.events.append(event)

    def execution_started(self, event: ExecutionStarted) -> None:
        self._add(event)

    def execution_ended(self, event: ExecutionEnded) -> None:
        self._add(event)

    def task_started(self, event: TaskStarted) -> None:
        self._add(event)

    def task_ended(self, event: TaskEnded) -> None:
        self._add(event)

    def attempt_started(self, event: AttemptStarted) -> None:
        self._add(event)

    def attempt_ended(self, event: AttemptEnded) -> None:
        self._add(event)

    def logs_stored(self, entries: Sequence[LogEntry]) -> None:
        with self.lock:
            self.entries.extend(entries)


class Broken(Recording):
    """An observer whose every callback raises."""

    def execution_started(self, event: ExecutionStarted) -> None:
        raise RuntimeError("exporter bug")


def _rows(db: Path, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    conn = open_reader(db)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def _run(tmp_path: Path, *observers: Recording) -> str:
    config = EngineConfig(db_path=tmp_path / "ak.db", max_concurrent_tasks=2)
    with EngineRuntime(config, env={}, observers=observers) as runtime:
        workflow = parse_workflow(RETRY_THEN_FAIL, runtime.registry, filename="observed.yaml")
        engine = runtime.engine
        execution_id = engine.create_execution(workflow, {})
        assert engine.run(execution_id).state is State.FAILED
    return execution_id


class TestObservers:
    def test_events_in_order_with_stored_times(self, tmp_path: Path, monkeypatch: Any) -> None:
        """Each transition is told once, in order, with the timestamps the rows hold."""
        monkeypatch.chdir(tmp_path)
        seen = Recording()
        eid = _run(tmp_path, seen)
        kinds = [(type(e).__name__, getattr(e, "task_id", None)) for e in seen.events]
        assert kinds == [
            ("ExecutionStarted", None),
            ("TaskStarted", "flaky"),
            ("AttemptStarted", "flaky"),
            ("AttemptEnded", "flaky"),
            ("AttemptStarted", "flaky"),
            ("AttemptEnded", "flaky"),
            ("TaskEnded", "flaky"),
            ("TaskStarted", "boom"),
            ("AttemptStarted", "boom"),
            ("AttemptEnded", "boom"),
            ("TaskEnded", "boom"),
            ("TaskEnded", "after"),
            ("ExecutionEnded", None),
        ]
        db = tmp_path / "ak.db"
        started, ended = _rows(
            db, "SELECT started_at, ended_at FROM executions WHERE execution_id = ?", (eid,)
        )[0]
        first, last = seen.events[0], seen.events[-1]
        assert (first.at_ms, first.workflow_id, first.trigger_type) == (
            started,
            "observed",
            "manual",
        )
        assert (last.at_ms, last.started_at_ms, last.state) == (ended, started, State.FAILED)
        assert last.reason_code == Reason.TASK_FAILED
        attempts = _rows(
            db,
            "SELECT task_id, attempt, started_at, ended_at FROM task_attempts"
            " WHERE execution_id = ? ORDER BY started_at",
            (eid,),
        )
        told = [e for e in seen.events if isinstance(e, AttemptStarted | AttemptEnded)]
        assert [(e.task_id, e.attempt, e.at_ms) for e in told[0::2]] == [
            (t, a, s) for t, a, s, _ in attempts
        ]
        assert [e.at_ms for e in told[1::2]] == [ended_at for *_, ended_at in attempts]

    def test_retry_failure_and_cancellation_details(self, tmp_path: Path, monkeypatch: Any) -> None:
        """A retried attempt carries its backoff, a failure its message, a dependant its reason."""
        monkeypatch.chdir(tmp_path)
        seen = Recording()
        _run(tmp_path, seen)
        ended = [e for e in seen.events if isinstance(e, AttemptEnded)]
        assert [(e.task_id, e.attempt, e.state, e.retry_delay_ms) for e in ended] == [
            ("flaky", 1, State.FAILED, 100),
            ("flaky", 2, State.SUCCESS, None),
            ("boom", 1, State.FAILED, None),
        ]
        assert ended[2].exit_code == 3
        assert ended[2].reason_code == Reason.PLUGIN_ERROR
        assert ended[2].error_message
        tasks = {e.task_id: e for e in seen.events if isinstance(e, TaskEnded)}
        assert (tasks["flaky"].attempts, tasks["flaky"].type) == (2, "core/shell.run")
        assert tasks["boom"].state is State.FAILED
        assert (tasks["after"].state, tasks["after"].reason_code, tasks["after"].attempts) == (
            State.CANCELLED,
            Reason.UPSTREAM_FAILED,
            0,
        )

    def test_log_batches_are_the_stored_entries(self, tmp_path: Path, monkeypatch: Any) -> None:
        """Every stored entry reaches the observers once, as stored."""
        monkeypatch.chdir(tmp_path)
        seen = Recording()
        eid = _run(tmp_path, seen)
        stored = _rows(
            tmp_path / "ak.db",
            "SELECT message, task_id, attempt, timestamp FROM execution_logs"
            " WHERE execution_id = ? ORDER BY id",
            (eid,),
        )
        told = [(e.message, e.task_id, e.attempt, e.timestamp) for e in seen.entries]
        assert told == [tuple(row) for row in stored]
        assert ("broken", "flaky", 1) in [(m, t, a) for m, t, a, _ in told]

    def test_a_failing_observer_is_dropped_and_the_execution_goes_on(
        self, tmp_path: Path, monkeypatch: Any
    ) -> None:
        """An observer that raises is reported once and removed; the others still hear all."""
        monkeypatch.chdir(tmp_path)
        report = io.StringIO()
        monkeypatch.setattr("sys.stderr", report)
        broken, seen = Broken(), Recording()
        _run(tmp_path, broken, seen)
        assert broken.events == []
        assert type(seen.events[-1]).__name__ == "ExecutionEnded"
        assert report.getvalue().count("telemetry observer Broken failed") == 1

    def test_observers_fan_out_is_false_when_empty(self) -> None:
        """No observers: the hook points' truth test is False, so no event is even built."""
        assert not Observers()
        assert Observers([Recording()])
