"""End to end: a real Prometheus scrapes Autokestra's /metrics and evaluates the alert rules.

Executions are run by the real engine (`workflow run`, real plugin processes); `workflow
server start --listen` serves /metrics for the database; Debian's Prometheus scrapes it every
second with the alert rules of examples/observability/alerts.yml, and the test reads the
results back through Prometheus' HTTP API, as Grafana would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from e2e import WORKFLOW
from prometheus_harness import Prometheus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ALERTS = EXAMPLES / "observability" / "alerts.yml"


def run_workflow(db: Path, workflow: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WORKFLOW, "--db", str(db), "run", str(EXAMPLES / "workflows" / workflow)],
        cwd=db.parent,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


@pytest.fixture
def metrics_port(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """Two real executions in a database, and `workflow server start --listen` serving it."""
    db = tmp_path / "ak.db"
    assert run_workflow(db, "hello.yaml").returncode == 0
    assert run_workflow(db, "failing-pipeline.yaml").returncode == 1
    server = subprocess.Popen(
        [WORKFLOW, "--db", str(db), "server", "start", "--listen", "127.0.0.1:0"],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    drain: threading.Thread | None = None
    try:
        assert server.stderr is not None
        port = 0
        for line in server.stderr:
            match = re.match(r"Listening on http://127\.0\.0\.1:(\d+)/", line)
            if match:
                port = int(match.group(1))
                break
        assert port, "the server never said where it listens"
        # Lifecycle lines keep coming on stderr: keep reading so the server never blocks.
        drain = threading.Thread(target=_drain, args=(server.stderr,), daemon=True)
        drain.start()
        yield db, port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            if server.stderr is not None:
                if drain is not None:
                    drain.join(timeout=10)
                server.stderr.close()


class TestPrometheusScrape:
    def test_query_results_and_alerts_through_prometheus(
        self, tmp_path: Path, metrics_port: tuple[Path, int]
    ) -> None:
        """Prometheus stores the §8 series, computes from them, and fires the failure alert."""
        _, port = metrics_port
        with Prometheus.start(
            tmp_path / "prometheus", targets=[f"127.0.0.1:{port}"], rules=ALERTS
        ) as prometheus:
            failed = prometheus.wait_for_series(
                'autokestra_executions_total{workflow_id="failing-pipeline",state="FAILED"}'
            )
            assert [series["value"][1] for series in failed] == ["1"]
            assert failed[0]["metric"]["job"] == "autokestra"
            succeeded = prometheus.query(
                'autokestra_executions_total{workflow_id="hello",state="SUCCESS"}'
            )
            assert [series["value"][1] for series in succeeded] == ["1"]
            # failing-pipeline: build FAILED, test and deploy CANCELLED (upstream failed).
            tasks = prometheus.query(
                'sum by (state) (autokestra_task_runs_total{type="core/shell.run"})'
            )
            by_state = {s["metric"]["state"]: s["value"][1] for s in tasks}
            assert by_state["FAILED"] == "1"
            assert int(by_state["CANCELLED"]) >= 1
            assert prometheus.query("autokestra_executions_running")[0]["value"][1] == "0"
            logs = prometheus.query("sum(autokestra_log_entries_total)")
            assert int(logs[0]["value"][1]) > 10
            size = prometheus.query("autokestra_db_size_bytes")
            assert int(size[0]["value"][1]) > 0
            # The example rules load, evaluate without error, and the failure alert fires.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                alerts = prometheus.api("alerts")["alerts"]
                if any(a["labels"]["alertname"] == "AutokestraExecutionFailed" for a in alerts):
                    break
                time.sleep(0.5)
            firing = [a for a in alerts if a["labels"]["alertname"] == "AutokestraExecutionFailed"]
            assert [a["labels"]["workflow_id"] for a in firing] == ["failing-pipeline"]
            rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
            assert len(rules) == 6
            assert {rule["health"] for rule in rules} == {"ok"}, rules
