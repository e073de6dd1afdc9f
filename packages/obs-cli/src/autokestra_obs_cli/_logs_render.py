"""Rendering log records as text lines (the JSON objects are obs-store's ``log_record_json``).

Text: ``<ISO ts> <LEVEL padded to 5> [<source>] <task_id or -> <message>``; continuation
lines of a multi-line message are indented to the column where the message starts. Every
untrusted field (source, task id, message) goes through :func:`escape_control`, so terminal
escapes from plugin output are shown, never interpreted; rich never sees a markup string.

    renderer = TextRenderer()
    sys.stdout.write(renderer.line(record))
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from autokestra_obs_schema import escape_control, iso_from_ms
from autokestra_obs_store import LogRecord

from ._styles import LEVEL_STYLES

if TYPE_CHECKING:
    from rich.text import Text


class IsoClock:
    """``iso_from_ms`` with the seconds part cached: log timestamps come in bursts."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, ms: int) -> str:
        """Return ``ms`` as ``2026-11-25T18:52:01.123Z``."""
        second, millis = divmod(ms, 1000)
        if second != self._second:
            self._second = second
            self._prefix = iso_from_ms(second * 1000)[:-4]  # drop "000Z"
        return f"{self._prefix}{millis:03d}Z"


def _escape_message(message: str) -> str:
    # Fast path: printable ASCII has nothing to escape (isascii is O(1), isprintable a C loop;
    # both are false for control characters, newline and tab included).
    if message.isascii() and message.isprintable():
        return message
    return escape_control(message)


class TextRenderer:
    """Formats records as the human text lines of CLI.md (without colour)."""

    def __init__(self) -> None:
        self._clock = IsoClock()
        # Sources and task ids repeat on almost every line: escape each distinct one once.
        self._labels: dict[tuple[str, str | None], str] = {}

    def _label(self, source: str, task_id: str | None) -> str:
        key = (source, task_id)
        label = self._labels.get(key)
        if label is None:
            if len(self._labels) > 4096:  # bound the cache on pathological logs
                self._labels.clear()
            label = (
                f"[{escape_control(source, keep_newlines=False)}] "
                f"{escape_control(task_id or '-', keep_newlines=False)} "
            )
            self._labels[key] = label
        return label

    def line(self, record: LogRecord) -> str:
        """The entry as text, ending with a newline (several lines if the message has some)."""
        # One unpacking reads the columns faster than five attribute lookups.
        _, _, task_id, _, timestamp, level, source, message, _ = record
        prefix = f"{self._clock.iso(timestamp)} {level:<5} {self._label(source, task_id)}"
        message = _escape_message(message)
        if "\n" in message:
            from rich.cells import cell_len  # only multi-line messages need the cell width

            indent = "\n" + " " * cell_len(prefix)
            message = message.replace("\n", indent)
        return f"{prefix}{message}\n"

    def page(self, records: Iterable[LogRecord]) -> str:
        """Several entries as one string (one write per page)."""
        return "".join(map(self.line, records))

    def styled_page(self, records: Iterable[LogRecord]) -> Text:
        """Several entries as one rich ``Text``, each coloured by its level.

        Built from already-escaped plain strings with ``append`` (never markup), so a ``[bold]``
        in a message stays text.
        """
        from rich.text import Text  # rich only when rendering in colour

        text = Text()
        for record in records:
            text.append(self.line(record), style=LEVEL_STYLES.get(record.level) or None)
        return text


def to_json(value: object) -> str:
    """ASCII-only JSON on one line (CLI.md: ``ensure_ascii``; never colour).

    ``json.dumps`` with every argument at its default (``ensure_ascii=True``, separators
    ``", "``/``": "``) reuses one cached C encoder; any explicit argument builds a new encoder
    per call, which tripled the cost of ``--json`` on 100,000 entries.
    """
    return json.dumps(value)
