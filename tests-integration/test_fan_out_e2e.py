"""End to end: ``for_each`` fan-out over a run-time list, with real plugin processes.

A 100-item list from an upstream output, concurrency 4 (overlap checked from the stored
attempt times), every iteration's logs and outputs, a failing iteration retried; an empty
list; and ``inspect``'s query count independent of the iteration count.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import apsw
import pytest
from e2e import WORKFLOW, group_alive, rows, wait_for

from autokestra_obs_schema import open_reader
from autokestra_obs_store import ExecutionInspector

pytestmark = pytest.mark.integration

FAN_OUT = """
id: fan-out
inputs: {count: {type: integer, default: 100}}
tasks:
  - id: list
    type: core/python.run
    inputs:
      args: ["{{ inputs.count }}"]
      script: |
        import json, os, sys
        items = [{"name": f"file-{i}", "size": i * 10} for i in range(int(sys.argv[1]))]
        with open(os.environ["AUTOKESTRA_OUTPUTS"], "w") as out:
            json.dump({"items": items}, out)
  - id: process
    type: core/python.run
    needs: [list]
    for_each: "{{ tasks.list.outputs.items }}"
    concurrency: 4
    retry: {max: 1, backoff: {delay: 100ms}}
    inputs:
      args: ["{{ item.name }}", "{{ index }}", "{{ item.size }}"]
      script: |
        import json, os, sys, time
        name, index, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        marker = os.path.join(os.environ["AUTOKESTRA_WORKDIR"], f"failed-{index}")
        if index == 7 and not os.path.exists(marker):
            open(marker, "w").close()
            sys.exit(f"transient failure on {name}")
        time.sleep(0.05)
        print(f"processed {name}")
        with open(os.environ["AUTOKESTRA_OUTPUTS"], "w") as out:
            json.dump({"name": name, "double": size * 2}, out)
  - id: total
    type: core/log.emit
    needs: [process]
    inputs:
      message: "{{ tasks.process.outputs.count }} files: {{ tasks.process.outputs.results }}"
"""


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), *args],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "AUTOKESTRA_MAX_CONCURRENT_TASKS": "6"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_fan_out(tmp_path: Path, count: int) -> str:
    path = tmp_path / "fan-out.yaml"
    path.write_text(FAN_OUT)
    result = run_cli(tmp_path, "run", str(path), "--input", f"count={count}")
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "Execution" and first[2] == "started"
    return first[1]


def max_overlap(intervals: list[tuple[int, int]]) -> int:
    """The largest number of intervals open at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_hundred_items_with_concurrency_four(tmp_path: Path) -> None:
    """Each of 100 items runs as its own task run, at most 4 at once (and more than one),
    with its logs and outputs; iteration 7 fails once and is retried; downstream gets the
    collected list."""
    eid = run_fan_out(tmp_path, 100)
    runs = {
        task_id: (state, attempts, outputs)
        for task_id, state, attempts, outputs in rows(
            tmp_path,
            "SELECT task_id, state, attempt_count, outputs FROM task_runs"
            " WHERE execution_id = ? AND task_id LIKE 'process[%'",
            (eid,),
        )
    }
    assert len(runs) == 100
    for index in range(100):
        state, attempts, outputs = runs[f"process[{index}]"]
        assert state == "SUCCESS"
        assert attempts == (2 if index == 7 else 1)
        assert json.loads(outputs) == {"name": f"file-{index}", "double": index * 20}
    intervals = [
        (start, end)
        for start, end in rows(
            tmp_path,
            "SELECT started_at, ended_at FROM task_attempts"
            " WHERE execution_id = ? AND task_id LIKE 'process[%'",
            (eid,),
        )
    ]
    assert 1 < max_overlap(intervals) <= 4
    [(retry_reason,)] = rows(
        tmp_path,
        "SELECT reason FROM task_attempts WHERE task_id = 'process[7]' AND attempt = 1",
    )
    assert retry_reason == "PLUGIN_ERROR"
    logged = rows(
        tmp_path,
        "SELECT task_id, message FROM execution_logs WHERE execution_id = ?"
        " AND message LIKE 'processed file-%'",
        (eid,),
    )
    assert sorted(logged) == sorted((f"process[{i}]", f"processed file-{i}") for i in range(100))
    [(state, outputs)] = rows(
        tmp_path, "SELECT state, outputs FROM task_runs WHERE task_id = 'process'"
    )
    collected = json.loads(outputs)
    assert state == "SUCCESS" and collected["count"] == 100
    assert collected["results"][42] == {"name": "file-42", "double": 840}
    total = rows(
        tmp_path,
        "SELECT message FROM execution_logs WHERE task_id = 'total' AND source LIKE 'plugin:%'",
    )
    [(message,)] = total
    assert message.startswith("100 files: ")
    assert json.loads(message.removeprefix("100 files: ")) == collected["results"]

    one = run_cli(tmp_path, "execution", "logs", eid, "--task", "process[7]")
    assert one.returncode == 0, one.stderr
    assert "transient failure on file-7" in one.stdout and "processed file-7" in one.stdout
    assert "file-8" not in one.stdout
    family = run_cli(tmp_path, "execution", "logs", eid, "--task", "process", "--json")
    assert family.returncode == 0, family.stderr
    records = json.loads(family.stdout)
    assert {r["task_id"] for r in records} == {"process", *(f"process[{i}]" for i in range(100))}
    processed = [r["message"] for r in records if r["message"].startswith("processed ")]
    assert sorted(processed) == sorted(f"processed file-{i}" for i in range(100))
    assert [(r["timestamp"], r["id"]) for r in records] == sorted(
        (r["timestamp"], r["id"]) for r in records
    )
    followed = run_cli(
        tmp_path, "execution", "logs", eid, "--task", "process", "--follow", "--jsonl"
    )
    assert followed.returncode == 0, followed.stderr
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert [line["id"] for line in lines[:-1]] == [r["id"] for r in records]
    assert lines[-1] == {"type": "end", "execution_id": eid, "state": "SUCCESS"}
    detail = run_cli(tmp_path, "execution", "inspect", eid, "--task", "process[7]")
    assert detail.returncode == 0, detail.stderr
    assert "Attempts:     2" in detail.stdout
    document = json.loads(run_cli(tmp_path, "execution", "inspect", eid, "--json").stdout)
    timeline = run_cli(tmp_path, "execution", "inspect", eid, "--timeline")
    assert timeline.returncode == 0, timeline.stderr
    lanes = [line for line in timeline.stdout.splitlines() if "process[" in line]
    assert len(lanes) == 11  # ten iteration lanes, then one summary line for the rest
    assert lanes[-1].startswith("  ... process[10..99]: 90 more iterations (90 SUCCESS)")
    ids = [task["task_id"] for task in document["tasks"]]
    assert ids[:4] == ["list", "process", "process[0]", "process[1]"]
    assert ids.index("process[10]") == ids.index("process[9]") + 1


def test_following_a_for_each_task_from_before_it_starts(tmp_path: Path) -> None:
    """logs --task process --follow, started while `list` runs, prints every iteration's
    lines as they come, then the end record."""
    path = tmp_path / "fan-out.yaml"
    path.write_text(
        FAN_OUT.replace("items = [", "time.sleep(1); items = [").replace(
            "import json, os, sys\n", "import json, os, sys, time\n", 1
        )
    )
    proc = subprocess.Popen(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), "run", str(path), "--input", "count=12"],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        eid = proc.stdout.readline().split()[1]
        follow_began_ms = int(time.time() * 1000)
        followed = run_cli(
            tmp_path, "execution", "logs", eid, "--task", "process", "--follow", "--jsonl"
        )
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 0
    assert followed.returncode == 0, followed.stderr
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert lines[-1] == {"type": "end", "execution_id": eid, "state": "SUCCESS"}
    processed = sorted(r["message"] for r in lines[:-1] if r["message"].startswith("processed"))
    assert processed == sorted(f"processed file-{i}" for i in range(12))
    [(started,)] = rows(tmp_path, "SELECT started_at FROM task_runs WHERE task_id = 'process'")
    # The follower began before the fan-out did: it really followed, not re-read the end.
    assert started > follow_began_ms


def queries_of_inspect(db: Path, eid: str) -> int:
    """How many SQL statements one full inspect snapshot runs."""
    conn = open_reader(db)
    count = 0

    def trace(_cursor: apsw.Cursor, _sql: str, _bindings: object) -> bool:
        nonlocal count
        count += 1
        return True

    try:
        conn.exec_trace = trace
        ExecutionInspector(conn).snapshot(eid)
    finally:
        conn.close()
    return count


def test_inspect_query_count_does_not_grow_with_iterations(tmp_path: Path) -> None:
    """inspect reads a 3-iteration and a 60-iteration execution with as many queries."""
    small = run_fan_out(tmp_path, 3)
    large = run_fan_out(tmp_path, 60)
    assert queries_of_inspect(tmp_path / "ak.db", small) == queries_of_inspect(
        tmp_path / "ak.db", large
    )


def test_empty_list_succeeds_with_no_results(tmp_path: Path) -> None:
    """for_each over [] runs nothing: the task succeeds with count 0, downstream runs."""
    eid = run_fan_out(tmp_path, 0)
    states = dict(
        rows(tmp_path, "SELECT task_id, state FROM task_runs WHERE execution_id = ?", (eid,))
    )
    assert states == {"list": "SUCCESS", "process": "SUCCESS", "total": "SUCCESS"}
    [(outputs,)] = rows(tmp_path, "SELECT outputs FROM task_runs WHERE task_id = 'process'")
    assert json.loads(outputs) == {"results": [], "count": 0}


BROKEN = """
id: broken-fan-out
tasks:
  - id: process
    type: core/python.run
    for_each: [0, 1, 2, 3, 4, 5]
    concurrency: 2
    retry: {max: 1, backoff: {delay: 100ms}}
    inputs:
      args: ["{{ item }}"]
      script: |
        import sys
        if sys.argv[1] == "2":
            sys.exit("item 2 is corrupt")
        print("ok", sys.argv[1])
  - {id: total, type: core/log.emit, needs: [process], inputs: {message: never}}
"""


def test_an_iteration_that_keeps_failing_fails_its_task_only(tmp_path: Path) -> None:
    """Iteration 2 fails both attempts: the others still succeed, process ends FAILED
    (ITERATION_FAILED, failed_indexes [2]), its dependant is cancelled; inspect --task
    counts the iterations by state; the audit trail verifies."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = run_cli(tmp_path, "run", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    eid = result.stdout.splitlines()[0].split()[1]
    states = dict(
        rows(
            tmp_path,
            "SELECT task_id, state || '/' || ifnull(reason_code, '') || '/' || attempt_count"
            " FROM task_runs WHERE execution_id = ?",
            (eid,),
        )
    )
    assert states == {
        "process": "FAILED/ITERATION_FAILED/0",
        "total": "CANCELLED/UPSTREAM_FAILED/0",
        **{f"process[{i}]": "SUCCESS//1" for i in (0, 1, 3, 4, 5)},
        "process[2]": "FAILED/PLUGIN_ERROR/2",
    }
    [(error,)] = rows(tmp_path, "SELECT error FROM task_runs WHERE task_id = 'process'")
    assert json.loads(error)["failed_indexes"] == [2]
    shown = run_cli(tmp_path, "execution", "inspect", eid, "--task", "process")
    assert shown.returncode == 0, shown.stderr
    assert "Iterations: 6 (SUCCESS 5, FAILED 1)" in shown.stdout
    failed_logs = run_cli(tmp_path, "execution", "logs", eid, "--task", "process[2]")
    assert failed_logs.stdout.count("item 2 is corrupt") == 2  # both attempts
    assert run_cli(tmp_path, "execution", "inspect", eid, "--verify").returncode == 0


SLOW = """
id: slow-fan-out
tasks:
  - id: process
    type: core/shell.run
    for_each: [0, 1, 2, 3, 4, 5, 6, 7]
    concurrency: 2
    inputs: {command: "echo started {{ item }}; sleep 300"}
"""


def test_cancelling_a_fan_out_stops_running_and_unstarted_iterations(tmp_path: Path) -> None:
    """A cancel ends the two running iterations and the six never started CANCELLED, then
    the for_each task and the execution; no iteration process is left behind."""
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    proc = subprocess.Popen(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), "run", str(path)],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        eid = proc.stdout.readline().split()[1]

        def two_running() -> bool:
            running = rows(
                tmp_path,
                "SELECT count(*) FROM task_runs WHERE execution_id = ? AND state = 'RUNNING'"
                " AND task_id LIKE 'process[%'",
                (eid,),
            )
            return running == [(2,)]

        wait_for("two iterations to run", two_running)
        cancel = run_cli(tmp_path, "execution", "cancel", eid, "--reason", "test")
        assert cancel.returncode == 0, cancel.stderr
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    states = dict(
        rows(
            tmp_path,
            "SELECT task_id, state FROM task_runs WHERE execution_id = ?",
            (eid,),
        )
    )
    assert states == {"process": "CANCELLED", **{f"process[{i}]": "CANCELLED" for i in range(8)}}
    [(started,)] = rows(
        tmp_path,
        "SELECT count(*) FROM task_attempts WHERE execution_id = ? AND task_id LIKE 'process[%'",
        (eid,),
    )
    assert started == 2
    pgids = [pgid for (pgid,) in rows(tmp_path, "SELECT pgid FROM task_attempts")]
    assert pgids and not any(group_alive(pgid) for pgid in pgids if pgid)
    [(state,)] = rows(tmp_path, "SELECT state FROM executions WHERE execution_id = ?", (eid,))
    assert state == "CANCELLED"
    assert run_cli(tmp_path, "execution", "inspect", eid, "--verify").returncode == 0
