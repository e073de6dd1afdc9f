"""The HTML pages: thin views that read through obs-store and render a template.

Each page renders the same document its JSON twin serves (obs-store's ``*_document``
serializers, the CLI's ``--json``), so what a person sees and what ``/api`` returns cannot
disagree.

- ``/``: executions, newest first, filters by state and workflow, keyset pages.
- ``/executions/<id>``: overview, tasks with attempts, errors, outputs, masked inputs, the
  Gantt chart, the live log, the audit trail with the verification result.
- ``/workflows``: registered workflows and their next cron fire.
- ``/search``: full-text search over every execution's log (``workflow logs search``).
- ``/login``: the token form that sets the session cookie.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from autokestra_obs_schema import State
from autokestra_obs_store import (
    ExecutionInspector,
    InvalidSearchQuery,
    LogStore,
    inspection_document,
    registered_workflows,
)

from ._console import Console, not_found
from ._gantt import gantt_chart
from ._listing import list_page
from ._params import (
    bad_request,
    encode_cursor,
    execution_cursor,
    int_param,
    search_filter,
    state_param,
    text_param,
)
from ._security import SESSION_COOKIE, session_value
from ._task_groups import drawn_lanes, task_rows

#: Executions per list page.
LIST_PAGE_SIZE = 50
#: Up to this many tasks, every task's details are on the execution page; beyond it only
#: the failed and live ones (the CLI's summary rule), the others on their own task page.
INLINE_DETAILS = 50
_LIVE_STATES = frozenset({State.RUNNING.value, State.WAITING.value})
#: Hits per search page (the CLI's --limit default is 100).
SEARCH_PAGE_SIZE = 100
#: Longest login form body read (a token is far shorter).
_MAX_LOGIN_BODY = 4096


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    console = Console.of(request)
    context = {"authenticated": console.token is not None, **context}
    return console.templates.TemplateResponse(request, name, context, status_code=status)


async def executions_page(request: Request) -> Response:
    """``/``: the executions list (``?partial=1`` renders only the rows, for auto-refresh)."""
    console = Console.of(request)
    query = request.query_params
    workflow_id = text_param(query, "workflow", limit=64)
    state = state_param(query)
    before = execution_cursor(query.get("before"))
    limit = int_param(query, "limit", default=LIST_PAGE_SIZE, low=1, high=500) or LIST_PAGE_SIZE

    def read() -> Any:
        with console.pool.connection() as conn:
            return list_page(conn, workflow_id=workflow_id, state=state, before=before, limit=limit)

    page = await run_in_threadpool(read)
    context = {
        "executions": page.executions,
        "next_before": encode_cursor(page.next_before),
        "first_page": before is None,
        "workflow": workflow_id or "",
        "state": state.value if state else "",
        "states": [s.value for s in State],
        "live_states": [State.PENDING.value, State.RUNNING.value, State.WAITING.value],
    }
    name = "_execution_rows.html" if query.get("partial") else "executions.html"
    return _render(request, name, context)


def _execution_context(console: Console, execution_id: str) -> dict[str, Any]:
    with console.pool.connection() as conn:
        inspector = ExecutionInspector(conn)
        snapshot = inspector.snapshot(execution_id)
        violation = inspector.verify(execution_id)
    document = inspection_document(snapshot)
    tasks = document["tasks"]
    details = tasks if len(tasks) <= INLINE_DETAILS else [t for t in tasks if _notable(t)]
    rows = task_rows(tasks)
    timeline = document["timeline"]
    return {
        "doc": document,
        "execution": document["execution"],
        "tasks": tasks,
        "task_rows": rows,
        "detail_tasks": details,
        "detail_ids": {t["task_id"] for t in details},
        "audit_events": document["audit_events"],
        "chart": gantt_chart({**timeline, "lanes": drawn_lanes(timeline["lanes"], rows)}),
        "verify": None if violation is None else str(violation),
        "live": bool(document["execution"]["in_progress"]),
    }


def _notable(task: dict[str, Any]) -> bool:
    """A task whose details a big execution's page still shows inline (as the CLI does)."""
    return task["error"] is not None or task["state"] in _LIVE_STATES


async def execution_page(request: Request) -> Response:
    """``/executions/<id>``: everything about one execution; 404 for an unknown id."""
    console = Console.of(request)
    execution_id = request.path_params["execution_id"]
    with not_found():
        context = await run_in_threadpool(_execution_context, console, execution_id)
    return _render(request, "execution.html", context)


async def execution_live_part(request: Request) -> Response:
    """``/executions/<id>/live``: overview, tasks and chart, re-read while it runs."""
    console = Console.of(request)
    execution_id = request.path_params["execution_id"]
    with not_found():
        context = await run_in_threadpool(_execution_context, console, execution_id)
    return _render(request, "_execution_live.html", context)


async def task_page(request: Request) -> Response:
    """``/executions/<id>/tasks/<task>``: one task's attempts, error, inputs and outputs."""
    console = Console.of(request)
    execution_id = request.path_params["execution_id"]
    task_id = request.path_params["task_id"]

    def read() -> dict[str, Any]:
        with console.pool.connection() as conn:
            snapshot = ExecutionInspector(conn).snapshot(execution_id)
        document = inspection_document(snapshot, task_id=task_id)
        if not document["tasks"]:
            raise HTTPException(404, f"Task not found: {task_id} in execution {execution_id}")
        # A for_each task's document holds its iterations after it: all of them are listed.
        task, *iterations = document["tasks"]
        return {
            "execution": document["execution"],
            "task": task,
            "iterations": iterations,
        }

    with not_found():
        context = await run_in_threadpool(read)
    return _render(request, "task.html", context)


async def workflows_page(request: Request) -> Response:
    """``/workflows``: the registered workflows, their triggers and next cron fire."""
    console = Console.of(request)

    def read() -> Any:
        with console.pool.connection() as conn:
            return registered_workflows(conn)

    return _render(request, "workflows.html", {"workflows": await run_in_threadpool(read)})


def search_context(console: Console, query: Mapping[str, str]) -> dict[str, Any]:
    """One page of search hits (newest first), for ``/search`` and ``/api/search``."""
    text = text_param(query, "q", limit=1024)
    limit = int_param(query, "limit", default=SEARCH_PAGE_SIZE, low=1, high=1000)
    before = int_param(query, "before", default=None, low=1)
    flt = search_filter(query)
    context: dict[str, Any] = {"q": text or "", "hits": [], "next_before": None}
    if text is None:
        return context
    page_size = limit or SEARCH_PAGE_SIZE
    with console.pool.connection() as conn:
        try:
            hits = list(
                LogStore(conn).search(
                    text, flt, limit=page_size + 1, before_id=before, highlight=True
                )
            )
        except InvalidSearchQuery as exc:
            raise bad_request(str(exc)) from None
    context["hits"] = hits[:page_size]
    if len(hits) > page_size:
        context["next_before"] = hits[page_size - 1].record.id
    return context


async def search_page(request: Request) -> Response:
    """``/search?q=``: full-text search over every execution's log (FTS5 syntax)."""
    console = Console.of(request)
    query = request.query_params
    context = await run_in_threadpool(search_context, console, query)
    context.update(
        workflow=query.get("workflow", ""),
        level=query.get("level", ""),
        task=query.get("task", ""),
    )
    return _render(request, "search.html", context)


async def login_page(request: Request) -> Response:
    """``/login``: GET shows the token form; POST checks it and sets the session cookie."""
    console = Console.of(request)
    if console.token is None:
        return RedirectResponse("/", status_code=303)
    if request.method == "GET":
        return _render(request, "login.html", {"error": None})
    body = await request.body()
    token = ""
    if len(body) <= _MAX_LOGIN_BODY:
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0].strip()
    if not hmac.compare_digest(token.encode(), console.token.encode()):
        return _render(request, "login.html", {"error": "Invalid token"}, status=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(console.token),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    """``/logout`` (POST): forget the session cookie."""
    del request
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
