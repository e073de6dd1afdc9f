"""End to end (DESIGN.md §6.4, §6.5): SIGKILL of a `workflow run` with nobody restarting it.

A follower attached in another process ends, exit 1, naming the execution and its last
heartbeat; `inspect` says the engine is gone; the plugin and the child it started are gone
within 5 s although no other engine ever starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import WORKFLOW, group_alive, rows, wait_for

pytestmark = pytest.mark.integration

# The plugin starts a child that stays in its process group (`sleep 300 &`) and then waits
# on a second one: two processes to outlive a dead engine.
ORPHANS = """
id: orphans
tasks:
  - id: hold
    type: core/shell.run
    inputs:
      command: "echo started; sleep 300 & sleep 300"
"""


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _plugin_processes(token_holder: int) -> list[int]:
    """Pids (not zombies) whose process group is ``token_holder``'s."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[2] == str(token_holder) and fields[0] != "Z":
            found.append(int(entry))
    return found


@pytest.fixture
def killed_run(tmp_path: Path) -> Iterator[tuple[Path, str, int]]:
    """A `workflow run` of ORPHANS, SIGKILLed once its plugin printed; (db, id, pgid)."""
    db = tmp_path / "ak.db"
    (tmp_path / "orphans.yaml").write_text(ORPHANS)
    run = subprocess.Popen(
        [WORKFLOW, "--db", str(db), "run", "orphans.yaml"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    pgid = 0
    try:
        assert run.stdout is not None
        first = run.stdout.readline()
        assert first.startswith("Execution "), first
        execution_id = first.split()[1]

        def spawned() -> bool:
            found = rows(
                db, "SELECT pgid FROM task_attempts WHERE execution_id = ?", (execution_id,)
            )
            return bool(found and found[0][0])

        wait_for("the plugin to start", spawned)
        pgid = int(
            rows(db, "SELECT pgid FROM task_attempts WHERE execution_id = ?", (execution_id,))[0][0]
        )
        wait_for("the plugin's child", lambda: len(_plugin_processes(pgid)) >= 2)

        def logged() -> bool:
            query = "SELECT count(*) FROM execution_logs WHERE execution_id = ? AND message = ?"
            return bool(rows(db, query, (execution_id, "started"))[0][0])

        wait_for("the plugin's first line to be stored", logged)
        yield db, execution_id, pgid
    finally:
        if run.poll() is None:
            run.kill()
        run.wait()
        run.stdout.close()  # type: ignore[union-attr]  # PIPE was asked for
        if pgid and group_alive(pgid):  # never leave a process behind, even on failure
            os.killpg(pgid, signal.SIGKILL)


class TestDeadEngine:
    def test_follow_ends_when_the_engine_is_killed(self, killed_run: tuple[Path, str, int]) -> None:
        """A follower in another process exits 1 within 45 s naming the execution."""
        db, execution_id, _ = killed_run
        follower = subprocess.Popen(
            [WORKFLOW, "--db", str(db), "execution", "logs", execution_id, "--follow"],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(0.5)
            assert follower.poll() is None, "the follower must wait while the engine lives"
            engine_pid = int(
                rows(
                    db, "SELECT engine_pid FROM executions WHERE execution_id = ?", (execution_id,)
                )[0][0]
            )
            os.kill(engine_pid, signal.SIGKILL)
            out, err = follower.communicate(timeout=45)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
        assert follower.returncode == 1
        assert "started" in out, (out, err)
        assert err.startswith(
            f"Error: the engine running execution {execution_id} is gone (last heartbeat 20"
        )
        assert err.rstrip().endswith(
            "the next `workflow server start` or `workflow run` marks it FAILED (ENGINE_LOST)"
        )

    def test_inspect_says_engine_gone(self, killed_run: tuple[Path, str, int]) -> None:
        """inspect shows RUNNING (engine gone since <ISO time>), not "in progress"."""
        db, execution_id, _ = killed_run
        engine_pid = int(
            rows(db, "SELECT engine_pid FROM executions WHERE execution_id = ?", (execution_id,))[
                0
            ][0]
        )
        os.kill(engine_pid, signal.SIGKILL)
        wait_for("the engine to die", lambda: not _running(engine_pid))
        result = subprocess.run(
            [WORKFLOW, "--db", str(db), "execution", "inspect", execution_id],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "RUNNING (engine gone since 20" in result.stdout
        assert "Execution in progress" not in result.stdout

    def test_no_orphans_after_sigkill(self, killed_run: tuple[Path, str, int]) -> None:
        """The plugin and its child are gone within 5 s of the engine's SIGKILL."""
        db, execution_id, pgid = killed_run
        engine_pid = int(
            rows(db, "SELECT engine_pid FROM executions WHERE execution_id = ?", (execution_id,))[
                0
            ][0]
        )
        assert len(_plugin_processes(pgid)) >= 2
        os.kill(engine_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for("the plugin processes to go", lambda: not _plugin_processes(pgid), timeout=10)
        assert time.monotonic() - killed_at <= 5.0
        state = rows(db, "SELECT state FROM executions WHERE execution_id = ?", (execution_id,))
        assert state == [("RUNNING",)]  # nobody restarted an engine: no recovery happened
