"""The JSON API and the live log stream (DESIGN.md §7): the CLI's ``--json`` objects.

- ``GET /api/executions?workflow=&state=&before=&limit=``: an array as ``execution list
  --json``, newest first; the next page's URL is in the ``Link: <...>; rel="next"`` header.
- ``GET /api/executions/<id>``: the object of ``inspect --json``.
- ``GET /api/executions/<id>/logs?after=&before=&task=&level=&text=&limit=``: ``{records: [as
  logs --json], next_after, next_before, state}``.
- ``GET /api/search?q=``: full-text search hits as ``logs search --json``.
- ``GET /api/executions/<id>/logs/stream``: Server-Sent Events, one ``message`` per record
  (``id:`` the log id, ``data:`` the record), resumable with ``Last-Event-ID`` (or
  ``?after=``), ending with an ``end`` event ``{"type": "end", "execution_id", "state"}``.

    curl -H "Authorization: Bearer $TOKEN" http://host:8080/api/executions?state=FAILED
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from autokestra_obs_schema import TERMINAL_STATES
from autokestra_obs_store import (
    ExecutionInspector,
    LogFilter,
    LogPage,
    LogRecord,
    LogStore,
    inspection_document,
    log_page,
    log_record_document,
    log_record_json,
    search_hit_document,
)

from ._console import Console, not_found
from ._listing import list_page
from ._pages import search_context
from ._params import (
    encode_cursor,
    execution_cursor,
    int_param,
    log_filter,
    state_param,
    text_param,
)

#: Seconds between polls of a live stream (the CLI's ``--follow`` polls every 100 ms).
STREAM_POLL_S = 0.1
#: Seconds between SSE comments on an idle stream, so proxies keep the connection open.
KEEPALIVE_S = 15.0
#: Records per page of the logs API and per read of the stream.
LOG_PAGE_LIMIT = 1000


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(value, ensure_ascii=True).encode()
    return Response(body, status, headers=headers, media_type="application/json")


async def executions(request: Request) -> Response:
    """``/api/executions``: a keyset page of ``execution list --json`` objects."""
    console = Console.of(request)
    query = request.query_params
    workflow_id = text_param(query, "workflow", limit=64)
    state = state_param(query)
    before = execution_cursor(query.get("before"))
    limit = int_param(query, "limit", default=50, low=1, high=1000) or 50

    def read() -> Any:
        with console.pool.connection() as conn:
            return list_page(conn, workflow_id=workflow_id, state=state, before=before, limit=limit)

    page = await run_in_threadpool(read)
    headers: dict[str, str] = {}
    cursor = encode_cursor(page.next_before)
    if cursor is not None:
        params = dict(query)
        params["before"] = cursor
        url = request.url.include_query_params(**params)
        headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return _json(page.executions, headers=headers)


async def execution(request: Request) -> Response:
    """``/api/executions/<id>``: the ``inspect --json`` object; 404 for an unknown id."""
    console = Console.of(request)
    execution_id = request.path_params["execution_id"]

    def read() -> dict[str, Any]:
        with console.pool.connection() as conn:
            snapshot = ExecutionInspector(conn).snapshot(execution_id)
        return inspection_document(snapshot)

    with not_found():
        document = await run_in_threadpool(read)
    return _json(document)


def _read_page(
    console: Console,
    execution_id: str,
    flt: LogFilter,
    *,
    after: int | None,
    before: int | None,
    limit: int,
) -> LogPage:
    with console.pool.connection() as conn:
        return log_page(LogStore(conn), execution_id, flt, after=after, before=before, limit=limit)


async def logs(request: Request) -> Response:
    """``/api/executions/<id>/logs``: one page of records after (or before) a log id."""
    console = Console.of(request)
    execution_id = request.path_params["execution_id"]
    query = request.query_params
    flt = log_filter(query)
    after = int_param(query, "after", default=None, low=0)
    before = int_param(query, "before", default=None, low=1)
    if after is not None and before is not None:
        return _json({"error": "Give after or before, not both"}, 400)
    limit = int_param(query, "limit", default=LOG_PAGE_LIMIT, low=1, high=LOG_PAGE_LIMIT)
    with not_found():
        page = await run_in_threadpool(
            _read_page,
            console,
            execution_id,
            flt,
            after=after,
            before=before,
            limit=limit or LOG_PAGE_LIMIT,
        )
    return _json(
        {
            "records": [log_record_document(r) for r in page.records],
            "next_after": page.next_after,
            "next_before": page.next_before,
            "state": page.state,
        }
    )


def _event(record: LogRecord) -> str:
    # log_record_json is logs --jsonl's encoder: the same bytes as json.dumps of the document.
    return f"id: {record.id}\ndata: {log_record_json(record)}\n\n"


async def _stream(
    console: Console, execution_id: str, flt: LogFilter, after: int
) -> AsyncIterator[str]:
    """The events of the stream: every matching record after ``after``, then ``end``.

    Ends like ``logs --follow``: once a read that started after the execution was seen
    terminal (and one poll interval later, for a batch committed just after the state
    change) finds nothing new.
    """
    cursor = after
    seen_terminal = False
    idle = 0.0
    loop = asyncio.get_running_loop()
    while True:
        started_terminal = seen_terminal
        page = await run_in_threadpool(
            _read_page,
            console,
            execution_id,
            flt,
            after=cursor,
            before=None,
            limit=LOG_PAGE_LIMIT,
        )
        if page.records:
            yield "".join(_event(r) for r in page.records)
            idle = 0.0
        advanced = page.next_after > cursor
        cursor = page.next_after
        if len(page.records) == LOG_PAGE_LIMIT:
            continue  # more is already there: read it at once
        if started_terminal and not advanced:
            end = {"type": "end", "execution_id": execution_id, "state": page.state}
            yield f"event: end\ndata: {json.dumps(end, ensure_ascii=True)}\n\n"
            return
        if page.state in TERMINAL_STATES:
            seen_terminal = True
        if console.stopping.is_set():
            return
        before_sleep = loop.time()
        await asyncio.sleep(STREAM_POLL_S)
        idle += loop.time() - before_sleep
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield ": keepalive\n\n"


async def log_stream(request: Request) -> Response:
    """``/api/executions/<id>/logs/stream``: Server-Sent Events of the execution's log."""
    console = Console.of(request)
    execution_id = request.path_params["execution_id"]
    query = request.query_params
    flt = log_filter(query)
    resume = request.headers.get("last-event-id", "").strip()
    after = int_param({"after": resume} if resume else query, "after", default=0, low=0) or 0
    # Check the id before the 200 goes out: an unknown execution is a 404, not an empty stream.
    with not_found():
        await run_in_threadpool(
            _read_page, console, execution_id, flt, after=None, before=1, limit=1
        )
    return StreamingResponse(
        _stream(console, execution_id, flt, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def search(request: Request) -> Response:
    """``/api/search?q=&workflow=&task=&level=&before=&limit=``: hits as ``logs search
    --json``, newest first; the next page's URL is in the ``Link`` header."""
    console = Console.of(request)
    context = await run_in_threadpool(search_context, console, request.query_params)
    headers: dict[str, str] = {}
    if context["next_before"] is not None:
        url = request.url.include_query_params(before=context["next_before"])
        headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return _json([search_hit_document(hit) for hit in context["hits"]], headers=headers)


async def healthz(request: Request) -> Response:
    """``/healthz``: 200 while the process serves (the database is not touched)."""
    del request
    return JSONResponse({"status": "ok"})
