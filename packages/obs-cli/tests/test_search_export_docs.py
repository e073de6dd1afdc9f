"""docs/cli/search.md and docs/cli/export.md are checked against `--help` and CLI.md's words."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_schema import INVALID_LEVEL_MESSAGE
from autokestra_obs_store import INVALID_TIME_MESSAGE

DOCS = Path(__file__).resolve().parents[3] / "docs" / "cli"
PAGES = {("logs", "search"): "search.md", ("execution", "export"): "export.md"}
MESSAGES = {
    ("logs", "search"): [
        "No matching log entries",
        "Error: Invalid search query: <detail>",
        INVALID_LEVEL_MESSAGE,
        INVALID_TIME_MESSAGE,
    ],
    ("execution", "export"): [
        "Exported execution <id> to <FILE> (<n> log entries, <size>)",
        "Error: Execution not found: <id>",
        "already exists; add --force to replace it",
    ],
}


def command(path: tuple[str, str]) -> click.Command:
    group = cli.get_command(click.Context(cli), path[0])
    assert isinstance(group, click.Group)
    found = group.get_command(click.Context(group), path[1])
    assert found is not None
    return found


def help_options(path: tuple[str, str]) -> list[str]:
    """Every option string `--help` lists (e.g. '-o', '--output')."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    options_part = result.stdout.split("Options:", 1)[1]
    return sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", options_part)))


def options_table(path: tuple[str, str]) -> str:
    text = (DOCS / PAGES[path]).read_text(encoding="utf-8")
    return text.split("## Options", 1)[1].split("\n## ", 1)[0]


CASES = [(path, option) for path in PAGES for option in help_options(path)]


@pytest.mark.parametrize(("path", "option"), CASES, ids=[f"{p[1]} {o}" for p, o in CASES])
def test_every_help_option_has_a_row(path: tuple[str, str], option: str) -> None:
    rows = [line for line in options_table(path).splitlines() if line.startswith("| `")]
    assert any(f"`{option}" in row.split("|")[1] for row in rows), option


@pytest.mark.parametrize("path", list(PAGES))
def test_help_scrape_sees_every_declared_option(path: tuple[str, str]) -> None:
    """The scrape above finds every option the command declares (so the check can fail)."""
    declared = {opt for param in command(path).params for opt in param.opts if opt[0] == "-"}
    assert declared | {"-h", "--help"} == set(help_options(path))


@pytest.mark.parametrize("path", list(PAGES))
def test_documented_options_exist(path: tuple[str, str]) -> None:
    table = options_table(path)
    documented = set(re.findall(r"^\| `(--?[a-z-]+)", table, flags=re.MULTILINE))
    documented |= set(re.findall(r"^\| `-[a-z]`, `(--[a-z-]+)", table, flags=re.MULTILINE))
    assert documented <= set(help_options(path))


@pytest.mark.parametrize(
    ("path", "message"), [(path, m) for path, ms in MESSAGES.items() for m in ms]
)
def test_every_message_is_documented(path: tuple[str, str], message: str) -> None:
    assert message in (DOCS / PAGES[path]).read_text(encoding="utf-8")


@pytest.mark.parametrize("path", list(PAGES))
def test_help_examples_appear_on_the_page(path: tuple[str, str]) -> None:
    """Each example line of `--help` is on the page, word for word."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    examples = result.stdout.split("Examples:", 1)[1].split("Options:", 1)[0]
    page = (DOCS / PAGES[path]).read_text(encoding="utf-8")
    lines = [line.strip() for line in examples.splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert line in page, line
