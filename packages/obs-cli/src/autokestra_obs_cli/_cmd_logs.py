"""``workflow execution logs ID``: print, filter and follow an execution's log.

Output is streamed page by page (memory does not grow with the log); text goes to stdout
(colour by level only on a terminal), ``--json``/``--jsonl`` straight to stdout as ASCII JSON,
informational messages ("No logs found ...") to stderr.

    $ workflow execution logs 0193a5b2-... --level error,warn --since 1h
    $ workflow execution logs 0193a5b2-... --follow --jsonl
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import TextIO

import click

from autokestra_obs_schema import (
    UNSUCCESSFUL_STATES,
    DatabaseNotFound,
    ExecutionNotFound,
    escape_control,
)
from autokestra_obs_store import (
    LogFilter,
    LogRecord,
    LogStore,
    log_record_json,
    parse_levels,
    parse_since,
)

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors
from ._logs_render import IsoClock, TextRenderer, to_json
from ._types import COUNT

#: Records buffered before they are rendered and written (one write per page).
_CHUNK = 1000


class _Output:
    """Writes one output format to stdout; the caller flushes when it may block."""

    def __init__(self, mode: str, app: AppContext, color: bool) -> None:
        self.mode = mode
        self.count = 0
        self._app = app
        self._color = color
        self._stream: TextIO = sys.stdout
        if mode == "text" and isinstance(self._stream, io.TextIOWrapper):
            # A terminal or pipe whose encoding cannot show some character (LANG=...ISO-8859-1,
            # PYTHONIOENCODING=ascii) gets \xNN/\uNNNN escapes instead of an error mid-output.
            self._stream.reconfigure(errors="backslashreplace")
        self._renderer = TextRenderer()
        self._clock = IsoClock()
        self._pending: list[LogRecord] = []

    def start(self) -> None:
        if self.mode == "json":
            self._stream.write("[")

    def add(self, record: LogRecord) -> None:
        self._pending.append(record)
        if len(self._pending) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._write(pending)
            self.count += len(pending)
        self._stream.flush()

    def _write(self, records: Iterable[LogRecord]) -> None:
        if self.mode == "text":
            if self._color:
                # One rich render per page, not per entry (rich costs ~50 us per print).
                self._app.out.print(self._renderer.styled_page(records), end="")
                return
            self._stream.write(self._renderer.page(records))
        elif self.mode == "jsonl":
            iso = self._clock.iso
            self._stream.write("".join([log_record_json(r, iso) + "\n" for r in records]))
        else:
            iso = self._clock.iso
            sep = "\n" if self.count == 0 else ",\n"
            body = ",\n".join([log_record_json(r, iso) for r in records])
            self._stream.write(sep + body)

    def finish(self) -> None:
        self.flush()
        if self.mode == "json":
            self._stream.write("\n]\n" if self.count else "]\n")
        self._stream.flush()

    def end_record(self, execution_id: str, state: str) -> None:
        self._stream.write(
            to_json({"type": "end", "execution_id": execution_id, "state": state}) + "\n"
        )
        self._stream.flush()


def _build_filter(
    *,
    task_id: str | None,
    levels: str | None,
    since: str | None,
    source: str | None,
    grep: str | None,
    attempt: int | None,
    tail: int | None,
) -> LogFilter:
    with domain_errors():
        return LogFilter(
            levels=parse_levels(levels) if levels is not None else None,
            since_ms=parse_since(since) if since is not None else None,
            task_id=task_id,
            source=source or None,
            text=grep or None,
            attempt=attempt,
            tail=tail,
        )


def _open_store(app: AppContext, execution_id: str) -> LogStore:
    # No database file means no execution can exist: say so in CLI.md's words rather than
    # talk about files (docs/cli/logs.md, "Missing database").
    try:
        conn = app.reader()
    except CliError as exc:
        if isinstance(exc.__cause__, DatabaseNotFound):
            raise _not_found(execution_id) from exc
        raise
    return LogStore(conn)


def _not_found(execution_id: str) -> CliError:
    return CliError(f"Execution not found: {escape_control(execution_id, keep_newlines=False)}")


@click.command("logs")
@click.argument("execution_id")
@click.option(
    "--task",
    "task_id",
    metavar="ID",
    help="Only the entries of this task (a for_each task: with all its iterations; "
    "ID[N]: iteration N).",
)
@click.option(
    "--level",
    "levels",
    metavar="LEVELS",
    help="Comma-separated levels to show, case-insensitive: DEBUG, INFO, WARN, ERROR.",
)
@click.option(
    "--since",
    metavar="WHEN",
    help="Entries from this time on: a duration back from now (30s, 5m, 2h, 1d, 1h30m) "
    "or an ISO-8601 timestamp with a zone (2026-11-25T18:00:00Z).",
)
@click.option(
    "--source", metavar="PREFIX", help="Entries whose source starts with PREFIX (plugin, ...)."
)
@click.option(
    "--grep", metavar="TEXT", help="Entries whose message contains TEXT (case-insensitive)."
)
@click.option(
    "--attempt",
    type=COUNT,
    metavar="N",
    help="Entries of attempt N of a task (usually with --task).",
)
@click.option("--tail", type=COUNT, metavar="N", help="Only the last N matching entries.")
@click.option(
    "-f",
    "--follow",
    is_flag=True,
    help="Keep printing new entries until the execution ends (Ctrl+C to stop).",
)
@click.option(
    "--exit-status",
    is_flag=True,
    help="Exit 1 when the execution ended FAILED or CANCELLED.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of entries.")
@click.option(
    "--jsonl",
    "as_jsonl",
    is_flag=True,
    help="Print one JSON object per line (with --follow too, then ending with an end record).",
)
@click.option("--no-color", is_flag=True, help="Never colour the output.")
@pass_app
def logs_command(
    app: AppContext,
    *,
    execution_id: str,
    task_id: str | None,
    levels: str | None,
    since: str | None,
    source: str | None,
    grep: str | None,
    attempt: int | None,
    tail: int | None,
    follow: bool,
    exit_status: bool,
    as_json: bool,
    as_jsonl: bool,
    no_color: bool,
) -> int:
    """Show the log of an execution, oldest first.

    \b
    Examples:
      workflow execution logs 0193a5b2-7c1e-7d3f-9a4b-5c6d7e8f9a0b
      workflow execution logs <id> --task build --level error,warn --since 1h
      workflow execution logs <id> --task 'resize[3]'
      workflow execution logs <id> --follow --jsonl
    """
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl cannot be used together.")
    flt = _build_filter(
        task_id=task_id,
        levels=levels,
        since=since,
        source=source,
        grep=grep,
        attempt=attempt,
        tail=tail,
    )
    store = _open_store(app, execution_id)
    mode = "json" if as_json else "jsonl" if as_jsonl else "text"
    output = _Output(mode, app, color=app.color and not no_color and mode == "text")
    try:
        if follow:
            follower = store.follow(execution_id, flt, on_idle=output.flush)
            records: Iterable[LogRecord] = follower
        else:
            records = store.logs_for_execution(execution_id, flt)
    except ExecutionNotFound as exc:
        raise _not_found(execution_id) from exc
    # A closed pipe (`| head`) propagates: the root group ends every command quietly then.
    output.start()
    try:
        # The execution can vanish mid-follow (retention): that is "not found", exit 1.
        with domain_errors():
            for record in records:
                output.add(record)
    except BrokenPipeError:
        raise  # nobody reads any more: nothing to finish
    except BaseException:
        # Whatever ends the loop (Ctrl+C: exit 130; the engine gone: exit 1), print what was
        # read and leave valid JSON behind before the error.
        output.finish()
        raise
    output.finish()
    state = follower.final_state if follow else None
    if follow and mode == "jsonl" and state is not None:
        output.end_record(execution_id, state)
    if output.count == 0:
        _no_logs(execution_id, task_id)
    if exit_status:
        if state is None:
            with domain_errors():
                state = store.execution_state(execution_id)
        if state in UNSUCCESSFUL_STATES:
            return 1
    return 0


def _no_logs(execution_id: str, task_id: str | None) -> None:
    eid = escape_control(execution_id, keep_newlines=False)
    if task_id is not None:
        task = escape_control(task_id, keep_newlines=False)
        message = f"No logs found for task {task} in execution {eid}"
    else:
        message = f"No logs found for execution {eid}"
    click.echo(message, err=True)
