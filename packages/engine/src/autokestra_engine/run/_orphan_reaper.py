"""The orphan reaper: a tiny process that kills an engine's plugins when the engine dies.

An engine stops its plugin processes itself, except when it cannot: SIGKILL, the OOM killer,
a crash. Plugins run in their own sessions (so a terminal's Ctrl+C reaches the engine only),
so nothing would stop them (DESIGN.md §6.5). The engine therefore starts, on its first
plugin, one reaper child that holds the read end of a pipe only the engine can write to.
The engine tells it each plugin process group as it starts (``+<pgid>``) and ends
(``-<pgid>``). When the pipe reports end-of-file (the engine exited, however it died, since
the kernel closes a dead process's descriptors) the reaper SIGKILLs every group still
listed and every process whose environment carries the engine's token (descendants that left
the group with ``setsid`` keep their environment), repeats until none is left (a group may be
forking while it is killed), and exits. See docs/operations.md ("No orphans").

    reaper = OrphanReaper()
    env["AUTOKESTRA_ENGINE_TOKEN"] = reaper.token   # in every plugin's environment
    reaper.watch(pgid)      # after spawning
    reaper.forget(pgid)     # once the group is gone
    reaper.close()          # engine closing: the reaper exits (nothing left to kill)

This file is also the reaper's program: ``python -I -S _orphan_reaper.py TOKEN`` with the
pipe on stdin. It imports only the standard library, so it starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import weakref

#: The environment variable that marks every process started for one engine.
TOKEN_ENV = "AUTOKESTRA_ENGINE_TOKEN"
#: How long the reaper keeps sweeping after the engine is gone (well inside §6.5's 5 s).
SWEEP_S = 3.0


class OrphanReaper:
    """The engine side: starts the reaper on first use and tells it about process groups.

    Thread-safe. If the reaper cannot be started (no interpreter, no process slots) the
    engine still runs: its own clean-up covers every ending but its own sudden death.
    """

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._pipe: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[[int, subprocess.Popen[bytes]], OrphanReaper] | None = (
            None
        )
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The reaper's pid once started (tests use it)."""
        return None if self._process is None else self._process.pid

    def watch(self, pgid: int) -> None:
        """Ask the reaper to kill group ``pgid`` should this engine die first."""
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        """The group ``pgid`` is gone; its id may be reused by someone else."""
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """Close the pipe: the reaper sweeps (finding nothing) and exits; it is then reaped.

        Also done when the object is garbage-collected or the interpreter exits, so an
        executor nobody closed never leaves its reaper running.
        """
        with self._lock:
            self._closed = True
            finalizer = self._finalizer
        if finalizer is not None:
            finalizer()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pipe is None and not self._start():
                return
            assert self._pipe is not None
            with contextlib.suppress(OSError):  # a dead reaper cannot be helped; run on
                os.write(self._pipe, line.encode("ascii"))  # < PIPE_BUF: one atomic write

    def _start(self) -> bool:
        read_end, write_end = os.pipe()  # both non-inheritable: plugins never hold them
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), self.token],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                # Its own session: a terminal's Ctrl+C or hang-up must not take it down
                # before the engine's plugins.
                start_new_session=True,
            )
        except OSError:
            os.close(write_end)
            return False
        finally:
            os.close(read_end)
        self._pipe = write_end
        self._finalizer = weakref.finalize(self, _stop_reaper, write_end, self._process)
        return True


def _stop_reaper(pipe: int, process: subprocess.Popen[bytes]) -> None:
    """Close the engine's end of the pipe and reap the reaper once it has swept."""
    with contextlib.suppress(OSError):
        os.close(pipe)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=SWEEP_S + 2)


# -- the reaper process -------------------------------------------------------------------


def _marked_pids(token: str) -> list[int]:
    """Pids of processes whose environment holds ``AUTOKESTRA_ENGINE_TOKEN=<token>``."""
    marker = f"{TOKEN_ENV}={token}".encode("ascii")
    found = []
    me = os.getpid()
    for name in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                entries = environ.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker in entries:
            found.append(int(name))
    return found


def _kill_everything(token: str, groups: set[int]) -> bool:
    """SIGKILL the listed groups and every marked process; True if anything was found."""
    found = False
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
            found = True
        except (ProcessLookupError, PermissionError):
            pass
    for pid in _marked_pids(token):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            found = True
    return found


def _main(token: str) -> None:
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # only the pipe ends this process
    groups: set[int] = set()
    with os.fdopen(0, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(4096):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line[:1] == b"+":
                    groups.add(int(line[1:]))
                elif line[:1] == b"-":
                    groups.discard(int(line[1:]))
    # End of file: the engine is gone (or closed us). Sweep until a pass finds nothing.
    deadline = time.monotonic() + SWEEP_S
    while _kill_everything(token, groups) and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    _main(sys.argv[1])
