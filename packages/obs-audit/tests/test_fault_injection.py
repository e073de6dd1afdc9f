"""Fault injection over a state transition with its keyed audit events, through the Writer.

Every write, sync and truncate of the durable transaction is failed in turn: the state, its
audit events and the chain head commit together or not at all, never in part.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autokestra_obs_audit import AuditLogger
from autokestra_obs_schema import AuditEventType, load_or_create_audit_key, open_writer
from autokestra_obs_schema.testing import fault_loop, inject_faults, unfaulted_reader

KINDS = ["ioerr", "full"]
STATES = ("PENDING", "RUNNING", "WAITING")


def _state(path: Path, eid: str) -> tuple[str, int, object]:
    conn = unfaulted_reader(path)
    try:
        state, count = conn.execute(
            "SELECT state, audit_event_count FROM executions WHERE execution_id = ?", (eid,)
        ).fetchall()[0]
        events = conn.execute(
            "SELECT count(*) FROM execution_audit_events WHERE execution_id = ?", (eid,)
        ).fetchall()[0][0]
    finally:
        conn.close()
    return str(state), int(str(events)), count


class TestTransitionFaults:
    @pytest.mark.parametrize("kind", KINDS)
    def test_state_events_and_head_commit_together(self, tmp_path: Path, kind: str) -> None:
        """At each injection point: old state, no new event, old head; or all three new."""
        path = tmp_path / "state" / "autokestra.db"
        with inject_faults() as faults:
            writer = open_writer(path)
            try:
                audit = AuditLogger(key=load_or_create_audit_key(path))
                with writer.transaction(durable=True) as conn:
                    conn.execute(
                        "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                        " updated_at) VALUES ('e', 'wf', 'PENDING', 0, 0)"
                    )
                    audit.emit(
                        conn, "e", AuditEventType.CREATED,
                        {"workflow_id": "wf", "trigger_type": "manual"},
                    )  # fmt: skip
                expected = {"state": 0, "events": 1}

                def attempt() -> None:
                    source = STATES[expected["state"] % 2]
                    target = STATES[(expected["state"] + 1) % 2]
                    with writer.transaction(durable=True) as conn:
                        conn.execute(
                            "UPDATE executions SET state = ? WHERE execution_id = 'e'", (target,)
                        )
                        audit.emit(
                            conn, "e", AuditEventType.STATE_CHANGE,
                            {"from_state": source, "to_state": target},
                        )  # fmt: skip
                        audit.emit(conn, "e", AuditEventType.STARTED, {})

                def check(raised: bool) -> None:
                    state, events, head_count = _state(path, "e")
                    assert events == head_count, "the chain head and the events committed apart"
                    if raised:
                        assert events == expected["events"]
                        assert state == STATES[expected["state"] % 2]
                    else:
                        assert events == expected["events"] + 2
                        assert state == STATES[(expected["state"] + 1) % 2]
                        expected["state"] += 1
                        expected["events"] = events

                points = fault_loop(faults, attempt, check, kind=kind)
            finally:
                writer.close()
        print(f"fault injection points: audit transition {kind}: {points}")
        assert points > 0
