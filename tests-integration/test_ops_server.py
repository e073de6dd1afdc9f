"""End to end: `workflow server start` runs detached runs and cron fires, and stops cleanly."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e import WORKFLOW, group_alive, rows, wait_for

pytestmark = pytest.mark.integration


QUICK = """
id: quick
tasks:
  - {id: mark, type: core/shell.run, inputs: {command: "echo {{ execution.id }} >> runs.txt"}}
"""


def env(**extra: str) -> dict[str, str]:
    """CLI environment: fast server polls, two task slots, no colour."""
    return {
        **os.environ,
        "NO_COLOR": "1",
        "AUTOKESTRA_MAX_CONCURRENT_TASKS": "2",
        "AUTOKESTRA_SERVER_POLL": "100ms",
        **extra,
    }


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to its end."""
    return subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), *args],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class ServerProcess:
    """A `workflow server start` subprocess with its output in files."""

    def __init__(self, tmp_path: Path, name: str, *args: str, **extra_env: str) -> None:
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [WORKFLOW, "--db", str(tmp_path / "ak.db"), "server", "start", *args],
                cwd=tmp_path,
                env=env(**extra_env),
                stdout=out,
                stderr=err,
                text=True,
            )
        wait_for(f"{name} status line", lambda: "server started" in self.out.read_text())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        """Everything the server logged so far."""
        return self.err.read_text()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Servers started by a test; any still running at the end are killed."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def states(tmp_path: Path) -> dict[str, str]:
    """State of every execution by id."""
    return {str(e): str(s) for e, s in rows(tmp_path, "SELECT execution_id, state FROM executions")}


class TestDetachedRuns:
    def test_server_runs_a_detached_execution(
        self, tmp_path: Path, servers: list[ServerProcess]
    ) -> None:
        """`run --detach` queues; the running server claims, runs it to SUCCESS, exits 0."""
        (tmp_path / "quick.yaml").write_text(QUICK)
        servers.append(ServerProcess(tmp_path, "s1"))
        queued = run_cli(tmp_path, "run", "quick.yaml", "--detach")
        assert queued.returncode == 0, queued.stderr
        execution_id = queued.stdout.split()[1]
        wait_for("SUCCESS", lambda: states(tmp_path).get(execution_id) == "SUCCESS")
        (pid, trigger) = rows(
            tmp_path,
            "SELECT engine_pid, trigger_type FROM executions WHERE execution_id = ?",
            (execution_id,),
        )[0]
        assert pid == servers[0].proc.pid
        assert trigger == "manual"
        assert (tmp_path / "runs.txt").read_text().split() == [execution_id]
        assert servers[0].stop() == 0
        assert "Stopped: logs flushed" in servers[0].stderr()

    def test_two_servers_never_double_run(
        self, tmp_path: Path, servers: list[ServerProcess]
    ) -> None:
        """Twelve queued executions under two servers: each runs exactly once."""
        (tmp_path / "quick.yaml").write_text(QUICK)
        ids = []
        for _ in range(12):
            queued = run_cli(tmp_path, "run", "quick.yaml", "--detach")
            assert queued.returncode == 0, queued.stderr
            ids.append(queued.stdout.split()[1])
        servers.append(ServerProcess(tmp_path, "s1"))
        servers.append(ServerProcess(tmp_path, "s2"))
        wait_for(
            "all SUCCESS",
            lambda: all(states(tmp_path).get(i) == "SUCCESS" for i in ids),
            timeout=90,
        )
        assert sorted((tmp_path / "runs.txt").read_text().split()) == sorted(ids)
        started = rows(
            tmp_path,
            "SELECT execution_id, COUNT(*) FROM execution_audit_events"
            " WHERE event_type = 'STARTED' GROUP BY execution_id",
        )
        assert sorted(started) == sorted((i, 1) for i in ids)
        owners = {r[0] for r in rows(tmp_path, "SELECT DISTINCT engine_pid FROM executions")}
        assert owners <= {s.proc.pid for s in servers}
        assert [s.stop() for s in servers] == [0, 0]


CRON = """
id: ticker
enabled: {enabled}
trigger: {{type: cron, schedule: "* * * * * *"}}
tasks:
  - {{id: tick, type: core/log.emit, inputs: {{message: tick}}}}
"""


class TestCron:
    def test_every_second_cron_fires_and_pauses(
        self, tmp_path: Path, servers: list[ServerProcess]
    ) -> None:
        """A 6-field every-second schedule fires runs with trigger cron; enabled: false stops it."""
        path = tmp_path / "ticker.yaml"
        path.write_text(CRON.format(enabled="true"))
        applied = run_cli(tmp_path, "apply", str(path))
        assert applied.returncode == 0, applied.stderr
        servers.append(ServerProcess(tmp_path, "s1"))

        def cron_runs() -> list[tuple[Any, ...]]:
            return rows(
                tmp_path,
                "SELECT created_at, state FROM executions WHERE trigger_type = 'cron'"
                " AND workflow_id = 'ticker' ORDER BY created_at",
            )

        wait_for("four cron fires", lambda: len(cron_runs()) >= 4)
        fired = cron_runs()
        # The first fire may be a late one (due before the server started: fired once, not
        # replayed); after it, one per second.
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(fired[1:])]
        assert all(gap >= 500 for gap in gaps), gaps
        path.write_text(CRON.format(enabled="false"))
        assert run_cli(tmp_path, "apply", str(path)).returncode == 0
        time.sleep(0.5)  # a fire already claimed may still be created
        paused_at = len(cron_runs())
        time.sleep(2.5)
        assert len(cron_runs()) == paused_at
        wait_for(
            "cron runs to finish",
            lambda: all(state == "SUCCESS" for _, state in cron_runs()),
        )
        assert servers[0].stop() == 0

    def test_two_servers_fire_each_second_once(
        self, tmp_path: Path, servers: list[ServerProcess]
    ) -> None:
        """Two servers on one database: every cron fire creates exactly one execution."""
        path = tmp_path / "ticker.yaml"
        path.write_text(CRON.format(enabled="true"))
        assert run_cli(tmp_path, "apply", str(path)).returncode == 0
        servers.append(ServerProcess(tmp_path, "s1"))
        servers.append(ServerProcess(tmp_path, "s2"))

        def fires() -> list[int]:
            found = rows(
                tmp_path,
                "SELECT created_at FROM executions WHERE trigger_type = 'cron' ORDER BY 1",
            )
            return [int(c) for (c,) in found]

        wait_for("five cron fires", lambda: len(fires()) >= 5)
        assert [s.stop() for s in servers] == [0, 0]
        created = fires()
        gaps = [b - a for a, b in itertools.pairwise(created[1:])]
        assert all(gap >= 500 for gap in gaps), gaps  # never two runs for one fire
        # The fire claims are shared: both servers' cron log lines add up to the runs.
        fired_lines = sum(s.stderr().count("Cron fired ticker") for s in servers)
        assert fired_lines == len(created)


LONG = """
id: long
tasks:
  - id: count
    type: core/shell.run
    inputs:
      command: >-
        sleep 300 &
        i=0; while true; do i=$((i+1)); echo $i > last.txt; echo line $i; sleep 0.01; done
"""

SHORT = """
id: short
tasks:
  - {id: nap, type: core/shell.run, inputs: {command: "echo start; sleep 2; echo done"}}
"""


def plugin_lines(tmp_path: Path, execution_id: str) -> list[int]:
    """Numbers of the `line N` entries stored for the execution, in id order."""
    found = rows(
        tmp_path,
        "SELECT message FROM execution_logs WHERE execution_id = ? AND message LIKE 'line %'"
        " ORDER BY id",
        (execution_id,),
    )
    return [int(str(m).split()[1]) for (m,) in found]


class TestGracefulStop:
    def test_sigterm_cancels_after_grace_and_flushes(
        self, tmp_path: Path, servers: list[ServerProcess]
    ) -> None:
        """SIGTERM: the run is cancelled by system after the grace, every line stored, exit 0."""
        (tmp_path / "long.yaml").write_text(LONG)
        servers.append(ServerProcess(tmp_path, "s1", "--shutdown-grace", "1s"))
        execution_id = run_cli(tmp_path, "run", "long.yaml", "--detach").stdout.split()[1]
        wait_for("plugin output", lambda: len(plugin_lines(tmp_path, execution_id)) > 50)
        ((pgid,),) = rows(
            tmp_path,
            "SELECT pgid FROM task_attempts WHERE execution_id = ?",
            (execution_id,),
        )
        assert group_alive(pgid)
        assert servers[0].stop(signal.SIGTERM, timeout=30) == 0
        assert not group_alive(pgid)  # no plugin process outlives the server
        (state, by, reason) = rows(
            tmp_path,
            "SELECT state, cancelled_by, cancel_reason FROM executions WHERE execution_id = ?",
            (execution_id,),
        )[0]
        assert (state, by, reason) == ("CANCELLED", "system", "server shutdown")
        assert rows(tmp_path, "SELECT state FROM task_runs") == [("CANCELLED",)]
        lines = plugin_lines(tmp_path, execution_id)
        assert lines == list(range(1, len(lines) + 1))  # no hole
        last = (tmp_path / "last.txt").read_text().strip()
        # Empty: the plugin was killed while rewriting the file, before printing that line.
        if last:
            assert lines[-1] in (int(last) - 1, int(last))  # nothing printed was lost
        count, stored = rows(
            tmp_path,
            "SELECT log_entry_count, (SELECT COUNT(*) FROM execution_logs WHERE"
            " execution_id = ?) FROM executions WHERE execution_id = ?",
            (execution_id, execution_id),
        )[0]
        assert count == stored
        terminal = rows(
            tmp_path,
            "SELECT event_type FROM execution_audit_events WHERE execution_id = ?"
            " AND event_type IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')",
            (execution_id,),
        )
        assert terminal == [("CANCELLED",)]

    def test_sigterm_lets_a_short_run_finish(
        self, tmp_path: Path, servers: list[ServerProcess]
    ) -> None:
        """Within the grace period a running execution finishes SUCCESS before exit 0."""
        (tmp_path / "short.yaml").write_text(SHORT)
        servers.append(ServerProcess(tmp_path, "s1", "--shutdown-grace", "30s"))
        execution_id = run_cli(tmp_path, "run", "short.yaml", "--detach").stdout.split()[1]
        wait_for("RUNNING", lambda: states(tmp_path).get(execution_id) == "RUNNING")
        assert servers[0].stop(signal.SIGINT) == 0
        assert states(tmp_path)[execution_id] == "SUCCESS"
        messages = [str(m) for (m,) in rows(tmp_path, "SELECT message FROM execution_logs")]
        assert "done" in messages
