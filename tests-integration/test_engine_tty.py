"""End to end: `workflow run` on a real terminal (a pty): live progress, and Ctrl+C typed there.

A pipe gets plain lines (test_engine_run.py); here stdout is a terminal, so the run shows a
live table of the tasks (state, attempt, elapsed), and a ^C typed on the terminal reaches the
foreground process group as SIGINT, as it does for a user.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from e2e import WORKFLOW, group_alive, rows

pytestmark = pytest.mark.integration

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TRAMPOLINE = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
    " os.execv(sys.argv[1], sys.argv[1:])"
)

FLOW = """
id: tty
tasks:
  - {id: first, type: core/log.emit, inputs: {message: one}}
  - id: flaky
    type: core/shell.run
    needs: [first]
    retry: {max: 1, backoff: {type: fixed, delay: 300ms}}
    inputs: {command: "if [ -f m ]; then sleep 0.5; else touch m; exit 4; fi"}
"""

LONG = """
id: tty-long
tasks:
  - {id: a, type: core/shell.run, inputs: {command: "echo a; sleep 300 & sleep 300; wait"}}
  - {id: b, type: core/log.emit, needs: [a], inputs: {message: never}}
"""


class Terminal:
    """`workflow --db <tmp>/ak.db ARGS` with a pty as its controlling terminal and stdio."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm"}
        env.pop("NO_COLOR", None)
        self.fd, child_end = pty.openpty()
        fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        # No fork in this (threaded) test process: a trampoline takes the terminal, then execs.
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, WORKFLOW, "--db", str(tmp_path / "ak.db"), *args],
            stdin=child_end,
            stdout=child_end,
            stderr=child_end,
            cwd=tmp_path,
            env=env,
        )
        os.close(child_end)
        self.output = b""

    def read_until(self, pattern: bytes, timeout: float) -> bool:
        """Read output until ``pattern`` appears (True) or the timeout/EOF (False)."""
        deadline = time.monotonic() + timeout
        while pattern not in self.output and time.monotonic() < deadline:
            if not self._read(0.05):
                break
        return pattern in self.output

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += data
        return bool(data)

    def wait(self, timeout: float) -> int:
        """Drain the terminal until the child exits; its exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                while select.select([self.fd], [], [], 0.05)[0] and self._read(0):
                    pass
                os.close(self.fd)
                return self.proc.returncode
            self._read(0.05)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"workflow run did not exit: {self.text()!r}")

    def text(self) -> str:
        """The output without ANSI sequences, line ends normalised."""
        return ANSI.sub("", self.output.decode("utf-8", "replace")).replace("\r", "")

    def lines(self) -> list[str]:
        """Non-empty output lines."""
        return [line for line in self.text().split("\n") if line.strip()]


class TestTerminal:
    def test_live_progress_table(self, tmp_path: Path) -> None:
        """On a terminal: a live table of state, attempt and elapsed; then the summary."""
        (tmp_path / "flow.yaml").write_text(FLOW)
        term = Terminal(tmp_path, "run", "flow.yaml")
        assert term.wait(60) == 0, term.text()
        lines = term.lines()
        assert re.fullmatch(r"Execution [0-9a-f-]{36} started", lines[0]), lines
        eid = lines[0].split()[1]
        assert re.fullmatch(rf"Execution {eid} SUCCESS in \S+", lines[-1]), lines
        assert "\x1b[" in term.output.decode()  # drawn in place, with colour
        headers = [line.split() for line in lines if line.startswith("TASK")]
        assert headers and headers[0] == ["TASK", "STATE", "ATTEMPT", "ELAPSED"]
        # Frames showed the retry wait and the second attempt while it ran.
        assert re.search(r"flaky\s+WAITING\s+1\s", term.text()), term.text()
        assert re.search(r"flaky\s+RUNNING\s+2\s", term.text()), term.text()
        final = {line.split()[0]: line.split()[1:] for line in lines[-3:-1]}
        assert final["first"][:2] == ["SUCCESS", "1"]
        assert final["flaky"][:2] == ["SUCCESS", "2"]
        assert re.fullmatch(r"\d+(ms|(\.\d)?s)", final["flaky"][2]), final

    def test_ctrl_c_typed_on_the_terminal(self, tmp_path: Path) -> None:
        """^C on the terminal: cancelled by system (interrupted), exit 130, no plugin left."""
        (tmp_path / "long.yaml").write_text(LONG)
        term = Terminal(tmp_path, "run", "long.yaml")
        assert term.read_until(b"RUNNING", 30), term.text()
        deadline = time.monotonic() + 30
        while not rows(tmp_path, "SELECT pgid FROM task_attempts WHERE pgid IS NOT NULL"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # the shell starts its sleeps
        os.write(term.fd, b"\x03")
        assert term.wait(30) == 130, term.text()
        lines = term.lines()
        eid = lines[0].split()[1]
        assert any(re.fullmatch(rf"Execution {eid} CANCELLED in \S+", line) for line in lines)
        ((pgid,),) = rows(tmp_path, "SELECT pgid FROM task_attempts")
        assert not group_alive(pgid)
        ((kind, metadata),) = rows(
            tmp_path,
            "SELECT event_type, metadata FROM execution_audit_events"
            " WHERE event_type IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')",
        )
        meta = json.loads(metadata)
        assert (kind, meta["cancelled_by"], meta["reason"]) == (
            "CANCELLED",
            "system",
            "interrupted",
        )
        assert rows(tmp_path, "SELECT task_id, state FROM task_runs ORDER BY task_id") == [
            ("a", "CANCELLED"),
            ("b", "CANCELLED"),
        ]
