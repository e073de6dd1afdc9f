"""Display helpers the templates use as filters: durations, short ids, visible controls, JSON.

HTML escaping itself is Jinja2's autoescape; these make untrusted text *readable and inert*
beyond that: a control or bidi character (an ANSI escape, U+202E) is shown as ``\\xHH`` /
``\\uHHHH`` exactly as the CLI shows it, so a log line can neither hide nor reorder text.

    format_duration_ms(90_000)        # '1m 30s'
    visible("red\\x1b[31m")           # 'red\\\\x1b[31m'
    short_id("0193a0c4-5d7e-7c1a-9f00-8d2b6c1e4a10")  # '…6c1e4a10'
"""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup, escape

from autokestra_obs_schema import escape_control, format_duration_ms, iso_from_ms, ms_from_iso


def visible(text: object) -> str:
    """``text`` with C0 (but newline and tab), DEL, C1 and bidi controls made visible."""
    return escape_control("" if text is None else str(text))


def short_id(execution_id: object) -> str:
    """The last 8 characters of an id, after an ellipsis (the full id is one click to copy).

    The end, not the start: execution ids are UUIDv7, whose first characters are the
    creation time, so executions started in the same minute share them.
    """
    return "\u2026" + str(execution_id)[-8:]


def pretty_json(value: Any) -> str:
    """A value as indented JSON (ASCII only: non-ASCII and controls become ``\\u`` escapes)."""
    return json.dumps(value, indent=2, ensure_ascii=True, sort_keys=False)


def short_time(iso: str | None) -> str:
    """``2026-11-25T18:52:01.123Z`` shown as ``2026-11-25 18:52:01`` (``-`` when unset)."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


def elapsed(started_iso: str | None, ended_iso: str | None) -> str:
    """The duration between two ISO timestamps of an ``execution list --json`` object.

    ``-`` before the start; ``running`` while there is no end.
    """
    if not started_iso:
        return "-"
    if not ended_iso:
        return "running"
    return format_duration_ms(max(0, ms_from_iso(ended_iso) - ms_from_iso(started_iso)))


def iso_ms(ms: int | None) -> str:
    """Unix milliseconds as ISO-8601 UTC (``-`` when unset)."""
    return "-" if ms is None else iso_from_ms(ms)


def state_badge(state: object) -> Markup:
    """A state as a coloured badge (``<span class="state state-failed">FAILED</span>``).

    A filter rather than a template macro: the task table of a 500-task execution calls it
    hundreds of times, and a Jinja2 macro call costs several times a function call.
    """
    text = escape(str(state))
    return Markup(f'<span class="state state-{text.lower()}">{text}</span>')
