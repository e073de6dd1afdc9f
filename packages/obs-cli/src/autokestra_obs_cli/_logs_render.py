"""Rendering log records: one text line per entry, or one JSON object.

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
from json.encoder import encode_basestring_ascii
from typing import Any

from rich.cells import cell_len
from rich.text import Text

from autokestra_obs_schema import iso_from_ms
from autokestra_obs_store import LogRecord

from ._escape import escape_control

#: rich styles by level (CLI.md: ERROR red, WARN yellow, INFO default, DEBUG dim).
LEVEL_STYLES: dict[str, str] = {"ERROR": "red", "WARN": "yellow", "DEBUG": "dim"}


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
        text = Text()
        for record in records:
            text.append(self.line(record), style=LEVEL_STYLES.get(record.level) or None)
        return text


def _json_str(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def _json_int(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def record_json(record: LogRecord, clock: IsoClock) -> str:
    """The JSON object of one entry on one line (CLI.md's keys, in this order).

    Assembled from the C string encoder of the json module rather than by ``json.dumps`` of a
    dict: three times faster, and byte-for-byte what ``json.dumps`` would print (a test
    checks). Strings are ASCII-escaped (``ensure_ascii``); timestamp is ISO-8601.
    """
    id_, execution_id, task_id, attempt, timestamp, level, source, message, stored = record
    # Parsed and encoded again, not copied: the stored text need not be ASCII-only.
    metadata = "null" if stored is None else json.dumps(record.metadata)
    return (
        f'{{"id": {_json_int(id_)}, '
        f'"execution_id": {_json_str(execution_id)}, '
        f'"task_id": {_json_str(task_id)}, '
        f'"attempt": {_json_int(attempt)}, '
        f'"timestamp": "{clock.iso(timestamp)}", '
        f'"level": {_json_str(level)}, '
        f'"source": {_json_str(source)}, '
        f'"message": {_json_str(message)}, '
        f'"metadata": {metadata}}}'
    )


def record_object(record: LogRecord, clock: IsoClock) -> dict[str, Any]:
    """The entry as a dict with CLI.md's keys (what :func:`record_json` encodes)."""
    return {
        "id": record.id,
        "execution_id": record.execution_id,
        "task_id": record.task_id,
        "attempt": record.attempt,
        "timestamp": clock.iso(record.timestamp),
        "level": record.level,
        "source": record.source,
        "message": record.message,
        "metadata": record.metadata,
    }


def to_json(value: object) -> str:
    """ASCII-only JSON on one line (CLI.md: ``ensure_ascii``; never colour).

    ``json.dumps`` with every argument at its default (``ensure_ascii=True``, separators
    ``", "``/``": "``) reuses one cached C encoder; any explicit argument builds a new encoder
    per call, which tripled the cost of ``--json`` on 100,000 entries.
    """
    return json.dumps(value)
