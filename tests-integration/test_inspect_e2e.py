"""End to end: `workflow execution inspect` on executions produced by the real engine.

Real `workflow run` processes (success, failure with upstream cancellation, retries, workflow
timeout, user cancellation, a live execution, 120 tasks, a secret) write one database; every
mode of `inspect` is then checked on what the engine actually recorded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from e2e import WORKFLOW

from autokestra_obs_schema import open_reader, open_writer
from autokestra_obs_store import ExecutionInspector

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
SECRET = "inspect-e2e-s3cr3t-Vq7"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LANE = re.compile(r"^([* ]) (\S+)\s*  \|([#x\- ]+)\|  (\S.*)$")

TIMEOUT = """
id: too-slow
timeout: 1s
tasks:
  - {id: quick, type: core/log.emit, inputs: {message: quick}}
  - {id: slow, type: core/shell.run, needs: [quick], inputs: {command: "sleep 30"}}
  - {id: never, type: core/log.emit, needs: [slow], inputs: {message: never}}
"""

SLOW = """
id: slow
tasks:
  - {id: first, type: core/log.emit, inputs: {message: first}}
  - {id: sleeper, type: core/shell.run, needs: [first], inputs: {command: "sleep 60"}}
  - {id: after, type: core/log.emit, needs: [sleeper], inputs: {message: after}}
"""


def wide_workflow(count: int) -> str:
    """A layered DAG of `count` core/log.emit tasks, 10 per layer, each needing one above."""
    lines = ["id: wide", "tasks:"]
    for index in range(count):
        needs = f", needs: [t{index - 10:03d}]" if index >= 10 else ""
        lines.append(
            f"  - {{id: t{index:03d}, type: core/log.emit{needs}, "
            f"inputs: {{message: task {index}}}}}"
        )
    return "\n".join(lines) + "\n"


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "NO_COLOR": "1",
        "COLUMNS": "100",
        "AUTOKESTRA_MAX_CONCURRENT_TASKS": "2",
        "AUTOKESTRA_SECRET_API_TOKEN": SECRET,
    }


def cli(db: Path, *args: str, columns: int = 100) -> subprocess.CompletedProcess[str]:
    """Run `workflow --db DB ARGS` to its end."""
    return subprocess.run(
        [WORKFLOW, "--db", str(db), *args],
        cwd=db.parent,
        env={**_env(), "COLUMNS": str(columns)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run(db: Path, workflow: Path) -> str:
    """`workflow run` a file to its end; return the execution id from the first line."""
    result = cli(db, "run", str(workflow))
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "Execution" and first[2] == "started", result.stdout + result.stderr
    return first[1]


def start(db: Path, workflow: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `workflow run` in the background; return the process and the execution id."""
    proc = subprocess.Popen(
        [WORKFLOW, "--db", str(db), "run", str(workflow)],
        cwd=db.parent,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    assert first[0] == "Execution" and first[2] == "started"
    return proc, first[1]


def wait_for_running(db: Path, eid: str, task_id: str) -> None:
    """Wait until the task's first attempt has started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conn = open_reader(db)
        try:
            rows = conn.execute(
                "SELECT 1 FROM task_attempts WHERE execution_id = ? AND task_id = ?"
                " AND started_at IS NOT NULL",
                (eid, task_id),
            ).fetchall()
        finally:
            conn.close()
        if rows:
            time.sleep(0.3)
            return
        time.sleep(0.05)
    raise AssertionError(f"{task_id} never started")


def lanes(text: str) -> dict[str, tuple[bool, str, str]]:
    """task id -> (critical, bar, duration) of a --timeline output."""
    found = {}
    for line in text.splitlines():
        match = LANE.match(line)
        if match:
            found[match.group(2)] = (match.group(1) == "*", match.group(3), match.group(4))
    return found


def hashes(bar: str) -> set[int]:
    return {i for i, c in enumerate(bar) if c in "#x"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """One database with every kind of execution, produced by the real engine."""
    folder = tmp_path_factory.mktemp("inspect-e2e")
    db = folder / "ak.db"
    (folder / "timeout.yaml").write_text(TIMEOUT)
    (folder / "slow.yaml").write_text(SLOW)
    (folder / "wide.yaml").write_text(wide_workflow(120))
    ids = {
        "success": run(db, EXAMPLES / "fan-out-fan-in.yaml"),
        "failure": run(db, EXAMPLES / "failing-pipeline.yaml"),
        "retry": run(db, EXAMPLES / "flaky-retry.yaml"),
        "secret": run(db, EXAMPLES / "secret.yaml"),
        "timeout": run(db, folder / "timeout.yaml"),
        "wide": run(db, folder / "wide.yaml"),
    }
    proc, eid = start(db, folder / "slow.yaml")
    wait_for_running(db, eid, "sleeper")
    cancel = cli(db, "execution", "cancel", eid, "--reason", "inspect e2e")
    assert cancel.returncode == 0, cancel.stderr
    proc.communicate(timeout=60)
    ids["cancelled"] = eid
    yield db, ids


class TestOverviewAndTable:
    def test_success(self, runs: tuple[Path, dict[str, str]]) -> None:
        """A finished SUCCESS execution: overview, every task SUCCESS, outputs shown."""
        db, ids = runs
        out = cli(db, "execution", "inspect", ids["success"]).stdout
        assert f"Execution {ids['success']}" in out
        assert "Workflow:     fan-out-fan-in" in out
        assert "State:        SUCCESS" in out
        assert "Trigger:      manual" in out
        rows = [line.split() for line in out.splitlines() if line.startswith(("prepare", "ext"))]
        assert len(rows) == 5
        assert all(row[2] == "SUCCESS" for row in rows)
        assert "region: north" in out

    def test_failure_with_upstream_cancellation(self, runs: tuple[Path, dict[str, str]]) -> None:
        """The failed task, its error with the stderr tail, and cancelled dependants."""
        db, ids = runs
        result = cli(db, "execution", "inspect", ids["failure"])
        assert result.returncode == 0
        out = result.stdout
        assert "Failed task:  build" in out
        states = {
            line.split()[0]: line.split()[2]
            for line in out.splitlines()
            if line.split() and line.split()[0] in {"checkout", "lint", "build", "test", "deploy"}
            and len(line.split()) > 3
        }  # fmt: skip
        assert states == {
            "checkout": "SUCCESS",
            "lint": "SUCCESS",
            "build": "FAILED",
            "test": "CANCELLED",
            "deploy": "CANCELLED",
        }
        assert "undefined symbol 'frobnicate'" in out
        detail = cli(db, "execution", "inspect", ids["failure"], "--task", "deploy").stdout
        assert "Needs:        test (CANCELLED)" in detail
        assert "UPSTREAM_FAILED" in detail

    def test_timeout(self, runs: tuple[Path, dict[str, str]]) -> None:
        """A workflow timeout: FAILED with reason TIMEOUT, a TIMEOUT terminal event."""
        db, ids = runs
        out = cli(db, "execution", "inspect", ids["timeout"]).stdout
        assert "State:        FAILED (TIMEOUT)" in out
        audit = cli(db, "execution", "inspect", ids["timeout"], "--audit").stdout
        assert re.search(r"  TIMEOUT\s+.*timeout_ms=1000", audit)

    def test_cancelled(self, runs: tuple[Path, dict[str, str]]) -> None:
        """A cancelled execution names who cancelled it; the running task ended CANCELLED."""
        db, ids = runs
        out = cli(db, "execution", "inspect", ids["cancelled"]).stdout
        assert "State:        CANCELLED" in out
        assert re.search(r"Cancelled by: user:\S+: inspect e2e", out)
        sleeper = next(line for line in out.splitlines() if line.startswith("sleeper "))
        assert "CANCELLED" in sleeper

    def test_summary_of_120_tasks(self, runs: tuple[Path, dict[str, str]]) -> None:
        """120 tasks: per-state summary and the --task hint instead of 120 rows."""
        db, ids = runs
        out = cli(db, "execution", "inspect", ids["wide"]).stdout
        assert "Tasks: 120 (SUCCESS 120)" in out
        assert "use --task ID" in out
        assert not [line for line in out.splitlines() if line.startswith("t0")]


class TestLive:
    def test_running_execution(self, tmp_path: Path) -> None:
        """While the engine runs: 'Execution in progress', RUNNING with elapsed time, a bar
        reaching now; after cancellation the same execution reads as finished."""
        db = tmp_path / "ak.db"
        (tmp_path / "slow.yaml").write_text(SLOW)
        proc, eid = start(db, tmp_path / "slow.yaml")
        try:
            wait_for_running(db, eid, "sleeper")
            out = cli(db, "execution", "inspect", eid).stdout
            assert "Execution in progress" in out
            sleeper = next(line for line in out.splitlines() if line.startswith("sleeper "))
            assert "RUNNING" in sleeper and "elapsed" in sleeper
            after = next(line for line in out.splitlines() if line.startswith("after "))
            assert "PENDING" in after
            timeline = lanes(cli(db, "execution", "inspect", eid, "--timeline").stdout)
            assert timeline["sleeper"][1].endswith("#")
            document = json.loads(cli(db, "execution", "inspect", eid, "--json").stdout)
            assert document["execution"]["in_progress"] is True
        finally:
            cli(db, "execution", "cancel", eid)
            proc.communicate(timeout=60)
        out = cli(db, "execution", "inspect", eid).stdout
        assert "Execution in progress" not in out
        assert cli(db, "execution", "inspect", eid, "--verify").returncode == 0


class TestTimeline:
    @pytest.mark.parametrize("columns", [80, 200])
    def test_parallel_tasks_overlap(self, runs: tuple[Path, dict[str, str]], columns: int) -> None:
        """The four extracts ran two at a time: their bars overlap pairwise; fits the width."""
        db, ids = runs
        text = cli(db, "execution", "inspect", ids["success"], "--timeline", columns=columns)
        assert max(len(line) for line in text.stdout.splitlines()) <= columns
        found = lanes(text.stdout)
        north, south = hashes(found["extract-north"][1]), hashes(found["extract-south"][1])
        east, west = hashes(found["extract-east"][1]), hashes(found["extract-west"][1])
        assert north & south
        assert east & west
        merge = hashes(found["merge"][1])
        assert min(merge) >= max(north | south) - 1
        assert found["merge"][0]  # the last task is on the critical path

    def test_retry_in_a_lane(self, runs: tuple[Path, dict[str, str]]) -> None:
        """The flaky task's lane shows the failed attempt, the backoff, then the retry."""
        db, ids = runs
        found = lanes(cli(db, "execution", "inspect", ids["retry"], "--timeline").stdout)
        assert re.search(r"#*x-+#+", found["call-api"][1]), found["call-api"][1]

    def test_120_lanes(self, runs: tuple[Path, dict[str, str]]) -> None:
        """The 120-task timeline draws 120 lanes at 80 columns."""
        db, ids = runs
        text = cli(db, "execution", "inspect", ids["wide"], "--timeline", columns=80).stdout
        assert len(lanes(text)) == 120
        assert max(len(line) for line in text.splitlines()) <= 80


class TestTaskAndAudit:
    def test_task_attempts(self, runs: tuple[Path, dict[str, str]]) -> None:
        """--task of the retried task lists both attempts with state and exit code."""
        db, ids = runs
        out = cli(db, "execution", "inspect", ids["retry"], "--task", "call-api").stdout
        attempts = [line.split() for line in out.splitlines() if re.match(r"^    \d ", line)]
        assert [row[1] for row in attempts] == ["FAILED", "SUCCESS"]
        assert "Attempts:     2" in out

    def test_audit_state_changes(self, runs: tuple[Path, dict[str, str]]) -> None:
        """--audit shows CREATED first, the terminal event last, transitions as from -> to."""
        db, ids = runs
        out = cli(db, "execution", "inspect", ids["failure"], "--audit").stdout
        events = [line.split()[2] for line in out.splitlines() if line.startswith("  #")]
        assert events[0] == "CREATED"
        assert events[-1] == "FAILED"
        assert "RUNNING -> FAILED" in out


class TestJsonAndSecrets:
    def test_json_document(self, runs: tuple[Path, dict[str, str]]) -> None:
        """--json: one ASCII object; every timestamp ISO-8601; attempts and I/O included."""
        db, ids = runs
        text = cli(db, "execution", "inspect", ids["retry"], "--json").stdout
        assert text.isascii()
        document = json.loads(text)
        assert set(document) == {"execution", "tasks", "audit_events", "timeline"}

        def timestamps(value: Any) -> Iterator[Any]:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key.endswith("_at") or key in {"timestamp", "origin"}:
                        yield item
                    else:
                        yield from timestamps(item)
            elif isinstance(value, list):
                for item in value:
                    yield from timestamps(item)

        stamps = [s for s in timestamps(document) if s is not None]
        assert stamps
        assert all(isinstance(s, str) and ISO.match(s) for s in stamps)
        call_api = document["tasks"][0]
        assert len(call_api["attempts"]) == 2
        assert call_api["outputs"] == {"exit_code": 0}

    @pytest.mark.parametrize(
        "args",
        [[], ["--show-inputs"], ["--json"], ["--timeline"], ["--audit"], ["--task", "confirm"]],
    )
    def test_no_secret_anywhere(self, runs: tuple[Path, dict[str, str]], args: list[str]) -> None:
        """No inspect mode prints the secret; inputs show it masked."""
        db, ids = runs
        result = cli(db, "execution", "inspect", ids["secret"], "--no-truncate", *args)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
        if args == ["--show-inputs"]:
            assert "***SECRET***" in result.stdout


class TestVerifyAndQueries:
    def test_every_real_trail_verifies(self, runs: tuple[Path, dict[str, str]]) -> None:
        """The engine's audit trails pass --verify."""
        db, ids = runs
        for name, eid in ids.items():
            result = cli(db, "execution", "inspect", eid, "--verify")
            assert result.returncode == 0, (name, result.stderr)

    def test_audit_verify_all(self, runs: tuple[Path, dict[str, str]]) -> None:
        """`workflow audit verify --all` passes every trail the engine wrote."""
        db, ids = runs
        result = cli(db, "audit", "verify", "--all")
        assert result.returncode == 0, result.stdout + result.stderr
        *verdicts, status = result.stdout.splitlines()
        assert {line.split()[1] for line in verdicts} == set(ids.values())
        # The engine keyed every event with the audit.key it created (DESIGN.md §6.8).
        assert status == "keyed: content authenticated with the audit key"

    def test_tampered_real_trail(self, runs: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
        """An engine-written audit row edited with the triggers dropped fails --verify."""
        db, ids = runs
        copy = tmp_path / "copy.db"
        source = open_reader(db)
        try:
            with apsw.Connection(str(copy)) as target, target.backup("main", source, "main") as b:
                b.step()
        finally:
            source.close()
        writer = open_writer(copy)
        with writer.transaction() as conn:
            conn.execute("DROP TRIGGER audit_events_no_update")
            conn.execute(
                "UPDATE execution_audit_events SET timestamp = timestamp + 1"
                " WHERE execution_id = ? AND event_type = 'CREATED'",
                (ids["success"],),
            )
        writer.close()
        result = cli(copy, "execution", "inspect", ids["success"], "--verify")
        assert result.returncode == 1
        assert "(CREATED) was modified" in result.stderr

    def test_query_count_same_for_small_and_120(self, runs: tuple[Path, dict[str, str]]) -> None:
        """The inspector runs as many statements for the 120-task execution as for 3 tasks."""
        db, ids = runs
        conn = open_reader(db)
        inspector = ExecutionInspector(conn)
        counts = []
        for eid in (ids["failure"], ids["wide"]):
            statements: list[str] = []

            def trace(
                cursor: apsw.Cursor, sql: str, bindings: Any, sink: list[str] = statements
            ) -> bool:
                sink.append(sql)
                return True

            conn.exec_trace = trace
            snapshot = inspector.snapshot(eid)
            conn.exec_trace = None
            counts.append(len(statements))
            assert snapshot.tasks
        conn.close()
        assert counts[0] == counts[1]
