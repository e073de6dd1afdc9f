"""End to end: keyed audit verification (DESIGN.md §6.8).

obs-audit writes the trail with the key beside the database, exactly as the engine's writer
path does; obs-store's inspector verifies it as ``--verify`` does, after the edits an
attacker with the database file (and the triggers dropped) would make.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_audit import AuditLogger
from autokestra_obs_schema import (
    AuditEventType,
    Writer,
    audit_digest,
    load_or_create_audit_key,
    now_ms,
    open_reader,
    open_writer,
)
from autokestra_obs_store import AuditVerdict, ExecutionInspector

pytestmark = pytest.mark.integration

EID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"  # a UUIDv7 from 2024, before any key here
UNKEYED = "unkeyed: links checked, content not authenticated"


def _insert_execution(conn: object, eid: str, state: str = "PENDING") -> None:
    conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
        " VALUES (?, 'etl', ?, ?, ?)",
        (eid, state, now_ms(), now_ms()),
    )


def run_execution(writer: Writer, audit: AuditLogger, eid: str = EID) -> None:
    """CREATED, STARTED, PENDING->RUNNING, RUNNING->SUCCESS, COMPLETED: the engine's shape."""
    with writer.transaction(durable=True) as conn:
        _insert_execution(conn, eid)
        audit.emit(
            conn, eid, AuditEventType.CREATED, {"workflow_id": "etl", "trigger_type": "manual"}
        )
    with writer.transaction(durable=True) as conn:
        conn.execute("UPDATE executions SET state = 'RUNNING' WHERE execution_id = ?", (eid,))
        audit.emit(conn, eid, AuditEventType.STARTED, {})
        audit.emit(
            conn, eid, AuditEventType.STATE_CHANGE, {"from_state": "PENDING", "to_state": "RUNNING"}
        )
    with writer.transaction(durable=True) as conn:
        conn.execute(
            "UPDATE executions SET state = 'SUCCESS', ended_at = ? WHERE execution_id = ?",
            (now_ms(), eid),
        )
        audit.emit(
            conn, eid, AuditEventType.STATE_CHANGE, {"from_state": "RUNNING", "to_state": "SUCCESS"}
        )
        audit.emit(conn, eid, AuditEventType.COMPLETED, {"duration_ms": 5, "task_count": 1})


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[Writer, Path]]:
    """A database whose writer keys its audit events, with one finished execution."""
    db = tmp_path / "state" / "autokestra.db"
    writer = open_writer(db)
    run_execution(writer, AuditLogger(key=load_or_create_audit_key(db)))
    yield writer, db
    writer.close()


def verdict(db: Path, eid: str = EID) -> AuditVerdict:
    conn = open_reader(db)
    try:
        return ExecutionInspector(conn).verify_trail(eid)
    finally:
        conn.close()


def tamper(writer: Writer, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Run edits the way an attacker with the file would: triggers dropped first."""
    with writer.transaction() as conn:
        for trigger in ("audit_events_no_update", "audit_events_delete_guard"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")  # constant names
        for sql, params in statements:
            conn.execute(sql, params)


def events(writer: Writer, eid: str = EID) -> list[tuple[object, ...]]:
    with writer.locked() as conn:
        return conn.execute(
            "SELECT id, event_type, timestamp, metadata, prev_hash, hash, keyed_hash"
            " FROM execution_audit_events WHERE execution_id = ? ORDER BY id",
            (eid,),
        ).fetchall()


def rehash_plain(writer: Writer, eid: str = EID) -> None:
    """Recompute every plain digest and link, as someone without the key can."""
    prev = None
    for event_id, event_type, timestamp, metadata, _, _, _ in events(writer, eid):
        digest = audit_digest(prev, eid, str(event_type), int(str(timestamp)), str(metadata))
        tamper(
            writer,
            (
                "UPDATE execution_audit_events SET prev_hash = ?, hash = ? WHERE id = ?",
                (prev, digest, event_id),
            ),
        )
        prev = digest


class TestKeyed:
    def test_intact_trail_is_authenticated(self, keyed: tuple[Writer, Path]) -> None:
        """An untouched trail verifies, keyed."""
        result = verdict(keyed[1])
        assert result.ok, result.violation
        assert result.keyed
        assert result.status.startswith("keyed:")
        assert result.events == 5

    def test_edited_last_event_with_its_plain_digest_recomputed(
        self, keyed: tuple[Writer, Path]
    ) -> None:
        """Editing the newest event and recomputing its plain hash is caught by the key."""
        writer, db = keyed
        last = events(writer)[-1]
        tamper(
            writer,
            (
                "UPDATE execution_audit_events SET metadata = ? WHERE id = ?",
                ('{"duration_ms":5,"task_count":99}', last[0]),
            ),
        )
        rehash_plain(writer)
        violation = verdict(db).violation
        assert violation is not None
        assert violation.event_id == last[0]
        assert "keyed hash does not match" in violation.message

    def test_edited_middle_event_with_the_whole_plain_chain_recomputed(
        self, keyed: tuple[Writer, Path]
    ) -> None:
        """A rewrite of every plain hash after an edit still fails the keyed hashes."""
        writer, db = keyed
        second = events(writer)[1]
        tamper(
            writer,
            (
                "UPDATE execution_audit_events SET timestamp = timestamp + 1 WHERE id = ?",
                (second[0],),
            ),
        )
        rehash_plain(writer)
        violation = verdict(db).violation
        assert violation is not None
        assert violation.event_id == second[0]

    @pytest.mark.parametrize("deleted", [1, 2])
    def test_deleted_newest_events(self, keyed: tuple[Writer, Path], deleted: int) -> None:
        """Removing the newest events is caught by the chain head on the execution row."""
        writer, db = keyed
        for row in events(writer)[-deleted:]:
            tamper(writer, ("DELETE FROM execution_audit_events WHERE id = ?", (row[0],)))
        tamper(writer, ("UPDATE executions SET state = 'RUNNING' WHERE execution_id = ?", (EID,)))
        violation = verdict(db).violation
        assert violation is not None
        assert violation.kind == "head"
        assert f"{deleted} newest audit events were deleted" in violation.message

    def test_deleted_newest_event_with_the_head_rewound(self, keyed: tuple[Writer, Path]) -> None:
        """Rewinding the stored head to the previous event needs the key: caught."""
        writer, db = keyed
        rows = events(writer)
        tamper(
            writer,
            ("DELETE FROM execution_audit_events WHERE id = ?", (rows[-1][0],)),
            (
                "UPDATE executions SET audit_event_count = ?, audit_head = ?"
                " WHERE execution_id = ?",
                (len(rows) - 1, rows[-2][6], EID),
            ),
        )
        violation = verdict(db).violation
        assert violation is not None
        assert violation.kind == "head"

    def test_deleted_trail(self, keyed: tuple[Writer, Path]) -> None:
        """A whole trail deleted minutes after the end is a violation (retention cannot have)."""
        writer, db = keyed
        tamper(writer, ("DELETE FROM execution_audit_events WHERE execution_id = ?", (EID,)))
        violation = verdict(db).violation
        assert violation is not None
        assert violation.kind == "missing_trail"

    def test_stripped_keyed_hashes(self, keyed: tuple[Writer, Path]) -> None:
        """Passing a keyed trail off as unkeyed (hashes and head removed) is caught."""
        writer, db = keyed
        tamper(
            writer,
            ("ALTER TABLE execution_audit_events DROP COLUMN keyed_hash", ()),
            ("ALTER TABLE execution_audit_events ADD COLUMN keyed_hash TEXT", ()),
            (
                "UPDATE executions SET audit_event_count = NULL, audit_head = NULL"
                " WHERE execution_id = ?",
                (EID,),
            ),
        )
        stripped = verdict(db).violation
        assert stripped is not None
        assert "has no keyed hash" in stripped.message
        # An execution written after keying began by a writer without the key.
        later = "01990000-0000-7000-8000-000000000001"
        run_execution(writer, AuditLogger(), later)
        violation = verdict(db, later).violation
        assert violation is not None
        assert "has no keyed hash" in violation.message

    def test_without_the_key_file_links_are_checked(
        self, keyed: tuple[Writer, Path], tmp_path: Path
    ) -> None:
        """A copied database (no audit.key) verifies its links and says it is unkeyed."""
        writer, db = keyed
        writer.checkpoint()
        copy = tmp_path / "copy" / "autokestra.db"
        copy.parent.mkdir()
        shutil.copy(db, copy)
        result = verdict(copy)
        assert result.ok
        assert not result.keyed
        assert result.status == UNKEYED
        assert not (copy.parent / "audit.key").exists()

    def test_a_key_of_another_database_is_refused(
        self, keyed: tuple[Writer, Path], tmp_path: Path
    ) -> None:
        """A wrong audit.key is reported, not taken for tampering of every event."""
        _writer, db = keyed
        (db.parent / "audit.key").write_bytes(b"\x01" * 32)
        violation = verdict(db).violation
        assert violation is not None
        assert violation.kind == "key"
        assert "does not belong to this database" in violation.message


class TestBeforeTheKey:
    def test_a_database_written_before_the_key_verifies_as_before(self, tmp_path: Path) -> None:
        """Plain trails verify (unkeyed), and their plain tampering is still found."""
        db = tmp_path / "autokestra.db"
        writer = open_writer(db)
        try:
            run_execution(writer, AuditLogger())
            load_or_create_audit_key(db)  # an upgrade: the key appears afterwards
            result = verdict(db)
            assert result.ok, result.violation
            assert result.status == UNKEYED
            second = events(writer)[1]
            tamper(
                writer,
                (
                    "UPDATE execution_audit_events SET metadata = '{\"x\":1}' WHERE id = ?",
                    (second[0],),
                ),
            )
            violation = verdict(db).violation
            assert violation is not None
            assert "was modified" in violation.message
        finally:
            writer.close()

    def test_an_execution_keyed_midway_verifies(self, tmp_path: Path) -> None:
        """Created before the key, finished after it: the keyed tail and head verify."""
        db = tmp_path / "autokestra.db"
        writer = open_writer(db)
        try:
            with writer.transaction(durable=True) as conn:
                _insert_execution(conn, EID)
                AuditLogger().emit(
                    conn,
                    EID,
                    AuditEventType.CREATED,
                    {"workflow_id": "etl", "trigger_type": "manual"},
                )
            audit = AuditLogger(key=load_or_create_audit_key(db))
            with writer.transaction(durable=True) as conn:
                conn.execute(
                    "UPDATE executions SET state = 'RUNNING' WHERE execution_id = ?", (EID,)
                )
                audit.emit(conn, EID, AuditEventType.STARTED, {})
            result = verdict(db)
            assert result.ok, result.violation
            assert result.keyed
        finally:
            writer.close()
