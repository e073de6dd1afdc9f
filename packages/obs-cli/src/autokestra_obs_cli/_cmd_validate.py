"""``workflow validate FILE...``: check workflow files without running them.

Problems go to stderr, one per line as ``<file>: <path>: <problem>``; a valid file prints
``OK <file>`` on stdout; the exit code is 1 when any file has a problem (CLI.md). A subflow
task is checked against the workflow it calls: one of the files given, else a workflow
registered in the database (``workflow apply``).

    $ workflow validate examples/workflows/hello.yaml
    OK examples/workflows/hello.yaml
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import apsw
import click
from rich.text import Text

from autokestra_engine import (
    SUBFLOW_TYPE,
    Problem,
    Workflow,
    WorkflowInvalid,
    check_subflows,
    load_workflow,
    workflow_limits,
)
from autokestra_obs_schema import escape_control

from ._context import AppContext, pass_app
from ._engine_wiring import cli_engine_config, cli_registry, plugin_path_option
from ._errors import CliError


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
    loaded: list[tuple[str, Workflow]] = []
    for file in files:
        name = escape_control(str(file))
        try:
            loaded.append((name, load_workflow(file, registry, limits)))
        except WorkflowInvalid as exc:
            failed = True
            _print_problems(app, name, exc.problems)
    # Subflow tasks are checked once every file is parsed: a parent and the child it calls
    # may be validated together, before either is applied.
    alongside = {workflow.id: workflow for _, workflow in loaded}
    conn = _registry_reader(app) if any(_calls_subflows(w) for _, w in loaded) else None
    for name, workflow in loaded:
        problems = check_subflows(workflow, registry, conn=conn, alongside=alongside)
        if problems:
            failed = True
            _print_problems(app, name, problems)
        else:
            app.out.print(Text(f"OK {name}"))
    return 1 if failed else 0


def _print_problems(app: AppContext, name: str, problems: Iterable[Problem]) -> None:
    for problem in problems:
        app.err.print(Text(f"{name}: {escape_control(str(problem))}"))


def _calls_subflows(workflow: Workflow) -> bool:
    return any(task.type == SUBFLOW_TYPE for task in workflow.all_tasks)


def _registry_reader(app: AppContext) -> apsw.Connection | None:
    """The database whose registered workflows subflows may call; None when there is none."""
    if not app.db_path.exists():
        return None
    try:
        return app.reader()
    except CliError as exc:
        app.err.print(Text(escape_control(f"Warning: registered workflows not read: {exc}")))
        return None
