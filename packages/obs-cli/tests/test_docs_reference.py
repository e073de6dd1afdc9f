"""The CLI reference in docs/cli/ names every command and option of --help, so it cannot drift."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from autokestra_obs_cli import cli

DOCS = Path(__file__).resolve().parents[3] / "docs" / "cli"
#: Commands documented on a page of their own; the rest live in index.md.
PAGES: dict[tuple[str, ...], str] = {
    ("execution", "logs"): "logs.md",
    ("execution", "inspect"): "inspect.md",
    ("audit", "verify"): "inspect.md",
    ("logs", "search"): "search.md",
    ("execution", "export"): "export.md",
}


def _leaf_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                walk(command, (*prefix, name))
            else:
                found.append(((*prefix, name), command))

    walk(cli, ())
    return found


LEAVES = _leaf_commands()


class TestDocsReference:
    @pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
    def test_command_and_options_are_documented(
        self, path: tuple[str, ...], command: click.Command
    ) -> None:
        """The command's page names `workflow <command>` and each of its long options."""
        page = DOCS / PAGES.get(path, "index.md")
        text = page.read_text(encoding="utf-8")
        assert f"workflow {' '.join(path)}" in text, page
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}" in text, f"{opt} of {' '.join(path)} missing in {page}"

    def test_global_options_are_documented(self) -> None:
        """The global options of the root group appear in index.md."""
        text = (DOCS / "index.md").read_text(encoding="utf-8")
        for param in cli.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}" in text, opt
