"""Serving for real with uvicorn: the Listening line, port 0, graceful stop on signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from autokestra_obs_web import WebServer, bind, bound_address, create_app, parse_listen

if TYPE_CHECKING:
    from conftest import Database

SERVE = """
import sys
from pathlib import Path
from autokestra_obs_web import create_app, parse_listen, serve
serve(create_app(Path(sys.argv[1])), parse_listen(sys.argv[2]))
print("stopped", flush=True)
"""


@pytest.fixture
def served(database: Database) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A console process on a free port, and its base URL; killed if a test fails."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(database.path), "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("Listening on http://127.0.0.1:"), line + process.stderr.read()
        yield process, line.removeprefix("Listening on ").strip().rstrip("/")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


class TestServe:
    @pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
    def test_serves_then_stops_with_exit_0(
        self, served: tuple[subprocess.Popen[str], str], database: Database, sig: int
    ) -> None:
        """Port 0 picks a free port; a signal ends the process normally (exit 0)."""
        process, base = served
        port = int(base.rsplit(":", 1)[1])
        assert port > 0
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(base + "/api/executions", timeout=5) as response:
            assert len(json.loads(response.read())) == 4
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None and process.stdout.read() == "stopped\n"

    def test_signal_ends_an_open_stream_promptly(
        self, served: tuple[subprocess.Popen[str], str], database: Database
    ) -> None:
        """A stop with a live stream open (a running execution) still exits 0 at once."""
        process, base = served
        stream = urllib.request.urlopen(
            f"{base}/api/executions/{database.running}/logs/stream", timeout=5
        )
        try:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=8) == 0
        finally:
            stream.close()

    def test_thread_server_starts_and_stops(self, database: Database) -> None:
        """A server process runs the console in a thread and stops it on demand."""
        listen = parse_listen("127.0.0.1:0")
        sock = bind(listen)
        server = WebServer(create_app(database.path), sock)
        try:
            server.start()
            url = f"http://{bound_address(sock, listen)}/healthz"
            for _ in range(100):
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        assert response.status == 200
                        break
                except OSError:
                    time.sleep(0.05)
            else:
                pytest.fail("the threaded server never answered")
        finally:
            server.stop(timeout=10)
            sock.close()


class TestBindErrors:
    def test_address_in_use_raises_oserror(self) -> None:
        """Binding a port already listened on fails with OSError (the CLI reports it)."""
        first = bind(parse_listen("127.0.0.1:0"))
        try:
            port = first.getsockname()[1]
            with pytest.raises(OSError):
                bind(parse_listen(f"127.0.0.1:{port}")).close()
        finally:
            first.close()
