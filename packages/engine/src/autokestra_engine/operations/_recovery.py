"""Crash recovery: executions whose engine process died are ended FAILED with ENGINE_LOST.

When an engine process dies (SIGKILL, OOM kill, power loss) its executions stay RUNNING (or
PENDING, once claimed) in the database. The next engine process on the same host finds them
by their owner columns: an owner pid that no longer runs (or whose heartbeat is long stale
while the process now holding that pid started after that heartbeat: a pid reused by an
unrelated process) means the owner is lost. A live owner that is merely stopped (Ctrl+Z,
SIGSTOP) or stalled is never judged lost. For each:

1. plugin process groups still alive (``task_attempts.pgid``) are killed, so nothing keeps
   running unobserved;
2. an ERROR log entry says what happened (written before the state change, so a follower
   that stops at the terminal state has read it);
3. one durable transaction ends the open attempts FAILED, running task runs FAILED, pending
   ones CANCELLED (reason ENGINE_LOST), and the execution FAILED with its STATE_CHANGE and
   FAILED audit events. A task is never re-run: what it did before the crash is unknown.

Owners on another host are left alone: their pids mean nothing here (see docs/operations.md).

    lost = recover_lost_executions(writer, collector)
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import AuditEventType, LogLevel, Reason, State, Writer, now_ms, pid_alive

from ..persistence._recorder import ExecutionRecorder
from ..run._executor import group_alive
from ..run._scheduler import SCHEDULER

#: An owner whose pid runs but whose heartbeat is older than this is presumed lost (the pid
#: was reused), unless that process started before the heartbeat (then it is the owner,
#: stopped or stalled). Running engines refresh it every few seconds.
STALE_HEARTBEAT_MS = 120_000
#: A group leader that started this long after the attempt cannot be the attempt's process.
_START_SLACK_MS = 10_000
#: ``/proc/stat``'s boot time is whole seconds, so a computed process start time may be up
#: to this much earlier than the real one.
_BTIME_SLACK_MS = 1_000
#: How long to wait for killed plugin process groups to disappear.
_KILL_WAIT_S = 2.0

#: States an execution, task run or attempt can still leave (bound as ``?, ?, ?``).
_OPEN = (State.PENDING, State.RUNNING, State.WAITING)
_OPEN_OWNED = """
SELECT execution_id, state, engine_id, engine_pid, engine_host, heartbeat_at
FROM executions
WHERE state IN (?, ?, ?) AND engine_id IS NOT NULL
ORDER BY created_at
"""
_OWNER = "SELECT state, engine_id FROM executions WHERE execution_id = ?"
_OPEN_ATTEMPTS = """
SELECT task_id, attempt, pgid, started_at FROM task_attempts
WHERE execution_id = ? AND state IN (?, ?, ?) AND pgid IS NOT NULL
"""
# Parameters of the three updates below: new state, reason, ended_at, ended_at, execution id,
# then the states they apply to.
_FAIL_ATTEMPTS = """
UPDATE task_attempts SET state = ?, reason = ?, ended_at = ?,
    duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE ? - started_at END
WHERE execution_id = ? AND state IN (?, ?, ?)
"""
_FAIL_RUNNING_TASKS = """
UPDATE task_runs SET state = ?, reason_code = ?, ended_at = ?,
    duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE ? - started_at END
WHERE execution_id = ? AND state = ?
"""
_CANCEL_OPEN_TASKS = """
UPDATE task_runs SET state = ?, reason_code = ?, ended_at = ?,
    duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE ? - started_at END
WHERE execution_id = ? AND state IN (?, ?)
"""


@dataclass(frozen=True, slots=True)
class LostExecution:
    """An execution recovery ended FAILED (ENGINE_LOST)."""

    execution_id: str
    previous_state: str
    engine_id: str
    engine_pid: int | None
    engine_host: str | None
    killed_process_groups: tuple[int, ...]


def _boot_time_ms() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) * 1000
    except (OSError, ValueError):
        return None
    return None


def process_start_ms(pid: int) -> int | None:
    """Wall-clock start time of a process (Linux ``/proc``), or None when unknown."""
    boot = _boot_time_ms()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if boot is None:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        ticks = int(fields[19])  # field 22 of stat; fields here start at field 3
    except (IndexError, ValueError):
        return None
    return boot + ticks * 1000 // os.sysconf("SC_CLK_TCK")


def _live_group_members(pgid: int) -> list[int] | None:
    """Pids of the group's processes that are not zombies; None without a usable /proc."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    members = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()
        # fields[0] is the state, fields[2] the process group (stat fields 3 and 5).
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def _group_exists(pgid: int) -> bool:
    """Whether the group has a live member. A killed process stays a zombie until its new
    parent reaps it, and ``killpg(pgid, 0)`` still succeeds on zombies."""
    members = _live_group_members(pgid)
    if members is not None:
        return bool(members)
    return group_alive(pgid)  # no /proc: zombies count as alive, the cautious answer


def kill_process_group(pgid: int, started_at: int | None) -> bool:
    """SIGKILL a lost attempt's process group if it still exists and is plausibly ours.

    A leader that started well after the attempt means the pgid was reused by an unrelated
    process group: it is left alone. Returns whether a group was killed.
    """
    if pgid <= 1 or pgid == os.getpgrp() or not _group_exists(pgid):
        return False
    leader_start = process_start_ms(pgid)
    if (
        leader_start is not None
        and started_at is not None
        and leader_start > started_at + _START_SLACK_MS
    ):
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + _KILL_WAIT_S
    while _group_exists(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


@dataclass(frozen=True, slots=True)
class _Self:
    """Who is asking: this host, this pid and (when known) this process's engine id."""

    host: str
    pid: int
    engine_id: str | None


def _is_lost(row: tuple[apsw.SQLiteValue, ...], me: _Self, *, now: int, stale_ms: int) -> bool:
    _, state, engine_id, pid, owner_host, heartbeat = row
    if owner_host != me.host or not isinstance(pid, int):
        return False
    if pid == me.pid:
        # Our own pid: ours if the engine id is ours (or unknown). A different engine id is
        # a previous incarnation that had the same pid, e.g. PID 1 of a restarted container.
        return me.engine_id is not None and engine_id != me.engine_id
    if not pid_alive(pid):
        return True
    # A claimed PENDING execution gets no heartbeat until it starts, so only running ones
    # are judged by it.
    if state == State.PENDING or not isinstance(heartbeat, int):
        return False
    # A process that started before the owner's last heartbeat is the owner itself: alive,
    # however stale its heartbeat (stopped by Ctrl+Z or SIGSTOP, a suspended machine, a
    # stalled loop). Ending its execution would kill the plugins of a live engine.
    started = process_start_ms(pid)
    if started is not None and started <= heartbeat - _BTIME_SLACK_MS:
        return False
    # Otherwise a live pid with a long-stale heartbeat is a reused pid.
    return now - heartbeat > stale_ms


def find_lost_executions(
    conn: apsw.Connection,
    *,
    host: str | None = None,
    own_pid: int | None = None,
    own_engine_id: str | None = None,
    now: int | None = None,
    stale_ms: int = STALE_HEARTBEAT_MS,
) -> list[tuple[str, str, str, int | None, str | None]]:
    """(execution_id, state, engine_id, engine_pid, engine_host) of every lost execution.

    ``own_engine_id`` is the asking process's engine id: executions recorded under this
    process's pid but another engine id are then lost too (a restarted container's PID 1).
    """
    me = _Self(
        host=socket.gethostname() if host is None else host,
        pid=os.getpid() if own_pid is None else own_pid,
        engine_id=own_engine_id,
    )
    now = now_ms() if now is None else now
    lost = []
    for row in conn.execute(_OPEN_OWNED, _OPEN).fetchall():
        if _is_lost(row, me, now=now, stale_ms=stale_ms):
            eid, state, engine_id, pid, owner_host, _ = row
            lost.append(
                (
                    str(eid),
                    str(state),
                    str(engine_id),
                    pid if isinstance(pid, int) else None,
                    None if owner_host is None else str(owner_host),
                )
            )
    return lost


def recover_lost_executions(
    writer: Writer,
    collector: LogCollector,
    *,
    host: str | None = None,
    own_engine_id: str | None = None,
    stale_ms: int = STALE_HEARTBEAT_MS,
    clock: Callable[[], int] = now_ms,
) -> list[LostExecution]:
    """End every execution of a dead engine process on this host FAILED (ENGINE_LOST).

    Safe to run from several processes at once: each execution is re-checked inside the
    durable transaction that ends it, so it is ended once.

    Args:
        writer: the process's writer.
        collector: the process's collector (the ERROR entry per execution).
        host: this host's name (default ``socket.gethostname()``).
        own_engine_id: the calling process's engine id, if it has one (see
            :func:`find_lost_executions`).
        stale_ms: heartbeat age beyond which a live owner pid counts as reused.
        clock: Unix-ms clock.

    Returns:
        What was recovered, in creation order.
    """
    host = socket.gethostname() if host is None else host
    recorder = ExecutionRecorder(writer, clock=clock)
    with writer.locked() as conn:
        candidates = find_lost_executions(
            conn, host=host, own_engine_id=own_engine_id, now=clock(), stale_ms=stale_ms
        )
    recovered: list[LostExecution] = []
    for execution_id, state, engine_id, pid, owner_host in candidates:
        killed = _kill_open_attempts(writer, execution_id)
        with writer.locked() as conn:
            owner = conn.execute(_OWNER, (execution_id,)).fetchall()
        if not owner or State(str(owner[0][0])).terminal or owner[0][1] != engine_id:
            # Another engine process's sweep ended it while we killed (waiting up to 2 s):
            # its ERROR entry is there already, and a second one would be noise.
            continue
        message = (
            f"Engine process {pid} on {owner_host} was lost while this execution was {state}:"
            " marked FAILED (ENGINE_LOST); running tasks are not re-run"
        )
        collector.log(
            execution_id,
            LogLevel.ERROR,
            SCHEDULER,
            message,
            metadata={
                "reason": Reason.ENGINE_LOST.value,
                "engine_id": engine_id,
                "engine_pid": pid,
                "engine_host": owner_host,
                "killed_process_groups": list(killed),
            },
        )
        collector.flush_execution(execution_id)
        if _end_lost(
            writer,
            recorder,
            execution_id=execution_id,
            engine_id=engine_id,
            message=message,
            at=clock(),
        ):
            recovered.append(LostExecution(execution_id, state, engine_id, pid, owner_host, killed))
    return recovered


def _kill_open_attempts(writer: Writer, execution_id: str) -> tuple[int, ...]:
    """Kill the still-alive process groups of the execution's open attempts; their pgids."""
    with writer.locked() as conn:
        attempts = conn.execute(_OPEN_ATTEMPTS, (execution_id, *_OPEN)).fetchall()
    return tuple(
        int(pgid)
        for _, _, pgid, started in attempts
        if isinstance(pgid, int)
        and kill_process_group(pgid, started if isinstance(started, int) else None)
    )


def _end_lost(
    writer: Writer,
    recorder: ExecutionRecorder,
    *,
    execution_id: str,
    engine_id: str,
    message: str,
    at: int,
) -> bool:
    with writer.transaction(durable=True) as conn:
        rows = conn.execute(_OWNER, (execution_id,)).fetchall()
        if not rows or State(str(rows[0][0])).terminal or rows[0][1] != engine_id:
            return False  # another process recovered it, or its owner changed meanwhile
        lost = Reason.ENGINE_LOST
        conn.execute(_FAIL_ATTEMPTS, (State.FAILED, lost, at, at, execution_id, *_OPEN))
        conn.execute(_FAIL_RUNNING_TASKS, (State.FAILED, lost, at, at, execution_id, State.RUNNING))
        conn.execute(
            _CANCEL_OPEN_TASKS,
            (State.CANCELLED, lost, at, at, execution_id, State.PENDING, State.WAITING),
        )
        # Joins this transaction: the task changes, the state change and both audit events
        # commit together, durably.
        return recorder.finish_execution(
            execution_id,
            State.FAILED,
            terminal_event=AuditEventType.FAILED,
            terminal_metadata={"error_message": message, "reason": Reason.ENGINE_LOST.value},
            reason=Reason.ENGINE_LOST.value,
            message=message,
        )
