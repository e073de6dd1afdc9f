"""``create_app``: the console as one Starlette application, ready for uvicorn.

Routes of the console, the vendored static files, error pages (HTML for pages, JSON for the
API), the security middleware; other parts of a server process (the webhook endpoint,
``/metrics``) add their own routes or mounts through ``extra_routes``, behind the same token
unless their path starts with one of ``open_prefixes`` (a route that authenticates its
requests itself: the webhook endpoint checks a signature).

    app = create_app(Path(".autokestra/autokestra.db"), token=None)
    serve(app, parse_listen("127.0.0.1:8080"))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from autokestra_obs_schema import format_duration_ms

from . import _api, _pages
from ._console import Console
from ._format import (
    elapsed,
    iso_ms,
    pretty_json,
    short_id,
    short_time,
    state_badge,
    visible,
)
from ._gantt import render_svg
from ._readers import ReaderPool
from ._security import SecurityMiddleware
from ._task_groups import skip_reason

_HERE = Path(__file__).parent


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        duration=format_duration_ms,
        visible=visible,
        short_id=short_id,
        pretty_json=pretty_json,
        short_time=short_time,
        elapsed=elapsed,
        iso_ms=iso_ms,
        gantt_svg=render_svg,
        state_badge=state_badge,
        skip_reason=skip_reason,
    )
    return Jinja2Templates(env=environment)


def console_routes() -> list[BaseRoute]:
    """The console's own routes (pages, API, stream, health, static files)."""
    return [
        Route("/", _pages.executions_page),
        Route("/executions/{execution_id}", _pages.execution_page),
        Route("/executions/{execution_id}/live", _pages.execution_live_part),
        Route("/executions/{execution_id}/tasks/{task_id}", _pages.task_page),
        Route("/workflows", _pages.workflows_page),
        Route("/search", _pages.search_page),
        Route("/login", _pages.login_page, methods=["GET", "POST"]),
        Route("/logout", _pages.logout, methods=["POST"]),
        Route("/healthz", _api.healthz),
        Route("/api/search", _api.search),
        Route("/api/executions", _api.executions),
        Route("/api/executions/{execution_id}", _api.execution),
        Route("/api/executions/{execution_id}/logs", _api.logs),
        Route("/api/executions/{execution_id}/logs/stream", _api.log_stream),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Errors as JSON under ``/api/``, as a page elsewhere; the detail is escaped text."""
    assert isinstance(exc, HTTPException)
    detail = str(exc.detail)
    if request.url.path.startswith("/api/"):
        return _api._json({"error": detail}, exc.status_code)
    console = Console.of(request)
    return console.templates.TemplateResponse(
        request,
        "error.html",
        {"status": exc.status_code, "detail": detail, "authenticated": console.token is not None},
        status_code=exc.status_code,
    )


def create_app(
    db_path: Path,
    *,
    token: str | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    open_prefixes: Sequence[str] = (),
) -> Starlette:
    """Build the console for one database.

    Args:
        db_path: the database file to read (opened read-only, per request, from a pool).
        token: when set, every request but ``/healthz``, ``/login`` and the static files
            needs it (``Authorization: Bearer`` or the ``/login`` session cookie).
        extra_routes: more routes or mounts served by the same app behind the same token
            (the webhook endpoint, ``/metrics``); they take precedence over the console's.
        open_prefixes: path prefixes (``/webhooks/``) served without the token: only for
            extra routes that authenticate each request themselves.

    Returns:
        The ASGI application (Starlette) wrapped in the security middleware. Its
        ``state.console`` holds the shared :class:`Console`.
    """
    console = Console(pool=ReaderPool(db_path), templates=_templates(), token=token)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            yield
        finally:
            console.stopping.set()
            console.pool.close()

    app = Starlette(
        routes=[*extra_routes, *console_routes()],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.console = console
    app.add_middleware(SecurityMiddleware, token=token, open_prefixes=tuple(open_prefixes))
    return app


def console_of(app: Any) -> Console:
    """The :class:`Console` of an app made by :func:`create_app`."""
    console = app.state.console
    assert isinstance(console, Console)
    return console
