"""The worker pool and the task runner, with real plugin processes and a real database."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autokestra_engine._secret_store import SecretStore
from autokestra_engine.language._model import RetryPolicy, TaskSpec
from autokestra_engine.language._plugin_registry import PluginRegistry
from autokestra_engine.persistence._recorder import (
    EngineOwner,
    ExecutionRecorder,
    NewExecution,
    NewTask,
)
from autokestra_engine.run._executor import PluginExecutor
from autokestra_engine.run._worker import EngineEvent, ExecutionContext, TaskRunner, WorkerPool
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import State, open_reader, open_writer

OWNER = EngineOwner("engine-test", os.getpid(), "localhost")


class Harness:
    """One database, collector, executor and runner; executions made on demand."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.db = tmp_path / "db" / "autokestra.db"
        self.writer = open_writer(self.db)
        self.collector = LogCollector(self.writer, max_age_s=0.05)
        self.recorder = ExecutionRecorder(self.writer)
        self.registry = PluginRegistry.discover([])
        self.executor = PluginExecutor(self.registry, workdir=tmp_path, grace_ms=500)
        self.runner = TaskRunner(
            recorder=self.recorder,
            executor=self.executor,
            registry=self.registry,
            default_timeout_ms=60_000,
        )
        self.events: list[EngineEvent] = []

    def context(self, *tasks: TaskSpec, eid: str = "e1") -> ExecutionContext:
        """Create and start an execution holding ``tasks``; return its context."""
        self.recorder.create_execution(
            NewExecution(
                execution_id=eid,
                workflow_id="wf",
                trigger_type="manual",
                inputs={},
                workflow_source="id: wf",
                tasks=[NewTask(t.id, t.type, t.needs, t.position) for t in tasks],
                owner=OWNER,
            )
        )
        self.recorder.start_execution(eid, OWNER)
        return ExecutionContext(
            execution_id=eid,
            inputs={},
            secrets=SecretStore(),
            collector=self.collector,
            base_secrets=set(),
            on_event=self.events.append,
        )

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query, after the collector wrote every buffered log."""
        self.collector.flush()
        conn = open_reader(self.db)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the collector and close the database."""
        self.collector.shutdown()
        self.writer.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A fresh harness, closed after the test."""
    h = Harness(tmp_path)
    yield h
    h.close()


def shell(task_id: str, command: str, **kwargs: Any) -> TaskSpec:
    """A core/shell.run task."""
    return TaskSpec(id=task_id, type="core/shell.run", inputs={"command": command}, **kwargs)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TestWorkerPool:
    def test_backpressure(self) -> None:
        """With every thread busy and the queue full, try_submit refuses instead of blocking."""
        release = threading.Event()

        def blocked() -> None:
            release.wait()

        pool = WorkerPool(1, queue_size=1)
        try:
            assert pool.try_submit(blocked)  # taken by the thread
            deadline = time.monotonic() + 5
            accepted = pool.try_submit(blocked)
            while not accepted and time.monotonic() < deadline:
                time.sleep(0.01)  # the first job may not have left the queue yet
                accepted = pool.try_submit(blocked)
            assert accepted
            assert not pool.try_submit(blocked)
        finally:
            release.set()
            pool.shutdown(timeout=5)

    def test_bounded_concurrency(self) -> None:
        """No more jobs run at once than the pool has threads."""
        lock = threading.Lock()
        running = 0
        peak = 0
        done = threading.Semaphore(0)

        def job() -> None:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)
            with lock:
                running -= 1
            done.release()

        pool = WorkerPool(2, queue_size=10)
        try:
            for _ in range(8):
                assert pool.try_submit(job)
            for _ in range(8):
                assert done.acquire(timeout=10)
        finally:
            pool.shutdown(timeout=5)
        assert peak == 2

    def test_needs_a_thread(self) -> None:
        """A pool of zero threads would never run anything: refused."""
        with pytest.raises(ValueError):
            WorkerPool(0)


class TestTaskRunner:
    def test_success_records_everything(self, harness: Harness) -> None:
        """A successful task stores masked inputs, outputs, duration and its logs."""
        task = shell("hello", "echo hello from the plugin")
        ctx = harness.context(task)
        outcome = harness.runner.run(ctx, task)
        assert outcome.state is State.SUCCESS
        state, inputs, outputs, duration, attempts = harness.rows(
            "SELECT state, inputs, outputs, duration_ms, attempt_count FROM task_runs"
        )[0]
        assert (state, attempts) == ("SUCCESS", 1)
        assert json.loads(inputs) == {"command": "echo hello from the plugin"}
        assert json.loads(outputs) == {"exit_code": 0}
        assert duration >= 0
        logs = harness.rows("SELECT source, level, message, metadata, attempt FROM execution_logs")
        plugin = [row for row in logs if row[0] == "plugin:core/shell.run"]
        assert [(row[1], row[2]) for row in plugin] == [("INFO", "hello from the plugin")]
        assert json.loads(plugin[0][3]) == {"plugin": "core/shell", "action": "run"}
        worker = [row for row in logs if row[0] == "worker"]
        assert "started" in worker[0][2]
        assert json.loads(worker[0][3])["inputs"] == {"command": "echo hello from the plugin"}
        assert "succeeded" in worker[-1][2]
        assert json.loads(worker[-1][3])["outputs"] == {"exit_code": 0}
        assert {row[4] for row in logs} == {1}
        assert [e.state for e in harness.events] == [State.RUNNING, State.SUCCESS]

    def test_retry_then_success(self, harness: Harness, tmp_path: Path) -> None:
        """A failed first attempt waits (RETRY_BACKOFF), is logged, then attempt 2 succeeds."""
        marker = tmp_path / "flaky"
        task = shell(
            "flaky",
            f"if [ -f {marker} ]; then echo ok; else touch {marker}; echo down >&2; exit 3; fi",
            retry=RetryPolicy(max=2, backoff="fixed", delay_ms=200),
        )
        ctx = harness.context(task)
        started = time.monotonic()
        assert harness.runner.run(ctx, task).state is State.SUCCESS
        assert time.monotonic() - started >= 0.2  # the backoff was waited
        attempts = harness.rows(
            "SELECT attempt, state, reason, exit_code FROM task_attempts ORDER BY attempt"
        )
        assert attempts == [(1, "FAILED", "PLUGIN_ERROR", 3), (2, "SUCCESS", None, 0)]
        retry = harness.rows(
            "SELECT level, message, metadata, attempt FROM execution_logs"
            " WHERE message LIKE 'Retrying%'"
        )
        assert len(retry) == 1
        level, message, metadata, attempt = retry[0]
        meta = json.loads(metadata)
        assert (level, attempt) == ("WARN", 1)
        assert "attempt 1/3 failed (PLUGIN_ERROR" in message
        assert meta["attempt"] == 1 and meta["next_attempt"] == 2
        assert meta["reason"] == "PLUGIN_ERROR" and meta["delay_ms"] == 200
        assert "exited with code 3" in meta["error"]
        assert [e.state for e in harness.events] == [
            State.RUNNING,
            State.WAITING,
            State.RUNNING,
            State.SUCCESS,
        ]

    def test_retry_exhausted(self, harness: Harness) -> None:
        """max=1 means two attempts; both fail, the task FAILS with the last error."""
        task = shell(
            "bad",
            "echo 'line one' >&2; echo 'it broke' >&2; exit 7",
            retry=RetryPolicy(max=1, backoff="exponential", delay_ms=50),
        )
        ctx = harness.context(task)
        outcome = harness.runner.run(ctx, task)
        assert (outcome.state, outcome.attempts) == (State.FAILED, 2)
        state, reason, error, count = harness.rows(
            "SELECT state, reason_code, error, attempt_count FROM task_runs"
        )[0]
        assert (state, reason, count) == ("FAILED", "PLUGIN_ERROR", 2)
        assert json.loads(error)["stderr_tail"] == ["line one", "it broke"]
        assert json.loads(error)["exit_code"] == 7
        assert len(harness.rows("SELECT 1 FROM task_attempts WHERE state = 'FAILED'")) == 2

    def test_timeout_kills_group_and_retries(self, harness: Harness) -> None:
        """A timed-out attempt loses its whole process group and is retried by the policy."""
        task = shell(
            "slow",
            "sleep 30 & sleep 30; wait",
            timeout_ms=400,
            retry=RetryPolicy(max=1, delay_ms=10),
        )
        ctx = harness.context(task)
        started = time.monotonic()
        outcome = harness.runner.run(ctx, task)
        assert time.monotonic() - started < 10
        assert outcome.state is State.FAILED and outcome.reason == "TIMEOUT"
        attempts = harness.rows("SELECT attempt, reason, pgid FROM task_attempts ORDER BY 1")
        assert [(a, r) for a, r, _ in attempts] == [(1, "TIMEOUT"), (2, "TIMEOUT")]
        for _, _, pgid in attempts:
            assert pgid is not None and not group_alive(pgid)
        errors = harness.rows(
            "SELECT metadata FROM execution_logs WHERE level = 'ERROR'"
            " AND message LIKE '%attempt _ timed out: limit 400ms, elapsed%'"
        )
        assert len(errors) == 2
        assert json.loads(errors[0][0])["timeout_ms"] == 400

    def test_cancel_during_backoff(self, harness: Harness) -> None:
        """A cancellation while the task waits to retry ends it CANCELLED without attempt 2."""
        task = shell("wait", "exit 1", retry=RetryPolicy(max=3, delay_ms=10_000))
        ctx = harness.context(task)
        timer = threading.Timer(1.0, lambda: ctx.cancel.trigger("CANCELLED_BY_USER", by="user:x"))
        timer.start()
        started = time.monotonic()
        outcome = harness.runner.run(ctx, task)
        timer.join()
        assert outcome.state is State.CANCELLED
        assert time.monotonic() - started < 5
        assert harness.rows("SELECT count(*) FROM task_attempts") == [(1,)]
        assert harness.rows("SELECT state, reason_code FROM task_runs") == [
            ("CANCELLED", "CANCELLED_BY_USER")
        ]

    def test_unresolvable_template_fails_without_spawning(self, harness: Harness) -> None:
        """A reference to an output that does not exist fails the task, not the engine."""
        task = TaskSpec(
            id="use",
            type="core/log.emit",
            inputs={"message": "{{ tasks.nope.outputs.x }}"},
        )
        ctx = harness.context(task)
        outcome = harness.runner.run(ctx, task)
        assert (outcome.state, outcome.reason) == (State.FAILED, "TEMPLATE_ERROR")
        assert harness.rows("SELECT pid, reason FROM task_attempts") == [(None, "TEMPLATE_ERROR")]

    def test_secret_inputs_are_masked_and_redacted(self, harness: Harness) -> None:
        """A secret reaches the plugin but is stored and logged only as ***SECRET***."""
        task = TaskSpec(
            id="tok",
            type="core/shell.run",
            inputs={"command": "echo token=$T", "env": {"T": "{{ secrets.TOKEN }}"}},
        )
        ctx = harness.context(task)
        ctx.secrets = SecretStore({"TOKEN": "tok-9f8e7d6c5b"})
        assert harness.runner.run(ctx, task).state is State.SUCCESS
        inputs = json.loads(harness.rows("SELECT inputs FROM task_runs")[0][0])
        assert inputs["env"] == {"T": "***SECRET***"}
        messages = [m for (m,) in harness.rows("SELECT message FROM execution_logs")]
        assert "token=***SECRET***" in messages
        harness.collector.flush()
        harness.writer.checkpoint()
        assert b"tok-9f8e7d6c5b" not in harness.db.read_bytes()

    def test_secret_from_an_upstream_output_is_masked_in_stored_inputs(
        self, harness: Harness
    ) -> None:
        """A secret that reaches a task through an upstream output is stored masked too."""
        secret = "pa55-w0rd-Zq8xK3"
        keep = TaskSpec(
            id="keep",
            type="core/python.run",
            inputs={
                "args": ["{{ secrets.DB }}"],
                "script": "import json, os, sys\n"
                "with open(os.environ['AUTOKESTRA_OUTPUTS'], 'w') as out:\n"
                "    json.dump({'url': 'db://u:' + sys.argv[1] + '@h'}, out)\n",
            },
        )
        use = TaskSpec(
            id="use",
            type="core/log.emit",
            needs=("keep",),
            inputs={"message": "connect {{ tasks.keep.outputs.url }}"},
            position=1,
        )
        ctx = harness.context(keep, use)
        ctx.secrets = SecretStore({"DB": secret})
        assert harness.runner.run(ctx, keep).state is State.SUCCESS
        assert harness.runner.run(ctx, use).state is State.SUCCESS
        stored = harness.rows("SELECT inputs FROM task_runs WHERE task_id = 'use'")[0][0]
        assert json.loads(stored) == {"level": "INFO", "message": "connect db://u:***SECRET***@h"}
        harness.collector.flush()
        harness.writer.checkpoint()
        assert secret.encode() not in harness.db.read_bytes()

    def test_display_raising_system_exit_does_not_stop_the_task(self, harness: Harness) -> None:
        """rich raises SystemExit on a closed stdout pipe: the task still runs to its end."""
        task = shell("x", "echo hi")
        ctx = harness.context(task)
        calls: list[EngineEvent] = []

        def broken_display(event: EngineEvent) -> None:
            calls.append(event)
            raise SystemExit(1)

        ctx._on_event = broken_display
        assert harness.runner.run(ctx, task).state is State.SUCCESS
        assert len(calls) == 1  # disabled after the first failure
        assert harness.rows("SELECT state FROM task_runs") == [("SUCCESS",)]
