"""``/metrics``: a registry of Autokestra's collectors, as text or as a mountable ASGI app.

A fresh registry per process (never prometheus-client's global one): nothing else in the
process registers into it, and tests build as many as they like.

    registry = metrics_registry(db_path, collector=runtime.collector, exporter=exporter)
    app = metrics_app(registry)            # Route("/metrics", app) in a Starlette app
    print(metrics_text(registry).decode())
    server = start_metrics_server(registry, "127.0.0.1", 0)   # without a web console
    server.close()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_wsgi_server
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from autokestra_obs_collector import LogCollector

from ._database import DatabaseMetrics
from ._process import DropCounter, ProcessMetrics, WebhookCounts


def metrics_registry(
    db_path: Path,
    *,
    collector: LogCollector | None = None,
    exporter: DropCounter | None = None,
    webhooks: WebhookCounts | None = None,
) -> CollectorRegistry:
    """A registry holding the database metrics and this process's own figures.

    Args:
        db_path: the database the metrics are computed from.
        collector: this process's log collector, when it has one (``server start``).
        exporter: this process's OTLP exporter, when it exports.
        webhooks: this process's webhook request counts, when it receives webhooks.

    Returns:
        A new registry; render it with :func:`metrics_text` or serve it with
        :func:`metrics_app`.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseMetrics(db_path))
    registry.register(ProcessMetrics(collector=collector, exporter=exporter, webhooks=webhooks))
    return registry


def metrics_text(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text exposition format (version 0.0.4)."""
    return generate_latest(registry)


class MetricsApp:
    """An ASGI app answering GET with a registry's metrics (serve it at ``/metrics``).

    A class, not a function, so Starlette's ``Route("/metrics", MetricsApp(...))`` treats it
    as an ASGI app (a plain function would be taken for a request handler). The database is
    read in a worker thread, so a scrape never stalls the event loop that serves the
    console's pages and live log streams. A database that cannot be read answers 503, which
    Prometheus records as a failed scrape (``up == 0``).

    Args:
        registry: what to serve.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        """Answer one HTTP request."""
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if method not in {"GET", "HEAD"}:
            await _respond(send, 405, b"only GET\n", "text/plain; charset=utf-8")
            return
        try:
            body = await asyncio.to_thread(generate_latest, self.registry)
        except Exception as exc:
            text = f"metrics unavailable: {type(exc).__name__}: {exc}\n".encode()
            await _respond(send, 503, text, "text/plain; charset=utf-8")
            return
        await _respond(send, 200, b"" if method == "HEAD" else body, CONTENT_TYPE_PLAIN_0_0_4)


def metrics_app(registry: CollectorRegistry) -> MetricsApp:
    """The ASGI app serving ``registry`` (see :class:`MetricsApp`).

    In a Starlette app: ``Route("/metrics", metrics_app(registry), methods=["GET", "HEAD"])``.
    """
    return MetricsApp(registry)


async def _respond(
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    status: int,
    body: bytes,
    content_type: str,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class MetricsServer:
    """A running standalone ``/metrics`` HTTP server (prometheus-client's, in a thread).

    Attributes:
        host: the address it listens on.
        port: the port it is bound to (the real one when 0 was asked).
    """

    host: str
    port: int
    _shutdown: Callable[[], None]
    _thread: threading.Thread

    def close(self) -> None:
        """Stop serving and wait for the server thread; idempotent."""
        self._shutdown()
        self._thread.join(timeout=5)


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve the registry on ``http://host:port/metrics`` from a daemon thread.

    For a process without the web console; where the console runs, mount
    :func:`metrics_app` in it instead.

    Args:
        registry: what to serve.
        host: the address to bind (``127.0.0.1`` unless Prometheus scrapes from elsewhere).
        port: the port; 0 picks a free one.

    Returns:
        The running server.

    Raises:
        OSError: the address cannot be bound.
    """
    server, thread = start_wsgi_server(port, addr=host, registry=registry)
    bound_port = int(server.server_address[1])

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return MetricsServer(host, bound_port, stop, thread)
