"""`workflow ui`: the address and token rules, then a real serve stopped by a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_schema import open_writer

WORKFLOW = str(Path(sys.executable).parent / "workflow")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A migrated, empty database file."""
    path = tmp_path / "ak.db"
    open_writer(path).close()
    return path


class TestUiRefusals:
    @pytest.mark.parametrize("address", ["0.0.0.0:8080", "[::]:0", "example.com:80"])
    def test_non_loopback_without_token_is_refused(self, db: Path, address: str) -> None:
        """A non-loopback address without --token-file: the contract's line, exit 1."""
        result = CliRunner().invoke(cli, ["--db", str(db), "ui", "--listen", address])
        assert result.exit_code == 1
        assert result.stderr == f"Error: refusing to listen on {address} without --token-file\n"

    def test_token_file_must_be_0600(self, db: Path, tmp_path: Path) -> None:
        """A token file others can read is refused before anything is served."""
        token = tmp_path / "token"
        token.write_text("0123456789abcdef0123")
        token.chmod(0o644)
        result = CliRunner().invoke(
            cli, ["--db", str(db), "ui", "--listen", "0.0.0.0:0", "--token-file", str(token)]
        )
        assert result.exit_code == 1
        assert "must be 0600" in result.stderr

    def test_invalid_listen_and_missing_database(self, tmp_path: Path, db: Path) -> None:
        """A malformed address and a missing database are one Error line each, exit 1."""
        bad = CliRunner().invoke(cli, ["--db", str(db), "ui", "--listen", "8080"])
        assert bad.exit_code == 1 and "expected HOST:PORT" in bad.stderr
        missing = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "ui"])
        assert missing.exit_code == 1 and missing.stderr.startswith("Error: ")
        assert not (tmp_path / "none.db").exists()


class TestUiServes:
    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
    def test_listening_line_then_exit_0_on_signal(self, db: Path, sig: int) -> None:
        """Prints `Listening on http://HOST:PORT/` once bound, serves, exits 0 on a signal."""
        process = subprocess.Popen(
            [WORKFLOW, "--db", str(db), "ui", "--listen", "127.0.0.1:0"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert line.startswith("Listening on http://127.0.0.1:") and line.endswith("/\n")
            base = line.removeprefix("Listening on ").strip()
            with urllib.request.urlopen(base + "api/executions", timeout=10) as response:
                assert json.loads(response.read()) == []
            process.send_signal(sig)
            assert process.wait(timeout=15) == 0
            assert process.stderr.read() == ""
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            if process.stderr is not None:
                process.stderr.close()


class TestServerListen:
    def test_refuses_non_loopback_without_token_before_starting(self, tmp_path: Path) -> None:
        """`server start --listen 0.0.0.0:0` alone: the contract's line, exit 1, no database."""
        db = tmp_path / "server.db"
        result = CliRunner().invoke(
            cli, ["--db", str(db), "server", "start", "--listen", "0.0.0.0:0"]
        )
        assert result.exit_code == 1
        assert result.stderr == "Error: refusing to listen on 0.0.0.0:0 without --token-file\n"
        assert not db.exists()

    def test_serves_the_console_beside_the_engine_and_stops_with_0(self, tmp_path: Path) -> None:
        """The server prints Listening, serves the API from its thread, exits 0 on SIGTERM."""
        db = tmp_path / "server.db"
        process = subprocess.Popen(
            [WORKFLOW, "--db", str(db), "server", "start", "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            while line and not line.startswith("Listening on "):
                line = process.stderr.readline()
            assert line.startswith("Listening on http://127.0.0.1:"), line
            base = line.removeprefix("Listening on ").strip()
            with urllib.request.urlopen(base + "healthz", timeout=10) as response:
                assert response.status == 200
            with urllib.request.urlopen(base + "api/executions", timeout=10) as response:
                assert json.loads(response.read()) == []
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            if process.stderr is not None:
                process.stderr.close()
