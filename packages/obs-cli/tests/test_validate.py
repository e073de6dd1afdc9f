"""`workflow validate` output contract, and the config file's storage.path for --db."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli

GOOD = "id: hello\ntasks:\n  - {id: say, type: core/log.emit, inputs: {message: hi}}\n"
BAD = textwrap.dedent(
    """\
    id: broken
    tasks:
      - {id: a, type: core/shell.run}
      - {id: b, type: core/log.emit, needs: [fetch], inputs: {message: m}}
    """
)


def runner() -> CliRunner:
    return CliRunner(env={"AUTOKESTRA_DB": None, "AUTOKESTRA_PLUGIN_PATH": None})


class TestValidate:
    def test_valid_file_prints_ok(self, tmp_path: Path) -> None:
        """A valid file prints `OK <file>` on stdout and exits 0."""
        path = tmp_path / "good.yaml"
        path.write_text(GOOD)
        result = runner().invoke(cli, ["validate", str(path)])
        assert result.exit_code == 0, result.output
        assert result.stdout == f"OK {path}\n"
        assert result.stderr == ""

    def test_problems_go_to_stderr_with_file_and_path(self, tmp_path: Path) -> None:
        """Each problem is `<file>: <path>: <problem>` on stderr; exit 1; valid files still OK."""
        good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
        good.write_text(GOOD)
        bad.write_text(BAD)
        result = runner().invoke(cli, ["validate", str(bad), str(good)])
        assert result.exit_code == 1
        assert result.stdout == f"OK {good}\n"
        assert result.stderr.splitlines() == [
            f"{bad}: tasks[0].inputs: missing required input 'command' of core/shell.run",
            f"{bad}: tasks[1].needs[0]: unknown task 'fetch'",
        ]

    def test_syntax_error_has_line_and_column(self, tmp_path: Path) -> None:
        """A YAML syntax error is reported as `<file>: <line>:<column>: <problem>`."""
        path = tmp_path / "syntax.yaml"
        path.write_text("id: x\n  tasks: a: b\n")
        result = runner().invoke(cli, ["validate", str(path)])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"{path}: 2:8: ")

    def test_missing_file_is_a_problem(self, tmp_path: Path) -> None:
        """A file that cannot be read is reported like any other problem, exit 1."""
        result = runner().invoke(cli, ["validate", str(tmp_path / "none.yaml")])
        assert result.exit_code == 1
        assert "none.yaml: file: cannot read" in result.stderr

    def test_plugin_path_option(self, tmp_path: Path) -> None:
        """--plugin-path makes a folder's plugins known to validation."""
        plugin = tmp_path / "plugins" / "probe"
        plugin.mkdir(parents=True)
        (plugin / "plugin.yaml").write_text(
            "namespace: acme\nname: probe\nversion: '1'\nactions: {run: {command: [x]}}\n"
        )
        path = tmp_path / "flow.yaml"
        path.write_text("id: f\ntasks: [{id: a, type: acme/probe.run}]\n")
        assert runner().invoke(cli, ["validate", str(path)]).exit_code == 1
        result = runner().invoke(
            cli, ["validate", str(path), "--plugin-path", str(tmp_path / "plugins")]
        )
        assert result.exit_code == 0, result.stderr

    def test_control_characters_are_escaped(self, tmp_path: Path) -> None:
        """Untrusted text from the file never reaches the terminal raw."""
        path = tmp_path / "esc.yaml"
        path.write_text('id: w\ntasks: [{id: a, type: core/log.emit, inputs: {"m\\e[31m": 1}}]\n')
        result = runner().invoke(cli, ["validate", str(path)])
        assert result.exit_code == 1
        assert "\x1b" not in result.stderr
        assert "\\x1b[31m" in result.stderr


class TestConfigDatabasePath:
    @pytest.fixture
    def project(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        (tmp_path / "autokestra.yaml").write_text("storage: {path: data/from-config.db}\n")
        monkeypatch.chdir(tmp_path)
        return tmp_path

    def test_config_storage_path_is_used(self, project: Path) -> None:
        """Without --db or AUTOKESTRA_DB, ./autokestra.yaml's storage.path names the database."""
        result = runner().invoke(cli, ["db", "migrate"])
        assert result.exit_code == 0, result.output
        assert (project / "data" / "from-config.db").is_file()

    def test_environment_wins_over_config(self, project: Path) -> None:
        """AUTOKESTRA_DB beats the config file."""
        result = CliRunner(env={"AUTOKESTRA_DB": str(project / "env.db")}).invoke(
            cli, ["db", "migrate"]
        )
        assert result.exit_code == 0, result.output
        assert (project / "env.db").is_file()
        assert not (project / "data").exists()

    def test_db_option_wins_over_everything(self, project: Path) -> None:
        """--db beats AUTOKESTRA_DB and the config file."""
        result = CliRunner(env={"AUTOKESTRA_DB": str(project / "env.db")}).invoke(
            cli, ["--db", str(project / "cli.db"), "db", "migrate"]
        )
        assert result.exit_code == 0, result.output
        assert (project / "cli.db").is_file()
        assert not (project / "env.db").exists()

    def test_broken_config_is_one_line_error(self, project: Path) -> None:
        """An invalid config file is `Error: <message>` and exit 1."""
        (project / "autokestra.yaml").write_text("storage: {pth: x}\n")
        result = runner().invoke(cli, ["db", "migrate"])
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: config file autokestra.yaml: unknown key")


CHILD = textwrap.dedent(
    """\
    id: child
    inputs: {name: {type: string, required: true}}
    tasks:
      - {id: say, type: core/log.emit, inputs: {message: hi}}
    """
)
PARENT = textwrap.dedent(
    """\
    id: parent
    tasks:
      - {id: call, type: core/flow.subflow, inputs: {workflow: child, inputs: {name: x}}}
    """
)


class TestValidateSubflows:
    def test_callee_given_alongside_validates(self, tmp_path: Path) -> None:
        """A parent validates together with the child file it calls, before any apply."""
        parent, child = tmp_path / "parent.yaml", tmp_path / "child.yaml"
        parent.write_text(PARENT)
        child.write_text(CHILD)
        db = str(tmp_path / "none.db")
        result = runner().invoke(cli, ["--db", db, "validate", str(parent), str(child)])
        assert result.exit_code == 0, result.output
        assert not Path(db).exists()  # validate creates no database

    def test_unknown_callee_is_reported_with_its_path(self, tmp_path: Path) -> None:
        """Alone and unregistered, the callee is unknown: the problem names its path."""
        parent = tmp_path / "parent.yaml"
        parent.write_text(PARENT)
        result = runner().invoke(cli, ["--db", str(tmp_path / "a.db"), "validate", str(parent)])
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"{parent}: tasks[0].inputs.workflow: unknown workflow 'child' (register it with"
            " `workflow apply`)"
        ]

    def test_registered_callee_is_checked(self, tmp_path: Path) -> None:
        """Once the child is applied, the parent validates against its declared inputs."""
        parent, child = tmp_path / "parent.yaml", tmp_path / "child.yaml"
        parent.write_text(PARENT.replace("name: x", "colour: red"))
        child.write_text(CHILD)
        db = str(tmp_path / "a.db")
        assert runner().invoke(cli, ["--db", db, "apply", str(child)]).exit_code == 0
        result = runner().invoke(cli, ["--db", db, "validate", str(parent)])
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            f"{parent}: tasks[0].inputs.inputs.colour: input 'colour' is not declared by"
            " workflow child (declared: name)",
            f"{parent}: tasks[0].inputs.inputs: missing required input 'name' of workflow child",
        ]
