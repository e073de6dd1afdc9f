"""The fork server: a warm, single-threaded interpreter that forks one child per plugin attempt.

This file runs as its own program (never imported by the engine: it uses the standard
library only), started by :mod:`autokestra_engine._launcher` with the interpreter options of
the plugin commands it serves, e.g. ``python -I -S -c <bootstrap> _forkserver.py FD PID``.
Each request on the control socket (a ``SOCK_SEQPACKET`` Unix socket, fd ``FD``) carries a
JSON header ``{"argv", "env", "cwd"}`` and three file descriptors (the child's stdin, stdout
and stderr pipe ends, passed with ``SCM_RIGHTS``). The server answers ``{"pid": N}`` or
``{"errno": E, "error": "..."}``.

Why it is safe to fork here: this process is single-threaded and idle when it forks (it
only ever waits on its socket), it was started by a fork+exec of the engine (never a bare
fork of the multi-threaded engine), and the fork goes through CPython's own before/after
hooks (``PyOS_BeforeFork``/``PyOS_AfterFork_*``), exactly like ``os.fork``.

Why ``clone(CLONE_PARENT)`` and not ``fork``: the child becomes a child of the *engine*,
not of this server. The engine's executor therefore watches, signals and reaps it exactly
like a process it spawned (``waitid`` with ``WNOWAIT`` holds the group id, orphans of the
group are re-parented to the engine's subreaper), and a dead server loses no exit status.

The child, before running the plugin script as ``__main__``: sets ``PR_SET_PDEATHSIG``
(SIGKILL when the engine dies), starts a new session (its own process group), moves the
pipes onto fds 0/1/2 and closes every other fd, takes the request's environment, argv and
working directory, and resets the signal dispositions this server changed. Interpreter
options and the environment the interpreter reads at start-up are the server's, which the
launcher starts with the same options and base environment as the attempt would have.

    python -I -S -c "<bootstrap>" /path/to/_forkserver.py 5 1234
"""

import contextlib
import ctypes
import json

# What the built-in plugins and most Python plugins import at once: warm in every child.
import json.decoder
import os
import signal
import socket
import sys
import traceback  # noqa: F401
import types

_PR_SET_PDEATHSIG = 1
_CLONE_PARENT = 0x00008000
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}
_MAX_REQUEST = 1 << 20
_STDIO = 3


class _Stop(Exception):
    """The engine is gone (socket closed, or our parent died): end the server."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def _libc() -> ctypes.CDLL:
    return ctypes.PyDLL(None, use_errno=True)  # PyDLL: the GIL stays held across the call


def _clone_parent(libc: ctypes.CDLL, number: int) -> int:
    """fork(), but the child's parent is our parent (the engine). Returns 0 in the child."""
    python = ctypes.pythonapi
    python.PyOS_BeforeFork()
    pid = int(libc.syscall(number, _CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0))
    if pid == 0:
        python.PyOS_AfterFork_Child()
    else:
        errno = ctypes.get_errno()
        python.PyOS_AfterFork_Parent()
        if pid < 0:
            raise OSError(errno, os.strerror(errno))
    return pid


class _Code:
    """Compiled plugin scripts, kept while the file is unchanged (path, mtime, size)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[int, int], types.CodeType]] = {}

    def get(self, path: str) -> types.CodeType | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None  # the child reports it the way the interpreter does
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            with open(path, "rb") as handle:
                code = compile(handle.read(), path, "exec", dont_inherit=True)
        except (OSError, SyntaxError, ValueError):
            return None  # compiled (and reported) in the child, like a fresh interpreter
        self._cache[path] = (key, code)
        return code


class _Request:
    """One attempt to start: argv (script first), environment, folder, three fds."""

    def __init__(self, header: dict[str, object], fds: list[int]) -> None:
        argv = header["argv"]
        env = header["env"]
        assert isinstance(argv, list) and isinstance(env, dict)
        self.argv = [str(a) for a in argv]
        self.env = {str(k): str(v) for k, v in env.items()}
        self.cwd = str(header["cwd"])
        self.fds = fds
        self.code: types.CodeType | None = None


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _reply(sock: socket.socket, **fields: object) -> None:
    sock.send(json.dumps(fields).encode())


def _serve(sock: socket.socket, engine_pid: int) -> _Request:
    """Answer requests until the engine goes away; returns only in a forked child."""
    libc = _libc()
    number = _SYS_CLONE[os.uname().machine]
    codes = _Code()
    launched: set[int] = set()
    try:
        while True:
            try:
                header, fds, _flags, _addr = socket.recv_fds(sock, _MAX_REQUEST, _STDIO)
            except InterruptedError:
                continue
            if not header:
                raise _Stop
            message = json.loads(header)
            if "done" in message:  # the engine reaped this attempt's group: forget it
                launched.discard(int(message["done"]))
                continue
            request = _Request(message, fds)
            try:
                if len(fds) != _STDIO:
                    raise OSError(0, "expected three file descriptors")
                # What a spawn would fail on too (the folder): the attempt fails.
                os.chdir(request.cwd)
            except OSError as exc:
                _close(fds)
                _reply(sock, errno=exc.errno or 0, error=exc.strerror or str(exc))
                continue
            request.code = codes.get(request.argv[0])
            sys.stdout.flush()
            sys.stderr.flush()
            # Signals wait until the child has reset this server's handlers: a SIGTERM for
            # the attempt must never run the server's own shutdown in the child.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            try:
                pid = _clone_parent(libc, number)
            except OSError as exc:
                # Forking itself failed (a seccomp policy, no memory): the engine spawns.
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                _close(fds)
                _reply(sock, unavailable=exc.strerror or str(exc))
                continue
            if pid == 0:
                launched.clear()
                _become_child(libc, sock, request, engine_pid, mask)
                return request
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            _close(fds)
            # Answered at once, before the child's setsid: until then the group does not
            # exist and the engine signals the child itself (see the executor's
            # _signal_group); waiting for it here cost a second scheduling hop per attempt.
            launched.add(pid)
            _reply(sock, pid=pid)
    except (_Stop, ConnectionError):
        # The engine is gone: its plugin groups must not outlive it (DESIGN.md §6.5).
        for pgid in launched:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        os._exit(0)


def _become_child(
    libc: ctypes.CDLL,
    sock: socket.socket,
    request: _Request,
    engine: int,
    mask: set[int | signal.Signals],
) -> None:
    """Turn the forked server into the attempt's process, as a fresh interpreter would be."""
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != engine:  # the engine died before the line above: nobody waits for us
        os._exit(1)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    # A signal sent to the attempt since the fork is delivered here, with the defaults.
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    os.setsid()
    sock.close()
    for target, fd in enumerate(request.fds):
        os.dup2(fd, target)
    os.closerange(_STDIO, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)
    os.environ.clear()
    os.environ.update(request.env)


def _run_child(request: _Request) -> None:
    """Run the plugin script as ``__main__``, then end the process as Python would."""
    script = request.argv[0]
    sys.argv = list(request.argv)
    if not sys.flags.safe_path:  # the bootstrap removed the server's own first entry
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    main = types.ModuleType("__main__")
    main.__dict__.update({"__file__": script, "__cached__": None, "__builtins__": __builtins__})
    sys.modules["__main__"] = main
    code = request.code
    status = 0
    try:
        if code is None:
            try:
                with open(script, "rb") as handle:
                    source = handle.read()
            except OSError as exc:
                sys.stderr.write(
                    f"{sys.executable}: can't open file {script!r}: [Errno {exc.errno}]"
                    f" {exc.strerror}\n"
                )
                raise SystemExit(2) from None
            code = compile(source, script, "exec", dont_inherit=True)
        exec(code, main.__dict__)  # running the plugin is the point
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException as exc:
        # Show the plugin's frames only, as an interpreter started on the script would.
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        if isinstance(exc, KeyboardInterrupt):
            _flush()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        status = 1
    _exit(main, status)


def _exit_status(exc: SystemExit) -> int:
    """The exit status Python gives an uncaught ``SystemExit`` (printing a non-int code)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{code}\n")
    return 1


def _flush() -> int:
    status = 0
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            status = 120
    return status


def _exit(main: types.ModuleType, status: int) -> None:
    """End the child the way interpreter shutdown would, minus tearing down the warm heap.

    A full ``Py_Finalize`` in a forked child touches every object the server imported,
    which copies the whole heap page by page (measured: 50-80 ms per attempt). What a
    plugin can observe of shutdown is kept, in Python's order: non-daemon threads are
    joined, ``atexit`` callbacks run, the script's globals are released (so their
    destructors flush and close what they hold), and stdout/stderr are flushed.
    """
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    import atexit

    atexit._run_exitfuncs()
    main.__dict__.clear()
    import gc

    gc.collect()
    status = _flush() or status
    os._exit(status)


def main(argv: list[str]) -> None:
    """Serve on the socket fd ``argv[0]`` for the engine of pid ``argv[1]``."""
    fd, engine_pid = int(argv[0]), int(argv[1])
    sock = socket.socket(fileno=fd)
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != engine_pid:
        os._exit(0)
    # SIGTERM (our parent died, or someone asks us to stop) ends the serve loop cleanly.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    # Everything imported so far stays untouched by the children's garbage collector, so
    # their pages stay shared instead of being copied on the first collection.
    import gc

    gc.freeze()
    sock.send(b'{"ready": true}')
    request = _serve(sock, engine_pid)
    _run_child(request)


if __name__ == "__main__":
    main(sys.argv[1:])
