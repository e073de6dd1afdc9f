"""`workflow db status` takes its size warning threshold from the engine configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_schema import open_writer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database whose log table holds about 2 MiB."""
    path = tmp_path / "autokestra.db"
    writer = open_writer(path)
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES ('e1', 'wf', 'SUCCESS', 1, 1)"
        )
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
            " VALUES ('e1', ?, 'INFO', 'scheduler', ?)",
            [(n, "x" * 1000) for n in range(2000)],
        )
    writer.close()
    return path


class TestSizeWarningThreshold:
    def test_default_threshold_is_quiet(self, db: Path) -> None:
        """Under 1 GiB there is no warning."""
        result = CliRunner().invoke(
            cli, ["--db", str(db), "db", "status"], env={"AUTOKESTRA_TABLE_SIZE_WARNING": None}
        )
        assert result.exit_code == 0, result.output
        assert "Warning" not in result.stderr

    def test_config_file_threshold(self, db: Path, tmp_path: Path) -> None:
        """logging.table_size_warning: 1MB in the config file lowers the threshold."""
        config = tmp_path / "autokestra.yaml"
        config.write_text("logging: {table_size_warning: 1MB}\n")
        result = CliRunner().invoke(
            cli,
            ["--db", str(db), "--config", str(config), "db", "status"],
            env={"AUTOKESTRA_TABLE_SIZE_WARNING": None},
        )
        assert result.exit_code == 0, result.output
        assert "Warning: Table execution_logs is" in result.stderr
        assert "over the 1.0 MiB warning threshold" in result.stderr

    def test_environment_threshold_in_json(self, db: Path) -> None:
        """AUTOKESTRA_TABLE_SIZE_WARNING works too, and the warning is in --json output."""
        result = CliRunner().invoke(
            cli,
            ["--db", str(db), "db", "status", "--json"],
            env={"AUTOKESTRA_TABLE_SIZE_WARNING": "1MiB"},
        )
        assert result.exit_code == 0, result.output
        assert '"Table execution_logs is' in result.stdout

    def test_option_wins(self, db: Path) -> None:
        """--size-warning overrides the configuration."""
        result = CliRunner().invoke(
            cli,
            ["--db", str(db), "db", "status", "--size-warning", str(1024**3)],
            env={"AUTOKESTRA_TABLE_SIZE_WARNING": "1MiB"},
        )
        assert result.exit_code == 0, result.output
        assert "Warning" not in result.stderr
