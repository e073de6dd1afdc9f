"""`workflow apply`, `workflow list` and `workflow delete`: the registered workflows."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from autokestra_obs_cli import cli

CRON = """\
id: nightly
enabled: {enabled}
trigger: {{type: cron, schedule: "*/5 * * * *"}}
tasks:
  - id: hello
    type: core/log.emit
    inputs: {{message: hi}}
"""


def run(db: Path, *args: str) -> Result:
    """Invoke `workflow --db DB ARGS` with no config file around."""
    return CliRunner().invoke(cli, ["--db", str(db), *args])


def write(tmp_path: Path, enabled: str = "true") -> Path:
    """The cron workflow file."""
    path = tmp_path / "nightly.yaml"
    path.write_text(CRON.format(enabled=enabled))
    return path


class TestApply:
    def test_apply_creates_then_updates(self, tmp_path: Path) -> None:
        """First apply says created with the next fire, the second says updated."""
        db, file = tmp_path / "a.db", write(tmp_path)
        first = run(db, "apply", str(file))
        assert first.exit_code == 0, first.output
        assert first.stdout.startswith("Workflow nightly created: cron '*/5 * * * *', next fire ")
        second = run(db, "apply", str(file))
        assert second.stdout.startswith("Workflow nightly updated: ")

    def test_disabled_workflow_is_paused(self, tmp_path: Path) -> None:
        """enabled: false registers the workflow with its cron paused."""
        db, file = tmp_path / "a.db", write(tmp_path, enabled="false")
        result = run(db, "apply", str(file))
        assert result.exit_code == 0, result.output
        assert "paused (enabled: false)" in result.stdout
        listed = json.loads(run(db, "list", "--json").stdout)
        assert listed[0]["enabled"] is False
        assert listed[0]["next_fire_at"] is None

    def test_invalid_file_lists_problems(self, tmp_path: Path) -> None:
        """An invalid workflow prints each problem with its path and registers nothing."""
        db = tmp_path / "a.db"
        bad = tmp_path / "bad.yaml"
        bad.write_text("id: x\ntrigger: {type: cron, schedule: 'nope'}\ntasks: []\n")
        result = run(db, "apply", str(bad))
        assert result.exit_code == 1
        assert f"{bad}: trigger.schedule: invalid cron expression" in result.stderr
        assert not db.exists() or json.loads(run(db, "list", "--json").stdout) == []


class TestListAndDelete:
    def test_list_json_and_human(self, tmp_path: Path) -> None:
        """list shows the workflow as a table and as JSON with ISO timestamps."""
        db = tmp_path / "a.db"
        run(db, "apply", str(write(tmp_path)))
        human = run(db, "list")
        assert human.exit_code == 0
        assert "nightly" in human.stdout
        assert "*/5 * * * *" in human.stdout
        (row,) = json.loads(run(db, "list", "--json").stdout)
        assert row["workflow_id"] == "nightly"
        assert row["trigger_type"] == "cron"
        assert row["next_fire_at"].endswith("Z")

    def test_human_list_never_cuts_values_in_a_pipe(self, tmp_path: Path) -> None:
        """A long id and the ISO fire time stay whole in 80-column (pipe) output."""
        db = tmp_path / "a.db"
        long_id = "a-rather-long-workflow-identifier-for-the-nightly-warehouse-load"
        file = tmp_path / "long.yaml"
        file.write_text(CRON.format(enabled="true").replace("id: nightly", f"id: {long_id}"))
        assert run(db, "apply", str(file)).exit_code == 0
        human = run(db, "list")
        assert human.exit_code == 0, human.output
        (row,) = json.loads(run(db, "list", "--json").stdout)
        header, line = human.stdout.splitlines()
        assert header.split()[:2] == ["WORKFLOW", "ID"]
        assert line.split()[0] == long_id
        assert row["next_fire_at"] in line.split()

    def test_delete(self, tmp_path: Path) -> None:
        """delete removes it; deleting an unknown id is `Workflow not found`, exit 1."""
        db = tmp_path / "a.db"
        run(db, "apply", str(write(tmp_path)))
        result = run(db, "delete", "nightly")
        assert result.exit_code == 0
        assert result.stdout.strip() == "Workflow nightly deleted"
        assert json.loads(run(db, "list", "--json").stdout) == []
        again = run(db, "delete", "nightly")
        assert again.exit_code == 1
        assert again.stderr.strip() == "Error: Workflow not found: nightly"

    def test_empty_list(self, tmp_path: Path) -> None:
        """An empty registry says so on stderr and prints [] with --json."""
        db = tmp_path / "a.db"
        run(db, "db", "migrate")
        result = run(db, "list")
        assert result.exit_code == 0
        assert result.stdout == ""
        assert "No workflows registered" in result.stderr
        assert run(db, "list", "--json").stdout.strip() == "[]"
