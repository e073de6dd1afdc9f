"""``workflow logs search QUERY...``: full-text search over every execution's stored log.

One line per hit, newest first: ``<execution_id> <the execution logs line>``; on a terminal
the matched words are highlighted (bold, reversed) and lines coloured by level. ``--json`` is
an array of the ``execution logs --json`` records plus ``workflow_id``; ``--jsonl`` one per
line. Nothing found: nothing on stdout (``[]`` with ``--json``) and ``No matching log
entries`` on stderr, exit 0.

    $ workflow logs search connection refused --since 7d
    $ workflow logs search '"exit code 137"' --workflow nightly-etl --json
"""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING

import click

from autokestra_obs_schema import DatabaseNotFound, escape_control
from autokestra_obs_store import (
    DEFAULT_SEARCH_LIMIT,
    InvalidSearchQuery,
    LogRecord,
    LogStore,
    SearchFilter,
    SearchHit,
    parse_levels,
    parse_since,
    search_hit_document,
)

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors
from ._logs_render import IsoClock, TextRenderer, to_json
from ._styles import LEVEL_STYLES

if TYPE_CHECKING:  # rich only when highlighting on a terminal: half of a piped search's CPU
    from rich.text import Text

#: stderr when nothing matched (CLI.md).
NO_MATCH_MESSAGE = "No matching log entries"
#: How a matched word looks on a terminal.
MATCH_STYLE = "bold reverse"


class HitRenderer:
    """Formats hits as ``<execution_id> <logs line>``, plain or with highlighted matches.

    The line after the execution id is exactly what ``workflow execution logs`` prints for
    the entry (same renderer); continuation lines of a multi-line message are indented to
    the column where the message starts, the execution id included.
    """

    def __init__(self) -> None:
        self._lines = TextRenderer()

    def _head(self, hit: SearchHit) -> str:
        record = hit.record
        execution_id = escape_control(record.execution_id, keep_newlines=False)
        # The logs line of the entry without its message is the prefix the message follows.
        bare = LogRecord((*record[:7], "", None))
        return f"{execution_id} {self._lines.line(bare)[:-1]}"

    def line(self, hit: SearchHit) -> str:
        """The hit as text, ending with a newline."""
        head = self._head(hit)
        return head + self._message(hit.record.message, head) + "\n"

    def styled(self, hit: SearchHit) -> Text:
        """The hit as rich ``Text``: level colour, matched words in :data:`MATCH_STYLE`."""
        from rich.text import Text

        head = self._head(hit)
        style = LEVEL_STYLES.get(hit.record.level) or ""
        text = Text(head, style=style)
        for piece, matched in hit.segments():
            rendered = self._message(piece, head)
            text.append(rendered, style=f"{style} {MATCH_STYLE}".strip() if matched else style)
        text.append("\n", style=style)
        return text

    @staticmethod
    def _message(message: str, head: str) -> str:
        # Escaping is per character, so the pieces of a message escape to the pieces of
        # its escaped whole.
        escaped = escape_control(message)
        if "\n" in escaped:
            from rich.cells import cell_len  # only multi-line messages need the cell width

            escaped = escaped.replace("\n", "\n" + " " * cell_len(head))
        return escaped


def _parse_time(value: str | None) -> int | None:
    if value is None:
        return None
    with domain_errors():
        return parse_since(value)


def _filter(
    workflow_id: str | None,
    task_id: str | None,
    levels: str | None,
    since: str | None,
    until: str | None,
) -> SearchFilter:
    with domain_errors():
        chosen = parse_levels(levels) if levels is not None else None
    return SearchFilter(
        workflow_id=workflow_id,
        task_id=task_id,
        levels=chosen,
        since_ms=_parse_time(since),
        until_ms=_parse_time(until),
    )


def _store(app: AppContext) -> LogStore | None:
    """The store, or ``None`` when there is no database (then nothing can match)."""
    try:
        conn = app.reader()
    except CliError as exc:
        if isinstance(exc.__cause__, DatabaseNotFound):
            return None
        raise
    return LogStore(conn)


@click.command("search")
@click.argument("words", nargs=-1, required=True, metavar="QUERY...")
@click.option("--workflow", "workflow_id", metavar="ID", help="Only executions of this workflow.")
@click.option("--task", "task_id", metavar="ID", help="Only the entries of this task.")
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
    "--until",
    metavar="WHEN",
    help="Entries up to this time (included): a duration back from now or a timestamp.",
)
@click.option(
    "--limit",
    # Bound to SQLite's INTEGER: a larger number cannot be bound (a usage error, not a crash).
    type=click.IntRange(min=1, max=2**63 - 1),
    default=DEFAULT_SEARCH_LIMIT,
    show_default=True,
    metavar="N",
    help="At most N hits (the newest).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of entries.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print one JSON object per line.")
@pass_app
def search_command(
    app: AppContext,
    *,
    words: tuple[str, ...],
    workflow_id: str | None,
    task_id: str | None,
    levels: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
    as_jsonl: bool,
) -> None:
    """Search the log entries of every execution, newest first.

    QUERY uses SQLite FTS5 syntax (several words are joined with spaces): every word must
    match, case-insensitively; "exact phrase" in double quotes; prefix* for a word's start.
    Quote the query for your shell when it holds quotes or a *.

    \b
    Examples:
      workflow logs search connection refused
      workflow logs search '"exit code 137"' --workflow nightly-etl --since 7d
      workflow logs search 'time*' --level error,warn --limit 20 --json
    """
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl cannot be used together.")
    flt = _filter(workflow_id, task_id, levels, since, until)
    query = " ".join(words)
    store = _store(app)
    mode = "json" if as_json else "jsonl" if as_jsonl else "text"
    highlight = mode == "text" and app.color
    hits: list[SearchHit] = []
    if store is not None:
        try:
            hits = list(store.search(query, flt, limit=limit, highlight=highlight))
        except InvalidSearchQuery as exc:
            raise CliError(escape_control(str(exc), keep_newlines=False)) from exc
    _print(app, mode, hits, highlight)
    if not hits:
        click.echo(NO_MATCH_MESSAGE, err=True)


def _document(hit: SearchHit, clock: IsoClock) -> str:
    return to_json(search_hit_document(hit, clock.iso))


def _print(app: AppContext, mode: str, hits: list[SearchHit], highlight: bool) -> None:
    stream = sys.stdout
    clock = IsoClock()
    if mode == "json":
        body = ",\n".join(_document(hit, clock) for hit in hits)
        stream.write(f"[\n{body}\n]\n" if hits else "[]\n")
    elif mode == "jsonl":
        stream.write("".join(_document(hit, clock) + "\n" for hit in hits))
    elif highlight:
        from rich.text import Text

        text = Text()
        renderer = HitRenderer()
        for hit in hits:
            text.append_text(renderer.styled(hit))
        app.out.print(text, end="")
    else:
        if isinstance(stream, io.TextIOWrapper):
            # As `execution logs`: an encoding that cannot show a character gets an escape.
            stream.reconfigure(errors="backslashreplace")
        renderer = HitRenderer()
        stream.write("".join(map(renderer.line, hits)))
    stream.flush()
