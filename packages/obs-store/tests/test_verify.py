"""Audit trail verification: hash chain, terminal event, transitions, final state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autokestra_obs_schema import Writer, open_reader
from autokestra_obs_store import ExecutionInspector, Violation, purge
from autokestra_obs_store.testing import (
    T0,
    ExecutionRecord,
    cancelled_execution,
    failure_execution,
    fan_out_execution,
    retry_execution,
    running_execution,
    skipped_execution,
    success_execution,
    timeout_execution,
    wide_execution,
    write_execution,
)


def _verify(path: Path, execution_id: str) -> Violation | None:
    conn = open_reader(path)
    try:
        return ExecutionInspector(conn).verify(execution_id)
    finally:
        conn.close()


def _event_ids(writer: Writer, execution_id: str) -> list[int]:
    with writer.transaction() as conn:
        rows = conn.execute(
            "SELECT id FROM execution_audit_events WHERE execution_id = ? ORDER BY id",
            (execution_id,),
        ).fetchall()
    return [int(row[0]) for row in rows]  # type: ignore[arg-type]  # INTEGER PRIMARY KEY


def _with_events(events: list[tuple[str, int, dict[str, Any]]], state: str) -> ExecutionRecord:
    record = success_execution(seed=99)
    record.events = events
    record.state = state
    return record


CREATED: tuple[str, int, dict[str, Any]] = (
    "CREATED",
    T0,
    {"workflow_id": "etl", "trigger_type": "manual"},
)
STARTED: tuple[str, int, dict[str, Any]] = ("STARTED", T0 + 5, {})
COMPLETED: tuple[str, int, dict[str, Any]] = (
    "COMPLETED",
    T0 + 9,
    {"duration_ms": 4, "task_count": 4},
)


class TestIntactTrails:
    @pytest.mark.parametrize(
        "build",
        [
            success_execution,
            failure_execution,
            retry_execution,
            timeout_execution,
            cancelled_execution,
            running_execution,
            skipped_execution,
            lambda: fan_out_execution(30),
        ],
    )
    def test_engine_shaped_trails_verify(self, db: tuple[Writer, Path], build: Any) -> None:
        """Every realistic execution's trail verifies without a violation."""
        eid = write_execution(db[0], build())
        assert _verify(db[1], eid) is None

    def test_large_execution_verifies(self, db: tuple[Writer, Path]) -> None:
        """A 500-task failed execution's trail verifies."""
        eid = write_execution(db[0], wide_execution(500, fail_task=100))
        assert _verify(db[1], eid) is None

    def test_restated_transitions_are_accepted(self, db: tuple[Writer, Path]) -> None:
        """STATE_CHANGE events restating STARTED or COMPLETED are not extra transitions."""
        events = [
            CREATED,
            STARTED,
            ("STATE_CHANGE", T0 + 5, {"from_state": "PENDING", "to_state": "RUNNING"}),
            ("STATE_CHANGE", T0 + 8, {"from_state": "RUNNING", "to_state": "SUCCESS"}),
            COMPLETED,
        ]
        eid = write_execution(db[0], _with_events(events, "SUCCESS"))
        assert _verify(db[1], eid) is None


class TestTampering:
    def test_edited_row_with_triggers_dropped(self, db: tuple[Writer, Path]) -> None:
        """An audit row edited after dropping the append-only triggers breaks the chain there."""
        eid = write_execution(db[0], cancelled_execution())
        ids = _event_ids(db[0], eid)
        with db[0].transaction() as conn:
            conn.execute("DROP TRIGGER audit_events_no_update")
            conn.execute(
                "UPDATE execution_audit_events SET metadata = ? WHERE id = ?",
                ('{"cancelled_by":"system","pending_task_count":1}', ids[2]),
            )
        violation = _verify(db[1], eid)
        assert violation is not None
        assert violation.kind == "chain"
        assert violation.event_id == ids[2]
        assert "was modified" in str(violation)

    def test_deleted_middle_row(self, db: tuple[Writer, Path]) -> None:
        """Deleting an event (triggers dropped) is caught at the next event's link."""
        eid = write_execution(db[0], success_execution())
        ids = _event_ids(db[0], eid)
        with db[0].transaction() as conn:
            conn.execute("DROP TRIGGER audit_events_delete_guard")
            conn.execute("DELETE FROM execution_audit_events WHERE id = ?", (ids[1],))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert (violation.kind, violation.event_id) == ("chain", ids[2])
        assert "does not link" in violation.message

    def test_deleted_first_row(self, db: tuple[Writer, Path]) -> None:
        """Deleting the first event leaves a chain whose start links to nothing."""
        eid = write_execution(db[0], success_execution())
        ids = _event_ids(db[0], eid)
        with db[0].transaction() as conn:
            conn.execute("DROP TRIGGER audit_events_delete_guard")
            conn.execute("DELETE FROM execution_audit_events WHERE id = ?", (ids[0],))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert (violation.kind, violation.event_id) == ("chain", ids[1])

    def test_state_column_edited(self, db: tuple[Writer, Path]) -> None:
        """An execution row whose state disagrees with its last event is reported."""
        eid = write_execution(db[0], failure_execution())
        with db[0].transaction() as conn:
            conn.execute("UPDATE executions SET state = 'SUCCESS' WHERE execution_id = ?", (eid,))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert violation.kind == "state"
        assert (
            violation.message == "The execution is SUCCESS but its last audit event implies FAILED"
        )


class TestInvariants:
    def test_two_terminal_events(self, db: tuple[Writer, Path]) -> None:
        """A second terminal event is a violation even with an intact chain."""
        failed = ("FAILED", T0 + 10, {"error_message": "x"})
        eid = write_execution(db[0], _with_events([CREATED, STARTED, COMPLETED, failed], "FAILED"))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert violation.kind == "terminal"
        assert "second terminal event (FAILED)" in violation.message

    def test_missing_terminal_event(self, db: tuple[Writer, Path]) -> None:
        """A finished execution without a terminal event is a violation."""
        eid = write_execution(db[0], _with_events([CREATED, STARTED], "SUCCESS"))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert (violation.kind, violation.event_id) == ("terminal", None)

    def test_first_event_not_created(self, db: tuple[Writer, Path]) -> None:
        """A trail that does not begin with CREATED is a violation."""
        eid = write_execution(db[0], _with_events([STARTED, COMPLETED], "SUCCESS"))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert violation.kind == "first_event"

    def test_transition_from_wrong_state(self, db: tuple[Writer, Path]) -> None:
        """A STATE_CHANGE whose from_state is not the current state is a violation."""
        wrong = ("STATE_CHANGE", T0 + 6, {"from_state": "WAITING", "to_state": "RUNNING"})
        eid = write_execution(db[0], _with_events([CREATED, STARTED, wrong, COMPLETED], "SUCCESS"))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert violation.kind == "transition"
        assert "from WAITING, but the execution was RUNNING" in violation.message

    def test_event_after_terminal(self, db: tuple[Writer, Path]) -> None:
        """A STARTED after the terminal event is a violation."""
        eid = write_execution(
            db[0], _with_events([CREATED, STARTED, COMPLETED, STARTED], "SUCCESS")
        )
        violation = _verify(db[1], eid)
        assert violation is not None
        assert violation.kind == "terminal"
        assert "after the terminal event" in violation.message

    def test_running_execution_needs_no_terminal(self, db: tuple[Writer, Path]) -> None:
        """A live execution with CREATED and STARTED only is consistent."""
        eid = write_execution(db[0], _with_events([CREATED, STARTED], "RUNNING"))
        assert _verify(db[1], eid) is None


def _skip(task_id: str | None, at: int, **extra: Any) -> tuple[str, int, dict[str, Any]]:
    """A task's STATE_CHANGE to SKIPPED, as the engine writes it."""
    metadata: dict[str, Any] = {"from_state": "PENDING", "to_state": "SKIPPED"}
    if task_id is not None:
        metadata["task_id"] = task_id
    metadata.update(reason="CONDITION_FALSE", **extra)
    return ("STATE_CHANGE", at, metadata)


class TestTaskTransitions:
    def test_skips_between_start_and_end_verify(self, db: tuple[Writer, Path]) -> None:
        """Task STATE_CHANGE events (a task_id in the metadata) leave the execution RUNNING."""
        events = [CREATED, STARTED, _skip("a", T0 + 6), _skip("b", T0 + 7), COMPLETED]
        eid = write_execution(db[0], _with_events(events, "SUCCESS"))
        assert _verify(db[1], eid) is None

    def test_the_same_event_without_task_id_is_an_execution_transition(
        self, db: tuple[Writer, Path]
    ) -> None:
        """The check can fail: without task_id, PENDING -> SKIPPED is the execution's own."""
        eid = write_execution(
            db[0], _with_events([CREATED, STARTED, _skip(None, T0 + 6), COMPLETED], "SUCCESS")
        )
        violation = _verify(db[1], eid)
        assert violation is not None and violation.kind == "transition"

    def test_a_skip_after_the_terminal_event_is_a_violation(self, db: tuple[Writer, Path]) -> None:
        """A task transition appended after the execution ended is reported."""
        eid = write_execution(
            db[0], _with_events([CREATED, STARTED, COMPLETED, _skip("a", T0 + 10)], "SUCCESS")
        )
        violation = _verify(db[1], eid)
        assert violation is not None and violation.kind == "terminal"
        assert "STATE_CHANGE of task a after the terminal event" in violation.message

    def test_a_task_event_with_an_unknown_state_is_a_violation(
        self, db: tuple[Writer, Path]
    ) -> None:
        """A task transition must name real states."""
        bad = ("STATE_CHANGE", T0 + 6, {"task_id": "a", "from_state": "X", "to_state": "SKIPPED"})
        eid = write_execution(db[0], _with_events([CREATED, STARTED, bad, COMPLETED], "SUCCESS"))
        violation = _verify(db[1], eid)
        assert violation is not None and violation.kind == "transition"


class TestRetention:
    def test_trail_removed_whole_by_retention_is_not_a_violation(
        self, db: tuple[Writer, Path]
    ) -> None:
        """`logs cleanup` deletes a finished execution's whole trail: verify passes it."""
        writer, path = db
        eid = write_execution(writer, failure_execution(seed=5))
        report = purge(writer, T0 + 10 * 86_400_000)
        assert report.audit_rows > 0
        assert _event_ids(writer, eid) == []
        # Seen 31 days after it ended: retention (30 days) may have removed the trail.
        conn = open_reader(path)
        try:
            inspector = ExecutionInspector(conn, clock=lambda: T0 + 31 * 86_400_000)
            assert inspector.verify(eid) is None
        finally:
            conn.close()

    @pytest.mark.parametrize("days_after_end", [0, 1, 29])
    def test_trail_missing_within_the_retention_window_is_a_violation(
        self, db: tuple[Writer, Path], days_after_end: int
    ) -> None:
        """A trail deleted although retention cannot have removed it yet is always caught."""
        writer, path = db
        eid = write_execution(writer, failure_execution(seed=5))
        with writer.transaction() as conn:
            conn.execute("DROP TRIGGER audit_events_delete_guard")
            conn.execute("DELETE FROM execution_audit_events WHERE execution_id = ?", (eid,))
        conn = open_reader(path)
        try:
            now = T0 + days_after_end * 86_400_000
            verdict = ExecutionInspector(conn, clock=lambda: now).verify_trail(eid)
        finally:
            conn.close()
        assert verdict.violation is not None
        assert verdict.violation.kind == "missing_trail"
        assert "within the 30-day retention window: it was deleted" in str(verdict.violation)
        assert verdict.status == "unkeyed: links checked, content not authenticated"

    def test_the_window_is_the_configured_one(self, db: tuple[Writer, Path]) -> None:
        """With a 1-day window, a trail missing 2 days after the end may be retention's."""
        writer, path = db
        eid = write_execution(writer, failure_execution(seed=5))
        purge(writer, T0 + 10 * 86_400_000)
        conn = open_reader(path)
        try:
            inspector = ExecutionInspector(conn, clock=lambda: T0 + 2 * 86_400_000)
            assert inspector.verify_trail(eid, retention_days=1).ok
            assert not inspector.verify_trail(eid, retention_days=3).ok
        finally:
            conn.close()

    def test_live_execution_without_created_is_a_violation(self, db: tuple[Writer, Path]) -> None:
        """A running execution always has CREATED; none at all is a violation."""
        eid = write_execution(db[0], _with_events([], "RUNNING"))
        violation = _verify(db[1], eid)
        assert violation is not None
        assert violation.kind == "first_event"
