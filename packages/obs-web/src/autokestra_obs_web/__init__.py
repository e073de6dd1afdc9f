"""autokestra_obs_web: the read-only web console of Autokestra (DESIGN.md §7).

A Starlette app served by uvicorn: executions, the execution page (tasks, attempts, errors,
Gantt timeline, live log, audit trail), registered workflows, and the JSON API and SSE
stream that serve the CLI's ``--json`` objects. It reads through obs-store only.

    from autokestra_obs_web import check_listen, create_app, parse_listen, serve

    listen = parse_listen("127.0.0.1:8080")
    check_listen(listen, token=None)
    serve(create_app(Path(".autokestra/autokestra.db")), listen)
"""

from ._app import console_of, create_app
from ._console import Console
from ._security import (
    CONTENT_SECURITY_POLICY,
    SESSION_COOKIE,
    RefusedListen,
    TokenFileError,
    is_loopback,
    new_token,
    read_token_file,
)
from ._serve import (
    DEFAULT_LISTEN,
    InvalidListen,
    ListenAddress,
    WebServer,
    bind,
    bound_address,
    check_listen,
    parse_listen,
    serve,
)

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "Console",
    "DEFAULT_LISTEN",
    "InvalidListen",
    "ListenAddress",
    "RefusedListen",
    "SESSION_COOKIE",
    "TokenFileError",
    "WebServer",
    "bind",
    "bound_address",
    "check_listen",
    "console_of",
    "create_app",
    "is_loopback",
    "new_token",
    "parse_listen",
    "read_token_file",
    "serve",
]
