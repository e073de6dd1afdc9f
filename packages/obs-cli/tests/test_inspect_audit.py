"""`workflow audit verify`: the --verify check for several executions or all of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_schema import open_writer
from autokestra_obs_store.testing import (
    cancelled_execution,
    failure_execution,
    success_execution,
    write_execution,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli" / "inspect.md"

#: The last line of a verification without the audit key (DESIGN.md §6.8).
UNKEYED = "unkeyed: links checked, content not authenticated"


def _db(tmp_path: Path, *, tamper: bool = False) -> tuple[Path, list[str]]:
    path = tmp_path / "audit.db"
    writer = open_writer(path)
    ids = [
        write_execution(writer, success_execution()),
        write_execution(writer, failure_execution()),
        write_execution(writer, cancelled_execution()),
    ]
    if tamper:
        with writer.transaction() as conn:
            conn.execute("DROP TRIGGER audit_events_no_update")
            conn.execute(
                "UPDATE execution_audit_events SET metadata = '{}' "
                "WHERE execution_id = ? AND event_type = 'CANCELLED'",
                (ids[2],),
            )
    writer.close()
    return path, ids


def _verify(path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(path), "audit", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


class TestAuditVerify:
    def test_all_intact(self, tmp_path: Path) -> None:
        """--all prints OK per execution, a count on stderr, and exits 0."""
        path, ids = _db(tmp_path)
        code, out, err = _verify(path, "--all")
        assert code == 0
        # Oldest first; the fixtures share a start time, so the id breaks the tie.
        assert out.splitlines() == [
            *(f"OK      {eid}" for eid in sorted(ids)),
            UNKEYED,  # the fixtures are written without an audit key
        ]
        assert err == "3 audit trails verified\n"

    def test_tampered_one_fails(self, tmp_path: Path) -> None:
        """An edited trail is BROKEN with its violation; the command exits 1."""
        path, ids = _db(tmp_path, tamper=True)
        code, out, err = _verify(path, "--all")
        assert code == 1
        lines = out.splitlines()
        assert sorted(line for line in lines if line.startswith("OK")) == sorted(
            f"OK      {eid}" for eid in ids[:2]
        )
        broken = [line for line in lines if line.startswith("BROKEN")]
        assert len(broken) == 1
        assert broken[0].startswith(f"BROKEN  {ids[2]}  Audit event #")
        assert "(CANCELLED) was modified" in broken[0]
        assert err == "Error: Audit verification failed for 1 of 3 executions\n"

    def test_named_ids(self, tmp_path: Path) -> None:
        """Named ids are verified in the order given."""
        path, ids = _db(tmp_path)
        code, out, _ = _verify(path, ids[1], ids[0])
        assert code == 0
        assert out.splitlines() == [f"OK      {ids[1]}", f"OK      {ids[0]}", UNKEYED]

    def test_unknown_id(self, tmp_path: Path) -> None:
        """An unknown id is `Execution not found`, exit 1."""
        path, _ = _db(tmp_path)
        code, _, err = _verify(path, "nope")
        assert code == 1
        assert err == "Error: Execution not found: nope\n"

    def test_ids_or_all_required(self, tmp_path: Path) -> None:
        """Neither ids nor --all (or both) is a usage error, exit 2."""
        path, ids = _db(tmp_path)
        assert _verify(path)[0] == 2
        assert _verify(path, ids[0], "--all")[0] == 2

    def test_trails_removed_by_retention_are_not_broken(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After `logs cleanup` removed whole trails, `audit verify --all` and `inspect
        --verify` still exit 0 and say why there is nothing to check.

        The fixtures ended days ago: with a 1-day window retention may have removed them
        (inside the window a missing trail is a deletion, DESIGN.md §6.8).
        """
        monkeypatch.setenv("AUTOKESTRA_LOG_RETENTION_DAYS", "1")
        from autokestra_obs_store import purge
        from autokestra_obs_store.testing import T0

        path, ids = _db(tmp_path)
        writer = open_writer(path)
        try:
            assert purge(writer, T0 + 10 * 86_400_000).audit_rows > 0
            # Retention removes trails only of executions that ended before its window: so
            # did these (a trail missing within the window is a violation, DESIGN.md §6.8).
            with writer.transaction() as conn:
                conn.execute("UPDATE executions SET ended_at = ended_at - ?", (60 * 86_400_000,))
        finally:
            writer.close()
        code, out, _ = _verify(path, "--all")
        assert code == 0, out
        assert out.splitlines() == [
            *(f"OK      {eid}  (no audit events: removed by retention)" for eid in sorted(ids)),
            UNKEYED,
        ]
        result = CliRunner().invoke(
            cli, ["--db", str(path), "execution", "inspect", ids[0], "--verify"]
        )
        assert result.exit_code == 0, result.output
        assert result.stdout == (
            f"Audit trail of execution {ids[0]}: no events (removed by retention)\n{UNKEYED}\n"
        )

    def test_documented(self) -> None:
        """docs/cli/inspect.md documents the command and its --all option."""
        text = DOC.read_text()
        assert "workflow audit verify" in text
        assert "| `--all`" in text
