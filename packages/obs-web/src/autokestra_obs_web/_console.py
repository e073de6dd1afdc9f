"""The state one console shares across its requests: readers, templates, token, stop flag.

``create_app`` builds one :class:`Console` into ``app.state.console``; views take it with
``Console.of(request)``.

    console = Console.of(request)
    with console.pool.connection() as conn:
        ...
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from autokestra_obs_schema import ExecutionNotFound
from autokestra_obs_store import TaskNotFound

from ._readers import ReaderPool


@dataclass(frozen=True)
class Console:
    """What every view of one console needs.

    Attributes:
        pool: read-only connections to the database.
        templates: the Jinja2 environment (autoescape on).
        token: the console token, or None when the console is open (loopback, no file).
        stopping: set when the server shuts down, so live streams end promptly.
    """

    pool: ReaderPool
    templates: Jinja2Templates
    token: str | None
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def db_path(self) -> Path:
        """The database file the console reads."""
        return self.pool.db_path

    @staticmethod
    def of(request: Request) -> Console:
        """The console serving ``request``."""
        console = request.app.state.console
        assert isinstance(console, Console)
        return console


@contextmanager
def not_found() -> Iterator[None]:
    """Turn ``ExecutionNotFound`` and ``TaskNotFound`` into a 404 with their message."""
    try:
        yield
    except (ExecutionNotFound, TaskNotFound) as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
