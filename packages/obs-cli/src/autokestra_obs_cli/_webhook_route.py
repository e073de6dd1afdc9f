"""``POST /webhooks/<workflow id>`` of ``workflow server start --listen``: HTTP to the receiver.

The route reads the body (never more than the limit plus one byte, whatever the
``Content-Length`` says), hands the request to the server's
:class:`~autokestra_engine.WebhookReceiver` in a worker thread (it writes to the database)
and answers with its JSON: 202 ``{"execution_id": ...}`` or the refusal's status with
``{"error": ..., "outcome": ...}``. It authenticates requests by their signature, so the
console's token is not asked here (``WEBHOOK_PREFIX`` is passed to ``create_app`` as an
open prefix); obs-web itself never sees the engine.

    routes = webhook_routes(server.webhooks)
    app = create_app(db_path, extra_routes=routes, open_prefixes=(WEBHOOK_PREFIX,))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from autokestra_engine import WEBHOOK_MAX_BODY_BYTES, WebhookRequest

if TYPE_CHECKING:
    from autokestra_engine import WebhookReceiver

#: Every webhook path starts with it.
WEBHOOK_PREFIX = "/webhooks/"


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, or its first ``limit + 1`` bytes when it is longer (then it is refused)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return b"\0" * (limit + 1)  # refused on its declared size: nothing is read
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]


def webhook_routes(receiver: WebhookReceiver) -> list[BaseRoute]:
    """The webhook route, answering through ``receiver`` (the server's).

    Args:
        receiver: checks each request and queues its execution (``Server.webhooks``).
    """

    async def endpoint(request: Request) -> Response:
        body = await read_limited(request, WEBHOOK_MAX_BODY_BYTES)
        received = WebhookRequest(
            workflow_id=str(request.path_params["workflow_id"]),
            headers=dict(request.headers),
            body=body,
        )
        answer = await run_in_threadpool(receiver.receive, received)
        return JSONResponse(
            answer.to_json(), status_code=answer.status, headers={"cache-control": "no-store"}
        )

    return [Route(WEBHOOK_PREFIX + "{workflow_id}", endpoint, methods=["POST"])]
