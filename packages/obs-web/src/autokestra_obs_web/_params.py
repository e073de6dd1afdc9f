"""Parsing the query parameters the console accepts; bad values are a 400 with a message.

Views stay thin: they hand the request's query to these parsers and get typed values back.

    state = state_param(request.query_params)            # None, or a State
    before = execution_cursor(request.query_params.get("before"))
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.exceptions import HTTPException

from autokestra_obs_schema import State
from autokestra_obs_store import (
    ExecutionCursor,
    InvalidFilter,
    LogFilter,
    SearchFilter,
    parse_levels,
)

#: An execution-list cursor: ``<created_at ms>_<execution_id>``.
_CURSOR = re.compile(r"(-?\d{1,19})_([A-Za-z0-9-]{1,64})", re.ASCII)
_MAX_ID = 2**63 - 1


def bad_request(message: str) -> HTTPException:
    """A 400 whose detail is shown to the user (JSON for the API, a page otherwise)."""
    return HTTPException(status_code=400, detail=message)


def state_param(query: Mapping[str, str]) -> State | None:
    """The ``state`` filter (any case), or None when absent or empty."""
    text = query.get("state", "").strip().upper()
    if not text:
        return None
    try:
        return State(text)
    except ValueError:
        allowed = ", ".join(s.value for s in State)
        raise bad_request(f"Invalid state. Must be one of: {allowed}") from None


def text_param(query: Mapping[str, str], name: str, *, limit: int = 256) -> str | None:
    """A free-text parameter, or None when absent or blank."""
    text = query.get(name, "").strip()
    if not text:
        return None
    if len(text) > limit:
        raise bad_request(f"Invalid {name}: longer than {limit} characters")
    return text


def int_param(
    query: Mapping[str, str], name: str, *, default: int | None, low: int, high: int = _MAX_ID
) -> int | None:
    """An integer parameter within ``[low, high]``, or ``default`` when absent."""
    text = query.get(name, "").strip()
    if not text:
        return default
    if not re.fullmatch(r"\d{1,19}", text, re.ASCII) or not low <= int(text) <= high:
        raise bad_request(f"Invalid {name}: must be an integer from {low} to {high}")
    return int(text)


def execution_cursor(text: str | None) -> ExecutionCursor | None:
    """Decode a list cursor (``<created_at ms>_<execution_id>``); None when absent."""
    if not text:
        return None
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise bad_request("Invalid before: not a cursor from a previous page")
    return ExecutionCursor(int(found.group(1)), found.group(2))


def encode_cursor(cursor: ExecutionCursor | None) -> str | None:
    """The text form of a list cursor (what ``before=`` takes back)."""
    return None if cursor is None else f"{cursor.created_at}_{cursor.execution_id}"


def log_filter(query: Mapping[str, str]) -> LogFilter:
    """The log filters of a logs request: ``task``, ``level`` (comma list) and ``text``."""
    levels_text = query.get("level", "").strip()
    try:
        return LogFilter(
            levels=parse_levels(levels_text) if levels_text else None,
            task_id=text_param(query, "task", limit=64),
            text=text_param(query, "text", limit=4096),
        )
    except InvalidFilter as exc:
        raise bad_request(str(exc)) from None


def search_filter(query: Mapping[str, str]) -> SearchFilter:
    """The filters of a search: ``workflow``, ``task`` and ``level`` (comma list)."""
    levels_text = query.get("level", "").strip()
    try:
        levels = parse_levels(levels_text) if levels_text else None
    except InvalidFilter as exc:
        raise bad_request(str(exc)) from None
    return SearchFilter(
        workflow_id=text_param(query, "workflow", limit=64),
        task_id=text_param(query, "task", limit=64),
        levels=levels,
    )
