"""Serving an app on ``HOST:PORT`` with uvicorn: bind, announce, run, stop gracefully.

One function for ``workflow ui`` and ``workflow server start --listen``: the socket is bound
here (port 0 picks a free port), ``Listening on http://HOST:PORT/`` goes to stderr once it is,
and SIGINT/SIGTERM stop the server cleanly (open streams end, then the process returns
normally, so the CLI exits 0). A server process runs it in a thread with
:meth:`WebServer.start` / :meth:`WebServer.stop` beside its engine loop.

    listen = parse_listen("127.0.0.1:0")
    check_listen(listen, token=None)        # refuses a non-loopback address without a token
    serve(create_app(db_path), listen)      # blocks until Ctrl+C / SIGTERM
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import IO, Any

import uvicorn

from autokestra_obs_schema import AutokestraError

from ._security import RefusedListen, is_loopback

#: DESIGN.md §7: the default address of the console.
DEFAULT_LISTEN = "127.0.0.1:8080"
#: Seconds open connections (live streams) get to finish after a stop is asked.
GRACEFUL_TIMEOUT_S = 3


class InvalidListen(AutokestraError, ValueError):
    """A ``--listen`` value that is not ``HOST:PORT``."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where to listen: a host (name or address, IPv6 without brackets) and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(text: str) -> ListenAddress:
    """Parse ``HOST:PORT`` (``127.0.0.1:8080``, ``[::1]:0``, ``0.0.0.0:9000``).

    Raises:
        InvalidListen: no port, a port out of 0..65535, or an empty host.
    """
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise InvalidListen(f"Invalid listen address {text!r}: expected HOST:PORT")
    return ListenAddress(host, int(port))


def check_listen(listen: ListenAddress, *, token: str | None) -> None:
    """Refuse a non-loopback address without a token (DESIGN.md §7).

    Raises:
        RefusedListen: ``refusing to listen on <addr> without --token-file``.
    """
    if token is None and not is_loopback(listen.host):
        raise RefusedListen(str(listen))


def bind(listen: ListenAddress) -> socket.socket:
    """A listening TCP socket on ``listen`` (port 0: a free port chosen by the system).

    Raises:
        OSError: the address cannot be bound (in use, not local, ...).
    """
    infos = socket.getaddrinfo(listen.host, listen.port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bound_address(sock: socket.socket, listen: ListenAddress) -> ListenAddress:
    """The address a bound socket serves, with the real port when 0 was asked."""
    return ListenAddress(listen.host, int(sock.getsockname()[1]))


class _Server(uvicorn.Server):
    """uvicorn's server with its signal handling left to :class:`WebServer`.

    uvicorn (0.29+) re-raises a captured SIGINT after its shutdown, which would end the CLI
    with 130 instead of the exit 0 CLI.md asks for; so the handlers are ours.
    """

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebServer:
    """An ASGI app served by uvicorn on an already bound socket.

    Args:
        app: the application (usually from :func:`create_app`).
        sock: the listening socket (:func:`bind`).
    """

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self._app = app
        self._sock = sock
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S,
        )
        self._server = _Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until :meth:`stop` (in the main thread: until SIGINT or SIGTERM)."""
        if threading.current_thread() is not threading.main_thread():
            self._server.run(sockets=[self._sock])
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            self.stop()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            self._server.run(sockets=[self._sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def start(self) -> None:
        """Serve from a daemon thread (a server process keeps its main thread)."""
        self._thread = threading.Thread(target=self.run, name="autokestra-web", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the server to stop; with a thread started, wait for it up to ``timeout`` s."""
        console = getattr(getattr(self._app, "state", None), "console", None)
        stopping = getattr(console, "stopping", None)
        if isinstance(stopping, threading.Event):
            stopping.set()  # live streams end now, not at the graceful timeout
        self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def serve(app: Any, listen: ListenAddress, *, err: IO[str] | None = None) -> None:
    """Bind ``listen``, print ``Listening on http://HOST:PORT/``, serve until stopped.

    Returns normally after SIGINT or SIGTERM (open streams are ended first).

    Args:
        app: the application to serve.
        listen: where; port 0 picks a free port (the line printed names it).
        err: where the line goes (default stderr).

    Raises:
        OSError: the address cannot be bound.
    """
    sock = bind(listen)
    try:
        stream = err if err is not None else sys.stderr
        stream.write(f"Listening on http://{bound_address(sock, listen)}/\n")
        stream.flush()
        WebServer(app, sock).run()
    finally:
        sock.close()
