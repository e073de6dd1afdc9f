"""docs/cli/inspect.md is checked against `--help` and the renderer, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_cli._cmd_inspect import inspect_command
from autokestra_obs_schema import open_writer
from autokestra_obs_store.testing import success_execution, write_execution

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli" / "inspect.md"


def _options() -> list[str]:
    names: list[str] = []
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
    def test_annotated_timeline_is_real_output(self, tmp_path: Path) -> None:
        """The annotated timeline of "Reading the timeline" is what the renderer prints today."""
        path = tmp_path / "docs.db"
        writer = open_writer(path)
        eid = write_execution(writer, success_execution())
        writer.close()
        result = CliRunner().invoke(
            cli,
            ["--db", str(path), "execution", "inspect", eid, "--timeline"],
            env={"COLUMNS": "80"},
        )
        assert result.exit_code == 0
        section = DOC.read_text().split("## Reading the timeline", 1)[1]
        assert result.stdout.rstrip("\n") in section

    def test_example_commands_use_real_options(self) -> None:
        """Every `$ workflow execution inspect` line of an example uses existing options."""
        known = {*_options(), "-h"}
        commands = [
            line
            for line in DOC.read_text().splitlines()
            if line.startswith("$ workflow execution inspect ")
        ]
        assert len(commands) >= 10
        for command in commands:
            for word in command.split():
                if word.startswith("-"):
                    assert word in known, command

    def test_timeline_examples_fit_their_width(self) -> None:
        """The timeline examples keep the lane format and fit 80 columns (120 for the last)."""
        text = DOC.read_text()
        blocks = text.split("```\n$ workflow execution inspect $ID --timeline\n")[1:]
        assert len(blocks) >= 5
        for block in blocks:
            body = block.split("```", 1)[0].splitlines()
            assert body[0].startswith("Timeline of ")
            assert max(len(line) for line in body) <= 120
