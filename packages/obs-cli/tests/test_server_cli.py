"""`workflow server start` refuses bad settings before it starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli


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

    def test_invalid_grace_is_an_error(self, tmp_path: Path) -> None:
        """--shutdown-grace takes a duration."""
        result = CliRunner().invoke(
            cli, ["--db", str(tmp_path / "a.db"), "server", "start", "--shutdown-grace", "soon"]
        )
        assert result.exit_code == 1
        assert "Invalid time format" in result.stderr
