"""docs/cli/logs.md is checked against `--help`, so the reference cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_schema import INVALID_LEVEL_MESSAGE
from autokestra_obs_store import INVALID_TIME_MESSAGE

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli" / "logs.md"


def help_options() -> list[str]:
    """Every option string `workflow execution logs --help` lists (e.g. '-f', '--follow')."""
    result = CliRunner().invoke(cli, ["execution", "logs", "--help"])
    assert result.exit_code == 0
    options_part = result.stdout.split("Options:", 1)[1]
    return sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", options_part)))


def logs_command() -> click.Command:
    """The click command object of `execution logs`."""
    group = cli.get_command(click.Context(cli), "execution")
    assert isinstance(group, click.Group)
    command = group.get_command(click.Context(group), "logs")
    assert command is not None
    return command


class TestLogsDocs:
    def test_the_page_exists(self) -> None:
        """The reference page is where the docs index expects it."""
        assert DOC.is_file()

    @pytest.mark.parametrize("option", help_options())
    def test_every_help_option_is_documented_in_the_options_table(self, option: str) -> None:
        """Each option of --help has a row in the Options table of docs/cli/logs.md."""
        table = DOC.read_text().split("## Options", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        assert any(f"`{option}" in row.split("|")[1] for row in rows), option

    def test_help_parsing_sees_every_declared_option(self) -> None:
        """The help scrape finds every option the command declares (the check can fail)."""
        declared = {opt for param in logs_command().params for opt in param.opts}
        declared.discard("EXECUTION_ID")
        declared -= {"execution_id"}
        assert declared | {"-h", "--help"} == set(help_options())

    def test_documented_options_exist(self) -> None:
        """The Options table documents no option the command lacks."""
        table = DOC.read_text().split("## Options", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^\| `(--?[a-z-]+)", table, flags=re.MULTILINE))
        documented |= set(re.findall(r"^\| `-f`, `(--[a-z-]+)", table, flags=re.MULTILINE))
        assert documented <= set(help_options())

    @pytest.mark.parametrize(
        "message",
        [
            "Execution not found: <id>",
            "No logs found for execution <id>",
            "No logs found for task <task> in execution <id>",
            INVALID_LEVEL_MESSAGE,
            INVALID_TIME_MESSAGE,
        ],
    )
    def test_every_message_is_documented(self, message: str) -> None:
        """Each CLI.md message of the command appears verbatim on the page."""
        assert message in DOC.read_text()
