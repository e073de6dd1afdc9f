"""`workflow execution inspect`: every mode, message and exit code of CLI.md."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from autokestra_obs_cli import cli
from autokestra_obs_schema import SECRET_MASK, open_writer
from autokestra_obs_store.testing import (
    T0,
    ExecutionRecord,
    cancelled_execution,
    failure_execution,
    retry_execution,
    running_execution,
    success_execution,
    timeout_execution,
    wide_execution,
    write_execution,
)

SECRET = "hunter2-do-not-print"
LONG_BODY = "0123456789" * 30  # 300 characters


def _tricky() -> ExecutionRecord:
    """A success execution whose outputs hold a long value and terminal control characters."""
    record = success_execution(seed=77)
    record.tasks[0].outputs = {"body": LONG_BODY, "banner": "red\x1b[31mALERT\u202e"}
    return record


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    path = tmp_path_factory.mktemp("inspect") / "inspect.db"
    writer = open_writer(path)
    ids = {
        "success": write_execution(writer, success_execution()),
        "failure": write_execution(writer, failure_execution()),
        "retry": write_execution(writer, retry_execution()),
        "timeout": write_execution(writer, timeout_execution()),
        "cancelled": write_execution(writer, cancelled_execution()),
        "running": write_execution(writer, running_execution()),
        "wide": write_execution(writer, wide_execution(120, fail_task=50)),
        "small": write_execution(writer, wide_execution(50, seed=8)),
        "tricky": write_execution(writer, _tricky()),
    }
    writer.close()
    yield path, ids


def _inspect(db: tuple[Path, dict[str, str]], *args: str, columns: int = 80) -> Result:
    path, _ = db
    env = {"COLUMNS": str(columns), "AUTOKESTRA_SECRET_PGPASSWORD": SECRET}
    return CliRunner().invoke(cli, ["--db", str(path), "execution", "inspect", *args], env=env)


class TestOverview:
    def test_finished_execution_overview_and_table(self, db: tuple[Path, dict[str, str]]) -> None:
        """Default mode shows the overview fields and an aligned task table."""
        result = _inspect(db, db[1]["failure"])
        assert result.exit_code == 0, result.output
        out = result.stdout
        for expected in (
            f"Execution {db[1]['failure']}",
            "Workflow:     ci",
            "State:        FAILED (PLUGIN_ERROR)",
            "Trigger:      manual",
            "Created:      2026-11-25T18:40:00.000Z",
            "Started:      2026-11-25T18:40:00.005Z",
            "Ended:        2026-11-25T18:40:02.615Z",
            "Duration:     2.6s",
            "Log entries:  31",
            "Failed task:  build",
            "Reason:       Task build failed: Command exited with code 2",
        ):
            assert expected in out
        header = next(line for line in out.splitlines() if line.startswith("TASK"))
        assert header.split() == ["TASK", "TYPE", "STATE", "ATTEMPTS", "DURATION", "START", "END"]
        rows = out.splitlines()[out.splitlines().index(header) + 1 :][:5]
        state_col = header.index("STATE")
        assert [row[state_col:].split()[0] for row in rows] == [
            "SUCCESS",
            "FAILED",
            "SUCCESS",
            "CANCELLED",
            "CANCELLED",
        ]
        assert "Execution in progress" not in out

    def test_human_durations(self, db: tuple[Path, dict[str, str]]) -> None:
        """Durations are human-readable: milliseconds below a second, seconds above."""
        out = _inspect(db, db[1]["success"]).stdout
        notify = next(line for line in out.splitlines() if line.startswith("notify "))
        assert " 255ms " in notify
        transform = next(line for line in out.splitlines() if line.startswith("transform "))
        assert " 1.3s " in transform

    def test_outputs_and_errors_without_a_flag(self, db: tuple[Path, dict[str, str]]) -> None:
        """Outputs of finished tasks and errors with the stderr tail show by default."""
        out = _inspect(db, db[1]["failure"]).stdout
        assert "Task details" in out
        assert "      exit_code: 0" in out
        assert "message: Command exited with code 2" in out
        assert "        make: *** [Makefile:12: all] Error 2" in out
        assert "inputs:" not in out

    def test_running_execution(self, db: tuple[Path, dict[str, str]]) -> None:
        """An unfinished execution shows RUNNING rows with their elapsed time.

        Its engine (pid 4242 on worker-1, another host) last beat at the fixture's fixed
        time, long over 30 s ago: it is shown gone (DESIGN.md §6.4), never "in progress".
        """
        out = _inspect(db, db[1]["running"]).stdout
        assert "Execution in progress" not in out
        assert "State:        RUNNING (engine gone since 2026-" in out
        assert "Ended:        -" in out
        download = next(line for line in out.splitlines() if line.startswith("download "))
        assert "RUNNING" in download
        assert "elapsed" in download
        assert re.search(r"Duration:\s+\S.* elapsed", out)
        extract = next(line for line in out.splitlines() if line.startswith("extract "))
        assert "PENDING" in extract
        assert re.search(r"Engine:       pid 4242 on worker-1, heartbeat \S+.* ago\n", out)

    def test_cancelled_execution(self, db: tuple[Path, dict[str, str]]) -> None:
        """A cancelled execution names who cancelled it and why."""
        out = _inspect(db, db[1]["cancelled"]).stdout
        assert "State:        CANCELLED (CANCELLED_BY_USER)" in out
        assert "Cancelled by: user:alice: wrong input" in out

    def test_timeout_execution(self, db: tuple[Path, dict[str, str]]) -> None:
        """A timed-out execution is FAILED with reason TIMEOUT."""
        out = _inspect(db, db[1]["timeout"]).stdout
        assert "State:        FAILED (TIMEOUT)" in out
        assert "Reason:       Execution timed out after 3s" in out

    def test_fifty_tasks_get_the_full_table(self, db: tuple[Path, dict[str, str]]) -> None:
        """Exactly 50 tasks are still listed one per row."""
        out = _inspect(db, db[1]["small"]).stdout
        assert sum(1 for line in out.splitlines() if line.startswith("task-")) == 50
        assert "use --task" not in out

    def test_summary_above_fifty_tasks(self, db: tuple[Path, dict[str, str]]) -> None:
        """More than 50 tasks: counts per state, failed/running tasks, a hint to use --task."""
        out = _inspect(db, db[1]["wide"]).stdout
        assert "Tasks: 120 (SUCCESS 65, FAILED 1, CANCELLED 54)" in out
        rows = [line for line in out.splitlines() if line.startswith("task-")]
        assert len(rows) == 1
        assert rows[0].startswith("task-050 ")
        assert "use --task ID" in out


class TestPendingExecution:
    def test_pending_without_tasks(self, tmp_path: Path) -> None:
        """A just-created execution (no start, no task rows) reads in every mode."""
        record = ExecutionRecord(
            "0190f3c2-8d1e-7c4a-9b2f-3e5d6a7b8c9d", "queued", "PENDING", T0, None, None, [],
            [("CREATED", T0, {"workflow_id": "queued", "trigger_type": "manual"})],
        )  # fmt: skip
        path = tmp_path / "p.db"
        writer = open_writer(path)
        eid = write_execution(writer, record)
        writer.close()
        db: tuple[Path, dict[str, str]] = (path, {})
        out = _inspect(db, eid).stdout
        assert "Execution in progress" in out
        assert "Started:      -" in out
        assert "No task runs recorded yet" in out
        timeline = _inspect(db, eid, "--timeline")
        assert timeline.exit_code == 0
        assert "(no tasks)" in timeline.stdout
        assert json.loads(_inspect(db, eid, "--json").stdout)["tasks"] == []
        assert _inspect(db, eid, "--verify").exit_code == 0


class TestTaskMode:
    def test_task_with_attempts(self, db: tuple[Path, dict[str, str]]) -> None:
        """--task shows every attempt with number, state, reason, duration and exit code."""
        out = _inspect(db, db[1]["retry"], "--task", "flaky").stdout
        assert out.startswith(f"Task flaky of execution {db[1]['retry']} (healthcheck)\n")
        attempts = [line.split() for line in out.splitlines() if re.match(r"^    \d ", line)]
        assert [row[:2] for row in attempts] == [["1", "FAILED"], ["2", "FAILED"], ["3", "SUCCESS"]]
        assert "exit code 1; retry in 1s  800ms     1" in out
        assert "Inputs:\n    command: curl -f http://localhost:8080/health" in out
        assert "Outputs:\n    exit_code: 0" in out

    def test_task_dependencies_and_states(self, db: tuple[Path, dict[str, str]]) -> None:
        """--task lists the task's dependencies with their states."""
        out = _inspect(db, db[1]["failure"], "--task", "deploy").stdout
        assert "Needs:        test (CANCELLED), lint (SUCCESS)" in out
        assert "State:        CANCELLED (UPSTREAM_FAILED)" in out

    def test_task_error_and_masked_inputs(self, db: tuple[Path, dict[str, str]]) -> None:
        """--task shows masked inputs and the error with its stderr tail."""
        out = _inspect(db, db[1]["success"], "--task", "load").stdout
        assert f'env: {{"PGPASSWORD": "{SECRET_MASK}"}}' in out
        out = _inspect(db, db[1]["failure"], "--task", "build").stdout
        assert "Error:\n    exit_code: 2" in out
        assert "      cc: error: missing.c: No such file" in out

    def test_unknown_task(self, db: tuple[Path, dict[str, str]]) -> None:
        """An unknown task id is a one-line error with exit 1."""
        result = _inspect(db, db[1]["success"], "--task", "nope")
        assert result.exit_code == 1
        assert result.stderr == f"Error: Task not found: nope in execution {db[1]['success']}\n"
        assert result.stdout == ""


class TestInputsAndTruncation:
    def test_show_inputs(self, db: tuple[Path, dict[str, str]]) -> None:
        """--show-inputs lists each task's resolved inputs with secrets masked."""
        out = _inspect(db, db[1]["success"], "--show-inputs").stdout
        assert '    inputs:\n      headers: {"Authorization": "***SECRET***"}' in out
        assert "      url: https://api.example.com/users" in out
        assert SECRET not in out

    def test_long_values_are_truncated(self, db: tuple[Path, dict[str, str]]) -> None:
        """A value over 200 characters is cut there with '... (truncated)'."""
        out = _inspect(db, db[1]["tricky"]).stdout
        assert f"body: {LONG_BODY[:200]}... (truncated)\n" in out
        assert LONG_BODY not in out

    def test_no_truncate(self, db: tuple[Path, dict[str, str]]) -> None:
        """--no-truncate shows the whole value."""
        out = _inspect(db, db[1]["tricky"], "--no-truncate").stdout
        assert f"body: {LONG_BODY}\n" in out
        assert "(truncated)" not in out

    def test_control_characters_are_escaped(self, db: tuple[Path, dict[str, str]]) -> None:
        """ANSI escapes and bidi controls in task outputs are shown, never sent raw."""
        out = _inspect(db, db[1]["tricky"]).stdout
        assert "banner: red\\x1b[31mALERT\\u202e" in out
        assert "\x1b" not in out
        assert "\u202e" not in out


class TestAudit:
    def test_audit_events_in_order(self, db: tuple[Path, dict[str, str]]) -> None:
        """--audit lists events in order with their metadata as key=value."""
        out = _inspect(db, db[1]["cancelled"], "--audit").stdout
        events = [line.split()[2] for line in out.splitlines() if line.startswith("  #")]
        assert events == ["CREATED", "STARTED", "CANCELLED"]
        assert "cancelled_by=user:alice" in out
        assert "pending_task_count=1" in out

    def test_state_change_shows_from_and_to(self, tmp_path: Path) -> None:
        """A STATE_CHANGE event reads `from -> to` with its remaining metadata."""
        record = success_execution(seed=31)
        record.events.insert(
            2,
            ("STATE_CHANGE", record.created + 6, {"from_state": "RUNNING", "to_state": "WAITING",
                                                  "reason": "RETRY_BACKOFF"}),
        )  # fmt: skip
        record.events.insert(
            3,
            ("STATE_CHANGE", record.created + 7, {"from_state": "WAITING", "to_state": "RUNNING"}),
        )
        path = tmp_path / "a.db"
        writer = open_writer(path)
        eid = write_execution(writer, record)
        writer.close()
        out = _inspect((path, {}), eid, "--audit").stdout
        assert re.search(r"STATE_CHANGE\s+RUNNING -> WAITING  reason=RETRY_BACKOFF\n", out)
        assert re.search(r"STATE_CHANGE\s+WAITING -> RUNNING\n", out)
        assert "from_state" not in out


class TestErrors:
    def test_unknown_execution(self, db: tuple[Path, dict[str, str]]) -> None:
        """An unknown id: `Error: Execution not found: <id>` on stderr, exit 1."""
        for extra in ([], ["--json"], ["--timeline"], ["--verify"], ["--audit"]):
            result = _inspect(db, "no-such-id", *extra)
            assert result.exit_code == 1
            assert result.stderr == "Error: Execution not found: no-such-id\n"
            assert result.stdout == ""

    def test_unknown_id_with_control_characters(self, db: tuple[Path, dict[str, str]]) -> None:
        """An id with an escape sequence is echoed back escaped."""
        result = _inspect(db, "x\x1b[2Jy")
        assert result.exit_code == 1
        assert result.stderr == "Error: Execution not found: x\\x1b[2Jy\n"

    def test_missing_database(self, tmp_path: Path) -> None:
        """Inspecting without a database is a one-line error, exit 1."""
        result = CliRunner().invoke(
            cli, ["--db", str(tmp_path / "none.db"), "execution", "inspect", "x"]
        )
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: ")
        assert len(result.stderr.splitlines()) == 1

    def test_missing_id_is_a_usage_error(self) -> None:
        """Without an ID click reports a usage error: exit 2."""
        result = CliRunner().invoke(cli, ["execution", "inspect"])
        assert result.exit_code == 2


class TestVerify:
    def test_intact_trail(self, db: tuple[Path, dict[str, str]]) -> None:
        """--verify of an intact trail prints a confirmation and exits 0."""
        for name in ("success", "failure", "timeout", "cancelled", "running", "wide"):
            result = _inspect(db, db[1][name], "--verify")
            assert result.exit_code == 0, result.output
            assert "verified:" in result.stdout

    def test_confirmation_states_what_was_checked(self, db: tuple[Path, dict[str, str]]) -> None:
        """The confirmation claims one terminal event only for a finished execution; a live
        one is reported as not ended yet."""
        finished = _inspect(db, db[1]["success"], "--verify").stdout
        assert "one terminal event" in finished
        live = _inspect(db, db[1]["running"], "--verify")
        assert live.exit_code == 0
        assert "one terminal event" not in live.stdout
        assert "no terminal event yet (in progress)" in live.stdout

    def test_tampered_trail_exits_1(self, tmp_path: Path) -> None:
        """--verify reports the first violation and exits 1 after a row was edited."""
        path = tmp_path / "t.db"
        writer = open_writer(path)
        eid = write_execution(writer, failure_execution(seed=40))
        with writer.transaction() as conn:
            conn.execute("DROP TRIGGER audit_events_no_update")
            conn.execute(
                "UPDATE execution_audit_events SET metadata = '{}' "
                "WHERE execution_id = ? AND event_type = 'FAILED'",
                (eid,),
            )
        writer.close()
        result = _inspect((path, {}), eid, "--verify")
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: Audit verification failed for execution {eid}: ")
        assert "(FAILED) was modified" in result.stderr
        assert result.stdout == ""


class TestNoSecrets:
    @pytest.mark.parametrize(
        "args",
        [[], ["--show-inputs"], ["--json"], ["--timeline"], ["--audit"], ["--task", "load"]],
    )
    def test_no_secret_in_any_mode(self, db: tuple[Path, dict[str, str]], args: list[str]) -> None:
        """No mode prints a secret value from the environment; masked inputs stay masked."""
        result = _inspect(db, db[1]["success"], *args, "--no-truncate")
        assert result.exit_code == 0
        assert SECRET not in result.stdout + result.stderr


def _run_in(tty: bool, db_path: Path, *args: str) -> str:
    """Run the real `workflow` program with stdout on a pseudo-terminal or a pipe."""
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-c", "from autokestra_obs_cli import main; main()"]
    command += ["--db", str(db_path), "execution", "inspect", *args]
    if not tty:
        return subprocess.run(
            command, env=env, capture_output=True, text=True, check=True, timeout=60
        ).stdout
    leader, follower = pty.openpty()
    try:
        with subprocess.Popen(command, env=env, stdout=follower, stderr=subprocess.PIPE) as proc:
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            proc.wait(timeout=60)
    finally:
        os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


class TestTerminal:
    def test_states_are_coloured_on_a_tty(self, db: tuple[Path, dict[str, str]]) -> None:
        """On a TTY states are colour-coded; in a pipe there is no escape sequence."""
        tty = _run_in(True, db[0], db[1]["failure"])
        assert "\x1b[32mSUCCESS" in tty  # green
        assert "\x1b[31mFAILED" in tty  # red
        assert "\x1b[35mCANCELLED" in tty  # magenta
        piped = _run_in(False, db[0], db[1]["failure"])
        assert "\x1b" not in piped
        assert re.sub(r"\x1b\[[0-9;]*m", "", tty) == piped

    def test_running_and_pending_colours(self, db: tuple[Path, dict[str, str]]) -> None:
        """RUNNING rows are yellow and PENDING rows dim on a TTY."""
        tty = _run_in(True, db[0], db[1]["running"])
        assert "\x1b[33mRUNNING" in tty
        assert "\x1b[2mPENDING" in tty

    def test_unencodable_text_is_escaped_not_an_error(self, tmp_path: Path) -> None:
        """With an ASCII-only stdout, non-ASCII outputs are backslash-escaped and exit is 0."""
        path = tmp_path / "ascii.db"
        writer = open_writer(path)
        record = success_execution(seed=12)
        record.tasks[0].outputs = {"greeting": "caf\u00e9 \u2603"}
        eid = write_execution(writer, record)
        writer.close()
        command = [sys.executable, "-c", "from autokestra_obs_cli import main; main()"]
        result = subprocess.run(
            [*command, "--db", str(path), "execution", "inspect", eid],
            env={**os.environ, "PYTHONIOENCODING": "ascii"},
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert b"greeting: caf\\xe9 \\u2603" in result.stdout

    def test_timeline_identical_on_tty_and_pipe(self, db: tuple[Path, dict[str, str]]) -> None:
        """--timeline is plain ASCII, byte for byte the same on a TTY and in a pipe."""
        tty = _run_in(True, db[0], db[1]["retry"], "--timeline")
        piped = _run_in(False, db[0], db[1]["retry"], "--timeline")
        assert tty == piped
        assert piped.isascii()
