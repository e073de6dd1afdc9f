"""End to end: a signed POST /webhooks/<id> on `workflow server start --listen` runs a workflow.

The installed ``workflow`` program registers examples/workflows/webhook.yaml and serves it
(real plugin processes); requests are real HTTP through urllib, signed as docs/workflows.md
shows. The console has a token here, to prove webhook requests need none (their signature
authenticates them) while /metrics still does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from e2e import WORKFLOW, rows, wait_for

from autokestra_engine import signed_headers

pytestmark = [pytest.mark.integration]

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workflows" / "webhook.yaml"
SECRET = "whsec-4c1f0e9b7a2d83f6"
TOKEN = "console-token-0123456789abcdef"
BODY = {
    "ref": "refs/heads/main",
    "pusher": {"name": "ada"},
    "head_commit": {"message": "fix: {{ secrets.DEPLOY_HOOK }} stays text"},
}


@dataclass
class Served:
    """A running `workflow server start --listen` and what it printed on stderr."""

    db: Path
    url: str
    stderr: list[str] = field(default_factory=list)

    def post(
        self, body: bytes, headers: dict[str, str], workflow_id: str = "deploy-on-push"
    ) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            f"{self.url}/webhooks/{workflow_id}", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            with refused:
                return refused.code, json.loads(refused.read())

    def metrics(self) -> str:
        request = urllib.request.Request(
            f"{self.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return str(answer.read().decode())


def signed(body: bytes, delivery: str, secret: str = SECRET) -> dict[str, str]:
    headers = signed_headers(
        secret.encode(), body, delivery_id=delivery, timestamp_s=int(time.time())
    )
    return {**headers, "Content-Type": "application/json"}


def _collect(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The example registered in a fresh database and a server listening on a free port."""
    db = tmp_path / "ak.db"
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "AUTOKESTRA_SECRET_DEPLOY_HOOK": SECRET,
        "AUTOKESTRA_SERVER_POLL": "100ms",
    }
    applied = subprocess.run(
        [WORKFLOW, "--db", str(db), "apply", str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    token_file = tmp_path / "console.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    command = [WORKFLOW, "--db", str(db), "server", "start", "--listen", "127.0.0.1:0"]
    command += ["--token-file", str(token_file)]
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    collector: threading.Thread | None = None
    try:
        assert server.stderr is not None
        port = 0
        for line in server.stderr:
            match = re.match(r"Listening on http://127\.0\.0\.1:(\d+)/", line)
            if match:
                port = int(match.group(1))
                break
        assert port, "the server never said where it listens"
        running = Served(db, f"http://127.0.0.1:{port}")
        # Keep reading stderr (the server must never block on it) and keep the lines.
        collector = threading.Thread(
            target=_collect, args=(server.stderr, running.stderr), daemon=True
        )
        collector.start()
        yield running
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            if server.stderr is not None:
                if collector is not None:
                    collector.join(timeout=10)
                server.stderr.close()


def count(metrics: str, outcome: str, workflow_id: str = "deploy-on-push") -> float:
    pattern = (
        r"^autokestra_webhook_requests_total\{"
        rf'(?=[^}}]*workflow_id="{re.escape(workflow_id)}")(?=[^}}]*outcome="{outcome}")'
        r"[^}]*\} (\S+)$"
    )
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class TestWebhookTrigger:
    def test_signed_request_runs_the_workflow_and_refusals_are_counted(
        self, served: Served
    ) -> None:
        """202 then SUCCESS with the body in the logs; unsigned, badly signed, replayed and
        unknown requests are refused with their status and counted on /metrics; the secret
        is in no database row and no server line."""
        body = json.dumps(BODY).encode()
        status, answer = served.post(body, signed(body, "delivery-1"))
        assert status == 202, answer
        execution_id = str(answer["execution_id"])

        def finished() -> bool:
            found = rows(
                served.db, "SELECT state FROM executions WHERE execution_id = ?", (execution_id,)
            )
            return bool(found) and found[0][0] in ("SUCCESS", "FAILED", "CANCELLED")

        wait_for("the webhook execution to end", finished, timeout=60)
        assert rows(
            served.db,
            "SELECT state, trigger_type FROM executions WHERE execution_id = ?",
            (execution_id,),
        ) == [("SUCCESS", "webhook")]
        logs = subprocess.run(
            [WORKFLOW, "--db", str(served.db), "execution", "logs", execution_id],
            env={**os.environ, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "push to refs/heads/main by ada" in logs
        assert "deploying refs/heads/main (1 commits)" in logs
        assert "fix: {{ secrets.DEPLOY_HOOK }} stays text" in logs  # data, not a template

        assert served.post(body, signed(body, "delivery-1"))[0] == 409  # replayed
        unsigned = {"Content-Type": "application/json"}
        assert served.post(body, unsigned) == (
            401,
            {"error": "missing X-Autokestra-Delivery header", "outcome": "unsigned"},
        )
        assert served.post(body, signed(body, "delivery-2", secret="not-the-secret"))[0] == 403
        tampered = json.dumps({**BODY, "ref": "refs/heads/evil"}).encode()
        assert served.post(tampered, signed(body, "delivery-3"))[0] == 403
        assert served.post(body, signed(body, "delivery-4"), workflow_id="nope")[0] == 404
        assert len(rows(served.db, "SELECT 1 FROM executions")) == 1

        metrics = served.metrics()
        assert count(metrics, "accepted") == 1
        assert count(metrics, "replayed") == 1
        assert count(metrics, "unsigned") == 1
        assert count(metrics, "bad_signature") == 2
        assert count(metrics, "unknown_workflow", workflow_id="") == 1

        wait_for(
            "the server's webhook lines",
            lambda: sum("Webhook " in line for line in served.stderr) >= 6,
        )
        lines = "".join(served.stderr)
        assert "Webhook deploy-on-push: 202 accepted" in lines
        assert "Webhook deploy-on-push: 401 unsigned" in lines
        assert "Webhook deploy-on-push: 403 bad_signature" in lines
        assert "Webhook deploy-on-push: 409 replayed" in lines
        assert SECRET not in lines
        for path in served.db.parent.iterdir():
            if path.is_file() and path.name.startswith("ak.db"):
                assert SECRET.encode() not in path.read_bytes(), path

    def test_the_console_keeps_its_token(self, served: Served) -> None:
        """The webhook path needs no console token; the console and /metrics still do."""
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{served.url}/api/executions", timeout=30)
        assert refused.value.code == 401
        refused.value.close()
        with pytest.raises(urllib.error.HTTPError) as metrics:
            urllib.request.urlopen(f"{served.url}/metrics", timeout=30)
        assert metrics.value.code == 401
        metrics.value.close()
