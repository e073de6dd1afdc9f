"""The warm launcher: what it forks, what it leaves to spawn, and that it dies with its engine.

The executor's behaviour (pipes, groups, timeouts, cancel, capture) is tested in both modes by
test_executor.py; these tests pin what only the fork mode has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
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
    PluginExecutor,
    PluginRegistry,
    load_manifest,
)
from autokestra_obs_collector.testing import MemorySink

REGISTRY = PluginRegistry.discover([])
WRITE_EMPTY_OUTPUTS = "import os; open(os.environ['AUTOKESTRA_OUTPUTS'], 'w').write('{}')"
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the fork server needs Linux"
)


def make_action(
    tmp_path: Path, script: str, command: str = '["{python}", "probe.py"]'
) -> ActionSpec:
    folder = tmp_path / "probe"
    folder.mkdir(exist_ok=True)
    (folder / "probe.py").write_text(textwrap.dedent(script))
    (folder / "plugin.yaml").write_text(
        f"namespace: test\nname: probe\nversion: 0.0.1\nactions:\n  run:\n    command: {command}\n"
    )
    return load_manifest(folder).actions["run"]


@pytest.fixture
def forking(tmp_path: Path) -> Iterator[PluginExecutor]:
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": "/tmp", "LANG": "C.UTF-8"}
    executor = PluginExecutor(
        REGISTRY, workdir=tmp_path, grace_ms=300, drain_ms=500, env=env, launcher="fork"
    )
    try:
        yield executor
    finally:
        executor.close()


def run(
    executor: PluginExecutor, action: ActionSpec, inputs: dict[str, Any] | None = None
) -> tuple[AttemptResult, MemorySink]:
    sink = MemorySink()
    request = AttemptRequest(
        execution_id="exec-1",
        task_id="task-1",
        attempt=1,
        action=action,
        inputs=inputs or {},
        timeout_ms=10_000,
    )
    return executor.run_attempt(request, sink, threading.Event()), sink


def launched(executor: PluginExecutor) -> int:
    assert executor.launcher is not None
    return executor.launcher.launched


class TestWhatIsForked:
    def test_python_plugin_is_forked_as_a_child_of_the_engine(
        self, forking: PluginExecutor, tmp_path: Path
    ) -> None:
        """The attempt is our child, leads its own session, and runs the script as __main__."""
        action = make_action(
            tmp_path,
            """
            import json, os, sys
            json.dump(
                {
                    "ppid": os.getppid(), "pid": os.getpid(), "pgid": os.getpgrp(),
                    "sid": os.getsid(0), "name": __name__, "file": __file__,
                    "argv": sys.argv, "path0": sys.path[0], "cwd": os.getcwd(),
                    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
                },
                open(os.environ["AUTOKESTRA_OUTPUTS"], "w"),
            )
            """,
        )
        before = launched(forking)
        result, _ = run(forking, action)
        assert result.outcome == "success", result.error
        assert launched(forking) == before + 1
        out = result.outputs
        assert out["ppid"] == os.getpid()
        assert out["pgid"] == out["sid"] == out["pid"] == result.pid
        assert out["name"] == "__main__"
        assert out["file"] == out["argv"][0] == str(action.plugin_dir / "probe.py")
        assert out["path0"] == out["cwd"] == str(action.plugin_dir)
        # stdin/stdout/stderr and the fd listing itself: nothing of the server leaks in.
        assert out["fds"] == [0, 1, 2, 3]

    def test_builtin_plugins_are_forked(self, forking: PluginExecutor) -> None:
        """core/log.emit (python -I -S) and core/python.run (python) both go to a server."""
        before = launched(forking)
        result, sink = run(forking, REGISTRY.action("core/log.emit"), {"message": "hello"})
        assert result.outcome == "success"
        assert [line.message for line in sink.lines] == ["hello"]
        script = "import sys; print(sys.argv[1:], sys.flags.isolated)"
        result, sink = run(
            forking, REGISTRY.action("core/python.run"), {"script": script, "args": ["a", 2]}
        )
        assert result.outcome == "success", result.error
        assert [line.message for line in sink.lines] == ["['a', '2'] 0"]
        assert launched(forking) == before + 2

    def test_other_commands_are_spawned(self, forking: PluginExecutor, tmp_path: Path) -> None:
        """A command the servers cannot reproduce (here python -c) is spawned, and works."""
        action = make_action(
            tmp_path,
            "",
            command=json.dumps(["{python}", "-c", WRITE_EMPTY_OUTPUTS]),
        )
        before = launched(forking)
        result, _ = run(forking, action)
        assert result.outcome == "success", result.error
        assert launched(forking) == before

    def test_dead_server_falls_back_to_spawn(self, forking: PluginExecutor, tmp_path: Path) -> None:
        """Killing the servers does not fail attempts: they are spawned instead."""
        action = make_action(
            tmp_path, "import os; open(os.environ['AUTOKESTRA_OUTPUTS'], 'w').write('{}')"
        )
        assert run(forking, action)[0].outcome == "success"
        assert forking.launcher is not None
        servers = forking.launcher.server_pids()
        assert servers
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
        before = launched(forking)
        result, _ = run(forking, action)
        assert result.outcome == "success", result.error
        assert launched(forking) == before

    def test_a_hung_server_is_dropped_without_its_running_attempts(
        self, forking: PluginExecutor, tmp_path: Path
    ) -> None:
        """A server that stops answering is killed (the next attempt is spawned), and an
        attempt it had forked before runs to its end."""
        action = make_action(
            tmp_path,
            "import os, time\ntime.sleep(1.5)\n"
            "open(os.environ['AUTOKESTRA_OUTPUTS'], 'w').write('{}')\n",
        )
        first: list[AttemptResult] = []
        thread = threading.Thread(target=lambda: first.append(run(forking, action)[0]))
        thread.start()
        assert forking.launcher is not None
        deadline = time.monotonic() + 10
        while launched(forking) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        servers = forking.launcher.server_pids()
        for pid in servers:
            os.kill(pid, signal.SIGSTOP)
        try:
            second, _ = run(forking, action)  # waits 5 s for the stopped server, then spawns
        finally:
            for pid in servers:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)
            thread.join(30)
        assert second.outcome == "success", second.error
        assert first and first[0].outcome == "success", first and first[0].error
        assert launched(forking) == 1

    def test_missing_folder_fails_the_attempt_like_a_spawn(
        self, forking: PluginExecutor, tmp_path: Path
    ) -> None:
        """A plugin folder that is gone is spawn_failed, as Popen's cwd error would be."""
        action = make_action(tmp_path, "pass")
        gone = dataclasses.replace(action, plugin_dir=tmp_path / "gone")
        before = launched(forking)
        result, _ = run(forking, gone)
        assert result.outcome == "failed"
        assert result.error is not None and result.error["type"] == "spawn_failed"
        assert "No such file or directory" in result.error["message"]
        assert launched(forking) == before


class TestFreshInterpreter:
    def test_children_do_not_share_random_state(
        self, forking: PluginExecutor, tmp_path: Path
    ) -> None:
        """random is reseeded in each child (CPython's at-fork hooks ran)."""
        action = make_action(tmp_path, "import random; print(random.random())")
        values = {run(forking, action)[1].lines[0].message for _ in range(3)}
        assert len(values) == 3

    def test_uncaught_exception_shows_only_the_plugin_frames(
        self, forking: PluginExecutor, tmp_path: Path
    ) -> None:
        action = make_action(tmp_path, "def f():\n    raise ValueError('boom')\nf()\n")
        result, sink = run(forking, action)
        assert result.outcome == "failed" and result.exit_code == 1
        text = "\n".join(line.message for line in sink.lines)
        assert text.startswith("Traceback (most recent call last):")
        assert "probe.py" in text and "ValueError: boom" in text
        assert "_forkserver" not in text

    @pytest.mark.parametrize(
        ("code", "status", "stderr"),
        [("None", 0, []), ("3", 3, []), ("'bad thing'", 1, ["bad thing"])],
    )
    def test_sys_exit_like_python(
        self,
        forking: PluginExecutor,
        tmp_path: Path,
        code: str,
        status: int,
        stderr: list[str],
    ) -> None:
        action = make_action(
            tmp_path,
            "import os, sys\nopen(os.environ['AUTOKESTRA_OUTPUTS'], 'w').write('{}')\n"
            f"sys.exit({code})\n",
        )
        result, sink = run(forking, action)
        assert result.exit_code == status
        assert [line.message for line in sink.lines] == stderr

    def test_shutdown_joins_threads_runs_atexit_and_flushes(
        self, forking: PluginExecutor, tmp_path: Path
    ) -> None:
        """What a script sees of interpreter shutdown happens, in Python's order."""
        action = make_action(
            tmp_path,
            """
            import atexit, os, sys, threading, time
            log = open(os.path.join(os.environ["AUTOKESTRA_WORKDIR"], "late.txt"), "w")
            log.write("buffered, never closed")
            atexit.register(lambda: print("atexit ran"))
            threading.Thread(target=lambda: (time.sleep(0.2), print("thread done"))).start()
            sys.stdout.write("no newline")
            open(os.environ["AUTOKESTRA_OUTPUTS"], "w").write("{}")
            """,
        )
        result, sink = run(forking, action)
        assert result.outcome == "success", result.error
        assert "".join(line.message for line in sink.lines) == "no newlinethread doneatexit ran"
        assert (tmp_path / "late.txt").read_text() == "buffered, never closed"


ENGINE_SCRIPT = """
import json, os, sys, threading
from pathlib import Path
from autokestra_engine import AttemptRequest, PluginExecutor, PluginRegistry, load_manifest
from autokestra_obs_collector.testing import MemorySink

action = load_manifest(Path(sys.argv[1])).actions["run"]
executor = PluginExecutor(PluginRegistry.discover([]), workdir=Path(sys.argv[1]), launcher="fork")
def spawned(pid, pgid):
    print(json.dumps({"child": pid, "servers": executor.launcher.server_pids()}), flush=True)
request = AttemptRequest(
    execution_id="e", task_id="t", attempt=1, action=action, inputs={}, timeout_ms=None,
    on_spawn=spawned,
)
executor.run_attempt(request, MemorySink(), threading.Event())
"""


def alive(pid: int) -> bool:
    """Whether pid is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class TestDiesWithTheEngine:
    def test_sigkill_of_the_engine_ends_servers_and_attempts(self, tmp_path: Path) -> None:
        """No fork server and no forked attempt outlives a SIGKILLed engine (DESIGN §6.5)."""
        action = make_action(tmp_path, "import time\nwhile True:\n    time.sleep(0.05)\n")
        engine = subprocess.Popen(
            [sys.executable, "-c", ENGINE_SCRIPT, str(action.plugin_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        pids: list[int] = []
        try:
            assert engine.stdout is not None
            info = json.loads(engine.stdout.readline())
            pids = [info["child"], *info["servers"]]
            assert len(pids) >= 2 and all(alive(pid) for pid in pids)
            engine.kill()
            engine.wait()
            deadline = time.monotonic() + 5
            while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not [pid for pid in pids if alive(pid)]
        finally:
            engine.kill()
            engine.wait()
            if engine.stdout is not None:
                engine.stdout.close()
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
