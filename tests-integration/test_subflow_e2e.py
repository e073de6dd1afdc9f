"""End to end: subflows started by the installed ``workflow`` program, with real plugin processes.

A registered child (``workflow apply``) runs as its own execution linked to its parent: its
outputs reach a downstream task, its failure fails the parent naming the child, and a cancel
of the parent cancels the running child and its plugin process.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from e2e import WORKFLOW, group_alive, rows, wait_for

from autokestra_obs_audit import verify_chain
from autokestra_obs_schema import open_reader

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"

FAILING_CHILD = """
id: failing-child
tasks:
  - {id: boom, type: core/shell.run, inputs: {command: "echo 'disk quota exceeded' >&2; exit 3"}}
"""
FAILING_PARENT = """
id: failing-parent
tasks:
  - {id: call, type: core/flow.subflow, inputs: {workflow: failing-child}}
  - {id: after, type: core/log.emit, needs: [call], inputs: {message: never}}
"""
SLOW_CHILD = """
id: slow-child
tasks:
  - {id: nap, type: core/shell.run, inputs: {command: "sleep 60"}}
"""
SLOW_PARENT = """
id: slow-parent
tasks:
  - {id: call, type: core/flow.subflow, inputs: {workflow: slow-child}}
"""


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `workflow --db <tmp>/ak.db ARGS` in tmp_path to its end."""
    return subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), *args],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "AUTOKESTRA_MAX_CONCURRENT_TASKS": "2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def started_id(result: subprocess.CompletedProcess[str]) -> str:
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "Execution" and first[2] == "started", result.stdout + result.stderr
    return first[1]


def children(tmp_path: Path, eid: str) -> list[tuple[str, str, str]]:
    """(child id, parent task, state) of the executions ``eid``'s subflows started."""
    return [
        (str(c), str(t), str(s))
        for c, t, s in rows(
            tmp_path,
            "SELECT execution_id, parent_task_id, state FROM executions"
            " WHERE parent_execution_id = ? ORDER BY created_at, execution_id",
            (eid,),
        )
    ]


def assert_chain_intact(tmp_path: Path, eid: str) -> None:
    conn = open_reader(tmp_path / "ak.db")
    try:
        assert verify_chain(conn, eid).ok
    finally:
        conn.close()


def test_example_passes_inputs_and_outputs_reach_downstream(tmp_path: Path) -> None:
    """The example's children get their inputs; report reads their outputs; links both ways."""
    applied = run_cli(tmp_path, "apply", str(EXAMPLES / "subflow-child.yaml"))
    assert applied.returncode == 0, applied.stderr
    result = run_cli(tmp_path, "run", str(EXAMPLES / "subflow.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    eid = started_id(result)
    kids = children(tmp_path, eid)
    assert sorted(task for _, task, _ in kids) == ["north", "others[0]", "others[1]"]
    assert {state for _, _, state in kids} == {"SUCCESS"}
    north = next(child for child, task, _ in kids if task == "north")
    [(report,)] = rows(
        tmp_path,
        "SELECT outputs FROM task_runs WHERE execution_id = ? AND task_id = 'report'",
        (eid,),
    )
    assert json.loads(report)["message"] == (f"north: 120 rows (execution {north}); south: 80 rows")
    # The child received its input and ran its own plugin process, logs and all.
    logs = run_cli(tmp_path, "execution", "logs", north, "--task", "extract")
    assert "extracted 120 rows from north" in logs.stdout

    listed = {
        e["execution_id"]: e
        for e in json.loads(run_cli(tmp_path, "execution", "list", "--json").stdout)
    }
    assert listed[north]["parent_execution_id"] == eid
    assert listed[north]["parent_task_id"] == "north"
    assert listed[north]["trigger_type"] == "subflow"
    assert listed[eid]["parent_execution_id"] is None
    table = run_cli(tmp_path, "execution", "list").stdout.splitlines()
    assert table[0].split()[-1] == "PARENT"
    assert next(line for line in table if line.startswith(north)).split()[-1] == eid

    parent = json.loads(run_cli(tmp_path, "execution", "inspect", eid, "--json").stdout)
    assert [c["execution_id"] for c in parent["execution"]["children"]] == [c for c, _, _ in kids]
    call = next(t for t in parent["tasks"] if t["task_id"] == "north")
    assert call["child_execution_ids"] == [north]
    assert call["outputs"]["tasks"]["extract"] == {"region": "north", "rows": 120}
    assert parent["audit_events"][-1]["metadata"]["subflow_execution_ids"]["north"] == north
    child = json.loads(run_cli(tmp_path, "execution", "inspect", north, "--json").stdout)
    assert child["execution"]["parent_execution_id"] == eid
    created = child["audit_events"][0]
    assert created["event_type"] == "CREATED"
    assert created["metadata"]["parent_execution_id"] == eid
    human = run_cli(tmp_path, "execution", "inspect", north).stdout
    assert f"Parent:       {eid} (task north)" in human
    human = run_cli(tmp_path, "execution", "inspect", eid).stdout
    assert f"Subflow:      {north} (subflow-child, task north, SUCCESS)" in human
    for execution_id in (eid, north):
        assert_chain_intact(tmp_path, execution_id)


def test_child_failure_fails_the_parent_naming_the_child(tmp_path: Path) -> None:
    """The failed child's id and error are in the task's error and the execution's reason."""
    assert run_cli(tmp_path, "apply", write(tmp_path, "c.yaml", FAILING_CHILD)).returncode == 0
    result = run_cli(tmp_path, "run", write(tmp_path, "p.yaml", FAILING_PARENT))
    assert result.returncode == 1
    eid = started_id(result)
    [(child, task, state)] = children(tmp_path, eid)
    assert (task, state) == ("call", "FAILED")
    expected = f"Task call failed: subflow {child} FAILED: Task boom failed"
    assert expected in result.stderr
    [(message, reason)] = rows(
        tmp_path, "SELECT message, reason_code FROM executions WHERE execution_id = ?", (eid,)
    )
    assert message.startswith(expected) and reason == "TASK_FAILED"
    states = dict(
        rows(
            tmp_path,
            "SELECT task_id, reason_code FROM task_runs WHERE execution_id = ?",
            (eid,),
        )
    )
    assert states == {"call": "SUBFLOW_FAILED", "after": "UPSTREAM_FAILED"}
    inspect = run_cli(tmp_path, "execution", "inspect", eid).stdout
    assert f"subflow {child} FAILED" in inspect
    # The child's own record has the plugin's stderr.
    detail = run_cli(tmp_path, "execution", "inspect", child, "--task", "boom").stdout
    assert "disk quota exceeded" in detail


def test_cancelling_the_parent_cancels_the_child(tmp_path: Path) -> None:
    """`execution cancel` of a running parent cancels its child and stops its plugin."""
    assert run_cli(tmp_path, "apply", write(tmp_path, "c.yaml", SLOW_CHILD)).returncode == 0
    proc = subprocess.Popen(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), "run", write(tmp_path, "p.yaml", SLOW_PARENT)],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        eid = proc.stdout.readline().split()[1]

        def child_pgid() -> int | None:
            kids = children(tmp_path, eid)
            if not kids:
                return None
            found = rows(
                tmp_path,
                "SELECT pgid FROM task_attempts WHERE execution_id = ? AND task_id = 'nap'",
                (kids[0][0],),
            )
            return int(found[0][0]) if found and found[0][0] is not None else None

        wait_for("the child's plugin process to run", lambda: child_pgid() is not None)
        pgid = child_pgid()
        assert pgid is not None and group_alive(pgid)
        cancel = run_cli(tmp_path, "execution", "cancel", eid, "--reason", "test")
        assert cancel.returncode == 0, cancel.stderr
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 1, stderr
    [(state,)] = rows(tmp_path, "SELECT state FROM executions WHERE execution_id = ?", (eid,))
    assert state == "CANCELLED"
    [(child, _, child_state)] = children(tmp_path, eid)
    assert child_state == "CANCELLED"
    [(by, reason)] = rows(
        tmp_path,
        "SELECT cancelled_by, cancel_reason FROM executions WHERE execution_id = ?",
        (child,),
    )
    assert by.startswith("user:")
    assert reason == f"parent execution {eid} cancelled: test"
    wait_for("the child's plugin process to end", lambda: not group_alive(pgid), timeout=10)
    for execution_id in (eid, child):
        assert_chain_intact(tmp_path, execution_id)
