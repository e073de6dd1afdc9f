"""Checking an execution's audit hash chain: tamper evidence beyond the triggers.

The triggers stop UPDATE and DELETE through any connection that keeps them; someone with the
file can still drop them. The chain makes such an edit visible afterwards:

    verdict = verify_chain(conn, execution_id)
    if not verdict.ok:
        print(verdict.first_broken_id, verdict.message)
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from autokestra_obs_schema import audit_digest

_EVENTS = (
    "SELECT id, event_type, timestamp, metadata, prev_hash, hash"
    " FROM execution_audit_events WHERE execution_id = ? ORDER BY id"
)


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The result of :func:`verify_chain`.

    Attributes:
        ok: every link holds.
        first_broken_id: id of the first event whose link does not hold, else ``None``.
        message: one line for humans.
        events: how many events were checked.
    """

    ok: bool
    first_broken_id: int | None
    message: str
    events: int = 0


def verify_chain(conn: apsw.Connection, execution_id: str) -> ChainVerdict:
    """Recompute the execution's chain and report the first event that does not match.

    An event is broken when its ``prev_hash`` is not the hash of the event before it (an
    event was deleted or inserted) or its ``hash`` does not match its content (a field was
    edited). Removing the newest events leaves no trace a chain can show.

    Args:
        conn: any connection, read-only included.
        execution_id: the execution whose trail to check.
    """
    prev: str | None = None
    count = 0
    for row in conn.execute(_EVENTS, (execution_id,)):
        event_id, event_type, timestamp, metadata, prev_hash, stored = row
        count += 1
        if prev_hash != prev:
            return ChainVerdict(
                ok=False,
                first_broken_id=int(str(event_id)),
                message=f"audit event {event_id}: prev_hash does not match the event before "
                "it (an event was removed or inserted)",
                events=count,
            )
        expected = audit_digest(
            prev, execution_id, str(event_type), int(str(timestamp)), str(metadata)
        )
        if stored != expected:
            return ChainVerdict(
                ok=False,
                first_broken_id=int(str(event_id)),
                message=f"audit event {event_id}: content does not match its hash "
                "(the row was edited)",
                events=count,
            )
        prev = expected
    return ChainVerdict(
        ok=True, first_broken_id=None, message=f"{count} audit events, chain intact", events=count
    )
