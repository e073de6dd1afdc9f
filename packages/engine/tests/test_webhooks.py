"""The webhook trigger: signatures, replay refusal, the checks' order, {{ trigger.body }}."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from autokestra_engine import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_MAX_BODY_BYTES,
    WEBHOOK_TOLERANCE_MS,
    Engine,
    EngineConfig,
    PluginRegistry,
    SecretStore,
    Server,
    WebhookOutcome,
    WebhookRequest,
    WorkflowInvalid,
    WorkflowRegistry,
    parse_workflow,
    signed_headers,
)
from autokestra_engine.operations._webhook_signature import Unsigned, parse_signed
from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import SECRET_MASK, Writer, ms_from_iso, open_writer

SECRET = "hook-secret-5f1c9a7e"
HOOK = """
id: deploy
trigger: {type: webhook, secret: "{{ secrets.HOOK }}"}
tasks:
  - {id: echo, type: core/log.emit, inputs: {message: "ref={{ trigger.body.ref }}"}}
  - {id: raw, type: core/log.emit, inputs: {message: "{{ trigger.body.note }}"}}
  - id: main-only
    type: core/log.emit
    if: trigger.body.ref == 'main'
    inputs: {message: "on main"}
"""
T0 = ms_from_iso("2026-11-25T10:00:00Z")


def headers(
    body: bytes, delivery: str = "d-1", at_ms: int = T0, secret: str = SECRET
) -> dict[str, str]:
    """Signed headers plus a JSON content type."""
    signed = signed_headers(secret.encode(), body, delivery_id=delivery, timestamp_s=at_ms // 1000)
    return {**signed, "Content-Type": "application/json"}


class TestSignature:
    def test_is_the_hmac_of_delivery_timestamp_and_body(self) -> None:
        """The digest is HMAC-SHA256 of '<delivery>.<timestamp>.<body>': what openssl computes."""
        body = b'{"ref": "main"}'
        sent = signed_headers(b"k3y", body, delivery_id="abc", timestamp_s=1700000000)
        expected = hmac.new(b"k3y", b"abc.1700000000." + body, hashlib.sha256).hexdigest()
        assert sent[SIGNATURE_HEADER] == "sha256=" + expected
        assert parse_signed(sent).verify(b"k3y", body)

    def test_any_change_breaks_it(self) -> None:
        """Another body, delivery id, timestamp or secret no longer verifies."""
        body = b"payload"
        good = signed_headers(b"k3y", body, delivery_id="abc", timestamp_s=100)
        assert not parse_signed(good).verify(b"k3y", b"payload!")
        assert not parse_signed(good).verify(b"other", body)
        assert not parse_signed({**good, DELIVERY_HEADER: "abd"}).verify(b"k3y", body)
        assert not parse_signed({**good, TIMESTAMP_HEADER: "101"}).verify(b"k3y", body)

    def test_header_names_in_any_case(self) -> None:
        """HTTP header names are case-insensitive (servers lower-case them)."""
        sent = signed_headers(b"k", b"x", delivery_id="a", timestamp_s=5)
        lowered = {name.lower(): value for name, value in sent.items()}
        assert parse_signed(lowered).verify(b"k", b"x")

    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ({SIGNATURE_HEADER: None}, SIGNATURE_HEADER),
            ({DELIVERY_HEADER: None}, DELIVERY_HEADER),
            ({TIMESTAMP_HEADER: None}, TIMESTAMP_HEADER),
            ({TIMESTAMP_HEADER: "soon"}, TIMESTAMP_HEADER),
            ({DELIVERY_HEADER: "a b"}, DELIVERY_HEADER),
            ({SIGNATURE_HEADER: "sha1=abcd"}, SIGNATURE_HEADER),
            ({SIGNATURE_HEADER: "sha256=xyz"}, SIGNATURE_HEADER),
        ],
    )
    def test_missing_or_malformed_headers_are_unsigned(
        self, change: dict[str, str | None], named: str
    ) -> None:
        """A missing or malformed header is refused as unsigned, naming the header."""
        sent: dict[str, str] = dict(signed_headers(b"k", b"x", delivery_id="a", timestamp_s=5))
        for name, value in change.items():
            if value is None:
                del sent[name]
            else:
                sent[name] = value
        with pytest.raises(Unsigned, match=named):
            parse_signed(sent)

    def test_tolerance_window_both_ways(self) -> None:
        """The signed time may be up to the tolerance before or after the server's clock."""
        signed = parse_signed(signed_headers(b"k", b"", delivery_id="a", timestamp_s=1000))
        assert signed.within(1000 * 1000 + WEBHOOK_TOLERANCE_MS, WEBHOOK_TOLERANCE_MS)
        assert signed.within(1000 * 1000 - WEBHOOK_TOLERANCE_MS, WEBHOOK_TOLERANCE_MS)
        assert not signed.within(1000 * 1000 + WEBHOOK_TOLERANCE_MS + 1000, WEBHOOK_TOLERANCE_MS)


class TestValidation:
    def problems(self, text: str) -> list[str]:
        with pytest.raises(WorkflowInvalid) as caught:
            parse_workflow(text, PluginRegistry.discover([]), filename="w.yaml")
        return [str(p) for p in caught.value.problems]

    def test_webhook_needs_a_secret_reference(self) -> None:
        """No secret, or a value written in the file: a problem at trigger.secret."""
        tasks = "tasks: [{id: a, type: core/log.emit, inputs: {message: hi}}]\n"
        (missing,) = self.problems("id: w\ntrigger: {type: webhook}\n" + tasks)
        assert missing.startswith("trigger.secret: a webhook trigger needs secret:")
        (literal,) = self.problems("id: w\ntrigger: {type: webhook, secret: hunter22}\n" + tasks)
        assert literal.startswith("trigger.secret:") and "refused" in literal
        (other,) = self.problems(
            'id: w\ntrigger: {type: webhook, secret: "{{ inputs.k }}"}\n' + tasks
        )
        assert other.startswith("trigger.secret:")

    def test_secret_only_on_webhooks(self) -> None:
        """A cron or manual trigger with a secret is a problem."""
        (problem,) = self.problems(
            'id: w\ntrigger: {type: manual, secret: "{{ secrets.X }}"}\n'
            "tasks: [{id: a, type: core/log.emit, inputs: {message: hi}}]\n"
        )
        assert problem == "trigger.secret: only webhook triggers take a secret (type is manual)"

    def test_trigger_body_only_in_a_webhook_workflow(self) -> None:
        """{{ trigger.body }} in a manual workflow is a problem with its path."""
        (problem,) = self.problems(
            "id: w\ntasks: [{id: a, type: core/log.emit,"
            " inputs: {message: '{{ trigger.body.x }}'}}]\n"
        )
        assert problem.startswith("tasks[0].inputs.message: {{ trigger.body.x }}: only a webhook")

    def test_trigger_body_in_a_condition_only_in_a_webhook_workflow(self) -> None:
        """if: trigger.body... in a manual workflow is a problem at the task's if."""
        (problem,) = self.problems(
            "id: w\ntasks: [{id: a, type: core/log.emit, if: \"trigger.body.ref == 'x'\","
            " inputs: {message: hi}}]\n"
        )
        assert problem == (
            "tasks[0].if: trigger.body.ref: only a webhook workflow has a request"
            " (trigger type is manual)"
        )

    def test_valid_webhook_keeps_the_secret_name(self) -> None:
        """The parsed trigger holds the secret's name, never a value."""
        wf = parse_workflow(HOOK, PluginRegistry.discover([]), filename="w.yaml")
        assert (wf.trigger.type, wf.trigger.secret) == ("webhook", "HOOK")


@dataclass
class Rig:
    """A server with its engine over a fresh database; the HOOK secret is set."""

    server: Server
    engine: Engine
    writer: Writer
    err: io.StringIO
    now: list[int]
    db: Path

    def receive(
        self, body: bytes, hdrs: dict[str, str], workflow_id: str = "deploy"
    ) -> tuple[int, str]:
        response = self.server.webhooks.receive(WebhookRequest(workflow_id, hdrs, body))
        return response.status, response.outcome.value

    def run_queued(self) -> None:
        self.server.tick()
        deadline = time.monotonic() + 30
        while self.server.running() and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    config = EngineConfig(db_path=tmp_path / "a.db", plugin_paths=[])
    writer = open_writer(config.db_path)
    collector = LogCollector(writer)
    plugins = PluginRegistry.discover([])
    engine = Engine(
        config,
        writer=writer,
        collector=collector,
        registry=plugins,
        secrets=SecretStore.load(config, {"AUTOKESTRA_SECRET_HOOK": SECRET}),
    )
    err = io.StringIO()
    now = [T0]
    server = Server(config, engine=engine, registry=plugins, err=err, clock=lambda: now[0])
    WorkflowRegistry(writer).apply(parse_workflow(HOOK, plugins, filename="deploy.yaml"), now=T0)
    try:
        yield Rig(server, engine, writer, err, now, config.db_path)
    finally:
        engine.close()
        collector.shutdown()
        writer.close()


def rows(rig: Rig, sql: str, *args: object) -> list[tuple[Any, ...]]:
    return list(rig.writer.connection.execute(sql, args).fetchall())


class TestReceiver:
    def test_signed_request_queues_a_webhook_execution_that_reads_the_body(self, rig: Rig) -> None:
        """202 with the id; the execution (trigger webhook) runs and its task sees the body."""
        body = json.dumps({"ref": "main", "note": "{{ secrets.HOOK }}"}).encode()
        response = rig.server.webhooks.receive(WebhookRequest("deploy", headers(body), body))
        assert (response.status, response.outcome) == (202, WebhookOutcome.ACCEPTED)
        eid = response.execution_id
        assert response.to_json() == {"execution_id": eid, "workflow_id": "deploy"}
        assert rows(rig, "SELECT trigger_type, state FROM executions") == [("webhook", "PENDING")]
        rig.run_queued()
        assert rows(rig, "SELECT state FROM executions") == [("SUCCESS",)]
        messages = [m for (m,) in rows(rig, "SELECT message FROM execution_logs")]
        assert "ref=main" in messages
        # The body is data: a template inside it is printed, never resolved.
        assert "{{ secrets.HOOK }}" in messages
        stored = rows(rig, "SELECT delivery_id, execution_id, content_type FROM webhook_deliveries")
        assert stored == [("d-1", eid, "application/json")]
        assert "Webhook deploy: 202 accepted" in rig.err.getvalue()
        assert "on main" in messages  # the condition read the body

    def test_a_condition_on_the_body_skips_the_task(self, rig: Rig) -> None:
        """if: trigger.body.ref == 'main' is false for another ref: that task is SKIPPED."""
        body = json.dumps({"ref": "dev", "note": "n"}).encode()
        assert rig.receive(body, headers(body)) == (202, "accepted")
        rig.run_queued()
        states = dict(rows(rig, "SELECT task_id, state FROM task_runs"))
        assert states == {"echo": "SUCCESS", "raw": "SUCCESS", "main-only": "SKIPPED"}

    def test_a_replayed_delivery_is_refused(self, rig: Rig) -> None:
        """The same signed request twice: 202 then 409; one execution only."""
        body = b'{"ref": "main"}'
        assert rig.receive(body, headers(body)) == (202, "accepted")
        assert rig.receive(body, headers(body)) == (409, "replayed")
        other = headers(body, delivery="d-2")
        assert rig.receive(body, other) == (202, "accepted")
        assert len(rows(rig, "SELECT 1 FROM executions")) == 2

    def test_refusals_with_their_status_in_order(self, rig: Rig) -> None:
        """Unknown, too large, unsigned, badly signed, stale, bad body: each its status."""
        body = b'{"ref": "main"}'
        assert rig.receive(body, headers(body), workflow_id="nope") == (404, "unknown_workflow")
        big = b"x" * (WEBHOOK_MAX_BODY_BYTES + 1)
        assert rig.receive(big, headers(big)) == (413, "too_large")
        assert rig.receive(body, {"Content-Type": "application/json"}) == (401, "unsigned")
        assert rig.receive(body, headers(body, secret="wrong-secret")) == (403, "bad_signature")
        assert rig.receive(b'{"ref": "evil"}', headers(body)) == (403, "bad_signature")
        late = T0 - WEBHOOK_TOLERANCE_MS - 1000
        assert rig.receive(body, headers(body, at_ms=late)) == (403, "stale")
        assert rig.receive(b"{not json", headers(b"{not json")) == (400, "bad_body")
        assert rows(rig, "SELECT 1 FROM executions") == []
        assert rows(rig, "SELECT 1 FROM webhook_deliveries") == []

    def test_counts_by_registered_workflow_and_outcome(self, rig: Rig) -> None:
        """Counts use the workflow id only when it is a registered webhook workflow."""
        body = b"{}"
        rig.receive(body, headers(body))
        rig.receive(body, {})
        rig.receive(body, {}, workflow_id="<script>")
        assert rig.server.webhooks.webhook_counts() == {
            ("deploy", "accepted"): 1,
            ("deploy", "unsigned"): 1,
            ("", "unknown_workflow"): 1,
        }

    def test_disabled_and_non_webhook_workflows(self, rig: Rig) -> None:
        """A disabled webhook workflow refuses (403); a manual workflow is not a webhook (404)."""
        plugins = rig.server.plugins
        registry = WorkflowRegistry(rig.writer)
        registry.apply(
            parse_workflow(HOOK.replace("id: deploy", "id: deploy\nenabled: false"), plugins)
        )
        body = b"{}"
        assert rig.receive(body, headers(body)) == (403, "disabled")
        manual = "id: plain\ntasks: [{id: a, type: core/log.emit, inputs: {message: hi}}]\n"
        registry.apply(parse_workflow(manual, plugins))
        assert rig.receive(body, headers(body), workflow_id="plain") == (404, "unknown_workflow")

    def test_text_body_and_missing_secret(self, rig: Rig, tmp_path: Path) -> None:
        """A non-JSON body is text; a server without the secret answers 500 and logs why."""
        body = "plain text ✓".encode()
        hdrs = {**headers(body), "Content-Type": "text/plain"}
        assert rig.receive(body, hdrs) == (202, "accepted")
        rig.engine.secrets = SecretStore.load(rig.engine.config, {})
        assert rig.receive(body, headers(body, delivery="d-9")) == (500, "error")
        assert "AUTOKESTRA_SECRET_HOOK" in rig.err.getvalue()

    def test_the_secret_is_never_stored(self, rig: Rig) -> None:
        """A body echoing the secret is stored masked; the secret is in no database byte."""
        body = json.dumps({"ref": SECRET, "note": "x"}).encode()
        assert rig.receive(body, headers(body)) == (202, "accepted")
        rig.run_queued()
        (stored,) = rows(rig, "SELECT body FROM webhook_deliveries")
        assert json.loads(stored[0])["ref"] == SECRET_MASK
        rig.writer.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for path in rig.db.parent.iterdir():
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
        assert SECRET not in rig.err.getvalue()
