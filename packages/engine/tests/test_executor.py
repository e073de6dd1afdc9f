"""PluginExecutor: real child processes, process groups, pipes, outputs, timeouts, cancel."""

from __future__ import annotations

import http.server
import json
import os
import signal
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autokestra_engine import (
    ActionSpec,
    AttemptRequest,
    AttemptResult,
    LauncherMode,
    PluginExecutor,
    PluginRegistry,
    load_manifest,
)
from autokestra_obs_collector import Redactor
from autokestra_obs_collector.testing import MemorySink
from autokestra_obs_schema import LogLevel, open_writer

REGISTRY = PluginRegistry.discover([])


def make_action(tmp_path: Path, script: str, *, name: str = "probe") -> ActionSpec:
    """A one-action plugin in tmp_path whose action runs ``script`` with the engine's Python."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "probe.py").write_text(textwrap.dedent(script))
    (folder / "plugin.yaml").write_text(
        textwrap.dedent(
            f"""\
            namespace: test
            name: {name}
            version: 0.0.1
            actions:
              run:
                command: ["{{python}}", "probe.py"]
                inputs:
                  value: {{type: any}}
            """
        )
    )
    return load_manifest(folder).actions["run"]


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(params=["spawn", "fork"])
def launcher(request: pytest.FixtureRequest) -> LauncherMode:
    """Every executor test runs against both ways of starting a Python plugin."""
    mode: LauncherMode = request.param
    return mode


@pytest.fixture
def executor(tmp_path: Path, launcher: LauncherMode) -> Iterator[PluginExecutor]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": "/tmp", "LANG": "C.UTF-8"}
    executor = PluginExecutor(
        REGISTRY, workdir=workdir, grace_ms=300, drain_ms=500, env=env, launcher=launcher
    )
    try:
        yield executor
    finally:
        executor.close()


def run(
    executor: PluginExecutor,
    action: ActionSpec,
    inputs: dict[str, Any] | None = None,
    *,
    timeout_ms: int | None = 10_000,
    redactor: Redactor | None = None,
    cancel: threading.Event | None = None,
    sink: MemorySink | None = None,
) -> tuple[AttemptResult, MemorySink]:
    sink = sink if sink is not None else MemorySink()
    request = AttemptRequest(
        execution_id="exec-1",
        task_id="task-1",
        attempt=2,
        action=action,
        inputs=inputs or {},
        timeout_ms=timeout_ms,
        redactor=redactor or Redactor(),
    )
    result = executor.run_attempt(request, sink, cancel or threading.Event())
    return result, sink


class TestProtocol:
    def test_inputs_on_stdin_outputs_from_file(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """Inputs arrive as JSON on stdin and the outputs file becomes the result's outputs."""
        action = make_action(
            tmp_path,
            """
            import json, os, sys
            data = json.load(sys.stdin)
            with open(os.environ["AUTOKESTRA_OUTPUTS"], "w") as f:
                json.dump({"echo": data["value"], "n": 3}, f)
            """,
        )
        result, _ = run(executor, action, {"value": {"a": [1, "x"]}})
        assert result.outcome == "success"
        assert result.outputs == {"echo": {"a": [1, "x"]}, "n": 3}
        assert result.error is None
        assert result.exit_code == 0
        assert result.pid is not None and result.pgid == result.pid

    def test_lines_become_entries_with_levels(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """stdout lines are INFO, stderr lines WARN, and ::level:: prefixes set the level."""
        action = make_action(
            tmp_path,
            """
            import os, sys
            print("plain out")
            print("::error::bad thing")
            sys.stderr.write("plain err\\n")
            open(os.environ["AUTOKESTRA_OUTPUTS"], "w").write("{}")
            """,
        )
        result, sink = run(executor, action)
        assert result.outcome == "success"
        got = {(line.level, line.message) for line in sink.lines}
        assert got == {
            (LogLevel.INFO, "plain out"),
            (LogLevel.ERROR, "bad thing"),
            (LogLevel.WARN, "plain err"),
        }

    def test_environment_is_minimal(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launcher: LauncherMode
    ) -> None:
        """The child sees only PATH, HOME, LANG and the AUTOKESTRA_* protocol variables."""
        monkeypatch.setenv("AUTOKESTRA_SECRET_TOKEN", "hunter2-secret")
        monkeypatch.setenv("AUTOKESTRA_DB", str(tmp_path / "db.sqlite"))
        monkeypatch.setenv("PYTHONPATH", "/nowhere")
        action = make_action(
            tmp_path,
            """
            import json, os
            with open(os.environ["AUTOKESTRA_OUTPUTS"], "w") as f:
                json.dump({"env": dict(os.environ), "cwd": os.getcwd()}, f)
            """,
        )
        # The default env source is os.environ: use it to prove nothing leaks from it.
        leaky = PluginExecutor(REGISTRY, workdir=tmp_path, grace_ms=300, launcher=launcher)
        try:
            result, _ = run(leaky, action)
        finally:
            leaky.close()
        env = result.outputs["env"]
        allowed = {"PATH", "HOME", "LANG", "TZ", "LC_CTYPE"}
        protocol = {
            "AUTOKESTRA_OUTPUTS",
            "AUTOKESTRA_WORKDIR",
            "AUTOKESTRA_EXECUTION_ID",
            "AUTOKESTRA_TASK_ID",
            "AUTOKESTRA_ATTEMPT",
            "PYTHONUNBUFFERED",
            # Marks the engine's plugin processes for its orphan reaper (not a secret).
            "AUTOKESTRA_ENGINE_TOKEN",
        }
        # LC_CTYPE may be set by Python's own C-locale coercion inside the child.
        assert set(env) - allowed == protocol
        assert "hunter2-secret" not in json.dumps(env)
        assert env["AUTOKESTRA_EXECUTION_ID"] == "exec-1"
        assert env["AUTOKESTRA_TASK_ID"] == "task-1"
        assert env["AUTOKESTRA_ATTEMPT"] == "2"
        assert env["AUTOKESTRA_WORKDIR"] == str(tmp_path)
        assert result.outputs["cwd"] == str(action.plugin_dir)

    @pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
    def test_no_database_handle_is_inherited(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """The child holds only stdin, stdout and stderr: not the engine's open database."""
        action = make_action(
            tmp_path,
            """
            import json, os
            targets = []
            for fd in sorted(int(fd) for fd in os.listdir("/proc/self/fd")):
                try:
                    targets.append(os.readlink(f"/proc/self/fd/{fd}"))
                except OSError:
                    pass  # the descriptor listdir itself used, closed by now
            json.dump({"targets": targets}, open(os.environ["AUTOKESTRA_OUTPUTS"], "w"))
            """,
        )
        db = tmp_path / "engine.db"
        writer = open_writer(db)
        # An inheritable descriptor too: only close_fds keeps this one out of the child.
        raw = os.open(db, os.O_RDONLY)
        os.set_inheritable(raw, True)
        try:
            result, _ = run(executor, action)
        finally:
            os.close(raw)
            writer.close()
        assert result.outcome == "success", result.error
        # Only what the child itself opened (the fd listing, the outputs file) may appear.
        assert not any("engine.db" in target for target in result.outputs["targets"])

    def test_on_spawn_reports_pid_and_group(self, executor: PluginExecutor, tmp_path: Path) -> None:
        """on_spawn receives the child's pid and its own process group id (the same number)."""
        action = make_action(
            tmp_path, "import os; open(os.environ['AUTOKESTRA_OUTPUTS'],'w').write('{}')"
        )
        seen: list[tuple[int, int]] = []
        request = AttemptRequest(
            "exec-1",
            "t",
            1,
            action,
            {},
            5000,
            Redactor(),
            on_spawn=lambda p, g: seen.append((p, g)),
        )
        result = executor.run_attempt(request, MemorySink(), threading.Event())
        assert seen == [(result.pid, result.pgid)]
        assert seen[0][0] == seen[0][1]


class TestFailures:
    def test_non_zero_exit_fails_with_redacted_stderr_tail(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """A non-zero exit is a failed attempt holding the last 20 stderr lines, redacted."""
        action = make_action(
            tmp_path,
            """
            import sys
            for i in range(30):
                sys.stderr.write(f"line {i} token=s3cr3t-value\\n")
            sys.exit(4)
            """,
        )
        result, _ = run(executor, action, redactor=Redactor(["s3cr3t-value"]))
        assert result.outcome == "failed"
        assert result.exit_code == 4
        assert result.error is not None
        assert result.error["type"] == "exit_code"
        assert result.error["exit_code"] == 4
        tail = result.error["stderr_tail"]
        assert len(tail) == 20
        assert tail[0] == "line 10 token=***SECRET***"
        assert "s3cr3t-value" not in json.dumps(result.error)

    def test_missing_outputs_file_fails(self, executor: PluginExecutor, tmp_path: Path) -> None:
        """Exit 0 without an outputs file is a failed attempt (outputs_missing)."""
        action = make_action(tmp_path, "print('did nothing')")
        result, _ = run(executor, action)
        assert result.outcome == "failed"
        assert result.error is not None and result.error["type"] == "outputs_missing"

    @pytest.mark.parametrize("content", ["{not json", "[1, 2]", ""])
    def test_invalid_outputs_file_fails(
        self, executor: PluginExecutor, tmp_path: Path, content: str
    ) -> None:
        """An outputs file that is not one JSON object fails the attempt (outputs_invalid)."""
        action = make_action(
            tmp_path, f"import os; open(os.environ['AUTOKESTRA_OUTPUTS'],'w').write({content!r})"
        )
        result, _ = run(executor, action)
        assert result.outcome == "failed"
        assert result.error is not None and result.error["type"] == "outputs_invalid"

    def test_crash_by_signal_reports_the_signal(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """A process killed by a signal fails with that signal and no exit code."""
        action = make_action(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
        result, _ = run(executor, action)
        assert result.outcome == "failed"
        assert result.signal == signal.SIGSEGV
        assert result.exit_code is None
        assert result.error is not None and "SIGSEGV" in result.error["message"]

    def test_unstartable_command_fails_without_raising(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """A command that cannot be spawned is a failed attempt of type spawn_failed."""
        action = make_action(tmp_path, "pass")
        broken = ActionSpec(
            namespace="test",
            plugin="probe",
            action="run",
            version="1",
            plugin_dir=action.plugin_dir,
            command=("/nonexistent/program",),
        )
        result, _ = run(executor, broken)
        assert result.outcome == "failed"
        assert result.error is not None and result.error["type"] == "spawn_failed"
        assert result.pid is None


class TestStopping:
    def test_timeout_kills_the_whole_group(self, executor: PluginExecutor, tmp_path: Path) -> None:
        """On timeout the child and its grandchildren all die and the group is gone."""
        action = make_action(
            tmp_path,
            """
            import subprocess, time
            subprocess.Popen(["sleep", "60"])
            subprocess.Popen(["sleep", "60"])
            time.sleep(60)
            """,
        )
        started = time.monotonic()
        result, _ = run(executor, action, timeout_ms=500)
        assert result.outcome == "timeout"
        assert result.error is not None and result.error["type"] == "timeout"
        assert time.monotonic() - started < 5
        assert result.pgid is not None and group_gone(result.pgid)

    def test_sigterm_ignored_means_sigkill_after_grace(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """A child that ignores SIGTERM is SIGKILLed once the grace period is over."""
        action = make_action(
            tmp_path,
            """
            import signal, sys, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("ready", flush=True)
            time.sleep(60)
            """,
        )
        started = time.monotonic()
        # 1 s: on a loaded machine the script must have ignored SIGTERM before it comes.
        result, _ = run(executor, action, timeout_ms=1000)
        elapsed = time.monotonic() - started
        assert result.outcome == "timeout"
        assert result.signal == signal.SIGKILL
        assert 1.2 <= elapsed < 6  # 1 s limit + 300 ms grace
        assert result.pgid is not None and group_gone(result.pgid)

    def test_cancel_from_another_thread(self, executor: PluginExecutor, tmp_path: Path) -> None:
        """Setting the cancel event ends the attempt as cancelled and kills its group."""
        action = make_action(
            tmp_path,
            """
            import subprocess, time
            subprocess.Popen(["sleep", "60"])
            time.sleep(60)
            """,
        )
        cancel = threading.Event()
        timer = threading.Timer(0.3, cancel.set)
        timer.start()
        started = time.monotonic()
        result, _ = run(executor, action, timeout_ms=None, cancel=cancel)
        timer.join()
        assert result.outcome == "cancelled"
        assert time.monotonic() - started < 5
        assert result.pgid is not None and group_gone(result.pgid)

    def test_grandchild_holding_the_pipe_cannot_hang(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """A background grandchild keeping stdout open does not hold the attempt past drain_ms."""
        action = make_action(
            tmp_path,
            """
            import os, subprocess
            subprocess.Popen(["sleep", "60"])  # inherits stdout and stderr
            print("leader done", flush=True)
            open(os.environ["AUTOKESTRA_OUTPUTS"], "w").write("{}")
            """,
        )
        started = time.monotonic()
        result, sink = run(executor, action, timeout_ms=None)
        assert result.outcome == "success"
        assert time.monotonic() - started < 4
        assert sink.messages() == ["leader done"]
        assert result.pgid is not None and group_gone(result.pgid)


class TestOutputVolume:
    def test_fifteen_megabytes_are_elided_not_stored(
        self, executor: PluginExecutor, tmp_path: Path
    ) -> None:
        """15 MB of output is drained completely; past 10 MiB only the tail is stored."""
        action = make_action(
            tmp_path,
            """
            import os, sys
            line = ("x" * 99 + "\\n").encode()
            out = sys.stdout.buffer
            for _ in range(150_000):
                out.write(line)
            out.flush()
            open(os.environ["AUTOKESTRA_OUTPUTS"], "w").write("{}")
            """,
        )
        result, sink = run(executor, action, timeout_ms=60_000)
        assert result.outcome == "success"
        assert result.counts is not None
        assert result.counts.bytes == 15_000_000
        assert result.counts.elided_lines > 0
        warnings = [
            line for line in sink.lines if line.metadata and "elided_lines" in line.metadata
        ]
        assert len(warnings) == 1
        assert result.counts.stored_bytes <= 10 * 1024 * 1024 + 200 * 100


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 404 if self.path == "/missing" else 200
            body = json.dumps({"path": self.path, "auth": self.headers.get("X-Token")}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestBuiltins:
    def test_shell_run_in_workdir_with_env(self, executor: PluginExecutor) -> None:
        """core/shell.run runs in AUTOKESTRA_WORKDIR with extra env and reports exit_code 0."""
        action = REGISTRY.action("core/shell.run")
        result, sink = run(
            executor, action, {"command": "pwd; echo $GREETING", "env": {"GREETING": "hi"}}
        )
        assert result.outcome == "success"
        assert result.outputs == {"exit_code": 0}
        assert sink.messages() == [str(executor.workdir), "hi"]

    def test_shell_run_non_zero_exit_fails(self, executor: PluginExecutor) -> None:
        """A non-zero exit of the command fails the attempt with that exit code."""
        result, _ = run(executor, REGISTRY.action("core/shell.run"), {"command": "exit 7"})
        assert result.outcome == "failed"
        assert result.exit_code == 7

    def test_shell_run_has_default_signal_dispositions(self, executor: PluginExecutor) -> None:
        """The command starts with SIGPIPE at its default: `yes | head -1` ends cleanly.

        Python ignores SIGPIPE and an exec keeps ignored signals, so without the reset `yes`
        would see EPIPE instead, complain on stderr and exit with an error.
        """
        result, sink = run(
            executor, REGISTRY.action("core/shell.run"), {"command": "yes | head -n 1"}
        )
        assert result.outcome == "success"
        assert sink.messages() == ["y"]

    def test_shell_run_cwd_input(self, executor: PluginExecutor) -> None:
        """core/shell.run's cwd input is relative to the workdir."""
        (executor.workdir / "sub").mkdir()
        result, sink = run(
            executor, REGISTRY.action("core/shell.run"), {"command": "pwd", "cwd": "sub"}
        )
        assert result.outcome == "success"
        assert sink.messages() == [str(executor.workdir / "sub")]

    def test_log_emit_uses_the_level(self, executor: PluginExecutor) -> None:
        """core/log.emit stores each line at the given level and echoes the message."""
        result, sink = run(
            executor, REGISTRY.action("core/log.emit"), {"message": "a\nb", "level": "ERROR"}
        )
        assert result.outputs == {"message": "a\nb"}
        assert [(line.level, line.message) for line in sink.lines] == [
            (LogLevel.ERROR, "a"),
            (LogLevel.ERROR, "b"),
        ]

    def test_wait_sleep_reports_time_slept(self, executor: PluginExecutor) -> None:
        """core/wait.sleep sleeps at least the duration and reports slept_ms."""
        result, _ = run(executor, REGISTRY.action("core/wait.sleep"), {"duration": "200ms"})
        assert result.outcome == "success"
        assert 200 <= result.outputs["slept_ms"] < 2000
        assert result.duration_ms >= 200

    def test_python_run_outputs_and_args(self, executor: PluginExecutor) -> None:
        """core/python.run passes args as sys.argv and returns what the script wrote."""
        script = (
            "import json, os, sys\n"
            "json.dump({'argv': sys.argv[1:], 'x': inputs['args'][0]},"
            " open(os.environ['AUTOKESTRA_OUTPUTS'], 'w'))\n"
        )
        result, _ = run(
            executor, REGISTRY.action("core/python.run"), {"script": script, "args": [1, "b"]}
        )
        assert result.outcome == "success"
        assert result.outputs == {"argv": ["1", "b"], "x": 1}

    def test_python_run_without_outputs_gives_empty(self, executor: PluginExecutor) -> None:
        """A script that writes no outputs succeeds with {}."""
        result, sink = run(executor, REGISTRY.action("core/python.run"), {"script": "print('hi')"})
        assert result.outcome == "success"
        assert result.outputs == {}
        assert sink.messages() == ["hi"]

    def test_python_run_exception_fails(self, executor: PluginExecutor) -> None:
        """An uncaught exception fails the attempt with the traceback in the stderr tail."""
        result, _ = run(
            executor, REGISTRY.action("core/python.run"), {"script": "raise ValueError('boom')"}
        )
        assert result.outcome == "failed"
        assert result.error is not None
        assert result.error["stderr_tail"][-1] == "ValueError: boom"

    def test_http_request_get(self, executor: PluginExecutor, http_server: str) -> None:
        """core/http.request returns status, headers and body of the response."""
        result, _ = run(
            executor,
            REGISTRY.action("core/http.request"),
            {"url": f"{http_server}/hello", "headers": {"X-Token": "abc"}},
        )
        assert result.outcome == "success"
        assert result.outputs["status"] == 200
        assert json.loads(result.outputs["body"]) == {"path": "/hello", "auth": "abc"}
        assert result.outputs["headers"]["Content-Type"] == "application/json"

    def test_http_error_status_fails_unless_allowed(
        self, executor: PluginExecutor, http_server: str
    ) -> None:
        """A 404 fails the attempt, unless fail_on_error is false."""
        action = REGISTRY.action("core/http.request")
        failed, _ = run(executor, action, {"url": f"{http_server}/missing"})
        assert failed.outcome == "failed"
        allowed, _ = run(
            executor, action, {"url": f"{http_server}/missing", "fail_on_error": False}
        )
        assert allowed.outcome == "success"
        assert allowed.outputs["status"] == 404
