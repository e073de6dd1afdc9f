"""End to end (DESIGN.md §6.8): `workflow run` keys the trail; `--verify` catches the edits.

The engine creates `audit.key` beside the database on its first write; the CLI verifies with
it (`keyed: ...`) and, with the key moved away (a copied db), says `unkeyed: links checked,
content not authenticated`. The edits are an attacker's with the file: triggers dropped, plain
digests recomputed.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from e2e import WORKFLOW

from autokestra_obs_schema import audit_digest, connect

pytestmark = pytest.mark.integration

FLOW = """
id: flow
tasks:
  - {id: a, type: core/log.emit, inputs: {message: one}}
"""
KEYED = "keyed: content authenticated with the audit key"
UNKEYED = "unkeyed: links checked, content not authenticated"


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKESTRA")}
    return subprocess.run(
        [WORKFLOW, "--db", "ak.db", *args],
        cwd=folder,
        env={**env, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def ran(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "flow.yaml").write_text(FLOW)
    result = _cli(tmp_path, "run", "flow.yaml")
    assert result.returncode == 0, result.stderr
    return tmp_path, result.stdout.split()[1]


def _tamper(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    conn = connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for trigger in ("audit_events_no_update", "audit_events_delete_guard"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")  # constant names
        for sql, params in statements:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _rehash(db: Path, eid: str) -> None:
    """Recompute every plain link and digest, as anyone without the key can."""
    conn = connect(db)
    try:
        found = conn.execute(
            "SELECT id, event_type, timestamp, metadata FROM execution_audit_events"
            " WHERE execution_id = ? ORDER BY id",
            (eid,),
        ).fetchall()
    finally:
        conn.close()
    prev: str | None = None
    updates: list[tuple[str, tuple[object, ...]]] = []
    for event_id, event_type, timestamp, metadata in found:
        digest = audit_digest(prev, eid, str(event_type), int(str(timestamp)), str(metadata))
        sql = "UPDATE execution_audit_events SET prev_hash = ?, hash = ? WHERE id = ?"
        updates.append((sql, (prev, digest, event_id)))
        prev = digest
    _tamper(db, *updates)


class TestVerifyCli:
    def test_key_created_and_trail_authenticated(self, ran: tuple[Path, str]) -> None:
        """The first run creates audit.key (0600); --verify says keyed, exit 0."""
        folder, eid = ran
        key = folder / "audit.key"
        assert key.stat().st_size == 32
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        result = _cli(folder, "execution", "inspect", eid, "--verify")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == KEYED
        assert _cli(folder, "audit", "verify", "--all").stdout.splitlines()[-1] == KEYED

    def test_deleted_trail_of_a_recent_execution(self, ran: tuple[Path, str]) -> None:
        """The whole trail of a minutes-old execution deleted: a violation, exit 1."""
        folder, eid = ran
        _tamper(
            folder / "ak.db",
            ("DELETE FROM execution_audit_events WHERE execution_id = ?", (eid,)),
        )
        for args in (["execution", "inspect", eid, "--verify"], ["audit", "verify", eid]):
            result = _cli(folder, *args)
            assert result.returncode == 1, (args, result.stdout)
            assert "Error: Audit verification failed" in result.stderr

    def test_deleted_newest_events(self, ran: tuple[Path, str]) -> None:
        """The newest two events deleted (links still hold): caught with the key."""
        folder, eid = ran
        _tamper(
            folder / "ak.db",
            (
                "DELETE FROM execution_audit_events WHERE id IN (SELECT id FROM"
                " execution_audit_events WHERE execution_id = ? ORDER BY id DESC LIMIT 2)",
                (eid,),
            ),
            ("UPDATE executions SET state = 'RUNNING' WHERE execution_id = ?", (eid,)),
        )
        result = _cli(folder, "execution", "inspect", eid, "--verify")
        assert result.returncode == 1
        assert "Audit verification failed" in result.stderr

    def test_edited_last_event_with_digest_recomputed(self, ran: tuple[Path, str]) -> None:
        """The last event's metadata edited and every plain digest recomputed: caught."""
        folder, eid = ran
        db = folder / "ak.db"
        _tamper(
            db,
            (
                "UPDATE execution_audit_events SET metadata = json_set(metadata,"
                " '$.duration_ms', 1) WHERE id = (SELECT max(id) FROM execution_audit_events"
                " WHERE execution_id = ?)",
                (eid,),
            ),
        )
        _rehash(db, eid)
        result = _cli(folder, "execution", "inspect", eid, "--verify")
        assert result.returncode == 1
        assert "Audit verification failed" in result.stderr
        # Without the key the same edit is invisible, and the output says what was checked.
        (folder / "audit.key").rename(folder / "audit.key.away")
        result = _cli(folder, "execution", "inspect", eid, "--verify")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == UNKEYED
