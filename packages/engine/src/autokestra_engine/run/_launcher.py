"""The warm launcher: starts Python plugin attempts by forking a pre-started interpreter.

A plugin command that is the engine's own interpreter running a script (``{python}`` in a
manifest: every built-in plugin, ``core/python.run`` included) does not need a fresh
interpreter per attempt: a fork server (:mod:`._forkserver`, one per set of interpreter
options, started once per engine) has the interpreter and the runtime the plugins use
imported, and forks a child per attempt. The child is still its own process in its own
session and process group, with the executor's pipes as stdin/stdout/stderr, the attempt's
environment and working directory, so timeouts, cancellation and capture work exactly as
for a spawned process; and, because the server forks it with ``CLONE_PARENT``, the child's
parent is the engine, which waits for it and reaps it like any other child.

Anything else (another program, ``-c``/``-m``, an unknown interpreter option, a server that
is dead or not running) is not served: :meth:`ForkLauncher.launch` returns None and the
executor spawns the command as before.

    launcher = ForkLauncher(base_env={"PATH": "/usr/bin", "PYTHONUNBUFFERED": "1"})
    launcher.prepare([("-I", "-S")])             # start servers early (optional)
    proc = launcher.launch(command, env=env, cwd=plugin_dir)
    if proc is None:
        ...                                      # spawn it with subprocess instead
    proc.wait(); launcher.release(proc.pid)
    launcher.close()
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

#: Interpreter options a fork server can serve (its own options are the attempt's).
SERVABLE_OPTIONS = frozenset({"-I", "-S", "-E", "-s", "-B", "-u", "-P", "-O", "-OO"})
#: The server script (standard library only); never imported by the engine.
SERVER_SCRIPT = Path(__file__).with_name("_forkserver.py")
#: Runs the server script by path without putting its folder (this package) on sys.path.
_BOOTSTRAP = (
    "import sys;sys.argv[:1]=[];sys.flags.safe_path or sys.path.pop(0);"
    "exec(compile(open(sys.argv[0],'rb').read(),sys.argv[0],'exec'))"
)
_MACHINES = frozenset({"x86_64", "aarch64"})
_START_TIMEOUT_S = 10.0
_REPLY_TIMEOUT_S = 5.0
_MAX_REPLY = 65536


def launcher_supported() -> bool:
    """Whether this platform has what the fork server needs (Linux clone, SCM_RIGHTS)."""
    return (
        sys.platform.startswith("linux")
        and os.uname().machine in _MACHINES
        and hasattr(socket, "send_fds")
    )


def interpreter_options(command: Sequence[str], python: str) -> tuple[str, ...] | None:
    """The interpreter options of ``command`` when a fork server can run it, else None.

    Args:
        command: an action's argv.
        python: the engine's interpreter (what ``{python}`` became in the manifest).

    Returns:
        The options between the interpreter and the script (``("-I", "-S")``), or None
        when the command is not ``python [servable options] script.py [args]``.
    """
    if len(command) < 2 or command[0] != python:
        return None
    options: list[str] = []
    for arg in command[1:]:
        if arg in SERVABLE_OPTIONS:
            options.append(arg)
            continue
        if arg.startswith("-"):
            return None  # -c, -m, -X ..., -W ...: a fresh interpreter, please
        return tuple(options)
    return None


class LaunchedProcess:
    """The part of :class:`subprocess.Popen` the executor uses, for a forked attempt.

    The process is a child of this process (``CLONE_PARENT``), so ``wait`` reaps it.
    """

    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = open(stdin, "wb")  # noqa: SIM115 - the caller closes it
        self.stdout: IO[bytes] | None = open(stdout, "rb", buffering=0)  # noqa: SIM115
        self.stderr: IO[bytes] | None = open(stderr, "rb", buffering=0)  # noqa: SIM115
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def wait(self) -> int:
        """Reap the process (blocking) and return its exit code (-N for signal N)."""
        with self._lock:
            if self.returncode is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    status = 255 << 8  # reaped by someone else: the status is lost
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode


class _Server:
    """One running fork server for one set of interpreter options."""

    def __init__(self, options: tuple[str, ...]) -> None:
        self.options = options
        self.ready = threading.Event()
        self.sock: socket.socket | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()  # one request at a time on the socket

    @property
    def alive(self) -> bool:
        return self.sock is not None

    def stop(self) -> None:
        """End the server: it sees EOF and kills the groups of attempts not yet released."""
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()
        proc = self.proc
        if proc is not None:
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def discard(self) -> None:
        """Give up on a failing server: SIGKILL, so it cannot touch running attempts."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()


class ForkLauncher:
    """Fork servers of one engine, by interpreter options; thread-safe.

    Args:
        base_env: the environment every attempt shares (PATH, HOME, LANG, TZ,
            PYTHONUNBUFFERED): a server starts with it, so what the interpreter reads from
            the environment at start-up is what a spawned attempt would read.
        python: the interpreter the servers run (the engine's own by default).
    """

    def __init__(self, base_env: Mapping[str, str], *, python: str = sys.executable) -> None:
        self.python = python
        self._env = dict(base_env)
        self._servers: dict[tuple[str, ...], _Server] = {}
        self._forked: dict[int, _Server] = {}
        self.launched = 0
        """How many processes were forked (not spawned) so far."""
        self._lock = threading.Lock()
        self._closed = False
        # Servers are started from this one long-lived thread: the parent-death signal of a
        # server and of its children fires when the *thread* that started the server ends.
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._keeper = threading.Thread(target=self._keep, name="autokestra-launcher", daemon=True)
        self._keeper.start()

    def _keep(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def serves(self, command: Sequence[str]) -> bool:
        """Whether :meth:`launch` would fork ``command`` (server state aside)."""
        return interpreter_options(command, self.python) is not None

    def prepare(self, option_sets: Sequence[tuple[str, ...]]) -> None:
        """Start the servers for these option sets now, in the background."""
        for options in option_sets:
            self._server(options)

    def _server(self, options: tuple[str, ...]) -> _Server:
        with self._lock:
            server = self._servers.get(options)
            if server is None:
                server = self._servers[options] = _Server(options)
                if self._closed:
                    server.ready.set()
                else:
                    self._jobs.put(lambda: self._start(server))
            return server

    def _start(self, server: _Server) -> None:
        """Start one server and wait for its ready message (runs in the keeper thread)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            server.proc = subprocess.Popen(
                [
                    self.python,
                    *server.options,
                    "-c",
                    _BOOTSTRAP,
                    str(SERVER_SCRIPT),
                    str(theirs.fileno()),
                    str(os.getpid()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                env=self._env,
                cwd="/",
                start_new_session=True,  # a terminal's Ctrl+C is the engine's to handle
            )
            theirs.close()
            ours.settimeout(_START_TIMEOUT_S)
            if json.loads(ours.recv(_MAX_REPLY) or b"{}").get("ready") is not True:
                raise OSError("fork server did not start")
            ours.settimeout(_REPLY_TIMEOUT_S)
            server.sock = ours
        except (OSError, ValueError):
            theirs.close()
            ours.close()
            server.discard()
        finally:
            server.ready.set()

    def launch(
        self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path
    ) -> LaunchedProcess | None:
        """Fork ``command`` from its server, or None when the caller must spawn it.

        Args:
            command: ``[python, *options, script, *args]``.
            env: the complete environment of the attempt.
            cwd: its working directory.

        Returns:
            The running process (its pipes open), or None: not servable, or no live server.

        Raises:
            OSError: the server could not start the process (e.g. ``cwd`` is missing); a
                spawn would have failed the same way.
        """
        options = interpreter_options(command, self.python)
        if options is None or self._closed:
            return None
        server = self._server(options)
        if not server.ready.wait(_START_TIMEOUT_S) or not server.alive:
            return None
        script_index = 1 + len(options)
        header = json.dumps(
            {"argv": list(command[script_index:]), "env": dict(env), "cwd": str(cwd)}
        ).encode()
        pipes = [os.pipe(), os.pipe(), os.pipe()]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0]]
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
        try:
            reply = self._ask(server, header, theirs)
        finally:
            for fd in theirs:
                os.close(fd)
        if reply is None or "pid" not in reply:
            for fd in ours:
                os.close(fd)
            if reply is None:
                return None
            if "unavailable" in reply:  # the server cannot fork here: spawn from now on
                with server.lock:
                    server.discard()
                return None
            number = int(reply.get("errno") or 0)
            raise OSError(number, str(reply.get("error") or "cannot start"))
        pid = int(reply["pid"])
        with self._lock:
            self._forked[pid] = server
            self.launched += 1
        return LaunchedProcess(pid, *ours)

    def _ask(self, server: _Server, header: bytes, fds: list[int]) -> dict[str, Any] | None:
        with server.lock:
            sock = server.sock
            if sock is None:
                return None
            try:
                socket.send_fds(sock, [header], fds)
                answer = sock.recv(_MAX_REPLY)
            except OSError:  # timeout included: a hung server is a dead one
                answer = b""
            if not answer:
                server.discard()  # its other attempts keep running, watched by their executor
                return None
        reply: dict[str, Any] = json.loads(answer)
        return reply

    def release(self, pid: int) -> None:
        """Tell the server an attempt is over (its group reaped), so it stops tracking it."""
        with self._lock:
            server = self._forked.pop(pid, None)
        if server is None:
            return
        with server.lock:
            if server.sock is not None:
                with contextlib.suppress(OSError):
                    server.sock.send(json.dumps({"done": pid}).encode())

    def server_pids(self) -> list[int]:
        """The pids of the running servers (for tests and diagnostics)."""
        return [s.proc.pid for s in list(self._servers.values()) if s.alive and s.proc is not None]

    def close(self) -> None:
        """Stop every server. Attempts still running are killed by their servers."""
        with self._lock:
            self._closed = True
            servers = list(self._servers.values())
        for server in servers:
            server.ready.wait(_START_TIMEOUT_S)
            with server.lock:
                server.stop()
        self._jobs.put(None)
        self._keeper.join(_START_TIMEOUT_S)
