"""examples/observability: the dashboard and the rules use only metrics /metrics really serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_harness import INSTALL_HINT

from autokestra_obs_collector import LogCollector
from autokestra_obs_schema import open_writer
from autokestra_obs_telemetry.metrics import metrics_registry, metrics_text

pytestmark = pytest.mark.integration

OBSERVABILITY = Path(__file__).resolve().parent.parent / "examples" / "observability"
METRIC = re.compile(r"\bautokestra_[a-z_]+")


def served_names(tmp_path: Path) -> set[str]:
    """Every sample name /metrics serves in a server process (collector included)."""
    writer = open_writer(tmp_path / "ak.db")
    collector = LogCollector(writer)
    try:
        text = metrics_text(metrics_registry(writer.path, collector=collector)).decode()
    finally:
        collector.shutdown()
        writer.close()
    # Series names by family type: a family without samples yet (nothing has run in this
    # fresh database) still names its series.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ())}
    return names


def expressions(node: Any) -> list[str]:
    """Every ``expr`` string in a JSON/YAML document."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                found.append(value)
            else:
                found += expressions(value)
    elif isinstance(node, list):
        for item in node:
            found += expressions(item)
    return found


class TestObservabilityExamples:
    def test_dashboard_queries_served_metrics(self, tmp_path: Path) -> None:
        """Each panel query of the Grafana dashboard names metrics that exist."""
        dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
        exprs = expressions(dashboard["panels"])
        assert len(exprs) >= 10
        used = {name for expr in exprs for name in METRIC.findall(expr)}
        assert used - served_names(tmp_path) == set()
        assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {"${datasource}"}

    def test_alert_rules_query_served_metrics(self, tmp_path: Path) -> None:
        """Each alert names metrics that exist; the four the issue asks for are there."""
        rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
        alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
        assert {
            "AutokestraExecutionFailed",
            "AutokestraExecutionsStuckRunning",
            "AutokestraLogEntriesDropped",
            "AutokestraDatabaseLarge",
        } <= set(alerts)
        used = {name for expr in alerts.values() for name in METRIC.findall(expr)}
        assert used - served_names(tmp_path) == set()

    def test_promtool_accepts_the_files(self) -> None:
        """Prometheus' own checker accepts the example config and its rules."""
        promtool = shutil.which("promtool")
        if promtool is None:
            pytest.fail(f"promtool not found: {INSTALL_HINT}")
        result = subprocess.run(
            [promtool, "check", "config", str(OBSERVABILITY / "prometheus.yml")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS: 6 rules found" in result.stdout
