"""`workflow execution logs` as a real process: --follow, Ctrl+C, TTY colour, closed pipes."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer, now_ms, open_writer

CLI = [sys.executable, "-c", "from autokestra_obs_cli import main; main()"]
INSERT = (
    "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level, source,"
    " message, metadata) VALUES (?, ?, 1, ?, ?, 'plugin:test/w.run', ?, NULL)"
)
# A writer process: its own Writer, numbered lines in randomly sized transactions.
WRITER_SCRIPT = """
import random, sys, time
from autokestra_obs_schema import now_ms, open_writer
path, execution_id, tag, count, sql = sys.argv[1:6]
count = int(count)
writer = open_writer(path)
rng = random.Random(tag)
i = 0
while i < count:
    size = rng.choice((1, 1, 3, 20, 100, 400))
    with writer.transaction() as conn:
        numbers = range(i, min(count, i + size))
        rows = [(execution_id, tag, now_ms(), "INFO", f"{tag} {n}") for n in numbers]
        conn.executemany(sql, rows)
    i += size
    if rng.random() < 0.05:
        time.sleep(0.01)
writer.close()
"""
SGR = re.compile("\x1b\\[[0-9;]*m")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    """A migrated database and its writer."""
    w = open_writer(tmp_path / "p.db")
    yield w
    w.close()


def add_execution(writer: Writer, execution_id: str, state: str = "RUNNING") -> None:
    """Insert an executions row."""
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, 'wf', ?, 0, 0)",
            (execution_id, state),
        )


def set_state(writer: Writer, execution_id: str, state: str) -> None:
    """Move the execution to ``state``."""
    with writer.transaction(durable=True) as conn:
        conn.execute(
            "UPDATE executions SET state = ? WHERE execution_id = ?", (state, execution_id)
        )


def log(writer: Writer, execution_id: str, *messages: str, level: str = "INFO") -> None:
    """Insert one transaction of entries stamped now."""
    with writer.transaction() as conn:
        conn.executemany(INSERT, [(execution_id, "t", now_ms(), level, m) for m in messages])


def logs_cmd(db: Path, *args: str) -> list[str]:
    """argv of ``workflow --db DB execution logs ARGS``."""
    return [*CLI, "--db", str(db), "execution", "logs", *args]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without NO_COLOR / AUTOKESTRA_* leaking in from the developer."""
    env = {
        k: v for k, v in os.environ.items() if k != "NO_COLOR" and not k.startswith("AUTOKESTRA")
    }
    env.update(extra)
    return env


def read_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """Read one stdout line of ``proc`` within ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output in time"
    return proc.stdout.readline()


class TestFollowProcess:
    def test_follow_prints_new_entries_and_exits_when_the_execution_ends(
        self, writer: Writer
    ) -> None:
        """A follower prints existing then new entries and exits 0 once the execution ends."""
        add_execution(writer, "e1")
        log(writer, "e1", "before")
        proc = subprocess.Popen(
            logs_cmd(writer.path, "e1", "-f"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env(),
        )  # fmt: skip
        assert read_line(proc).rstrip().endswith("t before")
        log(writer, "e1", "during")
        assert read_line(proc).rstrip().endswith("t during")
        assert proc.poll() is None  # still following
        log(writer, "e1", "last words")
        set_state(writer, "e1", "SUCCESS")
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out.rstrip().endswith("t last words")
        assert err == ""

    def test_follow_jsonl_exit_status_on_failure(self, writer: Writer) -> None:
        """--follow --jsonl --exit-status ends with the end record and exits 1 on FAILED."""
        add_execution(writer, "e1")
        proc = subprocess.Popen(
            logs_cmd(writer.path, "e1", "-f", "--jsonl", "--exit-status"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        )  # fmt: skip
        time.sleep(0.3)
        log(writer, "e1", "oops", level="ERROR")
        set_state(writer, "e1", "FAILED")
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 1
        records = [json.loads(line) for line in out.splitlines()]
        assert [r.get("message") for r in records[:-1]] == ["oops"]
        assert records[-1] == {"type": "end", "execution_id": "e1", "state": "FAILED"}

    def test_ctrl_c_exits_130(self, writer: Writer) -> None:
        """SIGINT while following a running execution exits 130 quietly."""
        add_execution(writer, "e1")
        log(writer, "e1", "hello")
        proc = subprocess.Popen(
            logs_cmd(writer.path, "e1", "--follow"), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=clean_env(),
        )  # fmt: skip
        assert "hello" in read_line(proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130
        assert "Traceback" not in err

    def test_ctrl_c_leaves_a_valid_json_array(self, writer: Writer) -> None:
        """--follow --json interrupted by Ctrl+C still closes the array it streamed."""
        add_execution(writer, "e1")
        log(writer, "e1", "one", "two")
        proc = subprocess.Popen(
            logs_cmd(writer.path, "e1", "--follow", "--json"), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=clean_env(),
        )  # fmt: skip
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + 20
        while b'"two"' not in seen and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 1)[0]:
                seen += os.read(proc.stdout.fileno(), 65536)
        assert b'"two"' in seen
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
        assert proc.returncode == 130
        data = json.loads(seen + rest)
        assert [d["message"] for d in data] == ["one", "two"]

    def test_execution_removed_while_following(self, writer: Writer) -> None:
        """An execution deleted mid-follow (retention) ends with 'not found', exit 1."""
        add_execution(writer, "e1")
        log(writer, "e1", "hello")
        proc = subprocess.Popen(
            logs_cmd(writer.path, "e1", "--follow"), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=clean_env(),
        )  # fmt: skip
        assert "hello" in read_line(proc)
        with writer.transaction() as conn:
            conn.execute("DELETE FROM execution_logs WHERE execution_id = 'e1'")
            conn.execute("DELETE FROM executions WHERE execution_id = 'e1'")
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 1
        assert err == "Error: Execution not found: e1\n"

    def test_unencodable_text_is_escaped_not_an_error(self, writer: Writer) -> None:
        """With an ASCII-only stdout, non-ASCII text is backslash-escaped and exit is 0."""
        add_execution(writer, "e1", "SUCCESS")
        log(writer, "e1", "caf\u00e9 \u2603")
        result = subprocess.run(
            logs_cmd(writer.path, "e1"), capture_output=True, check=False,
            env=clean_env(PYTHONIOENCODING="ascii"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith(b"t caf\\xe9 \\u2603")

    def test_closed_pipe_ends_quietly(self, writer: Writer) -> None:
        """A reader that goes away (| head -1) ends the command without an error."""
        add_execution(writer, "e1", "SUCCESS")
        with writer.transaction() as conn:
            conn.executemany(INSERT, [("e1", "t", i, "INFO", f"line {i}") for i in range(50_000)])
        proc = subprocess.Popen(
            logs_cmd(writer.path, "e1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env(),
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().endswith(b"line 0\n")
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        proc.wait(timeout=20)
        assert proc.returncode == 0
        assert err == b""

    @pytest.mark.slow
    def test_eight_writers_every_line_once_in_order(self, writer: Writer) -> None:
        """A follower beside 8 writer processes x 10,000 lines prints each exactly once, in order.

        The follow output also equals the plain output of the finished execution.
        """
        add_execution(writer, "e1")
        per_writer = 10_000
        follower = subprocess.Popen(
            logs_cmd(writer.path, "e1", "--follow"), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=clean_env(),
        )  # fmt: skip
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER_SCRIPT, str(writer.path), "e1", f"w{n}",
                 str(per_writer), INSERT]
            )
            for n in range(8)
        ]  # fmt: skip
        for proc in writers:
            assert proc.wait(timeout=300) == 0
        set_state(writer, "e1", "SUCCESS")
        out, err = follower.communicate(timeout=120)
        assert follower.returncode == 0, err
        lines = out.splitlines()
        assert len(lines) == 8 * per_writer
        for n in range(8):
            tag = f" w{n} w{n} "
            numbers = [int(line.rsplit(" ", 1)[1]) for line in lines if tag in line]
            assert numbers == list(range(per_writer))
        plain = subprocess.run(
            logs_cmd(writer.path, "e1"), capture_output=True, text=True, env=clean_env(),
            check=True,
        )  # fmt: skip
        # Order across writers may differ (follow is in commit order, plain in timestamp
        # order and the 8 processes' clocks interleave), so compare as multisets and per
        # writer; the single-writer test below compares exactly.
        assert sorted(plain.stdout.splitlines()) == sorted(lines)

    def test_follow_output_equals_plain_output(self, writer: Writer) -> None:
        """Concatenated follow output equals a plain run on the finished execution."""
        add_execution(writer, "e1")
        log(writer, "e1", *[f"pre {i}" for i in range(1_200)])
        follower = subprocess.Popen(
            logs_cmd(writer.path, "e1", "-f"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env(),
        )  # fmt: skip
        for i in range(40):
            log(writer, "e1", *[f"live {i}.{j}\nsecond line" for j in range(i % 4 + 1)])
            time.sleep(0.01)
        set_state(writer, "e1", "SUCCESS")
        followed, _ = follower.communicate(timeout=60)
        plain = subprocess.run(
            logs_cmd(writer.path, "e1"), capture_output=True, text=True, env=clean_env(),
            check=True,
        )  # fmt: skip
        assert follower.returncode == 0
        assert followed == plain.stdout
        assert followed.count("second line") == sum(i % 4 + 1 for i in range(40))


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 20.0) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as stdout; return (exit code, output)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    _, err = proc.communicate(timeout=timeout)
    assert b"Traceback" not in err
    return proc.returncode, b"".join(chunks).decode()


class TestTerminal:
    @pytest.fixture
    def db(self, writer: Writer) -> Path:
        """A finished execution with one entry per level and a hostile message."""
        add_execution(writer, "e1", "SUCCESS")
        for level in ("DEBUG", "INFO", "WARN", "ERROR"):
            log(writer, "e1", f"{level.lower()} message", level=level)
        log(writer, "e1", "evil \x1b]0;title\x07 \x1b[2J \x9b1m \u202e [bold]b[/bold]\rx")
        return writer.path

    def test_colour_by_level_on_a_terminal(self, db: Path) -> None:
        """On a TTY ERROR is red, WARN yellow, DEBUG dim and INFO plain."""
        code, out = run_in_pty(logs_cmd(db, "e1"), clean_env(TERM="xterm-256color"))
        assert code == 0
        lines = {line.split(" message")[0].rsplit(" ", 1)[-1]: line for line in out.splitlines()}
        assert "\x1b[31m" in lines["error"]
        assert "\x1b[33m" in lines["warn"]
        assert "\x1b[2m" in lines["debug"]
        assert "\x1b[" not in lines["info"]

    def test_terminal_gets_no_raw_control_bytes_from_messages(self, db: Path) -> None:
        """Besides our own colour codes, a TTY receives no control character at all."""
        code, out = run_in_pty(logs_cmd(db, "e1"), clean_env(TERM="xterm-256color"))
        assert code == 0
        visible = SGR.sub("", out).replace("\r\n", "\n")
        assert CONTROL.search(visible) is None
        assert "\\x1b]0;title\\x07 \\x1b[2J \\x9b1m \\u202e [bold]b[/bold]\\x0dx" in visible

    @pytest.mark.parametrize(
        ("extra_args", "env_extra"), [(["--no-color"], {}), ([], {"NO_COLOR": "1"})]
    )
    def test_no_color_on_a_terminal(
        self, db: Path, extra_args: list[str], env_extra: dict[str, str]
    ) -> None:
        """--no-color and NO_COLOR turn colour off even on a TTY."""
        code, out = run_in_pty(
            logs_cmd(db, "e1", *extra_args), clean_env(TERM="xterm-256color", **env_extra)
        )
        assert code == 0
        assert "\x1b" not in out
        assert "error message" in out
