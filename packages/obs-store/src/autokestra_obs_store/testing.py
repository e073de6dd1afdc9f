"""Test helpers: realistic executions written through a ``Writer``, for tests, docs, benchmarks.

Public like ``autokestra_obs_collector.testing``: the tests of obs-store, obs-cli and obs-web
and ``tools/bench/inspect.py`` use it to get executions shaped like the engine's (task runs
with needs, attempts with retries and backoff, masked inputs, outputs, errors with a stderr
tail, and an audit trail whose hash chain is computed with ``audit_digest`` as obs-audit does).

    writer = open_writer(tmp_path / "a.db")
    execution_id = write_execution(writer, success_execution(1_764_096_000_000))
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from autokestra_obs_schema import (
    SECRET_MASK,
    AuditEventType,
    LogLevel,
    Reason,
    State,
    Writer,
    audit_digest,
    canonical_metadata,
)

#: A fixed start time (2026-11-25T18:40:00Z) so generated docs are reproducible.
T0 = 1_795_632_000_000


def make_execution_id(ms: int, rng: random.Random) -> str:
    """A UUID version 7 (time-ordered) for ``ms``, random bits from ``rng``."""
    rand = rng.getrandbits(74)
    value = (
        (ms & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | (rand >> 62) << 64
        | 0b10 << 62
        | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


@dataclass
class AttemptRecord:
    """One attempt: ``end`` None while it runs."""

    state: str
    start: int
    end: int | None
    reason: str | None = None
    exit_code: int | None = None
    error: dict[str, Any] | None = None


@dataclass
class TaskRecord:
    """One task run; times default from its attempts."""

    task_id: str
    type: str = "core/shell.run"
    needs: tuple[str, ...] = ()
    state: str = State.SUCCESS
    queued: int | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    reason_code: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    ended: int | None = None


@dataclass
class ExecutionRecord:
    """One execution with its tasks and its audit events ``(type, timestamp, metadata)``."""

    execution_id: str
    workflow_id: str
    state: str
    created: int
    started: int | None
    ended: int | None
    tasks: list[TaskRecord]
    events: list[tuple[str, int, dict[str, Any]]]
    trigger_type: str = "manual"
    reason_code: str | None = None
    message: str | None = None
    failed_task_id: str | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    cancel_requested_at: int | None = None
    inputs: dict[str, Any] | None = None
    log_entry_count: int = 0
    workflow_source: str | None = None
    engine_pid: int | None = None
    engine_host: str | None = None
    heartbeat_at: int | None = None


def _json(value: Any) -> str | None:
    return None if value is None else canonical_metadata(value)


def write_execution(writer: Writer, record: ExecutionRecord) -> str:
    """Insert the execution, its task runs, attempts and hash-chained audit events.

    Returns:
        The execution id.
    """
    updated = record.ended or record.started or record.created
    with writer.transaction(durable=True) as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, trigger_type, "
            "reason_code, message, failed_task_id, created_at, started_at, ended_at, "
            "updated_at, log_entry_count, cancel_requested_at, cancelled_by, cancel_reason, "
            "inputs, workflow_source, engine_pid, engine_host, heartbeat_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.execution_id, record.workflow_id, record.state, record.trigger_type,
                record.reason_code, record.message, record.failed_task_id, record.created,
                record.started, record.ended, updated, record.log_entry_count,
                record.cancel_requested_at, record.cancelled_by, record.cancel_reason,
                _json(record.inputs), record.workflow_source, record.engine_pid,
                record.engine_host, record.heartbeat_at,
            ),
        )  # fmt: skip
        for position, task in enumerate(record.tasks):
            started = task.attempts[0].start if task.attempts else None
            ended = task.ended
            if ended is None and task.attempts and task.state in (State.SUCCESS, State.FAILED):
                ended = task.attempts[-1].end
            duration = ended - started if started is not None and ended is not None else None
            conn.execute(
                "INSERT INTO task_runs (execution_id, task_id, position, type, state, "
                "reason_code, needs, attempt_count, inputs, outputs, error, created_at, "
                "queued_at, started_at, ended_at, duration_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.execution_id, task.task_id, position, task.type, task.state,
                    task.reason_code, canonical_metadata(list(task.needs)), len(task.attempts),
                    _json(task.inputs), _json(task.outputs), _json(task.error), record.created,
                    task.queued, started, ended, duration,
                ),
            )  # fmt: skip
            for number, attempt in enumerate(task.attempts, start=1):
                conn.execute(
                    "INSERT INTO task_attempts (execution_id, task_id, attempt, state, reason, "
                    "started_at, ended_at, duration_ms, exit_code, error, pid, pgid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.execution_id, task.task_id, number, attempt.state,
                        attempt.reason, attempt.start, attempt.end,
                        attempt.end - attempt.start if attempt.end is not None else None,
                        attempt.exit_code, _json(attempt.error), 40_000 + number,
                        40_000 + number,
                    ),
                )  # fmt: skip
        prev: str | None = None
        for event_type, timestamp, metadata in record.events:
            text = canonical_metadata(metadata)
            digest = audit_digest(prev, record.execution_id, event_type, timestamp, text)
            conn.execute(
                "INSERT INTO execution_audit_events (execution_id, event_type, timestamp, "
                "metadata, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                (record.execution_id, event_type, timestamp, text, prev, digest),
            )
            prev = digest
    return record.execution_id


def _created(record_id: str, workflow_id: str, t0: int) -> list[tuple[str, int, dict[str, Any]]]:
    del record_id
    return [
        (AuditEventType.CREATED, t0, {"workflow_id": workflow_id, "trigger_type": "manual"}),
        (AuditEventType.STARTED, t0 + 5, {}),
    ]


def _stderr_error(message: str, exit_code: int, tail: list[str]) -> dict[str, Any]:
    return {
        "message": message,
        "type": "PluginError",
        "exit_code": exit_code,
        "signal": None,
        "stderr_tail": tail,
    }


def success_execution(t0: int = T0, seed: int = 1) -> ExecutionRecord:
    """A SUCCESS execution: fetch, then transform and notify in parallel, then load."""
    eid = make_execution_id(t0, random.Random(seed))
    s = t0 + 5
    tasks = [
        TaskRecord(
            "fetch", "core/http.request", (), queued=s, attempts=[AttemptRecord(
                State.SUCCESS, s + 10, s + 1210, "exit code 0", 0)],
            inputs={"url": "https://api.example.com/users", "method": "GET",
                    "headers": {"Authorization": SECRET_MASK}},
            outputs={"status": 200, "body": '{"users": 42}'},
        ),
        TaskRecord(
            "transform", "core/python.run", ("fetch",), queued=s + 1215, attempts=[
                AttemptRecord(State.SUCCESS, s + 1220, s + 2520, "exit code 0", 0)],
            inputs={"script": "import json\nprint('rows', 42)", "args": []},
            outputs={"rows": 42},
        ),
        TaskRecord(
            "notify", "core/log.emit", ("fetch",), queued=s + 1215, attempts=[
                AttemptRecord(State.SUCCESS, s + 1225, s + 1480, "exit code 0", 0)],
            inputs={"message": "fetched 42 users", "level": LogLevel.INFO},
            outputs={"message": "fetched 42 users"},
        ),
        TaskRecord(
            "load", "core/shell.run", ("transform",), queued=s + 2525, attempts=[
                AttemptRecord(State.SUCCESS, s + 2530, s + 3300, "exit code 0", 0)],
            inputs={"command": "psql -c 'COPY users FROM STDIN'",
                    "env": {"PGPASSWORD": SECRET_MASK}},
            outputs={"exit_code": 0},
        ),
    ]  # fmt: skip
    end = s + 3310
    events = [
        *_created(eid, "etl", t0),
        (AuditEventType.COMPLETED, end, {"duration_ms": end - s, "task_count": len(tasks)}),
    ]
    return ExecutionRecord(
        eid, "etl", State.SUCCESS, t0, s, end, tasks, events,
        inputs={"since": "2026-11-01"}, log_entry_count=12,
        workflow_source="id: etl\ntasks: []\n",
    )  # fmt: skip


def failure_execution(t0: int = T0, seed: int = 2) -> ExecutionRecord:
    """A FAILED execution: build fails, test and deploy are cancelled, lint still succeeds."""
    eid = make_execution_id(t0, random.Random(seed))
    s = t0 + 5
    error = _stderr_error(
        "Command exited with code 2",
        2,
        ["make: *** [Makefile:12: all] Error 2", "cc: error: missing.c: No such file"],
    )
    tasks = [
        TaskRecord("checkout", queued=s, attempts=[AttemptRecord(
            State.SUCCESS, s + 5, s + 400, "exit code 0", 0)],
            inputs={"command": "git checkout main"}, outputs={"exit_code": 0}),
        TaskRecord("build", needs=("checkout",), state=State.FAILED, queued=s + 405,
                   reason_code=Reason.PLUGIN_ERROR, attempts=[AttemptRecord(
                       State.FAILED, s + 410, s + 2100, "exit code 2", 2, error)],
                   inputs={"command": "make all"}, error=error),
        TaskRecord("lint", needs=("checkout",), queued=s + 405, attempts=[AttemptRecord(
            State.SUCCESS, s + 412, s + 2600, "exit code 0", 0)],
            inputs={"command": "ruff check ."}, outputs={"exit_code": 0}),
        TaskRecord("test", needs=("build",), state=State.CANCELLED,
                   reason_code=Reason.UPSTREAM_FAILED, ended=s + 2100),
        TaskRecord("deploy", needs=("test", "lint"), state=State.CANCELLED,
                   reason_code=Reason.UPSTREAM_FAILED, ended=s + 2100),
    ]  # fmt: skip
    end = s + 2610
    events = [
        *_created(eid, "ci", t0),
        (AuditEventType.FAILED, end, {
            "error_message": "Task build failed: Command exited with code 2",
            "failed_task_id": "build", "reason": Reason.PLUGIN_ERROR}),
    ]  # fmt: skip
    return ExecutionRecord(
        eid, "ci", State.FAILED, t0, s, end, tasks, events, reason_code=Reason.PLUGIN_ERROR,
        message="Task build failed: Command exited with code 2", failed_task_id="build",
        log_entry_count=31,
    )  # fmt: skip


def retry_execution(t0: int = T0, seed: int = 3) -> ExecutionRecord:
    """A SUCCESS execution whose ``flaky`` task succeeds on its third attempt.

    Exponential backoff: 1s after the first failure, 2s after the second.
    """
    eid = make_execution_id(t0, random.Random(seed))
    s = t0 + 5
    fail = _stderr_error("Command exited with code 1", 1, ["connection refused"])
    tasks = [
        TaskRecord("flaky", queued=s, attempts=[
            AttemptRecord(State.FAILED, s + 5, s + 805, "exit code 1; retry in 1s", 1, fail),
            AttemptRecord(State.FAILED, s + 1805, s + 2505, "exit code 1; retry in 2s", 1, fail),
            AttemptRecord(State.SUCCESS, s + 4505, s + 5105, "exit code 0", 0),
        ], inputs={"command": "curl -f http://localhost:8080/health"},
            outputs={"exit_code": 0}),
        TaskRecord("report", "core/log.emit", ("flaky",), queued=s + 5110, attempts=[
            AttemptRecord(State.SUCCESS, s + 5115, s + 5200, "exit code 0", 0)],
            inputs={"message": "healthy"}, outputs={"message": "healthy"}),
    ]  # fmt: skip
    end = s + 5210
    events = [
        *_created(eid, "healthcheck", t0),
        (AuditEventType.COMPLETED, end, {"duration_ms": end - s, "task_count": 2}),
    ]
    return ExecutionRecord(eid, "healthcheck", State.SUCCESS, t0, s, end, tasks, events,
                           log_entry_count=9)  # fmt: skip


def timeout_execution(t0: int = T0, seed: int = 4) -> ExecutionRecord:
    """A workflow that hit its 3s timeout: FAILED with reason TIMEOUT, terminal event TIMEOUT."""
    eid = make_execution_id(t0, random.Random(seed))
    s = t0 + 5
    killed: dict[str, Any] = {
        "message": "Execution timed out after 3s",
        "type": "Timeout",
        "exit_code": None,
        "signal": 15,
        "stderr_tail": [],
    }
    tasks = [
        TaskRecord("prepare", "core/wait.sleep", queued=s, attempts=[AttemptRecord(
            State.SUCCESS, s + 5, s + 505, "exit code 0", 0)], inputs={"duration": "500ms"},
            outputs={"slept_ms": 500}),
        TaskRecord("crunch", "core/wait.sleep", ("prepare",), state=State.CANCELLED, queued=s + 510,
                   reason_code=Reason.TIMEOUT, attempts=[AttemptRecord(
                       State.CANCELLED, s + 515, s + 3010, Reason.TIMEOUT, None, killed)],
                   inputs={"duration": "10s"}, error=killed, ended=s + 3010),
        TaskRecord("publish", needs=("crunch",), state=State.CANCELLED, reason_code=Reason.TIMEOUT,
                   ended=s + 3010),
    ]  # fmt: skip
    end = s + 3012
    events = [
        *_created(eid, "batch", t0),
        (AuditEventType.TIMEOUT, end, {"timeout_ms": 3000, "elapsed_ms": end - s}),
    ]
    return ExecutionRecord(
        eid, "batch", State.FAILED, t0, s, end, tasks, events, reason_code=Reason.TIMEOUT,
        message="Execution timed out after 3s", log_entry_count=4,
    )  # fmt: skip


def cancelled_execution(t0: int = T0, seed: int = 5) -> ExecutionRecord:
    """An execution cancelled by a user while ``sleep`` ran; ``after`` never started."""
    eid = make_execution_id(t0, random.Random(seed))
    s = t0 + 5
    tasks = [
        TaskRecord("sleep", "core/wait.sleep", state=State.CANCELLED, queued=s,
                   reason_code=Reason.CANCELLED_BY_USER, attempts=[AttemptRecord(
                       State.CANCELLED, s + 5, s + 1800, Reason.CANCELLED_BY_USER, None,
                       {"message": "Cancelled", "type": "Cancelled", "exit_code": None,
                        "signal": 15, "stderr_tail": []})],
                   inputs={"duration": "1m"}, ended=s + 1800),
        TaskRecord("after", "core/log.emit", ("sleep",), state=State.CANCELLED,
                   reason_code=Reason.CANCELLED_BY_USER, ended=s + 1800),
    ]  # fmt: skip
    end = s + 1805
    events = [
        *_created(eid, "nightly", t0),
        (AuditEventType.CANCELLED, end, {"cancelled_by": "user:alice", "reason": "wrong input",
                            "pending_task_count": 1}),
    ]  # fmt: skip
    return ExecutionRecord(
        eid, "nightly", State.CANCELLED, t0, s, end, tasks, events,
        reason_code=Reason.CANCELLED_BY_USER, cancelled_by="user:alice",
        cancel_reason="wrong input",
        cancel_requested_at=s + 1700, log_entry_count=3,
    )  # fmt: skip


def running_execution(t0: int = T0, seed: int = 6) -> ExecutionRecord:
    """A live execution (read it with a clock at ``t0 + 10s``).

    ``setup`` succeeded, ``download`` runs, ``probe`` waits in retry backoff after a failed
    attempt, ``extract`` waits for ``download``.
    """
    eid = make_execution_id(t0, random.Random(seed))
    s = t0 + 5
    tasks = [
        TaskRecord("setup", queued=s, attempts=[AttemptRecord(
            State.SUCCESS, s + 5, s + 1005, "exit code 0", 0)], inputs={"command": "mkdir -p out"},
            outputs={"exit_code": 0}),
        TaskRecord("download", needs=("setup",), state=State.RUNNING, queued=s + 1010, attempts=[
            AttemptRecord(State.RUNNING, s + 1015, None)], inputs={"command": "wget big.iso"}),
        TaskRecord("probe", needs=("setup",), state=State.WAITING, reason_code=Reason.RETRY_BACKOFF,
                   queued=s + 1010, attempts=[AttemptRecord(
                       State.FAILED, s + 1020, s + 2020, "exit code 7; retry in 30s", 7,
                       _stderr_error("Command exited with code 7", 7, ["timeout"]))],
                   inputs={"command": "curl -f http://mirror/"}),
        TaskRecord("extract", needs=("download",), state=State.PENDING),
    ]  # fmt: skip
    return ExecutionRecord(
        eid, "mirror", State.RUNNING, t0, s, None, tasks, _created(eid, "mirror", t0),
        log_entry_count=17, engine_pid=4242, engine_host="worker-1", heartbeat_at=s + 2000,
    )  # fmt: skip


# A data builder: its statements are the rows it makes, read top to bottom.
def wide_execution(  # noqa: PLR0915
    n_tasks: int,
    t0: int = T0,
    seed: int = 7,
    *,
    workers: int = 4,
    fail_task: int | None = None,
    retry_every: int = 7,
) -> ExecutionRecord:
    """A layered DAG of ``n_tasks`` run by ``workers`` slots; every ``retry_every``-th task
    fails once and succeeds after a 500 ms backoff. With ``fail_task``, that task fails for
    good and its dependants are cancelled (UPSTREAM_FAILED)."""
    rng = random.Random(seed)
    eid = make_execution_id(t0, rng)
    s = t0 + 5
    free = [s] * workers
    ends: dict[str, int] = {}
    failed: set[str] = set()
    tasks: list[TaskRecord] = []
    width = 8
    for index in range(n_tasks):
        task_id = f"task-{index:03d}"
        layer = index // width
        needs: tuple[str, ...] = ()
        if layer:
            base = (layer - 1) * width
            picks = rng.sample(range(base, base + width), k=rng.randint(1, 2))
            needs = tuple(f"task-{p:03d}" for p in sorted(picks))
        if any(need in failed for need in needs):
            failed.add(task_id)
            tasks.append(TaskRecord(task_id, needs=needs, state=State.CANCELLED,
                                    reason_code=Reason.UPSTREAM_FAILED, ended=s))  # fmt: skip
            continue
        ready = max((ends[n] for n in needs), default=s)
        slot = min(range(workers), key=lambda i: free[i])
        start = max(ready, free[slot]) + 2
        run = rng.randint(50, 1500)
        attempts: list[AttemptRecord] = []
        if index == fail_task:
            error = _stderr_error("Command exited with code 1", 1, ["boom"])
            attempts.append(
                AttemptRecord(State.FAILED, start, start + run, "exit code 1", 1, error)
            )
            failed.add(task_id)
            tasks.append(TaskRecord(task_id, needs=needs, state=State.FAILED, queued=ready,
                                    attempts=attempts, reason_code=Reason.PLUGIN_ERROR, error=error,
                                    inputs={"command": f"./step.sh {index}"}))  # fmt: skip
            ends[task_id] = start + run
            free[slot] = start + run
            continue
        if retry_every and index % retry_every == retry_every - 1:
            error = _stderr_error("Command exited with code 1", 1, ["flaky"])
            attempts.append(
                AttemptRecord(State.FAILED, start, start + run // 2, "exit code 1; retry in 500ms",
                              1, error)
            )  # fmt: skip
            start = start + run // 2 + 500
        attempts.append(AttemptRecord(State.SUCCESS, start, start + run, "exit code 0", 0))
        ends[task_id] = start + run
        free[slot] = start + run
        tasks.append(TaskRecord(task_id, needs=needs, queued=ready, attempts=attempts,
                                inputs={"command": f"./step.sh {index}", "token": SECRET_MASK},
                                outputs={"exit_code": 0}))  # fmt: skip
    end = max(ends.values(), default=s) + 5
    for task in tasks:
        if task.state == State.CANCELLED:
            task.ended = end
    terminal: tuple[str, int, dict[str, Any]]
    if failed:
        state, terminal = State.FAILED, (AuditEventType.FAILED, end, {
            "error_message": f"Task task-{fail_task:03d} failed",
            "failed_task_id": f"task-{fail_task:03d}", "reason": Reason.PLUGIN_ERROR})  # fmt: skip
    else:
        state, terminal = State.SUCCESS, (AuditEventType.COMPLETED, end, {"duration_ms": end - s,
                                                         "task_count": n_tasks})  # fmt: skip
    record = ExecutionRecord(eid, f"wide-{n_tasks}", state, t0, s, end, tasks,
                             [*_created(eid, f"wide-{n_tasks}", t0), terminal],
                             log_entry_count=n_tasks * 3)  # fmt: skip
    if failed:
        record.reason_code = Reason.PLUGIN_ERROR
        record.failed_task_id = f"task-{fail_task:03d}"
        record.message = f"Task task-{fail_task:03d} failed"
    return record


def fan_out_execution(
    n_iterations: int, t0: int = T0, seed: int = 8, *, concurrency: int = 4
) -> ExecutionRecord:
    """``list`` then a ``for_each`` task ``process`` of ``n_iterations`` iterations
    (``process[0]``...), ``concurrency`` at once, every 7th failing once and retried after
    200 ms, then ``total``. The task runs are in the engine's order (an iteration after its
    task)."""
    rng = random.Random(seed)
    eid = make_execution_id(t0, rng)
    s = t0 + 5
    listed = s + 100
    tasks = [
        TaskRecord("list", type="core/python.run", queued=s,
                   attempts=[AttemptRecord(State.SUCCESS, s + 2, listed, "exit code 0", 0)],
                   outputs={"items": list(range(n_iterations))}),
        TaskRecord("process", type="core/python.run", needs=("list",), queued=listed),
    ]  # fmt: skip
    free = [listed] * concurrency
    results = []
    for index in range(n_iterations):
        slot = min(range(concurrency), key=lambda i: free[i])
        start = free[slot] + 1
        run = rng.randint(20, 200)
        attempts = []
        if index % 7 == 6:
            error = _stderr_error("Command exited with code 1", 1, [f"flaky {index}"])
            attempts.append(AttemptRecord(State.FAILED, start, start + run, "PLUGIN_ERROR", 1,
                                          error))  # fmt: skip
            start += run + 200
        attempts.append(AttemptRecord(State.SUCCESS, start, start + run, "exit code 0", 0))
        free[slot] = start + run
        results.append({"index": index})
        tasks.append(TaskRecord(f"process[{index}]", type="core/python.run", queued=listed,
                                attempts=attempts, inputs={"args": [index]},
                                outputs={"index": index}))  # fmt: skip
    done = max(free) + 1
    tasks[1].ended = done
    tasks[1].outputs = {"results": results, "count": n_iterations}
    tasks.append(TaskRecord("total", type="core/log.emit", needs=("process",), queued=done,
                            attempts=[AttemptRecord(State.SUCCESS, done + 1, done + 10,
                                                    "exit code 0", 0)]))  # fmt: skip
    end = done + 12
    events = [
        *_created(eid, "fan-out", t0),
        (AuditEventType.COMPLETED, end, {"duration_ms": end - s, "task_count": len(tasks)}),
    ]
    return ExecutionRecord(eid, "fan-out", State.SUCCESS, t0, s, end, tasks, events,
                           log_entry_count=n_iterations * 2)  # fmt: skip


def skipped_execution(t0: int = T0, seed: int = 9) -> ExecutionRecord:
    """A SUCCESS execution with skips: ``count`` runs, ``nothing-to-do`` is SKIPPED
    (CONDITION_FALSE), ``archive`` after it SKIPPED (UPSTREAM_SKIPPED); each skip has its
    task ``STATE_CHANGE`` audit event, as the engine writes it."""
    eid = make_execution_id(t0, random.Random(seed))
    s = t0 + 5
    tasks = [
        TaskRecord("count", "core/python.run", queued=s, attempts=[
            AttemptRecord(State.SUCCESS, s + 2, s + 80, "exit code 0", 0)],
            outputs={"count": 3}),
        TaskRecord("nothing-to-do", "core/log.emit", ("count",), state=State.SKIPPED,
                   reason_code=Reason.CONDITION_FALSE, ended=s + 82),
        TaskRecord("archive", "core/log.emit", ("nothing-to-do",), state=State.SKIPPED,
                   reason_code=Reason.UPSTREAM_SKIPPED, ended=s + 83),
    ]  # fmt: skip
    end = s + 90

    def skip(task_id: str, at: int, reason: str) -> tuple[str, int, dict[str, Any]]:
        change = {"task_id": task_id, "from_state": State.PENDING.value,
                  "to_state": State.SKIPPED.value, "reason": reason}  # fmt: skip
        return (AuditEventType.STATE_CHANGE, at, change)

    # As the engine writes it: execution transitions (without a reason) beside STARTED and
    # the terminal event, and the skips between them.
    running = {"from_state": State.PENDING.value, "to_state": State.RUNNING.value}
    done = {"from_state": State.RUNNING.value, "to_state": State.SUCCESS.value}
    events = [
        *_created(eid, "conditions", t0),
        (AuditEventType.STATE_CHANGE, s, running),
        skip("nothing-to-do", s + 82, Reason.CONDITION_FALSE),
        skip("archive", s + 83, Reason.UPSTREAM_SKIPPED),
        (AuditEventType.STATE_CHANGE, end, done),
        (AuditEventType.COMPLETED, end, {"duration_ms": end - s, "task_count": len(tasks)}),
    ]
    return ExecutionRecord(eid, "conditions", State.SUCCESS, t0, s, end, tasks, events,
                           log_entry_count=4)  # fmt: skip
