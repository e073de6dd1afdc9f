"""Writing audit events inside the caller's transaction, each linked into a hash chain.

The event commits or rolls back with the state change it records, because it is written on
the caller's open transaction; there is deliberately no update or delete API.

    audit = AuditLogger(key=load_or_create_audit_key(writer.path))
    with writer.transaction(durable=True) as conn:
        conn.execute("UPDATE executions SET state = 'RUNNING' WHERE execution_id = ?", (eid,))
        audit.emit(conn, eid, AuditEventType.STARTED, {})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import apsw

from autokestra_obs_schema import (
    AuditEventType,
    AuditKey,
    audit_digest,
    canonical_metadata,
    keyed_audit_digest,
    keyed_chain_head,
    now_ms,
    uuid7_ms,
)

from ._events import InvalidAuditMetadata, NotInTransaction, validate_metadata

_LAST = "SELECT hash FROM execution_audit_events WHERE execution_id = ? ORDER BY id DESC LIMIT 1"
_INSERT = (
    "INSERT INTO execution_audit_events"
    " (execution_id, event_type, timestamp, metadata, prev_hash, hash, keyed_hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_COUNT = "SELECT count(*) FROM execution_audit_events WHERE execution_id = ?"
# The chain head travels with the event, in the same transaction (DESIGN.md §6.8).
_HEAD = "UPDATE executions SET audit_event_count = ?, audit_head = ? WHERE execution_id = ?"
# The first keyed event of the database records which key signs it and since when.
_KEY_RECORD = (
    "INSERT OR IGNORE INTO audit_key (id, key_id, keyed_since, check_hash) VALUES (1, ?, ?, ?)"
)
_CREATED_AT = "SELECT created_at FROM executions WHERE execution_id = ?"
_CREATED_AT = "SELECT created_at FROM executions WHERE execution_id = ?"


class AuditLogger:
    """Appends validated, hash-chained audit events. Stateless apart from its clock and key."""

    def __init__(self, clock: Callable[[], int] = now_ms, *, key: AuditKey | None = None) -> None:
        """Create a logger.

        Args:
            clock: Unix milliseconds for events emitted without an explicit timestamp.
            key: the database's audit key (``load_or_create_audit_key(db_path)``). With it
                every event also gets its ``keyed_hash`` and the execution row its chain
                head (``audit_event_count``, ``audit_head``); without it the chain is plain.
        """
        self._clock = clock
        self._key = key

    def emit(
        self,
        conn: apsw.Connection,
        execution_id: str,
        event_type: AuditEventType | str,
        metadata: Mapping[str, Any],
        *,
        timestamp: int | None = None,
    ) -> int:
        """Append one event to the execution's audit trail, inside the open transaction.

        The metadata must already be redacted: audit rows can never be corrected later.

        Args:
            conn: the writer's connection, inside ``writer.transaction(durable=True)``.
            execution_id: the execution (its row must exist).
            event_type: an ``AuditEventType`` or its name.
            metadata: the event's data; required keys depend on the type (extra keys kept).
            timestamp: Unix ms of the event; the clock's now when omitted.

        Returns:
            The new event's id.

        Raises:
            NotInTransaction: ``conn`` has no open transaction.
            InvalidAuditMetadata: unknown event type or metadata not valid for it.
            apsw.Error: the database refused the row (unknown execution...); the caller's
                transaction then rolls back as a whole.
        """
        if not conn.in_transaction:
            raise NotInTransaction(
                "AuditLogger.emit must run inside an open write transaction "
                "(writer.transaction(durable=True)), so the event commits with its state change"
            )
        try:
            kind = AuditEventType(event_type)
        except ValueError:
            raise InvalidAuditMetadata(f"Unknown audit event type: {event_type!r}") from None
        validate_metadata(kind, metadata)
        metadata_json = canonical_metadata(dict(metadata))
        when = self._clock() if timestamp is None else int(timestamp)
        rows = conn.execute(_LAST, (execution_id,)).fetchall()
        prev_hash = str(rows[0][0]) if rows else None
        digest = audit_digest(prev_hash, execution_id, kind.value, when, metadata_json)
        keyed = None
        if self._key is not None:
            keyed = keyed_audit_digest(
                self._key.secret, prev_hash, execution_id, kind.value, when, metadata_json
            )
        conn.execute(
            _INSERT, (execution_id, kind.value, when, metadata_json, prev_hash, digest, keyed)
        )
        event_id = int(conn.last_insert_rowid())
        if self._key is not None:
            count = int(str(conn.execute(_COUNT, (execution_id,)).fetchall()[0][0]))
            head = keyed_chain_head(self._key.secret, execution_id, count, when, str(keyed))
            conn.execute(_HEAD, (count, head, execution_id))
            since = self._keyed_since(conn, execution_id, kind, when)
            conn.execute(_KEY_RECORD, (self._key.key_id, since, self._key.record_check(since)))
        return event_id

    @staticmethod
    def _keyed_since(
        conn: apsw.Connection, execution_id: str, kind: AuditEventType, when: int
    ) -> int:
        """When keying began, for the ``audit_key`` record (only its first write counts).

        An execution born keyed (this is its CREATED event) counts from its birth: its row's
        ``created_at`` and the time in its UUIDv7 id come a moment before the event, and the
        verifier requires every execution born at or after this time to be keyed.
        """
        if kind is not AuditEventType.CREATED:
            return when
        times = [when]
        rows = conn.execute(_CREATED_AT, (execution_id,)).fetchall()
        if rows and isinstance(rows[0][0], int):
            times.append(rows[0][0])
        born = uuid7_ms(execution_id)
        if born is not None:
            times.append(born)
        return min(times)
