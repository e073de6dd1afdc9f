"""/metrics: names, types and labels exactly as DESIGN.md §8, values from the database."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import LogLevel, Writer
from autokestra_obs_telemetry.metrics import (
    ProcessMetrics,
    metrics_app,
    metrics_registry,
    metrics_text,
    start_metrics_server,
)


class Dropping:
    """An exporter stand-in that dropped some telemetry."""

    dropped = 12


def families(text: bytes) -> dict[str, tuple[str, list[Sample]]]:
    """Metric name -> (type, samples), parsed the way Prometheus parses a scrape."""
    return {
        family.name: (family.type, family.samples)
        for family in text_string_to_metric_families(text.decode())
    }


def value(samples: list[Sample], name: str, **labels: str) -> float:
    matches = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(matches) == 1, (name, labels, samples)
    return matches[0]


class TestDatabaseMetrics:
    def test_names_types_and_labels(self, populated: Writer) -> None:
        """Every §8 database metric is there with its type and label names."""
        parsed = families(metrics_text(metrics_registry(populated.path)))
        expected = {
            "autokestra_executions": ("counter", {"workflow_id", "state"}),
            "autokestra_executions_running": ("gauge", set()),
            "autokestra_executions_queued": ("gauge", set()),
            "autokestra_task_runs": ("counter", {"type", "state"}),
            "autokestra_task_duration_seconds": ("histogram", {"type"}),
            "autokestra_log_entries": ("counter", {"level"}),
            "autokestra_log_entries_dropped": ("counter", set()),
            "autokestra_db_size_bytes": ("gauge", set()),
            "autokestra_otlp_dropped": ("counter", set()),
        }
        for name, (kind, labels) in expected.items():
            assert name in parsed, name
            assert parsed[name][0] == kind, name
            for sample in parsed[name][1]:
                assert set(sample.labels) - {"le"} == labels, (name, sample)

    def test_exposition_uses_the_contract_names(self, populated: Writer) -> None:
        """The text a scraper reads has the exact sample names of DESIGN.md §8."""
        text = metrics_text(metrics_registry(populated.path)).decode()
        for line in (
            "# TYPE autokestra_executions_total counter",
            'autokestra_executions_total{state="SUCCESS",workflow_id="etl"} 1.0',
            "autokestra_executions_running 1.0",
            "autokestra_executions_queued 1.0",
            'autokestra_task_runs_total{state="FAILED",type="core/shell.run"} 1.0',
            "# TYPE autokestra_task_duration_seconds histogram",
            'autokestra_task_duration_seconds_bucket{le="+Inf",type="core/shell.run"} 2.0',
            'autokestra_log_entries_total{level="ERROR"} 1.0',
            "autokestra_log_entries_dropped_total 4.0",
            "autokestra_otlp_dropped_total 0.0",
        ):
            assert line in text.splitlines(), line

    def test_values_follow_the_database(self, populated: Writer, rows: Any) -> None:
        """Counts match the rows and move when rows are added, scrape after scrape."""
        registry = metrics_registry(populated.path)
        first = families(metrics_text(registry))
        executions = first["autokestra_executions"][1]
        assert (
            value(executions, "autokestra_executions_total", workflow_id="etl", state="FAILED") == 1
        )
        durations = first["autokestra_task_duration_seconds"][1]
        shell = {"type": "core/shell.run"}
        assert value(durations, "autokestra_task_duration_seconds_count", **shell) == 2
        assert value(durations, "autokestra_task_duration_seconds_sum", **shell) == 1.8
        assert value(durations, "autokestra_task_duration_seconds_bucket", le="0.5", **shell) == 1
        assert value(durations, "autokestra_task_duration_seconds_bucket", le="2.5", **shell) == 2
        logs = first["autokestra_log_entries"][1]
        assert value(logs, "autokestra_log_entries_total", level="INFO") == 2
        assert value(logs, "autokestra_log_entries_total", level="DEBUG") == 0
        assert value(logs, "autokestra_log_entries_total", level="WARN") == 1  # the drop report
        rows.execution("e6", "etl", "FAILED")
        rows.logs("e6", ["WARN", "DEBUG"], dropped=2)
        second = families(metrics_text(registry))
        executions = second["autokestra_executions"][1]
        assert (
            value(executions, "autokestra_executions_total", workflow_id="etl", state="FAILED") == 2
        )
        logs = second["autokestra_log_entries"][1]
        assert value(logs, "autokestra_log_entries_total", level="WARN") == 3
        assert value(logs, "autokestra_log_entries_total", level="DEBUG") == 1
        dropped = second["autokestra_log_entries_dropped"][1]
        assert value(dropped, "autokestra_log_entries_dropped_total") == 6

    def test_label_values_are_bounded(self, populated: Writer) -> None:
        """No execution id appears anywhere in the exposition."""
        text = metrics_text(metrics_registry(populated.path)).decode()
        for execution_id in ("e1", "e2", "e3", "e4", "e5"):
            assert f'"{execution_id}"' not in text

    def test_db_size(self, populated: Writer) -> None:
        """The size gauge is the file plus its write-ahead log."""
        parsed = families(metrics_text(metrics_registry(populated.path)))
        size = value(parsed["autokestra_db_size_bytes"][1], "autokestra_db_size_bytes")
        path = Path(populated.path)
        wal = Path(f"{path}-wal")
        assert size == path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


class TestProcessMetrics:
    def test_collector_and_exporter_figures(self, populated: Writer) -> None:
        """Flush latency counts every committed transaction; drops come from the exporter."""
        collector = LogCollector(populated)
        try:
            registry = metrics_registry(populated.path, collector=collector, exporter=Dropping())
            for n in range(3):
                collector.log("e1", LogLevel.INFO, "worker", f"line {n}")
                assert collector.flush(timeout=5)
            parsed = families(metrics_text(registry))
            flush = parsed["autokestra_collector_flush_duration_seconds"]
            assert flush[0] == "histogram"
            count = value(flush[1], "autokestra_collector_flush_duration_seconds_count")
            assert count == collector.stats().transactions == 3
            inf = value(flush[1], "autokestra_collector_flush_duration_seconds_bucket", le="+Inf")
            assert inf == 3
            depth = parsed["autokestra_collector_queue_depth"]
            assert depth[0] == "gauge"
            assert value(depth[1], "autokestra_collector_queue_depth") == 0
            otlp = parsed["autokestra_otlp_dropped"][1]
            assert value(otlp, "autokestra_otlp_dropped_total") == 12
        finally:
            collector.shutdown()

    def test_without_a_collector_there_are_no_collector_figures(self, populated: Writer) -> None:
        """A read-only process (workflow ui) does not pretend to have a collector."""
        parsed = families(metrics_text(metrics_registry(populated.path)))
        assert "autokestra_collector_queue_depth" not in parsed
        assert "autokestra_collector_flush_duration_seconds" not in parsed

    def test_buckets_are_cumulative(self, writer: Writer) -> None:
        """An observation lands in its bucket and every larger one."""
        collector = LogCollector(writer)
        try:
            metrics = ProcessMetrics(collector=collector)
            for seconds in (0.0005, 0.003, 0.003, 7.0):
                metrics.observe_flush([], seconds)
            text = metrics_text_of(metrics).splitlines()
        finally:
            collector.shutdown()
        name = "autokestra_collector_flush_duration_seconds"
        assert f'{name}_bucket{{le="0.001"}} 1.0' in text
        assert f'{name}_bucket{{le="0.0025"}} 1.0' in text
        assert f'{name}_bucket{{le="0.005"}} 3.0' in text
        assert f'{name}_bucket{{le="2.5"}} 3.0' in text
        assert f'{name}_bucket{{le="+Inf"}} 4.0' in text
        assert f"{name}_count 4.0" in text


class Hooks:
    """A webhook receiver stand-in with fixed counts."""

    def webhook_counts(self) -> dict[tuple[str, str], int]:
        return {
            ("deploy", "accepted"): 3,
            ("deploy", "bad_signature"): 1,
            ("", "unknown_workflow"): 2,
        }


class TestWebhookMetrics:
    def test_requests_by_workflow_and_outcome(self, populated: Writer) -> None:
        """Each (workflow_id, outcome) count is one sample of a counter."""
        parsed = families(metrics_text(metrics_registry(populated.path, webhooks=Hooks())))
        kind, samples = parsed["autokestra_webhook_requests"]
        assert kind == "counter"
        name = "autokestra_webhook_requests_total"
        assert value(samples, name, workflow_id="deploy", outcome="accepted") == 3
        assert value(samples, name, workflow_id="deploy", outcome="bad_signature") == 1
        assert value(samples, name, workflow_id="", outcome="unknown_workflow") == 2

    def test_absent_without_a_receiver(self, populated: Writer) -> None:
        """workflow ui receives no webhooks and exposes no webhook counter."""
        parsed = families(metrics_text(metrics_registry(populated.path)))
        assert "autokestra_webhook_requests" not in parsed


def metrics_text_of(metrics: ProcessMetrics) -> str:
    """The exposition of one collector alone."""
    registry = CollectorRegistry()
    registry.register(metrics)
    return metrics_text(registry).decode()


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def call_app(app: Any, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    """Call an ASGI app once, the way an ASGI server would."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/metrics", "headers": []}
    asyncio.run(app(scope, receive, send))
    start, body = sent
    return int(start["status"]), dict(start["headers"]), bytes(body["body"])


class TestServing:
    def test_asgi_app(self, populated: Writer) -> None:
        """The mountable app answers GET with the text format; other methods are refused."""
        app = metrics_app(metrics_registry(populated.path))
        status, headers, body = call_app(app)
        assert status == 200
        assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
        assert b"autokestra_executions_queued 1.0" in body
        assert call_app(app, "POST")[0] == 405

    def test_unreadable_database_is_a_failed_scrape(self, tmp_path: Path) -> None:
        """A database that cannot be opened answers 503 (Prometheus records up == 0)."""
        app = metrics_app(metrics_registry(tmp_path / "missing.db"))
        status, _, body = call_app(app)
        assert status == 503
        assert body.startswith(b"metrics unavailable: DatabaseNotFound")
        assert not (tmp_path / "missing.db").exists()

    def test_standalone_server(self, populated: Writer) -> None:
        """start_metrics_server serves /metrics over real HTTP on a free port."""
        server = start_metrics_server(metrics_registry(populated.path), "127.0.0.1", 0)
        try:
            url = f"http://127.0.0.1:{server.port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                body = response.read()
            assert b"autokestra_executions_running 1.0" in body
        finally:
            server.close()
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)
