"""The webhook route of `server start --listen`: HTTP in, the receiver's answer out."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from autokestra_engine import (
    WEBHOOK_MAX_BODY_BYTES,
    WebhookOutcome,
    WebhookRequest,
    WebhookResponse,
)
from autokestra_obs_cli._webhook_route import WEBHOOK_PREFIX, webhook_routes
from autokestra_obs_schema import open_writer
from autokestra_obs_web import create_app


class Recorder:
    """A receiver stand-in: keeps each request, accepts small bodies."""

    def __init__(self) -> None:
        self.requests: list[WebhookRequest] = []

    def receive(self, request: WebhookRequest) -> WebhookResponse:
        self.requests.append(request)
        if len(request.body) > WEBHOOK_MAX_BODY_BYTES:
            return WebhookResponse(WebhookOutcome.TOO_LARGE, "too large", workflow_id="w")
        return WebhookResponse(WebhookOutcome.ACCEPTED, "queued", "e-1", workflow_id="w")


def client(tmp_path: Path, receiver: Recorder) -> TestClient:
    db = tmp_path / "ak.db"
    open_writer(db).close()
    app = create_app(
        db,
        token="console-token-0123456789",
        extra_routes=webhook_routes(receiver),  # type: ignore[arg-type]  # a stand-in receiver
        open_prefixes=(WEBHOOK_PREFIX,),
    )
    return TestClient(app)


class TestWebhookRoute:
    def test_passes_path_headers_and_raw_body(self, tmp_path: Path) -> None:
        """The receiver gets the id, the headers and the exact bytes; 202 JSON comes back,
        without the console token."""
        receiver = Recorder()
        with client(tmp_path, receiver) as http:
            answer = http.post(
                "/webhooks/w", content=b'{"a": 1}', headers={"X-Autokestra-Delivery": "d"}
            )
        assert answer.status_code == 202
        assert answer.json() == {"execution_id": "e-1", "workflow_id": "w"}
        assert answer.headers["cache-control"] == "no-store"
        (request,) = receiver.requests
        assert (request.workflow_id, request.body) == ("w", b'{"a": 1}')
        assert request.headers["x-autokestra-delivery"] == "d"

    def test_an_oversize_body_is_not_read_past_the_limit(self, tmp_path: Path) -> None:
        """A body over the limit reaches the receiver as limit + 1 bytes: 413."""
        receiver = Recorder()
        big = b"x" * (WEBHOOK_MAX_BODY_BYTES + 4096)
        with client(tmp_path, receiver) as http:
            answer = http.post("/webhooks/w", content=big)
        assert answer.status_code == 413
        assert answer.json() == {"error": "too large", "outcome": "too_large"}
        assert len(receiver.requests[0].body) == WEBHOOK_MAX_BODY_BYTES + 1

    def test_only_post(self, tmp_path: Path) -> None:
        """Other methods are not webhook requests (405) and reach no receiver."""
        receiver = Recorder()
        with client(tmp_path, receiver) as http:
            assert http.get("/webhooks/w").status_code == 405
        assert receiver.requests == []
