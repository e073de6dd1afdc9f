"""End to end: `workflow logs search` and `workflow execution export` on real executions.

Real engine runs (real plugin processes, a secret in the environment), the `workflow`
program run as a user runs it, real database files.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from e2e import WORKFLOW, rows

from autokestra_obs_schema import LATEST_VERSION, STEPS, Writer, connect, migrate

pytestmark = pytest.mark.integration

SECRET = "Zk9-vault-T0ken-42"
WORKFLOWS = {
    "probe": """
id: probe
tasks:
  - id: dial
    type: core/shell.run
    inputs:
      env: {TOKEN: "{{ secrets.PROBE_TOKEN }}"}
      command: |
        echo "dialing db-primary with token $TOKEN"
        echo "connection refused: db-primary:5432" >&2
        echo "::error::giving up on db-primary"
""",
    "report": """
id: report
tasks:
  - id: summary
    type: core/log.emit
    inputs:
      message: "nightly report: 3 connections refused, 0 timeouts"
  - id: multiline
    type: core/python.run
    needs: [summary]
    inputs:
      script: |
        print("Traceback (most recent call last):\\n  ValueError: refused value")
""",
}


def cli(tmp_path: Path, *args: str, db: str = "ak.db") -> subprocess.CompletedProcess[str]:
    """Run `workflow --db <tmp>/<db> ARGS` in the test's folder, without colour."""
    return subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / db), *args],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "AUTOKESTRA_SECRET_PROBE_TOKEN": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, str]:
    """One execution of each workflow (probe fails on purpose): name -> execution id."""
    ids = {}
    for name, source in WORKFLOWS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(source)
        result = cli(tmp_path, "run", str(path))
        assert result.returncode in (0, 1), result.stderr
        ids[name] = result.stdout.split()[1]
    return ids


class TestSearch:
    def test_hits_across_executions_and_the_secret_is_never_found(
        self, tmp_path: Path, runs: dict[str, str]
    ) -> None:
        result = cli(tmp_path, "logs", "search", "refused")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        found = {line.split()[0] for line in lines if not line.startswith(" ")}
        assert found == {runs["probe"], runs["report"]}
        # The secret reached the plugin and was logged, redacted: its mask is indexed, its
        # value is not.
        masked = cli(tmp_path, "logs", "search", "dialing", "--json")
        (hit,) = json.loads(masked.stdout)
        assert hit["message"] == "dialing db-primary with token ***SECRET***"
        assert hit["workflow_id"] == "probe"
        for query in (f'"{SECRET}"', "Zk9*", "vault", "T0ken"):
            miss = cli(tmp_path, "logs", "search", query)
            assert (miss.returncode, miss.stdout) == (0, ""), query
            assert miss.stderr == "No matching log entries\n"

    def test_filters_and_json_shape(self, tmp_path: Path, runs: dict[str, str]) -> None:
        result = cli(tmp_path, "logs", "search", "db", "primary", "--level", "error", "--jsonl")
        documents = [json.loads(line) for line in result.stdout.splitlines()]
        assert [d["message"] for d in documents] == ["giving up on db-primary"]
        logs = cli(tmp_path, "execution", "logs", runs["probe"], "--json", "--level", "error")
        by_id = {d["id"]: d for d in json.loads(logs.stdout)}
        assert documents[0] == {**by_id[documents[0]["id"]], "workflow_id": "probe"}
        workflow = cli(tmp_path, "logs", "search", "refused", "--workflow", "report")
        heads = [line for line in workflow.stdout.splitlines() if not line.startswith(" ")]
        assert len(heads) == 2
        assert all(line.startswith(runs["report"] + " ") for line in heads)

    def test_invalid_query(self, tmp_path: Path, runs: dict[str, str]) -> None:
        result = cli(tmp_path, "logs", "search", "db-primary:5432")
        assert result.returncode == 1
        assert result.stderr.startswith("Error: Invalid search query: ")
        assert result.stdout == ""

    def test_retention_removes_hits(self, tmp_path: Path, runs: dict[str, str]) -> None:
        assert cli(tmp_path, "logs", "search", "refused").stdout
        time.sleep(1.1)
        cleanup = cli(tmp_path, "logs", "cleanup", "--older-than", "1s")
        assert cleanup.returncode == 0, cleanup.stderr
        after = cli(tmp_path, "logs", "search", "refused")
        assert (after.returncode, after.stdout) == (0, "")
        assert after.stderr == "No matching log entries\n"


class TestMigration:
    def test_migrate_indexes_existing_rows_and_rollback_drops_the_index(
        self, tmp_path: Path
    ) -> None:
        step = next(s for s in STEPS if s.name == "log_search")
        writer = Writer(tmp_path / "ak.db")
        try:
            with writer.locked() as conn:
                migrate(conn, target=step.version - 1)
            with writer.transaction() as conn:
                conn.execute(
                    "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                    " updated_at) VALUES ('old-1', 'legacy', 'SUCCESS', 0, 0)"
                )
                conn.execute(
                    "INSERT INTO execution_logs (execution_id, timestamp, level, source,"
                    " message) VALUES ('old-1', 0, 'WARN', 'worker', 'written before search')"
                )
        finally:
            writer.close()
        before = cli(tmp_path, "logs", "search", "before")
        assert before.returncode == 1 and "workflow db migrate" in before.stderr
        migrated = cli(tmp_path, "db", "migrate")
        assert f"Applied {step.version:04d}_log_search" in migrated.stdout
        hit = cli(tmp_path, "logs", "search", "before")
        assert hit.stdout.startswith("old-1 1970-01-01T00:00:00.000Z WARN  [worker] - written")
        status = json.loads(cli(tmp_path, "db", "status", "--json").stdout)
        assert status["tables"]["execution_logs_fts"]["rows"] == 1
        assert status["tables"]["execution_logs_fts"]["bytes"] > 0
        # The steps after log_search first (they drop no index), then log_search itself.
        rolled = cli(tmp_path, "db", "rollback", "--steps", str(LATEST_VERSION - step.version + 1))
        assert rolled.returncode == 0, rolled.stderr
        conn = connect(tmp_path / "ak.db", readonly=True)
        try:
            names = conn.execute("SELECT name FROM sqlite_schema WHERE name LIKE '%fts%'")
            assert list(names) == []
            logs = conn.execute("SELECT COUNT(*) FROM execution_logs").fetchall()
            assert logs == [(1,)]
        finally:
            conn.close()


class TestExport:
    def test_bundle_is_read_by_every_read_command(
        self, tmp_path: Path, runs: dict[str, str]
    ) -> None:
        eid = runs["probe"]
        result = cli(tmp_path, "execution", "export", eid, "-o", "bundle.db")
        assert result.returncode == 0, result.stderr
        bundle = tmp_path / "bundle.db"
        count = rows(tmp_path, "SELECT COUNT(*) FROM execution_logs WHERE execution_id = ?", (eid,))
        size = bundle.stat().st_size
        assert result.stdout == ""
        assert result.stderr.startswith(
            f"Exported execution {eid} to bundle.db ({count[0][0]} log entries, "
        )
        assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
        assert size > 0
        # One self-contained file: its WAL was checkpointed and removed.
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("bundle")) == [
            "bundle.db"
        ]
        # Exactly one execution.
        listed = json.loads(cli(tmp_path, "execution", "list", "--json", db="bundle.db").stdout)
        assert [e["execution_id"] for e in listed] == [eid]
        # Logs byte for byte, text and JSON.
        for args in ((), ("--json",), ("--level", "error,warn")):
            source = cli(tmp_path, "execution", "logs", eid, *args)
            copy = cli(tmp_path, "execution", "logs", eid, *args, db="bundle.db")
            assert copy.returncode == 0
            assert copy.stdout == source.stdout
        # Inspect, timeline and audit verification.
        for args in ((), ("--timeline",), ("--audit",), ("--task", "dial")):
            source = cli(tmp_path, "execution", "inspect", eid, *args)
            copy = cli(tmp_path, "execution", "inspect", eid, *args, db="bundle.db")
            assert copy.returncode == source.returncode == 0, copy.stderr
            assert copy.stdout == source.stdout
        verify = cli(tmp_path, "execution", "inspect", eid, "--verify", db="bundle.db")
        assert verify.returncode == 0, verify.stderr
        assert "verified" in verify.stdout or "unkeyed: links checked" in verify.stdout
        audit = cli(tmp_path, "audit", "verify", eid, db="bundle.db")
        assert audit.returncode == 0, audit.stderr
        # Search works on the bundle, and only finds its execution.
        search = cli(tmp_path, "logs", "search", "refused", db="bundle.db")
        assert {line.split()[0] for line in search.stdout.splitlines()} == {eid}
        # No secret, no audit key, no other execution's text anywhere in the file.
        data = bundle.read_bytes()
        assert SECRET.encode() not in data
        assert b"nightly report" not in data

    def test_refuses_to_overwrite_unless_forced(self, tmp_path: Path, runs: dict[str, str]) -> None:
        target = tmp_path / "execution-x.db"
        target.write_text("precious")
        refused = cli(tmp_path, "execution", "export", runs["probe"], "-o", "execution-x.db")
        assert refused.returncode == 1
        assert refused.stderr == "Error: execution-x.db already exists; add --force to replace it\n"
        assert target.read_text() == "precious"
        forced = cli(
            tmp_path, "execution", "export", runs["probe"], "-o", "execution-x.db", "--force"
        )
        assert forced.returncode == 0, forced.stderr
        assert target.read_bytes().startswith(b"SQLite format 3\x00")

    def test_default_file_name(self, tmp_path: Path, runs: dict[str, str]) -> None:
        eid = runs["report"]
        result = cli(tmp_path, "execution", "export", eid)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / f"execution-{eid}.db").is_file()

    def test_unknown_id_leaves_no_file(self, tmp_path: Path, runs: dict[str, str]) -> None:
        def files() -> list[str]:
            # The source's -wal/-shm come and go with its readers: not the export's doing.
            return sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("ak.db"))

        before = files()
        result = cli(tmp_path, "execution", "export", "no-such-id", "-o", "out.db")
        assert result.returncode == 1
        assert result.stderr == "Error: Execution not found: no-such-id\n"
        assert files() == before
