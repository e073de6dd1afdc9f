"""`workflow logs cleanup`: retention on demand, with a dry run."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from autokestra_obs_cli import cli
from autokestra_obs_schema import audit_digest, connect, now_ms, open_writer

DAY_MS = 86_400_000


def seed(db: Path) -> None:
    """A finished and a running execution, each with logs 40 and 1 days old."""
    writer = open_writer(db)
    now = now_ms()
    with writer.transaction() as conn:
        for execution_id, state in (("done", "SUCCESS"), ("live", "RUNNING")):
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at, log_entry_count) VALUES (?, 'wf', ?, 1, 1, 3)",
                (execution_id, state),
            )
            for age in (40, 40, 1):
                conn.execute(
                    "INSERT INTO execution_logs (execution_id, timestamp, level, source,"
                    " message) VALUES (?, ?, 'INFO', 'scheduler', 'hello')",
                    (execution_id, now - age * DAY_MS),
                )
            ts = now - 40 * DAY_MS
            conn.execute(
                "INSERT INTO execution_audit_events (execution_id, event_type, timestamp,"
                " metadata, prev_hash, hash) VALUES (?, 'CREATED', ?, '{}', NULL, ?)",
                (execution_id, ts, audit_digest(None, execution_id, "CREATED", ts, "{}")),
            )
    writer.close()


def counts(db: Path) -> tuple[int, int]:
    """Rows left in the log and audit tables."""
    conn = connect(db, readonly=True)
    logs = conn.execute("SELECT COUNT(*) FROM execution_logs").fetchall()[0][0]
    audit = conn.execute("SELECT COUNT(*) FROM execution_audit_events").fetchall()[0][0]
    conn.close()
    assert isinstance(logs, int)
    assert isinstance(audit, int)
    return logs, audit


def run(db: Path, *args: str, env: dict[str, str | None] | None = None) -> Result:
    """Invoke `workflow --db DB logs cleanup ARGS`."""
    return CliRunner().invoke(cli, ["--db", str(db), "logs", "cleanup", *args], env=env)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A seeded database."""
    path = tmp_path / "autokestra.db"
    seed(path)
    return path


class TestCleanup:
    def test_default_window_deletes_old_rows_of_finished_executions(self, db: Path) -> None:
        """With the 30-day default only the finished execution's 40-day-old rows go."""
        result = run(db, env={"AUTOKESTRA_LOG_RETENTION_DAYS": None})
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Deleted 2 log entries and 1 audit events (")
        assert result.stdout.rstrip().endswith(" freed)")
        assert "Cutoff " in result.stderr
        assert counts(db) == (4, 1)

    def test_dry_run_deletes_nothing(self, db: Path) -> None:
        """--dry-run reports the same figures and leaves every row."""
        result = run(db, "--dry-run")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Would delete 2 log entries and 1 audit events (")
        assert counts(db) == (6, 2)

    def test_older_than_sets_the_cutoff(self, db: Path) -> None:
        """--older-than 12h also takes the finished execution's day-old entry."""
        result = run(db, "--older-than", "12h")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Deleted 3 log entries and 1 audit events")
        assert counts(db) == (3, 1)

    def test_environment_window(self, db: Path) -> None:
        """AUTOKESTRA_LOG_RETENTION_DAYS=50 keeps the 40-day-old rows."""
        result = run(db, env={"AUTOKESTRA_LOG_RETENTION_DAYS": "50"})
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Deleted 0 log entries and 0 audit events")
        assert counts(db) == (6, 2)

    def test_invalid_environment_is_an_error(self, db: Path) -> None:
        """A bad AUTOKESTRA_LOG_RETENTION_DAYS is one clear error line, exit 1."""
        result = run(db, env={"AUTOKESTRA_LOG_RETENTION_DAYS": "soon"})
        assert result.exit_code == 1
        assert "AUTOKESTRA_LOG_RETENTION_DAYS" in result.stderr
        assert result.stderr.startswith("Error: ")

    @pytest.mark.parametrize("value", ["7", "1.5d", "-1d", "0s", "1w"])
    def test_invalid_duration_is_an_error(self, db: Path, value: str) -> None:
        """A bad --older-than is the CLI's time-format error, exit 1, nothing deleted."""
        result = run(db, "--older-than", value)
        assert result.exit_code == 1
        assert "Invalid time format. Examples: 5m, 2h, 1d" in result.stderr
        assert counts(db) == (6, 2)

    def test_missing_database_is_an_error(self, tmp_path: Path) -> None:
        """Cleanup never creates a database."""
        missing = tmp_path / "none.db"
        result = run(missing, "--dry-run")
        assert result.exit_code == 1
        assert "No database at" in result.stderr
        assert not missing.exists()
