"""The webhook trigger: turn one signed HTTP request into a queued execution, or refuse it.

The HTTP side (``workflow server start --listen``) hands each ``POST /webhooks/<id>`` to
:meth:`WebhookReceiver.receive` and answers with the :class:`WebhookResponse` it returns.
Checks, in order (the first that fails decides the answer):

1. the server is not stopping (else 503 ``unavailable``);
2. a registered workflow with ``trigger: {type: webhook}`` has this id (else 404
   ``unknown_workflow``);
3. the body is at most :data:`WEBHOOK_MAX_BODY_BYTES` (else 413 ``too_large``);
4. the three signature headers are there and well-formed (else 401 ``unsigned``);
5. the signature is the HMAC of the request under the workflow's secret (else 403
   ``bad_signature``), compared in constant time;
6. the signed time is within :data:`WEBHOOK_TOLERANCE_MS` of now (else 403 ``stale``);
7. the workflow is enabled (else 403 ``disabled``);
8. the body decodes: JSON for a JSON media type, UTF-8 text otherwise (else 400
   ``bad_body``);
9. this delivery id was never received for this workflow (else 409 ``replayed``).

Then the execution is created queued (trigger ``webhook``), with the delivery recorded in
the same transaction, and the server's poll loop runs it like a cron fire: 202 ``accepted``
with the execution id. Every request is counted by workflow (only registered webhook
workflows, else ``""``) and outcome, and logged as one server line.

    receiver = WebhookReceiver(engine=engine, plugins=registry, say=server.say)
    response = receiver.receive(WebhookRequest("deploy", headers, body))
    response.status, response.outcome, response.execution_id   # 202, ACCEPTED, "0193..."
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from autokestra_obs_schema import LogLevel, escape_control, now_ms

from ..language._model import Workflow
from ..language._plugin_registry import PluginRegistry
from ..language._problems import WorkflowInvalid
from ..language._workflow_parser import parse_workflow
from ..persistence._recorder import DeliveryReplayed, WebhookDelivery, delivery_received
from ..run._engine import Engine
from ._webhook_signature import SignedRequest, Unsigned, parse_signed
from ._workflow_registry import RegisteredWorkflow, WorkflowNotRegistered, get_workflow

#: The largest body accepted (1 MiB, as ``limits.workflow_bytes``): the body is stored.
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
#: How far the signed time may be from the server's clock, either way (5 minutes, as
#: Stripe and the Standard Webhooks spec): a captured request is refused after it.
WEBHOOK_TOLERANCE_MS = 5 * 60 * 1000


class WebhookOutcome(StrEnum):
    """What became of one request: the ``outcome`` label of the request counter."""

    ACCEPTED = "accepted"
    UNKNOWN_WORKFLOW = "unknown_workflow"
    TOO_LARGE = "too_large"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    DISABLED = "disabled"
    BAD_BODY = "bad_body"
    REPLAYED = "replayed"
    UNAVAILABLE = "unavailable"
    ERROR = "error"

    @property
    def status(self) -> int:
        """The HTTP status that answers it."""
        return _STATUS[self]


_STATUS: dict[WebhookOutcome, int] = {
    WebhookOutcome.ACCEPTED: 202,
    WebhookOutcome.UNKNOWN_WORKFLOW: 404,
    WebhookOutcome.TOO_LARGE: 413,
    WebhookOutcome.UNSIGNED: 401,
    WebhookOutcome.BAD_SIGNATURE: 403,
    WebhookOutcome.STALE: 403,
    WebhookOutcome.DISABLED: 403,
    WebhookOutcome.BAD_BODY: 400,
    WebhookOutcome.REPLAYED: 409,
    WebhookOutcome.UNAVAILABLE: 503,
    WebhookOutcome.ERROR: 500,
}


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One ``POST /webhooks/<workflow_id>`` as received.

    Attributes:
        workflow_id: the id in the path (untrusted text).
        headers: the request headers (names in any case).
        body: the raw body, exactly as signed.
    """

    workflow_id: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """The answer to a request.

    Attributes:
        outcome: what became of it.
        message: one line for the sender (never a secret, never the body).
        execution_id: the execution it created (``accepted`` only).
        workflow_id: the counter's label: the workflow id when it names a registered
            webhook workflow, else ``""`` (so the label set stays bounded).
    """

    outcome: WebhookOutcome
    message: str
    execution_id: str | None = None
    workflow_id: str = ""

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self.outcome.status

    def to_json(self) -> dict[str, Any]:
        """The response body: ``{"execution_id": ...}`` or ``{"error": ..., "outcome": ...}``."""
        if self.outcome is WebhookOutcome.ACCEPTED:
            return {"execution_id": self.execution_id, "workflow_id": self.workflow_id}
        return {"error": self.message, "outcome": self.outcome.value}


def decode_body(body: bytes, content_type: str | None) -> Any:
    """What ``{{ trigger.body }}`` reads: JSON for ``application/json`` or ``*+json``, else text.

    Raises:
        ValueError: not valid JSON (for a JSON media type), or not UTF-8.
    """
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return json.loads(text)
    return text


class _Refused(Exception):
    """A check failed: carries the answer."""

    def __init__(self, outcome: WebhookOutcome, message: str, workflow_id: str = "") -> None:
        super().__init__(message)
        self.response = WebhookResponse(outcome, message, workflow_id=workflow_id)


class _Checked(NamedTuple):
    """What the checks established about a request that passed them."""

    workflow: Workflow
    signed: SignedRequest
    body: Any
    content_type: str | None
    received_at: int


class WebhookReceiver:
    """Checks webhook requests and queues the executions they start; counts every request.

    Thread-safe: the web server calls :meth:`receive` from its worker threads.

    Args:
        engine: the server's engine (its writer, secrets and executions).
        plugins: discovered plugins, to parse the registered workflow.
        say: the server's lifecycle line writer (one line per request).
        stopping: whether the server is shutting down (requests are then refused).
        clock: Unix-ms clock.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        plugins: PluginRegistry,
        say: Callable[[LogLevel, str], None],
        stopping: Callable[[], bool] = lambda: False,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.engine = engine
        self.plugins = plugins
        self.say = say
        self.stopping = stopping
        self.clock = clock
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def webhook_counts(self) -> dict[tuple[str, str], int]:
        """Requests so far by ``(workflow_id, outcome)`` (``""`` for an unknown workflow)."""
        with self._lock:
            return dict(self._counts)

    def receive(self, request: WebhookRequest) -> WebhookResponse:
        """Check one request; queue its execution when it passes. Never raises.

        Returns:
            The answer (status, outcome, message, execution id), already counted and logged.
        """
        try:
            response = self._check_and_queue(request)
        except Exception as exc:  # a failing database must answer 500, not drop the request
            response = WebhookResponse(
                WebhookOutcome.ERROR, f"cannot start the workflow: {exc}", workflow_id=""
            )
        self._count(request, response)
        return response

    def _count(self, request: WebhookRequest, response: WebhookResponse) -> None:
        with self._lock:
            key = (response.workflow_id, response.outcome.value)
            self._counts[key] = self._counts.get(key, 0) + 1
        shown = escape_control(request.workflow_id[:80], keep_newlines=False)
        if response.outcome is WebhookOutcome.ACCEPTED:
            self.say(
                LogLevel.INFO,
                f"Webhook {shown}: {response.status} accepted, execution "
                f"{response.execution_id} queued",
            )
        else:
            level = LogLevel.ERROR if response.outcome is WebhookOutcome.ERROR else LogLevel.WARN
            self.say(
                level,
                f"Webhook {shown}: {response.status} {response.outcome.value}: "
                f"{escape_control(response.message, keep_newlines=False)}",
            )

    def _check_and_queue(self, request: WebhookRequest) -> WebhookResponse:
        try:
            checked = self._check(request)
        except _Refused as refused:
            return refused.response
        return self._queue(checked)

    def _check(self, request: WebhookRequest) -> _Checked:
        """Every check before the replay check, in the order of the module docstring.

        Raises:
            _Refused: with the answer of the first check that fails.
        """
        if self.stopping():
            raise _Refused(WebhookOutcome.UNAVAILABLE, "the server is stopping")
        registered = self._registered(request.workflow_id)
        if registered is None:
            raise _Refused(
                WebhookOutcome.UNKNOWN_WORKFLOW, "no registered webhook workflow has this id"
            )
        wid = registered.workflow_id
        if len(request.body) > WEBHOOK_MAX_BODY_BYTES:
            raise _Refused(
                WebhookOutcome.TOO_LARGE, f"the body is over {WEBHOOK_MAX_BODY_BYTES} bytes", wid
            )
        try:
            signed = parse_signed(request.headers)
        except Unsigned as exc:
            raise _Refused(WebhookOutcome.UNSIGNED, str(exc), wid) from None
        workflow = self._parse(registered)
        if not signed.verify(self._secret(workflow), request.body):
            raise _Refused(WebhookOutcome.BAD_SIGNATURE, "the signature does not match", wid)
        now = self.clock()
        if not signed.within(now, WEBHOOK_TOLERANCE_MS):
            raise _Refused(
                WebhookOutcome.STALE,
                f"the signed timestamp is more than {WEBHOOK_TOLERANCE_MS // 1000}s away from"
                " the server's clock",
                wid,
            )
        if not registered.enabled:
            raise _Refused(
                WebhookOutcome.DISABLED, "the workflow is disabled (enabled: false)", wid
            )
        content_type = _header(request.headers, "content-type")
        try:
            body = decode_body(request.body, content_type)
        except ValueError as exc:
            raise _Refused(
                WebhookOutcome.BAD_BODY, f"the body cannot be read: {exc}", wid
            ) from None
        return _Checked(workflow, signed, body, content_type, now)

    def _parse(self, registered: RegisteredWorkflow) -> Workflow:
        wid = registered.workflow_id
        try:
            return parse_workflow(
                registered.source, self.plugins, filename=f"registered workflow {wid}"
            )
        except WorkflowInvalid as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            raise _Refused(
                WebhookOutcome.ERROR, f"the registered workflow is invalid: {problems}", wid
            ) from None

    def _secret(self, workflow: Workflow) -> bytes:
        """The signing key: the value of the secret the trigger names."""
        name = workflow.trigger.secret
        if name is None or name not in self.engine.secrets:
            # Configuration, not the sender's fault: the server cannot check any request.
            raise _Refused(
                WebhookOutcome.ERROR,
                f"the webhook secret {name} has no value on the server (set "
                f"AUTOKESTRA_SECRET_{name} or add it to the secrets file)",
                workflow.id,
            )
        return self.engine.secrets.get(name).encode()

    def _queue(self, checked: _Checked) -> WebhookResponse:
        """Record the delivery and queue the execution, unless the delivery was received."""
        workflow, signed = checked.workflow, checked.signed
        wid = workflow.id
        replayed = WebhookResponse(
            WebhookOutcome.REPLAYED,
            f"delivery {signed.delivery_id} was already received",
            workflow_id=wid,
        )
        with self.engine.writer.locked() as conn:  # a cheap read before building anything
            if delivery_received(conn, wid, signed.delivery_id):
                return replayed
        delivery = WebhookDelivery(
            delivery_id=signed.delivery_id,
            signed_at=signed.timestamp_s * 1000,
            received_at=checked.received_at,
            content_type=checked.content_type,
            body=checked.body,
        )
        try:
            execution_id = self.engine.create_execution(
                workflow, {}, trigger_type="webhook", detached=True, delivery=delivery
            )
        except DeliveryReplayed:  # the same delivery raced in from another request
            return replayed
        except WorkflowInvalid as exc:
            problems = "; ".join(str(p) for p in exc.problems)
            return WebhookResponse(
                WebhookOutcome.ERROR, f"cannot start the workflow: {problems}", workflow_id=wid
            )
        return WebhookResponse(
            WebhookOutcome.ACCEPTED, "queued", execution_id=execution_id, workflow_id=wid
        )

    def _registered(self, workflow_id: str) -> RegisteredWorkflow | None:
        """The registered webhook workflow with this id, or None."""
        with self.engine.writer.locked() as conn:
            try:
                found = get_workflow(conn, workflow_id)
            except WorkflowNotRegistered:
                return None
        return found if found.trigger_type == "webhook" else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
