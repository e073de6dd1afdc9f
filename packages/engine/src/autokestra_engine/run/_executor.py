"""Runs one task attempt as a plugin child process, and always cleans up after it.

The protocol (DESIGN.md §3): the action's command starts in its plugin folder, in a new
session (its own process group) with a minimal environment; the resolved inputs arrive as
JSON on stdin; the outputs are one JSON object in the file named by ``AUTOKESTRA_OUTPUTS``;
stdout and stderr are drained concurrently, line by line, into an ``AttemptCapture``.

Timeouts and cancellation send SIGTERM to the whole group, wait ``grace_ms``, then SIGKILL
the group. Processes an attempt leaves behind do not outlive it: once the leader has exited
and the pipes are drained (or ``drain_ms`` passed), whatever is left of the group is killed
and reaped. On Linux the engine process makes itself a child subreaper so that such
orphans are re-parented to it and reaped here (a container's PID 1 often never reaps).

With ``launcher="fork"``, commands that are the engine's interpreter running a script are
forked from a warm fork server (:mod:`._launcher`) instead of spawned; the child is still a
child of this process in its own group, so everything above applies unchanged.

    executor = PluginExecutor(registry, workdir=Path.cwd(), launcher="fork")
    result = executor.run_attempt(request, sink, threading.Event())
    result.outcome   # 'success' | 'failed' | 'timeout' | 'cancelled'
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from autokestra_obs_collector import AttemptCapture, CaptureCounts, Redactor
from autokestra_obs_schema import LogLevel, now_ms

from .._config import LauncherMode
from ..language._model import ActionSpec
from ..language._plugin_registry import PluginRegistry
from ._launcher import ForkLauncher, LaunchedProcess, interpreter_options, launcher_supported
from ._orphan_reaper import TOKEN_ENV, OrphanReaper

Outcome = Literal["success", "failed", "timeout", "cancelled"]
_Process = subprocess.Popen[bytes] | LaunchedProcess
SinkFn = Callable[[LogLevel, str, dict[str, Any] | None], None]

#: Variables copied from the engine's environment; nothing else is inherited.
INHERITED_ENV = ("PATH", "HOME", "LANG", "TZ")
#: The largest outputs file accepted: outputs go into the database as one JSON value.
MAX_OUTPUTS_BYTES = 16 * 1024 * 1024
_READ_CHUNK = 65536
_POLL_S = 0.05
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class AttemptRequest:
    """Everything one attempt needs.

    Attributes:
        execution_id: the execution (passed to the plugin as AUTOKESTRA_EXECUTION_ID).
        task_id: the task (AUTOKESTRA_TASK_ID).
        attempt: 1-based attempt number (AUTOKESTRA_ATTEMPT).
        action: what to run.
        inputs: resolved input values (real secrets included: they go to stdin only).
        timeout_ms: the attempt's time limit, or None for none.
        redactor: hides the execution's secrets in the error this attempt may produce.
        on_spawn: called with ``(pid, pgid)`` once the process exists, so the caller can
            record the group (for recovery after an engine crash).
    """

    execution_id: str
    task_id: str
    attempt: int
    action: ActionSpec
    inputs: dict[str, Any]
    timeout_ms: int | None
    redactor: Redactor = field(default_factory=Redactor)
    on_spawn: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended.

    Attributes:
        outcome: ``success``, ``failed``, ``timeout`` or ``cancelled``.
        exit_code: the process's exit status, None when it was killed by a signal.
        signal: the signal number that ended it, if any.
        outputs: the plugin's outputs as written (not redacted; ``{}`` unless success).
        error: None on success, else ``{message, type, exit_code, signal, stderr_tail}``
            with every string redacted. ``type`` is one of ``exit_code``, ``signal``,
            ``timeout``, ``cancelled``, ``outputs_missing``, ``outputs_invalid``,
            ``spawn_failed``.
        duration_ms: wall time from spawn to cleanup.
        pid: the child's pid (None if it could not start).
        pgid: its process group id (same as pid).
        started_at: Unix ms at spawn.
        ended_at: Unix ms when the attempt was over.
        counts: what the output capture saw (lines, bytes, elided).
        reason: a failed attempt's reason code when it is not PLUGIN_ERROR or TIMEOUT.
    """

    outcome: Outcome
    exit_code: int | None
    signal: int | None
    outputs: dict[str, Any]
    error: dict[str, Any] | None
    duration_ms: int
    pid: int | None
    pgid: int | None
    started_at: int = 0
    ended_at: int = 0
    counts: CaptureCounts | None = None
    #: The reason code of a failed attempt when it is not the plugin's (an in-process
    #: action's, e.g. SUBFLOW_FAILED); None: PLUGIN_ERROR, or TIMEOUT for a timeout.
    reason: str | None = None


def become_subreaper() -> bool:
    """Make this process adopt orphaned descendants (Linux), so it can reap them.

    Returns:
        True when the kernel accepted it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        # A forked attempt that has not reached its setsid() yet leads no group; it is then
        # alone (it starts nothing before), and unreaped, so its pid is still its own.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pgid, signum)
    except PermissionError:
        pass


def group_alive(pgid: int) -> bool:
    """Whether ``killpg(pgid, 0)`` finds the group (zombie members included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class _Child:
    """One running attempt process: pipes drained by threads, exit watched by a thread."""

    def __init__(self, proc: _Process, capture: AttemptCapture) -> None:
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the child leads its own group
        self.capture = capture
        self.exited = threading.Event()
        self.stop_reading = threading.Event()
        self.sink_error: BaseException | None = None
        self._readers: list[threading.Thread] = []
        assert proc.stdout is not None and proc.stderr is not None  # PIPE was asked for
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            thread = threading.Thread(
                target=self._drain, args=(stream, pipe), name=f"drain-{stream}", daemon=True
            )
            thread.start()
            self._readers.append(thread)
        threading.Thread(target=self._watch_exit, name="attempt-exit", daemon=True).start()

    def _watch_exit(self) -> None:
        # WNOWAIT: learn that the leader ended without reaping it, so its pid (= the group
        # id) stays reserved and signalling the group later cannot hit a recycled group.
        try:
            if hasattr(os, "waitid"):
                os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)
            else:  # pragma: no cover - platforms without waitid
                self.proc.wait()
        except ChildProcessError:
            pass
        finally:
            self.exited.set()

    def _drain(self, stream: Literal["stdout", "stderr"], pipe: IO[bytes]) -> None:
        fd = pipe.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while not self.stop_reading.is_set():
                # A timed poll, not a blocking read: a grandchild that keeps the pipe open
                # cannot keep this thread (and so the attempt) alive once told to stop.
                if not poller.poll(100):
                    continue
                data = os.read(fd, _READ_CHUNK)
                if not data:
                    return
                if self.sink_error is None:
                    try:
                        self.capture.feed(stream, data)
                    except Exception as exc:
                        # Keep draining (a full pipe would block the plugin) but stop storing.
                        self.sink_error = exc
        finally:
            pipe.close()

    def readers_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._readers:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._readers)


class PluginExecutor:
    """Runs plugin action attempts as child processes; thread-safe, one call per attempt."""

    def __init__(
        self,
        registry: PluginRegistry,
        *,
        workdir: Path,
        grace_ms: int = 5000,
        drain_ms: int = 2000,
        env: Mapping[str, str] | None = None,
        max_output_bytes: int = 10 * 1024 * 1024,
        launcher: LauncherMode = "spawn",
    ) -> None:
        """Create an executor.

        Args:
            registry: the plugin registry (kept for callers that look actions up here).
            workdir: the folder ``workflow run`` started in (AUTOKESTRA_WORKDIR).
            grace_ms: time between SIGTERM and SIGKILL on timeout or cancellation.
            drain_ms: after the leader exits, how long descendants may keep its pipes open
                before the rest of the group is killed.
            env: where PATH, HOME, LANG and TZ come from (default: ``os.environ``).
            max_output_bytes: stdout+stderr stored per attempt before elision.
            launcher: ``fork`` to fork Python plugin commands from a warm fork server
                (anything else is still spawned), ``spawn`` to spawn every command.
                Call :meth:`close` to stop the servers.
        """
        self.registry = registry
        self.workdir = workdir
        self.grace_ms = grace_ms
        self.drain_ms = drain_ms
        self._env = os.environ if env is None else env
        self._max_output_bytes = max_output_bytes
        self.subreaper = become_subreaper()
        # Kills this engine's plugins should the engine die without doing it (§6.5).
        self.orphan_reaper = OrphanReaper()
        self.launcher: ForkLauncher | None = None
        if launcher == "fork" and launcher_supported():
            self.launcher = ForkLauncher(self._base_env())
            self.launcher.prepare(
                sorted(
                    {
                        options
                        for action in registry.actions()
                        if (options := interpreter_options(action.command, sys.executable))
                        is not None
                    }
                )
            )

    def close(self) -> None:
        """Stop the fork servers, if any, and the orphan reaper (after the last attempt);
        idempotent."""
        try:
            if self.launcher is not None:
                self.launcher.close()
        finally:
            self.orphan_reaper.close()

    def _base_env(self) -> dict[str, str]:
        env = {name: self._env[name] for name in INHERITED_ENV if self._env.get(name)}
        env.setdefault("PATH", os.defpath)
        # Output is captured through pipes, where Python would block-buffer it: lines
        # must reach the log (and a follower) as they are printed, not at exit.
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def child_env(self, request: AttemptRequest, outputs_path: Path) -> dict[str, str]:
        """The complete environment of an attempt's process (no secrets, no database)."""
        env = self._base_env()
        env.update(
            {
                "AUTOKESTRA_OUTPUTS": str(outputs_path),
                "AUTOKESTRA_WORKDIR": str(self.workdir),
                "AUTOKESTRA_EXECUTION_ID": request.execution_id,
                "AUTOKESTRA_TASK_ID": request.task_id,
                "AUTOKESTRA_ATTEMPT": str(request.attempt),
                # Marks every process of this engine's plugins, descendants included.
                TOKEN_ENV: self.orphan_reaper.token,
            }
        )
        return env

    def run_attempt(
        self, request: AttemptRequest, sink: SinkFn, cancel: threading.Event
    ) -> AttemptResult:
        """Run one attempt to its end; never raises for anything the plugin does.

        Args:
            request: what to run.
            sink: receives each stored output line as ``(level, message, metadata)``.
            cancel: set it (from any thread) to cancel the attempt.

        Returns:
            The attempt's result; the process group is gone when it returns.
        """
        tmp = Path(tempfile.mkdtemp(prefix="autokestra-attempt-"))
        try:
            return self._run(request, sink, cancel, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # One return per way an attempt ends (spawn failed, cancelled, timed out, exit code,
    # outputs unreadable...), each with its own reason: one exit point would need a flag each.
    def _run(  # noqa: PLR0911
        self, request: AttemptRequest, sink: SinkFn, cancel: threading.Event, tmp: Path
    ) -> AttemptResult:
        action = request.action
        outputs_path = tmp / "outputs.json"
        capture = AttemptCapture(sink, max_bytes=self._max_output_bytes)
        ended = _Ending(request, capture, time.monotonic(), now_ms())
        try:
            proc = self._start(action, self.child_env(request, outputs_path))
        except OSError as exc:
            program = action.command[0] if action.command else "(no command)"
            return ended.result(
                "failed", "spawn_failed", f"cannot start {program}: {exc.strerror or exc}"
            )
        self.orphan_reaper.watch(proc.pid)  # the leader's pid is its group id
        child = _Child(proc, capture)
        ended.pid = proc.pid
        if request.on_spawn is not None:
            try:
                request.on_spawn(proc.pid, child.pgid)
            except BaseException:
                self._finish(child, kill_now=True)
                raise
        self._feed_stdin(proc, request.inputs)
        deadline = None if request.timeout_ms is None else ended.started + request.timeout_ms / 1000
        stopped: Outcome | None = None
        while not child.exited.is_set():
            if cancel.is_set():
                stopped = "cancelled"
                break
            if deadline is not None and time.monotonic() >= deadline:
                stopped = "timeout"
                break
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            child.exited.wait(max(0.0, wait))
        if stopped is not None:
            self._terminate(child)
        self._finish(child, kill_now=stopped is not None)
        returncode = proc.wait()  # reaped by _finish: the status it kept
        ended.exit_code = returncode if returncode >= 0 else None
        ended.signal = -returncode if returncode < 0 else None
        if stopped == "timeout":
            limit = request.timeout_ms or 0
            return ended.result("timeout", "timeout", f"{action.type} timed out after {limit} ms")
        if stopped == "cancelled":
            return ended.result("cancelled", "cancelled", f"{action.type} was cancelled")
        if ended.signal is not None:
            name = _signal_name(ended.signal)
            return ended.result("failed", "signal", f"{action.type} was killed by {name}")
        if ended.exit_code != 0:
            code = ended.exit_code
            return ended.result("failed", "exit_code", f"{action.type} exited with code {code}")
        outputs, problem = self._read_outputs(outputs_path)
        if problem is not None:
            return ended.result("failed", problem[0], problem[1])
        return ended.result("success", outputs=outputs)

    def _start(self, action: ActionSpec, env: dict[str, str]) -> _Process:
        """Fork the command from a warm server when it serves it, else spawn it."""
        if self.launcher is not None:
            launched = self.launcher.launch(action.command, env=env, cwd=action.plugin_dir)
            if launched is not None:
                return launched
        return subprocess.Popen(
            list(action.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=action.plugin_dir,
            env=env,
            start_new_session=True,
            close_fds=True,
        )

    @staticmethod
    def _feed_stdin(proc: _Process, inputs: dict[str, Any]) -> None:
        payload = json.dumps(inputs, ensure_ascii=False).encode("utf-8")
        stdin = proc.stdin
        assert stdin is not None  # PIPE was asked for

        def write() -> None:
            with contextlib.suppress(OSError, ValueError):
                stdin.write(payload)
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

        if len(payload) <= select.PIPE_BUF:
            # Fits an empty pipe of the smallest capacity Linux gives (one page): the
            # write cannot block, so it needs no thread (the common case, one less per task).
            write()
            return
        # A thread: a plugin that never reads stdin must not block us on a full pipe.
        threading.Thread(target=write, name="attempt-stdin", daemon=True).start()

    def _terminate(self, child: _Child) -> None:
        """SIGTERM the group; SIGKILL it once the grace period is over or all is done."""
        _signal_group(child.pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_ms / 1000
        while time.monotonic() < deadline:
            if child.exited.is_set() and child.readers_done(0.0):
                break
            time.sleep(0.02)
        _signal_group(child.pgid, signal.SIGKILL)

    def _finish(self, child: _Child, *, kill_now: bool) -> None:
        """Drain, kill what is left of the group, reap the leader and the orphans."""
        if kill_now:
            _signal_group(child.pgid, signal.SIGKILL)
        child.exited.wait()  # after SIGKILL (or a normal exit) this is immediate
        if not child.readers_done(self.drain_ms / 1000):
            # Descendants still hold the pipes after the leader is gone: end them.
            _signal_group(child.pgid, signal.SIGKILL)
            if not child.readers_done(1.0):
                child.stop_reading.set()  # escaped the group (setsid): stop listening
                child.readers_done(1.0)
        # The leader is an unreaped zombie here, so the group id cannot have been reused.
        _signal_group(child.pgid, signal.SIGKILL)
        child.proc.wait()
        self._reap_group(child.pgid)
        if self.launcher is not None and isinstance(child.proc, LaunchedProcess):
            self.launcher.release(child.pgid)
        self.orphan_reaper.forget(child.pgid)
        child.capture.close()

    @staticmethod
    def _reap_group(pgid: int, timeout: float = 2.0) -> None:
        """Reap orphans of the group adopted by this (subreaper) process, until it is gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-pgid, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid:
                continue
            if not group_alive(pgid):
                return
            time.sleep(0.005)

    @staticmethod
    def _read_outputs(path: Path) -> tuple[dict[str, Any], tuple[str, str] | None]:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return {}, (
                "outputs_missing",
                "the plugin exited 0 but wrote no outputs file (AUTOKESTRA_OUTPUTS)",
            )
        if size > MAX_OUTPUTS_BYTES:
            return {}, ("outputs_invalid", f"outputs file too large: {size} bytes")
        try:
            value = json.loads(path.read_bytes())
        except (ValueError, OSError) as exc:
            return {}, ("outputs_invalid", f"outputs file is not valid JSON: {exc}")
        if not isinstance(value, dict):
            kind = type(value).__name__
            return {}, ("outputs_invalid", f"outputs file must hold a JSON object, not {kind}")
        return value, None


class _Ending:
    """What is known about an attempt as it ends; builds its :class:`AttemptResult`."""

    def __init__(
        self, request: AttemptRequest, capture: AttemptCapture, started: float, started_at: int
    ) -> None:
        self.request = request
        self.capture = capture
        self.started = started
        self.started_at = started_at
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.signal: int | None = None

    def result(
        self,
        outcome: Outcome,
        error_type: str | None = None,
        message: str = "",
        *,
        outputs: dict[str, Any] | None = None,
    ) -> AttemptResult:
        self.capture.close()
        error: dict[str, Any] | None = None
        if error_type is not None:
            redact = self.request.redactor.redact
            error = {
                "message": redact(message),
                "type": error_type,
                "exit_code": self.exit_code,
                "signal": self.signal,
                "stderr_tail": [redact(line) for line in self.capture.stderr_tail()],
            }
        return AttemptResult(
            outcome=outcome,
            exit_code=self.exit_code,
            signal=self.signal,
            outputs=outputs or {},
            error=error,
            duration_ms=int((time.monotonic() - self.started) * 1000),
            pid=self.pid,
            pgid=self.pid,
            started_at=self.started_at,
            ended_at=now_ms(),
            counts=self.capture.counts,
        )
