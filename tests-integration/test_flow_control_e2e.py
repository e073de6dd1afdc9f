"""End to end: literal braces, conditions, trigger rules, allow_failure and on_failure.

Each test runs the installed ``workflow`` program on a real workflow file (the examples where
they fit), with real plugin processes, and checks the database and the CLI's views of it.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from e2e import WORKFLOW, rows, wait_for

from autokestra_obs_audit import verify_chain
from autokestra_obs_schema import open_reader

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"


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


def started_id(result: subprocess.CompletedProcess[str]) -> str:
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "Execution" and first[2] == "started", result.stdout + result.stderr
    return first[1]


def task_states(tmp_path: Path, eid: str) -> dict[str, tuple[str, str | None]]:
    return {
        task_id: (state, reason)
        for task_id, state, reason in rows(
            tmp_path,
            "SELECT task_id, state, reason_code FROM task_runs WHERE execution_id = ?",
            (eid,),
        )
    }


def messages(tmp_path: Path, eid: str, task_id: str) -> list[str]:
    return [
        m
        for (m,) in rows(
            tmp_path,
            "SELECT message FROM execution_logs WHERE execution_id = ? AND task_id = ? ORDER BY id",
            (eid, task_id),
        )
    ]


def assert_chain_intact(tmp_path: Path, eid: str) -> None:
    conn = open_reader(tmp_path / "ak.db")
    try:
        assert verify_chain(conn, eid).ok
    finally:
        conn.close()


def test_literal_braces_reach_the_command(tmp_path: Path) -> None:
    """{{ '{{' }} in an input gives a literal {{ to the plugin process."""
    result = run_cli(tmp_path, "run", str(EXAMPLES / "literal-braces.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    eid = started_id(result)
    assert "format: {{.State}} {{.Names}}" in messages(tmp_path, eid, "docker-format")


def test_conditions_true_and_false_and_skipped_propagation(tmp_path: Path) -> None:
    """A true condition runs, a false one skips; all_success dependants of a skipped task
    are skipped, none_failed ones run; the CLI shows SKIPPED with its reason."""
    result = run_cli(tmp_path, "run", str(EXAMPLES / "conditions.yaml"), "--input", "env=prod")
    assert result.returncode == 0, result.stdout + result.stderr
    eid = started_id(result)
    assert task_states(tmp_path, eid) == {
        "count": ("SUCCESS", None),
        "process": ("SUCCESS", None),
        "nothing-to-do": ("SKIPPED", "CONDITION_FALSE"),
        "archive": ("SKIPPED", "UPSTREAM_SKIPPED"),
        "report": ("SUCCESS", None),
    }
    assert messages(tmp_path, eid, "nothing-to-do") == [
        "Task nothing-to-do skipped: condition is false: tasks.count.outputs.count == 0"
    ]
    assert "processing 3 files" in messages(tmp_path, eid, "process")
    assert rows(tmp_path, "SELECT count(*) FROM task_attempts WHERE task_id = 'archive'") == [(0,)]
    shown = run_cli(tmp_path, "execution", "inspect", eid)
    assert shown.returncode == 0, shown.stderr
    assert "SKIPPED" in shown.stdout and "CONDITION_FALSE" in shown.stdout
    document = json.loads(run_cli(tmp_path, "execution", "inspect", eid, "--json").stdout)
    by_id = {task["task_id"]: task for task in document["tasks"]}
    assert by_id["archive"]["state"] == "SKIPPED"
    assert by_id["archive"]["reason_code"] == "UPSTREAM_SKIPPED"
    assert_chain_intact(tmp_path, eid)

    # The same file the other way: env=staging makes report's condition false.
    again = run_cli(tmp_path, "run", str(EXAMPLES / "conditions.yaml"), "--input", "env=qa")
    assert again.returncode == 0, again.stdout + again.stderr
    assert task_states(tmp_path, started_id(again))["report"] == ("SKIPPED", "CONDITION_FALSE")


RULES = """
id: rules
tasks:
  - id: gate
    type: core/log.emit
    if: "1 == 2"
    inputs: {message: never}
  - {id: strict, type: core/log.emit, needs: [gate], inputs: {message: never}}
  - {id: after-strict, type: core/log.emit, needs: [strict], inputs: {message: never}}
  - {id: tolerant, type: core/log.emit, needs: [gate], run_if: none_failed,
     inputs: {message: "tolerant ran"}}
  - {id: always, type: core/log.emit, needs: [strict], run_if: always,
     inputs: {message: "always ran"}}
  - {id: on-failure-only, type: core/log.emit, needs: [tolerant], run_if: any_failed,
     inputs: {message: never}}
"""


def test_skipped_propagation_rules_are_audited_and_verify(tmp_path: Path) -> None:
    """A false condition skips its task; all_success dependants are skipped in a chain,
    none_failed and always ones run, any_failed with nothing failed is skipped; every skip
    is a task STATE_CHANGE in the audit trail, which --verify accepts; the execution
    succeeds."""
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    result = run_cli(tmp_path, "run", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    eid = started_id(result)
    assert task_states(tmp_path, eid) == {
        "gate": ("SKIPPED", "CONDITION_FALSE"),
        "strict": ("SKIPPED", "UPSTREAM_SKIPPED"),
        "after-strict": ("SKIPPED", "UPSTREAM_SKIPPED"),
        "tolerant": ("SUCCESS", None),
        "always": ("SUCCESS", None),
        "on-failure-only": ("SKIPPED", "TRIGGER_RULE_UNMET"),
    }
    assert "tolerant ran" in messages(tmp_path, eid, "tolerant")
    assert "always ran" in messages(tmp_path, eid, "always")
    audited = [
        json.loads(meta)
        for (meta,) in rows(
            tmp_path,
            "SELECT metadata FROM execution_audit_events WHERE execution_id = ?"
            " AND event_type = 'STATE_CHANGE' ORDER BY id",
            (eid,),
        )
    ]
    skips = {
        m["task_id"]: (m["from_state"], m["to_state"], m["reason"])
        for m in audited
        if "task_id" in m
    }
    assert skips == {
        "gate": ("PENDING", "SKIPPED", "CONDITION_FALSE"),
        "strict": ("PENDING", "SKIPPED", "UPSTREAM_SKIPPED"),
        "after-strict": ("PENDING", "SKIPPED", "UPSTREAM_SKIPPED"),
        "on-failure-only": ("PENDING", "SKIPPED", "TRIGGER_RULE_UNMET"),
    }
    # Each skip committed with its task row: the event's time is the row's end.
    for task_id in skips:
        [(ended_at,)] = rows(
            tmp_path,
            "SELECT ended_at FROM task_runs WHERE execution_id = ? AND task_id = ?",
            (eid, task_id),
        )
        [(at,)] = rows(
            tmp_path,
            "SELECT timestamp FROM execution_audit_events WHERE execution_id = ?"
            " AND json_extract(metadata, '$.task_id') = ?",
            (eid, task_id),
        )
        assert at == ended_at
    verify = run_cli(tmp_path, "execution", "inspect", eid, "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verified" in verify.stdout and "keyed: content authenticated" in verify.stdout
    sweep = run_cli(tmp_path, "audit", "verify", "--all")
    assert sweep.returncode == 0 and f"OK      {eid}" in sweep.stdout, sweep.stdout + sweep.stderr
    audit = run_cli(tmp_path, "execution", "inspect", eid, "--audit")
    assert audit.returncode == 0, audit.stderr
    assert "task gate: PENDING -> SKIPPED  reason=CONDITION_FALSE" in audit.stdout
    assert "task on-failure-only: PENDING -> SKIPPED  reason=TRIGGER_RULE_UNMET" in audit.stdout
    [(state,)] = rows(tmp_path, "SELECT state FROM executions WHERE execution_id = ?", (eid,))
    assert state == "SUCCESS"


def test_failure_runs_rollback_cleanup_and_the_failure_handler(tmp_path: Path) -> None:
    """allow_failure goes on; a real failure cancels its all_success dependants, runs the
    any_failed and always tasks, then the on_failure handler once; the execution FAILED."""
    result = run_cli(tmp_path, "run", str(EXAMPLES / "cleanup-on-failure.yaml"))
    assert result.returncode == 1, result.stdout + result.stderr
    eid = started_id(result)
    assert task_states(tmp_path, eid) == {
        "flaky-probe": ("FAILED", "PLUGIN_ERROR"),
        "migrate": ("FAILED", "PLUGIN_ERROR"),
        "deploy": ("CANCELLED", "UPSTREAM_FAILED"),
        "rollback": ("SUCCESS", None),
        "cleanup": ("SUCCESS", None),
        "alert": ("SUCCESS", None),
    }
    [(state, reason, failed_task)] = rows(
        tmp_path,
        "SELECT state, reason_code, failed_task_id FROM executions WHERE execution_id = ?",
        (eid,),
    )
    assert (state, reason, failed_task) == ("FAILED", "TASK_FAILED", "migrate")
    assert f"execution {eid} failed (migrate: OPS-17)" in messages(tmp_path, eid, "alert")
    # The handler ran after every other task ended.
    [(handler_start,)] = rows(
        tmp_path, "SELECT started_at FROM task_runs WHERE task_id = 'alert'", ()
    )
    [(last_end,)] = rows(
        tmp_path,
        "SELECT max(ended_at) FROM task_runs WHERE execution_id = ? AND task_id != 'alert'",
        (eid,),
    )
    assert handler_start >= last_end
    assert_chain_intact(tmp_path, eid)


HANDLED = """
id: handled
inputs: {fail: {type: boolean, default: false}}
tasks:
  - id: work
    type: core/shell.run
    inputs: {command: "test {{ inputs.fail }} = false"}
on_failure:
  - {id: tell, type: core/log.emit, inputs: {message: failed}}
"""


def test_failure_handler_is_skipped_when_nothing_fails(tmp_path: Path) -> None:
    """The on_failure tasks of a successful execution end SKIPPED (NO_FAILURE)."""
    path = tmp_path / "handled.yaml"
    path.write_text(HANDLED)
    result = run_cli(tmp_path, "run", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    eid = started_id(result)
    assert task_states(tmp_path, eid) == {
        "work": ("SUCCESS", None),
        "tell": ("SKIPPED", "NO_FAILURE"),
    }
    # The handler's skip is in the audit trail, before the terminal event, and verifies.
    kinds = [
        (kind, json.loads(meta).get("task_id"))
        for kind, meta in rows(
            tmp_path,
            "SELECT event_type, metadata FROM execution_audit_events WHERE execution_id = ?"
            " ORDER BY id",
            (eid,),
        )
    ]
    assert kinds.index(("STATE_CHANGE", "tell")) < kinds.index(("COMPLETED", None))
    assert run_cli(tmp_path, "execution", "inspect", eid, "--verify").returncode == 0


CANCELLABLE = """
id: cancellable
tasks:
  - {id: long, type: core/shell.run, inputs: {command: "echo started; sleep 300"}}
  - {id: after, type: core/log.emit, needs: [long], inputs: {message: never}}
  - id: cleanup
    type: core/shell.run
    needs: [long]
    run_if: always
    inputs: {command: "echo cleaning up after {{ execution.id }}"}
"""


def test_cleanup_runs_after_a_cancel(tmp_path: Path) -> None:
    """A run_if: always task runs after the execution was cancelled; others are cancelled."""
    path = tmp_path / "cancellable.yaml"
    path.write_text(CANCELLABLE)
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
        wait_for(
            "the long task to run",
            lambda: task_states(tmp_path, eid).get("long", ("",))[0] == "RUNNING",
        )
        time.sleep(0.3)
        cancel = run_cli(tmp_path, "execution", "cancel", eid, "--reason", "test")
        assert cancel.returncode == 0, cancel.stderr
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    states = task_states(tmp_path, eid)
    assert states["long"][0] == "CANCELLED"
    assert states["after"] == ("CANCELLED", "CANCELLED_BY_USER")
    assert states["cleanup"] == ("SUCCESS", None)
    assert f"cleaning up after {eid}" in messages(tmp_path, eid, "cleanup")
    [(state,)] = rows(tmp_path, "SELECT state FROM executions WHERE execution_id = ?", (eid,))
    assert state == "CANCELLED"
    assert_chain_intact(tmp_path, eid)


NOTIFIED = """
id: notified
inputs: {hook: {type: string}}
tasks:
  - id: build
    type: core/shell.run
    inputs: {command: "echo 'error: disk quota exceeded' >&2; exit 4"}
on_failure:
  - id: notify
    type: core/notify.webhook
    inputs:
      url: "{{ inputs.hook }}"
      execution: "{{ execution }}"
      console_url: http://console.example:8080
"""


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Keeps every POSTed body on the server object (a local stand-in for Slack)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.bodies.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]  # set below
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


def test_failure_handler_notifies_a_local_receiver(tmp_path: Path) -> None:
    """core/notify.webhook in on_failure POSTs the summary and the console link, once; the
    webhook URL (a secret input) never reaches the database."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.bodies = []  # type: ignore[attr-defined]  # the handler appends here
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        path = tmp_path / "notified.yaml"
        path.write_text(NOTIFIED)
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook/T0K3N"
        result = run_cli(tmp_path, "run", str(path), "--input", f"hook={hook}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert result.returncode == 1, result.stdout + result.stderr
    eid = started_id(result)
    bodies = server.bodies  # type: ignore[attr-defined]
    assert len(bodies) == 1
    [body] = bodies
    link = f"http://console.example:8080/executions/{eid}"
    assert body["autokestra"] == {
        "id": eid,
        "workflow_id": "notified",
        "state": "FAILED",
        "failed_task_id": "build",
        "message": "Task build failed: core/shell.run exited with code 4",
        "link": link,
    }
    assert body["text"].startswith(f"Autokestra: notified FAILED (execution {eid})")
    assert link in body["text"]
    assert task_states(tmp_path, eid)["notify"] == ("SUCCESS", None)
    for table in ("task_runs", "execution_logs", "executions"):
        dumped = json.dumps(rows(tmp_path, f"SELECT * FROM {table}"))  # noqa: S608  # fixed names
        assert "T0K3N" not in dumped, table
