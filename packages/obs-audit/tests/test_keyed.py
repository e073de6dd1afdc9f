"""AuditLogger with the audit key: keyed hashes and the chain head, in the emit transaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from autokestra_obs_audit import AuditLogger
from autokestra_obs_schema import (
    AuditEventType,
    StorageError,
    Writer,
    audit_digest,
    keyed_audit_digest,
    keyed_chain_head,
    load_or_create_audit_key,
)

CREATED = {"workflow_id": "wf", "trigger_type": "manual"}


def _head(writer: Writer, eid: str) -> tuple[object, object]:
    with writer.locked() as conn:
        row = conn.execute(
            "SELECT audit_event_count, audit_head FROM executions WHERE execution_id = ?", (eid,)
        ).fetchall()[0]
    return row[0], row[1]


class TestKeyedEmit:
    def test_each_event_is_keyed_and_the_head_follows(self, writer: Writer, db_path: Path) -> None:
        """keyed_hash is the HMAC of the plain content; the head binds count and newest event."""
        key = load_or_create_audit_key(db_path)
        audit = AuditLogger(clock=lambda: 1000, key=key)
        for n in range(1, 4):
            with writer.transaction(durable=True) as conn:
                audit.emit(conn, "exec-1", AuditEventType.CREATED if n == 1 else "STARTED",
                           CREATED if n == 1 else {})  # fmt: skip
            count, head = _head(writer, "exec-1")
            assert count == n
            with writer.locked() as conn:
                rows = conn.execute(
                    "SELECT event_type, timestamp, metadata, prev_hash, hash, keyed_hash"
                    " FROM execution_audit_events WHERE execution_id = 'exec-1' ORDER BY id"
                ).fetchall()
            etype, ts, meta, prev, plain, keyed = (
                None if value is None else str(value) for value in rows[-1]
            )
            assert etype is not None and ts is not None and meta is not None
            assert keyed is not None
            assert plain == audit_digest(prev, "exec-1", etype, int(ts), meta)  # plain chain intact
            assert keyed == keyed_audit_digest(key.secret, prev, "exec-1", etype, int(ts), meta)
            assert head == keyed_chain_head(key.secret, "exec-1", n, int(ts), keyed)

    def test_the_key_record_is_written_once(self, writer: Writer, db_path: Path) -> None:
        """The first keyed event records the key id and the time keying began."""
        key = load_or_create_audit_key(db_path)
        audit = AuditLogger(clock=iter(range(5000, 6000)).__next__, key=key)
        with writer.transaction(durable=True) as conn:
            audit.emit(conn, "exec-1", AuditEventType.STARTED, {})
            audit.emit(conn, "exec-2", AuditEventType.CREATED, CREATED)
        with writer.locked() as conn:
            rows = conn.execute("SELECT key_id, keyed_since, check_hash FROM audit_key").fetchall()
        assert rows == [(key.key_id, 5000, key.record_check(5000))]

    def test_head_rolls_back_with_the_event(self, writer: Writer, db_path: Path) -> None:
        """A failed transaction leaves neither the event nor a moved head."""
        audit = AuditLogger(key=load_or_create_audit_key(db_path))
        with pytest.raises(RuntimeError), writer.transaction(durable=True) as conn:
            audit.emit(conn, "exec-1", AuditEventType.CREATED, CREATED)
            raise RuntimeError("the state change failed")
        assert _head(writer, "exec-1") == (None, None)

    def test_without_a_key_nothing_is_keyed(self, writer: Writer) -> None:
        """An unkeyed logger leaves keyed_hash and the head empty (databases before the key)."""
        with writer.transaction(durable=True) as conn:
            AuditLogger().emit(conn, "exec-1", AuditEventType.CREATED, CREATED)
            keyed = conn.execute("SELECT keyed_hash FROM execution_audit_events").fetchall()
        assert keyed == [(None,)]
        assert _head(writer, "exec-1") == (None, None)

    def test_unknown_execution_still_fails_whole(self, writer: Writer, db_path: Path) -> None:
        """The head update cannot hide a missing execution: the insert fails first."""
        audit = AuditLogger(key=load_or_create_audit_key(db_path))
        with pytest.raises(StorageError), writer.transaction(durable=True) as conn:
            audit.emit(conn, "ghost", AuditEventType.CREATED, CREATED)

    def test_an_execution_born_keyed_counts_from_its_birth(
        self, writer: Writer, db_path: Path
    ) -> None:
        """Keying begins at the first keyed execution's creation, not its CREATED event a
        moment later: so that execution too must stay keyed (the verifier's rule)."""
        key = load_or_create_audit_key(db_path)
        eid = "019ad000-0000-7000-8000-000000000001"  # a UUIDv7 born at 0x019ad0000000 ms
        with writer.transaction(durable=True) as conn:
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, 'wf', 'PENDING', ?, ?)",
                (eid, 0x019AD0000000 + 7, 0x019AD0000000 + 7),
            )
            AuditLogger(clock=lambda: 0x019AD0000000 + 9, key=key).emit(
                conn, eid, AuditEventType.CREATED, CREATED
            )
            since = conn.execute("SELECT keyed_since FROM audit_key").fetchall()[0][0]
        assert since == 0x019AD0000000
