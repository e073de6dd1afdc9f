"""End to end: `workflow run` on real workflow files, real plugin processes, a real database.

Each test runs the installed `workflow` command in a subprocess and then asserts on what it
printed and on the database it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from e2e import WORKFLOW, group_alive, rows

from autokestra_obs_audit import verify_chain
from autokestra_obs_schema import open_reader

pytestmark = pytest.mark.integration

TERMINAL_EVENTS = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


def run_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `workflow --db <tmp>/ak.db ARGS` in tmp_path (no repo config or plugins)."""
    return subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), *args],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    """A workflow file in tmp_path."""
    path = tmp_path / name
    path.write_text(text)
    return path


def execution_id(result: subprocess.CompletedProcess[str]) -> str:
    """The id from the first stdout line, `Execution <id> started`."""
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "Execution" and first[2] == "started", result.stdout
    return first[1]


def assert_well_recorded(tmp_path: Path, eid: str) -> None:
    """The audit trail and log invariants every finished execution must satisfy."""
    kinds = [
        k
        for (k,) in rows(
            tmp_path,
            "SELECT event_type FROM execution_audit_events WHERE execution_id = ? ORDER BY id",
            (eid,),
        )
    ]
    assert kinds[:2] == ["CREATED", "STARTED"], kinds
    middle = kinds[2:-1]
    assert middle and set(middle) == {"STATE_CHANGE"}, kinds
    assert kinds[-1] in TERMINAL_EVENTS
    assert sum(k in TERMINAL_EVENTS for k in kinds) == 1
    conn = open_reader(tmp_path / "ak.db")
    try:
        assert verify_chain(conn, eid).ok
    finally:
        conn.close()
    (count,) = rows(
        tmp_path, "SELECT log_entry_count FROM executions WHERE execution_id = ?", (eid,)
    )[0]
    assert rows(tmp_path, "SELECT count(*) FROM execution_logs WHERE execution_id = ?", (eid,)) == [
        (count,)
    ]
    assert rows(tmp_path, "SELECT count(*) FROM execution_logs WHERE execution_id IS NULL") == [
        (0,)
    ]
    task_rows_without_attempt = rows(
        tmp_path,
        "SELECT count(*) FROM execution_logs WHERE execution_id = ? AND task_id IS NOT NULL"
        " AND attempt IS NULL AND source LIKE 'plugin:%'",
        (eid,),
    )
    assert task_rows_without_attempt == [(0,)]


FAN = """
id: fan
tasks:
  - {id: split, type: core/log.emit, inputs: {message: splitting}}
  - {id: p1, type: core/shell.run, needs: [split], inputs: {command: "sleep 0.6; echo p1"}}
  - {id: p2, type: core/shell.run, needs: [split], inputs: {command: "sleep 0.6; echo p2"}}
  - {id: p3, type: core/shell.run, needs: [split], inputs: {command: "sleep 0.6; echo p3"}}
  - {id: p4, type: core/shell.run, needs: [split], inputs: {command: "sleep 0.6; echo p4"}}
  - id: join
    type: core/log.emit
    needs: [p1, p2, p3, p4]
    inputs: {message: "joined {{ tasks.split.outputs.message }}"}
"""


class TestRun:
    def test_fan_out_fan_in_in_parallel(self, tmp_path: Path) -> None:
        """Parallel branches overlap in time at max_concurrent_tasks 4; output is plain."""
        result = run_cli(
            tmp_path,
            "run",
            str(write(tmp_path, "fan.yaml", FAN)),
            env={"AUTOKESTRA_MAX_CONCURRENT_TASKS": "4"},
        )
        assert result.returncode == 0, result.stderr
        eid = execution_id(result)
        last = result.stdout.splitlines()[-1]
        assert last.startswith(f"Execution {eid} SUCCESS in ")
        assert "\x1b" not in result.stdout  # a pipe gets plain lines, no live display
        assert any("p3 SUCCESS" in line for line in result.stdout.splitlines())
        spans = rows(
            tmp_path,
            "SELECT started_at, ended_at FROM task_attempts WHERE task_id LIKE 'p_'",
        )
        assert len(spans) == 4
        latest_start = max(s for s, _ in spans)
        earliest_end = min(e for _, e in spans)
        assert latest_start < earliest_end  # all four ran at the same time
        assert rows(tmp_path, "SELECT outputs FROM task_runs WHERE task_id = 'join'") == [
            ('{"message":"joined splitting"}',)
        ]
        assert_well_recorded(tmp_path, eid)

    def test_retry_then_success(self, tmp_path: Path) -> None:
        """The first attempt fails, the retry succeeds: two attempt rows, one retry log."""
        marker = tmp_path / "marker"
        flaky = write(
            tmp_path,
            "flaky.yaml",
            f"""
id: flaky
tasks:
  - id: call
    type: core/shell.run
    retry: {{max: 2, backoff: {{type: exponential, delay: 100ms, max_delay: 1s}}}}
    inputs:
      command: "if [ -f {marker} ]; then echo up; else touch {marker}; echo down >&2; exit 9; fi"
""",
        )
        result = run_cli(tmp_path, "run", str(flaky))
        assert result.returncode == 0, result.stderr
        eid = execution_id(result)
        assert "call WAITING (attempt 1) RETRY_BACKOFF" in result.stdout
        assert rows(tmp_path, "SELECT attempt, state, reason, exit_code FROM task_attempts") == [
            (1, "FAILED", "PLUGIN_ERROR", 9),
            (2, "SUCCESS", None, 0),
        ]
        retry = rows(
            tmp_path,
            "SELECT attempt, metadata FROM execution_logs WHERE message LIKE 'Retrying task call%'",
        )
        assert len(retry) == 1
        meta = json.loads(retry[0][1])
        assert (retry[0][0], meta["attempt"], meta["reason"], meta["delay_ms"]) == (
            1,
            1,
            "PLUGIN_ERROR",
            100,
        )
        stderr_logs = rows(
            tmp_path,
            "SELECT level, attempt FROM execution_logs WHERE message = 'down'",
        )
        assert stderr_logs == [("WARN", 1)]
        assert_well_recorded(tmp_path, eid)

    def test_retry_exhausted(self, tmp_path: Path) -> None:
        """Every attempt fails: the task and the execution end FAILED, exit code 1."""
        path = write(
            tmp_path,
            "bad.yaml",
            """
id: bad
tasks:
  - id: always
    type: core/shell.run
    retry: {max: 2, backoff: {type: fixed, delay: 50ms}}
    inputs: {command: "echo 'no luck' >&2; exit 5"}
""",
        )
        result = run_cli(tmp_path, "run", str(path))
        assert result.returncode == 1
        eid = execution_id(result)
        assert result.stdout.splitlines()[-1].startswith(f"Execution {eid} FAILED in ")
        assert rows(tmp_path, "SELECT state, attempt_count, error FROM task_runs")[0][:2] == (
            "FAILED",
            3,
        )
        error = json.loads(rows(tmp_path, "SELECT error FROM task_runs")[0][0])
        assert error["exit_code"] == 5 and error["stderr_tail"] == ["no luck"]
        assert rows(
            tmp_path, "SELECT count(*) FROM execution_logs WHERE message LIKE 'Retrying%'"
        ) == [(2,)]
        assert rows(tmp_path, "SELECT state, failed_task_id FROM executions") == [
            ("FAILED", "always")
        ]
        assert_well_recorded(tmp_path, eid)

    def test_task_timeout_kills_the_process_group(self, tmp_path: Path) -> None:
        """A task over its timeout fails with reason TIMEOUT and leaves no process behind."""
        path = write(
            tmp_path,
            "slow.yaml",
            """
id: slow
tasks:
  - id: hang
    type: core/shell.run
    timeout: 500ms
    inputs: {command: "sleep 300 & sleep 300 & wait"}
""",
        )
        result = run_cli(tmp_path, "run", str(path))
        assert result.returncode == 1
        eid = execution_id(result)
        (pgid, reason) = rows(tmp_path, "SELECT pgid, reason FROM task_attempts")[0]
        assert reason == "TIMEOUT"
        assert pgid is not None and not group_alive(pgid)
        assert rows(tmp_path, "SELECT state, reason_code FROM task_runs") == [("FAILED", "TIMEOUT")]
        errors = rows(
            tmp_path,
            "SELECT message FROM execution_logs WHERE level = 'ERROR' AND task_id = 'hang'",
        )
        assert any("timed out: limit 500ms, elapsed" in m for (m,) in errors)
        assert_well_recorded(tmp_path, eid)

    def test_workflow_timeout(self, tmp_path: Path) -> None:
        """A workflow timeout: FAILED with reason TIMEOUT, a TIMEOUT event, an ERROR log."""
        path = write(
            tmp_path,
            "wt.yaml",
            """
id: wt
timeout: 1s
tasks:
  - {id: long, type: core/shell.run, inputs: {command: "sleep 60"}}
  - {id: next, type: core/log.emit, needs: [long], inputs: {message: never}}
""",
        )
        result = run_cli(tmp_path, "run", str(path))
        assert result.returncode == 1
        eid = execution_id(result)
        assert rows(tmp_path, "SELECT state, reason_code FROM executions") == [
            ("FAILED", "TIMEOUT")
        ]
        events = rows(
            tmp_path,
            "SELECT event_type, metadata FROM execution_audit_events ORDER BY id",
        )
        assert events[-1][0] == "TIMEOUT"
        meta = json.loads(events[-1][1])
        assert meta["timeout_ms"] == 1000 and meta["elapsed_ms"] >= 1000
        assert "FAILED" not in [kind for kind, _ in events]
        logged = rows(
            tmp_path,
            "SELECT message FROM execution_logs WHERE level = 'ERROR' AND source = 'scheduler'",
        )
        assert any(m.startswith("Execution timed out: limit 1.0s, elapsed") for (m,) in logged)
        pgid = rows(tmp_path, "SELECT pgid FROM task_attempts")[0][0]
        assert not group_alive(pgid)
        assert_well_recorded(tmp_path, eid)

    def test_upstream_failure_propagation(self, tmp_path: Path) -> None:
        """Dependants of a failed task are CANCELLED (UPSTREAM_FAILED); others finish."""
        example = Path(__file__).parents[1] / "examples" / "workflows" / "failing-pipeline.yaml"
        result = run_cli(tmp_path, "run", str(example))
        assert result.returncode == 1
        eid = execution_id(result)
        states = dict(
            (t, (s, r))
            for t, s, r in rows(tmp_path, "SELECT task_id, state, reason_code FROM task_runs")
        )
        assert states == {
            "checkout": ("SUCCESS", None),
            "lint": ("SUCCESS", None),
            "build": ("FAILED", "PLUGIN_ERROR"),
            "test": ("CANCELLED", "UPSTREAM_FAILED"),
            "deploy": ("CANCELLED", "UPSTREAM_FAILED"),
        }
        assert rows(tmp_path, "SELECT failed_task_id FROM executions") == [("build",)]
        assert "Task build failed" in result.stderr
        assert_well_recorded(tmp_path, eid)

    def test_every_example_runs(self, tmp_path: Path) -> None:
        """Each example workflow ends as documented (the three failure demos exit 1)."""
        folder = Path(__file__).parents[1] / "examples" / "workflows"
        # As the demo does: subflow.yaml starts the registered workflow subflow-child.yaml.
        assert run_cli(tmp_path, "apply", str(folder / "subflow-child.yaml")).returncode == 0
        for example in sorted(folder.glob("*.yaml")):
            if example.stem == "webhook":
                # Started by a signed request to a server (test_webhook_e2e.py runs it): as
                # the demo does, it is validated here.
                assert run_cli(tmp_path, "validate", str(example)).returncode == 0
                continue
            result = run_cli(
                tmp_path,
                "run",
                str(example),
                env={"AUTOKESTRA_SECRET_API_TOKEN": "example-token-123456"},
            )
            failing = {"failing-pipeline", "cleanup-on-failure", "notify-on-failure"}
            expected = 1 if example.stem in failing else 0
            assert result.returncode == expected, (example.name, result.stdout, result.stderr)
            assert_well_recorded(tmp_path, execution_id(result))

    def test_closed_stdout_pipe_does_not_hang_the_run(self, tmp_path: Path) -> None:
        """`workflow run flow.yaml | head -1`: the run still finishes and is recorded."""
        example = Path(__file__).parents[1] / "examples" / "workflows" / "failing-pipeline.yaml"
        proc = subprocess.Popen(
            [WORKFLOW, "--db", str(tmp_path / "ak.db"), "run", str(example)],
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        proc.stdout.close()  # the reader goes away, like `head -1` does
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("workflow run hung after its stdout pipe was closed") from None
        eid = first.split()[1]
        assert rows(tmp_path, "SELECT state, failed_task_id FROM executions") == [
            ("FAILED", "build")
        ]
        assert_well_recorded(tmp_path, eid)
