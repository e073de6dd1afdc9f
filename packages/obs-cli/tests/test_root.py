"""The root command: global options, help, version, exit codes, db commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import autokestra_obs_cli
from autokestra_obs_cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
    return found


ALL_COMMANDS = _commands(cli)


PUBLIC_NAMES = [
    "AppContext",
    "CliError",
    "cli",
    "domain_errors",
    "execution",
    "main",
    "pass_app",
]


class TestPublicApi:
    def test_all_is_exactly_the_pinned_names(self) -> None:
        """__all__ lists exactly the pinned names, sorted: a change of API is deliberate."""
        assert autokestra_obs_cli.__all__ == PUBLIC_NAMES

    def test_every_name_resolves(self) -> None:
        """Every exported name is an attribute of the package."""
        for name in PUBLIC_NAMES:
            assert getattr(autokestra_obs_cli, name) is not None


class TestHelp:
    @pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda p: " ".join(p) or "root")
    def test_every_command_has_help_with_an_example(self, path: tuple[str, ...]) -> None:
        """`--help` works for every command (catches import errors) and shows an example."""
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example" in result.stdout

    def test_version(self) -> None:
        """--version prints the program name and version."""
        result = CliRunner().invoke(cli, ["--version"])
        assert result.exit_code == 0
        assert result.stdout.startswith("workflow, version ")

    def test_usage_error_exits_2(self) -> None:
        """An unknown option is click's usage error: exit 2."""
        result = CliRunner().invoke(cli, ["db", "status", "--bogus"])
        assert result.exit_code == 2
        assert "No such option" in result.stderr


class TestDbCommands:
    def test_status_of_missing_database_is_one_line_error(self, tmp_path: Path) -> None:
        """A missing database is reported in one line on stderr with exit 1."""
        db = tmp_path / "none.db"
        result = CliRunner().invoke(cli, ["--db", str(db), "db", "status"])
        assert result.exit_code == 1
        assert result.stderr.strip() == f"Error: No database at {db}"
        assert result.stdout == ""
        assert not db.exists()

    def test_migrate_then_status_json(self, tmp_path: Path) -> None:
        """migrate creates the database; status --json parses and reports real counts."""
        db = tmp_path / "sub" / "a.db"
        runner = CliRunner()
        first = runner.invoke(cli, ["--db", str(db), "db", "migrate"])
        assert first.exit_code == 0, first.output
        assert "Applied 0001_executions_and_tasks" in first.stdout
        again = runner.invoke(cli, ["--db", str(db), "db", "migrate"])
        assert "up to date" in again.stdout
        from autokestra_obs_schema import open_writer

        writer = open_writer(db)
        with writer.transaction() as conn:
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES ('e', 'w', 'SUCCESS', 1, 1)"
            )
            for i in range(7):
                conn.execute(
                    "INSERT INTO execution_logs (execution_id, timestamp, level, source,"
                    " message) VALUES ('e', ?, 'INFO', 's', 'm')",
                    (i,),
                )
        writer.close()
        result = runner.invoke(cli, ["--db", str(db), "db", "status", "--json"])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert payload["schema_version"] == payload["latest_version"]
        assert payload["pending_migrations"] == []
        assert payload["tables"]["execution_logs"]["rows"] == 7
        assert payload["tables"]["executions"]["rows"] == 1
        assert payload["tables"]["execution_logs"]["bytes"] > 0
        assert payload["warnings"] == []
        assert isinstance(payload["wal_bytes"], int)

    def test_status_warns_over_threshold(self, tmp_path: Path) -> None:
        """A table above --size-warning is reported in warnings and on stderr."""
        db = tmp_path / "a.db"
        runner = CliRunner()
        runner.invoke(cli, ["--db", str(db), "db", "migrate"])
        result = runner.invoke(cli, ["--db", str(db), "db", "status", "--size-warning", "1"])
        assert result.exit_code == 0
        assert "Warning: Table executions" in result.stderr
        as_json = runner.invoke(
            cli, ["--db", str(db), "db", "status", "--json", "--size-warning", "1"]
        )
        assert json.loads(as_json.stdout)["warnings"]

    def test_rollback_and_pending(self, tmp_path: Path) -> None:
        """rollback --steps 2 leaves two pending migrations that status lists."""
        db = tmp_path / "a.db"
        runner = CliRunner()
        runner.invoke(cli, ["--db", str(db), "db", "migrate"])
        result = runner.invoke(cli, ["--db", str(db), "db", "rollback", "--steps", "2"])
        assert result.exit_code == 0, result.output
        assert result.stdout.count("Rolled back") == 2
        status = json.loads(runner.invoke(cli, ["--db", str(db), "db", "status", "--json"]).stdout)
        assert len(status["pending_migrations"]) == 2

    def test_env_var_selects_database(self, tmp_path: Path) -> None:
        """AUTOKESTRA_DB is honoured when --db is absent."""
        db = tmp_path / "env.db"
        result = CliRunner().invoke(cli, ["db", "migrate"], env={"AUTOKESTRA_DB": str(db)})
        assert result.exit_code == 0
        assert db.exists()

    def test_symlinked_database_is_refused(self, tmp_path: Path) -> None:
        """A symlinked --db is an error in one line, not a traceback."""
        real = tmp_path / "real.db"
        CliRunner().invoke(cli, ["--db", str(real), "db", "migrate"])
        link = tmp_path / "link.db"
        link.symlink_to(real)
        result = CliRunner().invoke(cli, ["--db", str(link), "db", "status"])
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: Refusing database path that is a symlink")


class TestProcess:
    """The installed console script, as a user runs it."""

    def _run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "AUTOKESTRA_DB"}
        return subprocess.run(
            [sys.executable, "-c", "from autokestra_obs_cli import main; main()", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )

    def test_default_database_path_is_created_private(self, tmp_path: Path) -> None:
        """Without --db the database is ./.autokestra/autokestra.db, 0600 in a 0700 folder."""
        result = self._run("db", "migrate", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        db = tmp_path / ".autokestra" / "autokestra.db"
        assert db.exists()
        assert db.stat().st_mode & 0o777 == 0o600
        assert db.parent.stat().st_mode & 0o777 == 0o700

    def test_errors_have_no_traceback(self, tmp_path: Path) -> None:
        """A user error prints one line and exits 1."""
        (tmp_path / "bad.db").write_bytes(b"garbage" * 1000)
        result = self._run("--db", "bad.db", "db", "status", cwd=tmp_path)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


class TestConfigFile:
    def test_broken_config_fails_commands_but_not_help(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An invalid ./autokestra.yaml is one Error line for commands; --help still works."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("AUTOKESTRA_DB", raising=False)
        (tmp_path / "autokestra.yaml").write_text("storage: {path: [1, 2\n")
        runner = CliRunner()
        helped = runner.invoke(cli, ["db", "status", "--help"])
        assert helped.exit_code == 0
        failed = runner.invoke(cli, ["db", "status"])
        assert failed.exit_code == 1
        assert failed.stderr.startswith("Error: config file autokestra.yaml")
        assert len(failed.stderr.strip().splitlines()) == 1

    def test_storage_path_from_config_is_used(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --db or AUTOKESTRA_DB, storage.path of the config file names the database."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("AUTOKESTRA_DB", raising=False)
        (tmp_path / "autokestra.yaml").write_text("storage:\n  path: ./data/main.db\n")
        result = CliRunner().invoke(cli, ["db", "migrate"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "data" / "main.db").exists()
        assert not (tmp_path / ".autokestra").exists()


class TestClosedPipe:
    def test_closed_stdout_ends_quietly_with_success(self, tmp_path: Path) -> None:
        """When the reader of stdout has gone (`| head`), the command exits 0 silently."""
        db = tmp_path / "a.db"
        CliRunner().invoke(cli, ["--db", str(db), "db", "migrate"])
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from autokestra_obs_cli import main; main()",
                    "--db",
                    str(db),
                    "db",
                    "status",
                    "--json",
                ],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
                timeout=60,
            )
        finally:
            os.close(write_end)
        assert result.stderr == ""
        assert result.returncode == 0
