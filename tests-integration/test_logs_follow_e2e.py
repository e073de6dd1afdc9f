"""End to end: `workflow execution logs --follow` beside a real `workflow run`.

A real engine process runs a workflow whose plugin prints numbered lines (and terminal
escapes) over a couple of seconds; a real follower process starts as soon as the run prints
its execution id. The follower must print every entry exactly once and exit with the run's
outcome, and what it printed must equal a plain `logs` of the finished execution.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e import WORKFLOW

pytestmark = pytest.mark.integration

STARTED = re.compile(r"^Execution (\S+) started$")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

EMITTER = """
id: follow-e2e
tasks:
  - id: emit
    type: core/python.run
    inputs:
      script: |
        import sys, time
        for i in range(400):
            print(f"line {i}", flush=True)
            if i % 40 == 0:
                time.sleep(0.15)
        print("\\x1b[31mred\\x1b[0m \\u202eevil [bold]b[/bold]", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
  - id: after
    type: core/log.emit
    needs: [emit]
    inputs: {message: "all done"}
"""

FAILING = """
id: follow-e2e-fail
tasks:
  - id: emit
    type: core/python.run
    inputs:
      script: |
        import time
        for i in range(50):
            print(f"step {i}", flush=True)
            time.sleep(0.01)
        raise SystemExit(3)
"""


def env() -> dict[str, str]:
    """The environment without the developer's colour or database settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKESTRA")}
    clean.pop("NO_COLOR", None)
    return clean


def run_and_follow(
    tmp_path: Path, source: str, *follow_args: str
) -> tuple[subprocess.CompletedProcess[str], str, subprocess.CompletedProcess[str], Path]:
    """Start `workflow run`, follow its execution as soon as the id is printed.

    Returns the follower's result, the execution id, the run's result and the database.
    """
    db = tmp_path / "e2e.db"
    flow = tmp_path / "flow.yaml"
    flow.write_text(source)
    runner = subprocess.Popen(
        [WORKFLOW, "--db", str(db), "run", str(flow)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    assert runner.stdout is not None
    first = runner.stdout.readline().strip()
    match = STARTED.match(first)
    assert match, first
    execution_id = match.group(1)
    follower = subprocess.run(
        [WORKFLOW, "--db", str(db), "execution", "logs", execution_id, "--follow", *follow_args],
        capture_output=True, text=True, env=env(), timeout=120, check=False,
    )  # fmt: skip
    rest, err = runner.communicate(timeout=120)
    run_result = subprocess.CompletedProcess(runner.args, runner.returncode, first + rest, err)
    return follower, execution_id, run_result, db


def plain(db: Path, execution_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A plain (non-follow) `logs` run on the finished execution."""
    return subprocess.run(
        [WORKFLOW, "--db", str(db), "execution", "logs", execution_id, *args],
        capture_output=True, text=True, env=env(), timeout=60, check=False,
    )  # fmt: skip


class TestFollowAgainstTheEngine:
    def test_follow_text_equals_plain_text_of_the_finished_execution(self, tmp_path: Path) -> None:
        """Every plugin line arrives once, in order; the follow output equals a plain run."""
        follower, execution_id, run, db = run_and_follow(tmp_path, EMITTER)
        assert run.returncode == 0, run.stderr
        assert follower.returncode == 0, follower.stderr
        lines = [line for line in follower.stdout.splitlines() if " emit line " in line]
        assert [int(line.rsplit(" ", 1)[1]) for line in lines] == list(range(400))
        assert CONTROL.search(follower.stdout) is None
        assert "\\x1b[31mred\\x1b[0m \\u202eevil [bold]b[/bold]" in follower.stdout
        assert "all done" in follower.stdout
        again = plain(db, execution_id)
        assert again.returncode == 0
        assert follower.stdout == again.stdout

    def test_follow_jsonl_ends_with_the_state_and_exit_status(self, tmp_path: Path) -> None:
        """--jsonl --exit-status on a failing run: entries, the end record, exit 1."""
        follower, execution_id, run, db = run_and_follow(
            tmp_path, FAILING, "--jsonl", "--exit-status"
        )
        assert run.returncode == 1
        assert follower.returncode == 1, follower.stderr
        records: list[dict[str, Any]] = [json.loads(line) for line in follower.stdout.splitlines()]
        assert records[-1] == {"type": "end", "execution_id": execution_id, "state": "FAILED"}
        entries = records[:-1]
        steps = [r["message"] for r in entries if r["message"].startswith("step ")]
        assert steps == [f"step {i}" for i in range(50)]
        assert follower.stdout.isascii()
        finished = json.loads(plain(db, execution_id, "--json").stdout)
        assert entries == finished
