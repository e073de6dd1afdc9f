"""A real Prometheus for tests: Debian's ``prometheus``, own config and data, 127.0.0.1 only.

Never the system service: each test gets a process of its own, on a free port, with a temp
config and data folder, stopped (terminate, then kill) when the test ends, pass or fail.

    with Prometheus.start(tmp_path, targets=["127.0.0.1:8123"], rules=ALERTS) as prom:
        prom.wait_for_value('autokestra_executions_queued', 0)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from autokestra_obs_telemetry.testing import unused_port

INSTALL_HINT = (
    "the Prometheus integration test needs Debian's `prometheus` package: run"
    " `tools/nox -s integration` as root (it installs it when missing) or"
    " `apt-get update && apt-get install -y prometheus`"
)


def prometheus_binary() -> str:
    """The prometheus executable; fails the test with the install hint when missing."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(f"prometheus not found: {INSTALL_HINT}")
    return binary


class Prometheus:
    """A running Prometheus server and its HTTP API."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    @classmethod
    @contextmanager
    def start(
        cls, folder: Path, *, targets: list[str], rules: Path | None = None
    ) -> Iterator[Prometheus]:
        """Start Prometheus scraping ``targets`` every second; stop it on exit, always.

        The config is ``examples/observability/prometheus.yml``'s shape with the scrape and
        evaluation intervals shortened and the targets replaced.
        """
        folder.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "autokestra",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        if rules is not None:
            config["rule_files"] = [str(rules)]
        config_path = folder / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        port = unused_port()
        log = folder / "prometheus.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = cls(process, f"http://127.0.0.1:{port}", log)
        try:
            server._wait_ready()
            yield server
        finally:
            server.stop()

    def stop(self) -> None:
        """Terminate the process (kill it after 10 s); idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited at start:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"prometheus not ready after {timeout:g}s:\n{self.log.read_text()[-2000:]}")

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data`` (fails the test on an API error)."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of a PromQL expression."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for_series(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Poll a query until it returns series (scrapes happen every second)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        targets = self.api("targets")
        pytest.fail(f"no series for {expr} after {timeout:g}s; targets: {targets}")
