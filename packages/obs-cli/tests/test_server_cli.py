"""`workflow server start` refuses bad settings before it starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_engine import EngineConfig
from autokestra_obs_cli import cli
from autokestra_obs_cli._cmd_server import StoreMaintenance, _EscapedStderr
from autokestra_obs_schema import now_ms, open_writer


class TestServerStartErrors:
    @pytest.mark.parametrize("days", ["abc", "0", "-3", "40000"])
    def test_invalid_retention_is_a_start_up_error(self, tmp_path: Path, days: str) -> None:
        """A bad AUTOKESTRA_LOG_RETENTION_DAYS is one `Error:` line naming it, exit 1."""
        db = tmp_path / "a.db"
        result = CliRunner().invoke(
            cli,
            ["--db", str(db), "server", "start"],
            env={"AUTOKESTRA_LOG_RETENTION_DAYS": days},
        )
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: ")
        assert "AUTOKESTRA_LOG_RETENTION_DAYS" in result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert not db.exists()

    def test_invalid_poll_interval_is_a_start_up_error(self, tmp_path: Path) -> None:
        """A bad AUTOKESTRA_SERVER_POLL is one `Error:` line, exit 1, and no database."""
        db = tmp_path / "a.db"
        result = CliRunner().invoke(
            cli, ["--db", str(db), "server", "start"], env={"AUTOKESTRA_SERVER_POLL": "fast"}
        )
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: Invalid AUTOKESTRA_SERVER_POLL 'fast'")
        assert not db.exists()

    def test_invalid_grace_is_an_error(self, tmp_path: Path) -> None:
        """--shutdown-grace takes a duration."""
        result = CliRunner().invoke(
            cli, ["--db", str(tmp_path / "a.db"), "server", "start", "--shutdown-grace", "soon"]
        )
        assert result.exit_code == 1
        assert "Invalid time format" in result.stderr


class TestStoreMaintenance:
    def test_retention_stops_at_a_batch_boundary_when_the_server_stops(
        self, tmp_path: Path
    ) -> None:
        """A stopping server ends its purge after the current batch; a rerun finishes it."""
        db = tmp_path / "a.db"
        writer = open_writer(db)
        old = now_ms() - 60 * 86_400_000
        try:
            with writer.transaction() as conn:
                conn.execute(
                    "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                    " updated_at) VALUES ('e', 'wf', 'SUCCESS', ?, ?)",
                    (old, old),
                )
                conn.executemany(
                    "INSERT INTO execution_logs (execution_id, timestamp, level, source,"
                    " message) VALUES ('e', ?, 'INFO', 'scheduler', 'old')",
                    [(old + n,) for n in range(3500)],
                )
            maintenance = StoreMaintenance(writer, EngineConfig(db_path=db), stopping=lambda: True)
            summary = maintenance.run_retention(now_ms())
            assert summary.startswith("stopped by shutdown after 1000 log entries")
            left = writer.connection.execute("SELECT COUNT(*) FROM execution_logs").fetchall()
            assert left == [(2500,)]
            maintenance.stopping = lambda: False
            assert maintenance.run_retention(now_ms()).startswith("deleted 2500 log entries")
        finally:
            writer.close()


class TestLifecycleLines:
    def test_control_characters_are_escaped_on_stderr(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A lifecycle line quoting untrusted text shows its escapes, never sends them raw."""
        sink = _EscapedStderr()
        sink.write("Cron fire of x skipped: bad \x1b[31mred\x9b\n")
        sink.flush()
        assert capsys.readouterr().err == "Cron fire of x skipped: bad \\x1b[31mred\\x9b\n"
