"""``workflow validate FILE...``: check workflow files without running them.

Problems go to stderr, one per line as ``<file>: <path>: <problem>``; a valid file prints
``OK <file>`` on stdout; the exit code is 1 when any file has a problem (CLI.md).

    $ workflow validate examples/workflows/hello.yaml
    OK examples/workflows/hello.yaml
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from autokestra_engine import WorkflowInvalid, load_workflow, workflow_limits
from autokestra_obs_schema import escape_control

from ._context import AppContext, pass_app
from ._engine_wiring import cli_engine_config, cli_registry, plugin_path_option


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@plugin_path_option
@pass_app
def validate_command(
    app: AppContext, files: tuple[Path, ...], plugin_paths: tuple[Path, ...]
) -> int:
    """Check workflow files: every problem with its path; exit 1 if any.

    \b
    Example:
      workflow validate examples/workflows/*.yaml
      workflow validate flow.yaml --plugin-path ./my-plugins
    """
    config = cli_engine_config(app, plugin_paths)
    registry = cli_registry(config)
    limits = workflow_limits(config)
    for manifest_problem in registry.problems:
        app.err.print(Text(escape_control(f"Warning: plugin not loaded: {manifest_problem}")))
    failed = False
    for file in files:
        name = escape_control(str(file))
        try:
            load_workflow(file, registry, limits)
        except WorkflowInvalid as exc:
            failed = True
            for problem in exc.problems:
                app.err.print(Text(f"{name}: {escape_control(str(problem))}"))
            continue
        app.out.print(Text(f"OK {name}"))
    return 1 if failed else 0
