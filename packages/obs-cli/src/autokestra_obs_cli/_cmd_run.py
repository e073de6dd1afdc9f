"""``workflow run``: run a workflow file in the foreground with live progress, or queue it.

The first stdout line is ``Execution <id> started`` (or ``queued`` with ``--detach``), the last
``Execution <id> <STATE> in <duration>``; exit 0 only on SUCCESS. On a terminal the tasks are
shown live (state, attempt, elapsed); in a pipe each task state change is one plain line.
Ctrl+C cancels the execution (``cancelled_by: system``, reason ``interrupted``), waits for its
plugin processes to be stopped and its logs to be written, and exits 130; SIGTERM and SIGHUP
do the same and exit 143 and 129.

    $ workflow run examples/workflows/hello.yaml --input name=ops
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from autokestra_engine import (
    EngineEvent,
    EngineRuntime,
    Workflow,
    WorkflowInvalid,
    load_workflow,
    workflow_limits,
)
from autokestra_obs_schema import State, StorageError, escape_control, format_duration_ms

from ._context import AppContext, pass_app
from ._engine_wiring import cli_engine_config, plugin_path_option
from ._errors import CliError, domain_errors
from ._styles import STATE_STYLES
from ._telemetry import observers_of, start_otlp_export, stop_otlp_export


def parse_input_options(values: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` options as a mapping (the value may itself contain ``=``).

    Raises:
        click.BadParameter: an option without ``=`` or with an empty key.
    """
    parsed: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--input")
        parsed[key.strip()] = value
    return parsed


@dataclass
class _TaskView:
    state: State = State.PENDING
    attempt: int | None = None
    started: float | None = None
    ended: float | None = None


class Progress:
    """Task states of the running execution, fed by engine events from any thread."""

    def __init__(self, workflow: Workflow, console: Console, *, live: bool) -> None:
        self._order = [task.id for task in workflow.all_tasks]
        self._tasks = {task_id: _TaskView() for task_id in self._order}
        self._console = console
        self._live = live
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def on_event(self, event: EngineEvent) -> None:
        """Record one engine event; in plain mode print it as one line."""
        if event.task_id is None:
            return
        with self._lock:
            view = self._tasks.get(event.task_id)
            if view is None:
                return
            view.state = State(event.state)
            if event.attempt is not None:
                view.attempt = event.attempt
            if view.state is State.RUNNING and view.started is None:
                view.started = event.timestamp
            if view.state.terminal:
                view.ended = event.timestamp
            if not self._live:
                self._print_line(event)

    def _print_line(self, event: EngineEvent) -> None:
        elapsed = format_duration_ms(int((event.timestamp - self._start) * 1000))
        parts = [f"[{elapsed:>7}]", escape_control(event.task_id or "-"), str(event.state)]
        if event.attempt is not None:
            parts.append(f"(attempt {event.attempt})")
        if event.reason:
            parts.append(escape_control(str(event.reason)))
        self._console.print(Text(" ".join(parts)))

    def render(self) -> RenderableType:
        """The live table: one row per task with state, attempt and elapsed time."""
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("TASK")
        table.add_column("STATE")
        table.add_column("ATTEMPT", justify="right")
        table.add_column("ELAPSED", justify="right")
        now = time.monotonic()
        with self._lock:
            for task_id in self._order:
                view = self._tasks[task_id]
                elapsed = "-"
                if view.started is not None:
                    end = view.ended if view.ended is not None else now
                    elapsed = format_duration_ms(int((end - view.started) * 1000))
                table.add_row(
                    Text(escape_control(task_id)),
                    Text(str(view.state), style=STATE_STYLES[view.state]),
                    Text(str(view.attempt) if view.attempt is not None else "-"),
                    Text(elapsed),
                )
        return table


#: Signals that stop a foreground run cleanly: Ctrl+C, ``kill``, and a closed terminal.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _stop_signals_set(event: threading.Event, received: list[int]) -> Iterator[None]:
    """While running, a stop signal only sets ``event`` (and is noted in ``received``).

    The engine then cancels the execution and stops its plugin processes: a
    KeyboardInterrupt raised in the middle of a database write would leave the execution
    half-recorded, and dying on SIGTERM would leave the plugins (each in its own session)
    running.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        event.set()

    previous = {signum: signal.signal(signum, handler) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _report_problems(app: AppContext, file: Path, exc: WorkflowInvalid, what: str) -> NoReturn:
    """Every problem on its own line (``<file>: <path>: <problem>``), then one error."""
    for problem in exc.problems:
        app.err.print(Text(escape_control(f"{file}: {problem}")))
    count = len(exc.problems)
    raise CliError(f"{file}: {what} ({count} problem{'s' if count != 1 else ''})") from exc


def _load(file: Path, runtime: EngineRuntime, app: AppContext) -> Workflow:
    with domain_errors():
        registry = runtime.registry
    try:
        return load_workflow(file, registry, workflow_limits(runtime.config))
    except WorkflowInvalid as exc:
        _report_problems(app, file, exc, "invalid workflow")


def _sweep_lost_executions(app: AppContext, runtime: EngineRuntime) -> None:
    """End executions a dead engine left RUNNING; a failed sweep never stops this run."""
    try:
        lost_executions = runtime.recover_lost_executions()
    except StorageError as exc:
        app.err.print(Text(escape_control(f"Warning: recovery sweep skipped: {exc}")))
        return
    for lost in lost_executions:
        app.err.print(
            Text(
                f"Recovered execution {lost.execution_id}: its engine process "
                f"{lost.engine_pid} was lost; marked FAILED (ENGINE_LOST)"
            )
        )


@click.command("run")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--input",
    "input_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Value of a declared workflow input (repeatable).",
)
@click.option("--detach", is_flag=True, help="Only queue the execution for `workflow server`.")
@plugin_path_option
@pass_app
def run_command(
    app: AppContext,
    file: Path,
    input_options: tuple[str, ...],
    detach: bool,
    plugin_paths: tuple[Path, ...],
) -> None:
    """Run a workflow file and show its tasks as they run.

    Prints `Execution <id> started` first and `Execution <id> <STATE> in <duration>` last;
    exits 0 only when the execution ends SUCCESS. Ctrl+C cancels it and exits 130.

    \b
    Example:
      workflow run examples/workflows/hello.yaml --input name=ops
      workflow run pipeline.yaml --detach
    """
    inputs = parse_input_options(input_options)
    config = cli_engine_config(app, plugin_paths)
    # A queued execution runs (and is exported) by the server that picks it up.
    exporter = None if detach else start_otlp_export(config)
    runtime = EngineRuntime(config, observers=observers_of(exporter))
    interrupted = threading.Event()
    received: list[int] = []
    try:
        workflow = _load(file, runtime, app)
        with domain_errors():
            engine = runtime.engine
        # Every engine process sweeps for executions a dead engine left RUNNING (DESIGN §3),
        # not only the server: a machine that only ever runs `workflow run` recovers too.
        _sweep_lost_executions(app, runtime)
        with domain_errors():
            try:
                execution_id = engine.create_execution(workflow, inputs, detached=detach)
            except WorkflowInvalid as exc:
                _report_problems(app, file, exc, "cannot run")
        if detach:
            app.out.print(Text(f"Execution {execution_id} queued"))
            return
        app.out.print(Text(f"Execution {execution_id} started"))
        progress = Progress(workflow, app.out, live=app.out.is_terminal)
        # A storage failure the engine could not even record the end of arrives here as
        # `Error: cannot record execution <id>: <reason>` (DESIGN.md §6.2), exit 1.
        with domain_errors(), _stop_signals_set(interrupted, received):
            if app.out.is_terminal:
                with Live(
                    console=app.out,
                    get_renderable=progress.render,
                    refresh_per_second=8,
                    transient=False,
                ):
                    outcome = engine.run(
                        execution_id, on_event=progress.on_event, interrupt=interrupted
                    )
            else:
                outcome = engine.run(
                    execution_id, on_event=progress.on_event, interrupt=interrupted
                )
    finally:
        runtime.close()
        stop_otlp_export(exporter)
    state, duration = outcome.state, format_duration_ms(outcome.duration_ms)
    if state is not State.SUCCESS and outcome.message:
        app.err.print(Text(escape_control(f"Execution {state.lower()}: {outcome.message}")))
    app.out.print(Text(f"Execution {execution_id} {state} in {duration}"))
    if received and received[0] != signal.SIGINT:
        # SIGTERM / SIGHUP: the conventional 128 + signal number, after a clean cancel.
        app.err.print(Text(f"Stopped by {signal.Signals(received[0]).name}"))
        click.get_current_context().exit(128 + received[0])
    if interrupted.is_set():
        raise KeyboardInterrupt
    if state is not State.SUCCESS:
        click.get_current_context().exit(1)
