"""docs/cli/inspect.md is checked against `--help` and the renderer, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_cli._inspect import inspect_command
from autokestra_obs_schema import open_writer
from autokestra_obs_store._inspect_fixtures import (
    ExecutionRecord,
    failure_execution,
    retry_execution,
    success_execution,
    write_execution,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli" / "inspect.md"


def _options() -> list[str]:
    names = []
    for param in inspect_command.params:
        if isinstance(param, click.Option):
            names.extend(opt for opt in param.opts if opt.startswith("--"))
    return [*names, "--help"]


class TestReference:
    def test_every_option_is_documented(self) -> None:
        """Each option of --help has a row in the Options table of docs/cli/inspect.md."""
        text = DOC.read_text()
        help_text = CliRunner().invoke(cli, ["execution", "inspect", "--help"]).stdout
        for option in _options():
            assert option in help_text
            assert f"| `{option}" in text, option

    def test_no_undocumented_option_rows(self) -> None:
        """Every option row of the docs exists in --help."""
        text = DOC.read_text()
        section = text.split("## Options", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| `-")]
        known = {*_options(), "-h"}
        for row in rows:
            first = row.split("`")[1].split()[0]
            assert first in known, row

    def test_every_message_is_documented(self) -> None:
        """The error messages of the command appear in the docs."""
        text = DOC.read_text()
        for message in (
            "Error: Execution not found: <id>",
            "Error: Task not found: <task> in execution <id>",
            "Error: Audit verification failed for execution <id>: <violation>",
            "... (truncated)",
            "Execution in progress",
        ):
            assert message in text


class TestExamples:
    @pytest.mark.parametrize(
        "build", [success_execution, retry_execution, failure_execution], ids=lambda b: b.__name__
    )
    def test_timeline_examples_are_real_output(self, tmp_path: Path, build: object) -> None:
        """The timeline examples are exactly what the command prints today at 80 columns."""
        assert callable(build)
        record = build()
        assert isinstance(record, ExecutionRecord)
        path = tmp_path / "docs.db"
        writer = open_writer(path)
        eid = write_execution(writer, record)
        writer.close()
        result = CliRunner().invoke(
            cli,
            ["--db", str(path), "execution", "inspect", eid, "--timeline"],
            env={"COLUMNS": "80"},
        )
        assert result.exit_code == 0
        assert result.stdout.rstrip("\n") in DOC.read_text()

    def test_default_view_example_is_real_output(self, tmp_path: Path) -> None:
        """The default-view example is what the command prints today."""
        path = tmp_path / "docs.db"
        writer = open_writer(path)
        eid = write_execution(writer, failure_execution())
        writer.close()
        result = CliRunner().invoke(
            cli, ["--db", str(path), "execution", "inspect", eid], env={"COLUMNS": "100"}
        )
        assert result.exit_code == 0
        assert result.stdout.rstrip("\n") in DOC.read_text()
