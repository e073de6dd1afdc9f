"""run and server start build the OTLP exporter only when an endpoint is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli

HELLO = """
id: hello
tasks:
  - {id: greet, type: core/log.emit, inputs: {message: hi}}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a workflow file, as the working directory; no OTEL_* variable set."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.yaml").write_text(HELLO)
    return tmp_path


class TestTelemetryWiring:
    def test_invalid_otlp_config_is_one_line_error(self, project: Path) -> None:
        """A bad telemetry.otlp value stops `run` before anything runs, naming the key."""
        (project / "autokestra.yaml").write_text(
            "telemetry:\n  otlp:\n    endpoint: collector:4318\n"
        )
        result = CliRunner().invoke(cli, ["--db", "ak.db", "run", "hello.yaml"])
        assert result.exit_code == 1
        assert "telemetry.otlp.endpoint must be an http:// or https:// URL" in result.stderr
        assert "config file autokestra.yaml" in result.stderr
        assert not (project / "ak.db").exists()

    def test_the_server_refuses_it_too(self, project: Path) -> None:
        """`server start` checks the same settings before opening anything."""
        (project / "autokestra.yaml").write_text(
            "telemetry:\n  otlp:\n    endpoint: http://c:4318\n    shutdown_timeout: -1\n"
        )
        result = CliRunner().invoke(cli, ["--db", "ak.db", "server", "start"])
        assert result.exit_code == 1
        assert "telemetry.otlp.shutdown_timeout must be seconds" in result.stderr

    def test_no_endpoint_runs_without_export(self, project: Path) -> None:
        """Without an endpoint the run succeeds and says nothing about telemetry."""
        result = CliRunner().invoke(cli, ["--db", "ak.db", "run", "hello.yaml"])
        assert result.exit_code == 0, result.stderr
        assert "OTLP" not in result.stderr
