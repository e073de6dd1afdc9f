"""AuditLogger: events inside the caller's transaction, validated, hash-chained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apsw
import pytest

from autokestra_obs_audit import (
    AuditLogger,
    InvalidAuditMetadata,
    NotInTransaction,
    verify_chain,
)
from autokestra_obs_schema import (
    AuditEventType,
    StorageError,
    Writer,
    audit_digest,
    canonical_metadata,
    connect,
)

VALID: dict[AuditEventType, dict[str, Any]] = {
    AuditEventType.CREATED: {"workflow_id": "hello", "trigger_type": "manual"},
    AuditEventType.STARTED: {},
    AuditEventType.STATE_CHANGE: {"from_state": "PENDING", "to_state": "RUNNING"},
    AuditEventType.COMPLETED: {"duration_ms": 1200, "task_count": 3},
    AuditEventType.FAILED: {"error_message": "boom", "failed_task_id": "fetch"},
    AuditEventType.CANCELLED: {"cancelled_by": "user:ada", "pending_task_count": 2},
    AuditEventType.TIMEOUT: {"timeout_ms": 1000, "elapsed_ms": 1003},
}


def _rows(writer: Writer, eid: str = "exec-1") -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in writer.connection.execute(
            "SELECT id, event_type, timestamp, metadata, prev_hash, hash"
            " FROM execution_audit_events WHERE execution_id = ? ORDER BY id",
            (eid,),
        )
    ]


class TestEmit:
    def test_every_type_is_written_with_canonical_metadata(self, writer: Writer) -> None:
        """Each event type with valid metadata becomes one row holding canonical JSON."""
        audit = AuditLogger(clock=lambda: 1_000)
        with writer.transaction(durable=True) as conn:
            ids = [audit.emit(conn, "exec-1", kind, meta) for kind, meta in VALID.items()]
        rows = _rows(writer)
        assert [r[0] for r in rows] == ids
        assert [r[1] for r in rows] == [k.value for k in VALID]
        assert [json.loads(r[3]) for r in rows] == list(VALID.values())
        assert all(r[3] == canonical_metadata(json.loads(r[3])) for r in rows)
        assert all(r[2] == 1_000 for r in rows)

    def test_refuses_outside_a_transaction(self, writer: Writer) -> None:
        """emit on a connection in autocommit mode raises and writes nothing."""
        with pytest.raises(NotInTransaction), writer.locked() as conn:
            AuditLogger().emit(conn, "exec-1", AuditEventType.STARTED, {})
        assert _rows(writer) == []

    def test_rolls_back_with_the_caller(self, writer: Writer) -> None:
        """An exception after emit leaves neither the state change nor the event."""
        with pytest.raises(RuntimeError), writer.transaction(durable=True) as conn:
            conn.execute("UPDATE executions SET state = 'RUNNING' WHERE execution_id = 'exec-1'")
            AuditLogger().emit(conn, "exec-1", AuditEventType.STARTED, {})
            raise RuntimeError("caller fails after emitting")
        assert _rows(writer) == []
        state = writer.connection.execute(
            "SELECT state FROM executions WHERE execution_id = 'exec-1'"
        ).fetchall()
        assert state == [("PENDING",)]

    def test_commits_with_the_caller(self, writer: Writer, db_path: Path) -> None:
        """A committed event is visible to another connection."""
        with writer.transaction(durable=True) as conn:
            AuditLogger().emit(conn, "exec-1", "CREATED", VALID[AuditEventType.CREATED])
        reader = connect(db_path, readonly=True)
        assert reader.execute("SELECT count(*) FROM execution_audit_events").fetchall() == [(1,)]
        reader.close()

    def test_explicit_timestamp_is_kept(self, writer: Writer) -> None:
        """A timestamp passed by the caller is stored as given."""
        with writer.transaction(durable=True) as conn:
            AuditLogger().emit(conn, "exec-1", AuditEventType.STARTED, {}, timestamp=42)
        assert _rows(writer)[0][2] == 42

    def test_unknown_execution_fails_the_transaction(self, writer: Writer) -> None:
        """The foreign key refuses an event of an execution that does not exist."""
        with pytest.raises(StorageError), writer.transaction(durable=True) as conn:
            AuditLogger().emit(conn, "nope", AuditEventType.STARTED, {})


class TestValidation:
    @pytest.mark.parametrize(
        ("kind", "metadata"),
        [
            (AuditEventType.CREATED, {"workflow_id": "hello"}),
            (AuditEventType.CREATED, {"workflow_id": "", "trigger_type": "manual"}),
            (AuditEventType.STATE_CHANGE, {"from_state": "PENDING", "to_state": "DONE"}),
            (
                AuditEventType.STATE_CHANGE,
                {"from_state": "PENDING", "to_state": "RUNNING", "reason": 5},
            ),
            (
                AuditEventType.STATE_CHANGE,
                {"from_state": "PENDING", "to_state": "SKIPPED", "task_id": ""},
            ),
            (AuditEventType.COMPLETED, {"duration_ms": -1, "task_count": 1}),
            (AuditEventType.COMPLETED, {"duration_ms": True, "task_count": 1}),
            (AuditEventType.COMPLETED, {"duration_ms": 1.5, "task_count": 1}),
            (AuditEventType.FAILED, {"failed_task_id": "x"}),
            (AuditEventType.FAILED, {"error_message": "x", "stack_trace": ["a"]}),
            (AuditEventType.CANCELLED, {"cancelled_by": "system"}),
            (AuditEventType.TIMEOUT, {"timeout_ms": 1}),
            (AuditEventType.STARTED, {"x": float("nan")}),
            (AuditEventType.STARTED, {"x": object()}),
        ],
    )
    def test_bad_metadata_is_refused(
        self, writer: Writer, kind: AuditEventType, metadata: dict[str, Any]
    ) -> None:
        """Missing keys, wrong types and non-JSON values raise before anything is written."""
        with writer.transaction(durable=True) as conn, pytest.raises(InvalidAuditMetadata):
            AuditLogger().emit(conn, "exec-1", kind, metadata)
        assert _rows(writer) == []

    def test_extra_keys_and_optional_keys_are_allowed(self, writer: Writer) -> None:
        """Optional keys (null or string) and extra keys pass validation and are stored."""
        meta = {
            "error_message": "boom",
            "failed_task_id": None,
            "stack_trace": "Traceback ...",
            "reason": "TIMEOUT",
            "attempts": 3,
        }
        with writer.transaction(durable=True) as conn:
            AuditLogger().emit(conn, "exec-1", AuditEventType.FAILED, meta)
        assert json.loads(_rows(writer)[0][3]) == meta

    def test_unknown_type_is_refused(self, writer: Writer) -> None:
        """An event type outside the enum raises InvalidAuditMetadata (a ValueError)."""
        with writer.transaction(durable=True) as conn, pytest.raises(ValueError):
            AuditLogger().emit(conn, "exec-1", "EXPLODED", {})


class TestChain:
    def test_links_follow_the_previous_event_of_the_same_execution(self, writer: Writer) -> None:
        """prev_hash is the previous event's hash of the same execution, None for the first."""
        audit = AuditLogger(clock=lambda: 7)
        with writer.transaction(durable=True) as conn:
            audit.emit(conn, "exec-1", AuditEventType.CREATED, VALID[AuditEventType.CREATED])
            audit.emit(conn, "exec-2", AuditEventType.CREATED, VALID[AuditEventType.CREATED])
            audit.emit(conn, "exec-1", AuditEventType.STARTED, {})
        first, second = _rows(writer, "exec-1")
        (other,) = _rows(writer, "exec-2")
        assert first[4] is None and other[4] is None
        assert second[4] == first[5]
        assert first[5] == audit_digest(None, "exec-1", "CREATED", 7, first[3])
        assert second[5] == audit_digest(first[5], "exec-1", "STARTED", 7, second[3])

    def test_intact_chain_verifies(self, writer: Writer, db_path: Path) -> None:
        """A trail written by emit verifies on a read-only connection."""
        with writer.transaction(durable=True) as conn:
            for kind, meta in VALID.items():
                AuditLogger().emit(conn, "exec-1", kind, meta)
        reader = connect(db_path, readonly=True)
        verdict = verify_chain(reader, "exec-1")
        reader.close()
        assert verdict.ok and verdict.first_broken_id is None and verdict.events == len(VALID)

    def test_empty_trail_verifies(self, writer: Writer) -> None:
        """An execution without events has an intact (empty) chain."""
        assert verify_chain(writer.connection, "exec-1").ok


class TestTampering:
    def _trail(self, writer: Writer) -> list[int]:
        with writer.transaction(durable=True) as conn:
            return [AuditLogger().emit(conn, "exec-1", kind, meta) for kind, meta in VALID.items()]

    def test_update_is_refused(self, writer: Writer) -> None:
        """The append-only trigger aborts an UPDATE of an audit row."""
        ids = self._trail(writer)
        with pytest.raises(StorageError), writer.transaction() as conn:
            conn.execute(
                "UPDATE execution_audit_events SET metadata = '{}' WHERE id = ?", (ids[0],)
            )
        assert verify_chain(writer.connection, "exec-1").ok

    def test_delete_is_refused(self, writer: Writer) -> None:
        """Without the retention guard a DELETE of an audit row is refused."""
        ids = self._trail(writer)
        with pytest.raises(StorageError), writer.transaction() as conn:
            conn.execute("DELETE FROM execution_audit_events WHERE id = ?", (ids[1],))
        assert len(_rows(writer)) == len(ids)

    def test_replace_is_refused(self, writer: Writer) -> None:
        """INSERT OR REPLACE over an existing id is refused."""
        ids = self._trail(writer)
        with pytest.raises(StorageError), writer.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO execution_audit_events"
                " (id, execution_id, event_type, timestamp, metadata, hash)"
                " VALUES (?, 'exec-1', 'STARTED', 0, '{}', 'x')",
                (ids[0],),
            )
        assert verify_chain(writer.connection, "exec-1").ok

    def test_edit_with_triggers_dropped_is_detected(self, db_path: Path, writer: Writer) -> None:
        """A row edited after dropping the trigger breaks the chain at exactly that row."""
        ids = self._trail(writer)
        rogue = apsw.Connection(str(db_path))
        rogue.execute("DROP TRIGGER audit_events_no_update")
        rogue.execute(
            "UPDATE execution_audit_events SET metadata = ? WHERE id = ?",
            ('{"duration_ms":1,"task_count":3}', ids[3]),
        )
        rogue.close()
        verdict = verify_chain(writer.connection, "exec-1")
        assert not verdict.ok
        assert verdict.first_broken_id == ids[3]
        assert "edited" in verdict.message

    def test_rehashed_edit_is_detected_at_the_next_link(
        self, db_path: Path, writer: Writer
    ) -> None:
        """Recomputing the edited row's own hash still breaks the following event's link."""
        ids = self._trail(writer)
        row = _rows(writer)[2]
        new_meta = '{"from_state":"PENDING","to_state":"CANCELLED"}'
        forged = audit_digest(row[4], "exec-1", row[1], row[2], new_meta)
        rogue = apsw.Connection(str(db_path))
        rogue.execute("DROP TRIGGER audit_events_no_update")
        rogue.execute(
            "UPDATE execution_audit_events SET metadata = ?, hash = ? WHERE id = ?",
            (new_meta, forged, ids[2]),
        )
        rogue.close()
        verdict = verify_chain(writer.connection, "exec-1")
        assert not verdict.ok and verdict.first_broken_id == ids[3]

    def test_deleted_middle_row_is_detected(self, db_path: Path, writer: Writer) -> None:
        """Deleting an event with the guard dropped breaks the link of the event after it."""
        ids = self._trail(writer)
        rogue = apsw.Connection(str(db_path))
        rogue.execute("DROP TRIGGER audit_events_delete_guard")
        rogue.execute("DELETE FROM execution_audit_events WHERE id = ?", (ids[1],))
        rogue.close()
        verdict = verify_chain(writer.connection, "exec-1")
        assert not verdict.ok and verdict.first_broken_id == ids[2]
        assert "removed" in verdict.message
