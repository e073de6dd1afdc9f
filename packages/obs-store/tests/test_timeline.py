"""The timeline model: lanes, wait/run segments, backoff gaps and the critical path."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from autokestra_obs_schema import Writer, open_reader
from autokestra_obs_store import (
    AttemptView,
    ExecutionInspector,
    ExecutionOverview,
    Segment,
    TaskView,
    Timeline,
)
from autokestra_obs_store._timeline import build_timeline
from autokestra_obs_store.testing import (
    T0,
    ExecutionRecord,
    cancelled_execution,
    failure_execution,
    retry_execution,
    running_execution,
    success_execution,
    wide_execution,
    write_execution,
)


def _timeline(db: tuple[Writer, Path], record: ExecutionRecord, now: int = T0 + 10_000) -> Timeline:
    eid = write_execution(db[0], record)
    conn = open_reader(db[1])
    try:
        return ExecutionInspector(conn, clock=lambda: now).timeline(eid)
    finally:
        conn.close()


class TestLanes:
    def test_offsets_are_relative_to_execution_start(self, db: tuple[Writer, Path]) -> None:
        """Queued, start and end offsets count from the execution's started_at."""
        record = success_execution()
        timeline = _timeline(db, record)
        assert timeline.origin == record.started
        fetch = timeline.lanes[0]
        assert (fetch.queued_ms, fetch.start_ms, fetch.end_ms) == (0, 10, 1210)
        assert record.ended is not None and record.started is not None
        assert timeline.span_ms == record.ended - record.started

    def test_parallel_tasks_overlap(self, db: tuple[Writer, Path]) -> None:
        """Tasks that ran at the same time have overlapping run segments."""
        timeline = _timeline(db, success_execution())
        lanes = {lane.task_id: lane for lane in timeline.lanes}
        transform = next(s for s in lanes["transform"].segments if s.kind == "run")
        notify = next(s for s in lanes["notify"].segments if s.kind == "run")
        assert notify.start_ms < transform.end_ms
        assert transform.start_ms < notify.end_ms

    def test_retries_show_backoff_gaps(self, db: tuple[Writer, Path]) -> None:
        """A retried task has a run segment per attempt and a wait segment for each backoff."""
        timeline = _timeline(db, retry_execution())
        flaky = timeline.lanes[0]
        kinds = [(s.kind, s.attempt, s.state) for s in flaky.segments]
        assert kinds == [
            ("wait", 1, None),
            ("run", 1, "FAILED"),
            ("wait", 2, None),
            ("run", 2, "FAILED"),
            ("wait", 3, None),
            ("run", 3, "SUCCESS"),
        ]
        backoffs = [s.end_ms - s.start_ms for s in flaky.segments if s.kind == "wait"][1:]
        assert backoffs == [1000, 2000]
        assert [s.failed for s in flaky.segments if s.kind == "run"] == [True, True, False]

    def test_never_started_task_has_empty_lane(self, db: tuple[Writer, Path]) -> None:
        """A task cancelled before it started has no segments."""
        timeline = _timeline(db, failure_execution())
        test = next(lane for lane in timeline.lanes if lane.task_id == "test")
        assert test.segments == ()
        assert test.start_ms is None

    def test_cancelled_attempt_ends_at_cancellation(self, db: tuple[Writer, Path]) -> None:
        """A cancelled running attempt's segment stops when it was cancelled."""
        record = cancelled_execution()
        timeline = _timeline(db, record)
        run = timeline.lanes[0].segments[-1]
        assert run.state == "CANCELLED"
        assert run.end_ms == 1800

    def test_task_end_after_its_last_attempt_adds_no_wait(self, db: tuple[Writer, Path]) -> None:
        """A task recorded as ended a few ms after its deciding attempt gets no trailing wait."""
        record = success_execution(seed=12)
        last_end = record.tasks[0].attempts[-1].end
        assert last_end is not None
        record.tasks[0].ended = last_end + 3
        lane = _timeline(db, record).lanes[0]
        assert lane.segments[-1].kind == "run"

    def test_cancelled_during_backoff_waits_until_cancelled(self, db: tuple[Writer, Path]) -> None:
        """A task cancelled while in retry backoff shows the wait up to its cancellation."""
        record = retry_execution(seed=13)
        flaky = record.tasks[0]
        flaky.attempts = flaky.attempts[:1]
        flaky.state = "CANCELLED"
        first_end = flaky.attempts[0].end
        assert first_end is not None
        flaky.ended = first_end + 400
        lane = _timeline(db, record).lanes[0]
        tail = lane.segments[-1]
        assert (tail.kind, tail.attempt, tail.end_ms - tail.start_ms) == ("wait", 2, 400)


class TestLiveTimeline:
    def test_running_and_waiting_lanes_reach_now(self, db: tuple[Writer, Path]) -> None:
        """A running attempt and a retry backoff in progress both extend to the clock's now."""
        record = running_execution()
        now = T0 + 10_000
        timeline = _timeline(db, record, now=now)
        lanes = {lane.task_id: lane for lane in timeline.lanes}
        assert record.started is not None
        now_offset = now - record.started
        assert lanes["download"].running
        assert lanes["download"].segments[-1] == Segment("run", 1015, now_offset, 1, "RUNNING")
        probe_tail = lanes["probe"].segments[-1]
        assert (probe_tail.kind, probe_tail.attempt, probe_tail.end_ms) == ("wait", 2, now_offset)
        assert lanes["extract"].segments == ()
        assert timeline.span_ms == now_offset


class TestCriticalPath:
    def test_chain_through_the_slowest_dependency(self, db: tuple[Writer, Path]) -> None:
        """The critical path follows the dependency that ended last back from the last task."""
        timeline = _timeline(db, success_execution())
        assert timeline.critical_path == ("fetch", "transform", "load")
        marked = [lane.task_id for lane in timeline.lanes if lane.critical]
        assert marked == ["fetch", "transform", "load"]

    def test_cancelled_tasks_are_not_on_the_path(self, db: tuple[Writer, Path]) -> None:
        """Tasks that never ran are never on the critical path."""
        timeline = _timeline(db, failure_execution())
        assert timeline.critical_path == ("checkout", "lint")

    def test_path_is_a_dependency_chain(self, db: tuple[Writer, Path]) -> None:
        """In a 120-task DAG each task on the path needs the one before it."""
        record = wide_execution(120, seed=5)
        needs = {t.task_id: set(t.needs) for t in record.tasks}
        timeline = _timeline(db, record)
        path = timeline.critical_path
        assert len(path) >= 2
        for before, after in itertools.pairwise(path):
            assert before in needs[after]
        last = max(
            (lane for lane in timeline.lanes if lane.end_ms is not None),
            key=lambda lane: lane.end_ms or 0,
        )
        assert path[-1] == last.task_id


def _overview(started: int, ended: int | None, state: str, now: int) -> ExecutionOverview:
    return ExecutionOverview(
        execution_id="e", workflow_id="w", state=state, trigger_type="manual",
        reason_code=None, message=None, failed_task_id=None, created_at=started - 5,
        started_at=started, ended_at=ended, updated_at=started, log_entry_count=0, logs_dropped=0,
        cancel_requested_at=None, cancelled_by=None, cancel_reason=None, inputs=None,
        workflow_source=None, engine_id=None, engine_pid=None, engine_host=None,
        heartbeat_at=None, duration_ms=None, observed_at=now,
    )  # fmt: skip


@st.composite
def _schedules(draw: st.DrawFn) -> tuple[ExecutionOverview, TaskView]:
    """A task queued after the start, with 0-4 attempts separated by backoffs; the last one
    possibly still running, the task finished or not."""
    start = T0
    cursor = start + draw(st.integers(0, 100))
    queued = cursor
    attempts = []
    count = draw(st.integers(0, 4))
    running_last = draw(st.booleans())
    for number in range(1, count + 1):
        begin = cursor + draw(st.integers(0, 500))
        live = running_last and number == count
        end = None if live else begin + draw(st.integers(0, 500))
        state = "RUNNING" if live else ("SUCCESS" if number == count else "FAILED")
        attempts.append(AttemptView(number, state, None, begin, end, None, None, None, None, None))
        cursor = end if end is not None else begin
    finished = count > 0 and not running_last and draw(st.booleans())
    task_state = attempts[-1].state if finished else ("RUNNING" if running_last else "WAITING")
    ended = cursor if finished else None
    now = cursor + draw(st.integers(0, 1000))
    task = TaskView(
        task_id="t", position=0, type="core/shell.run", state=task_state, reason_code=None,
        needs=(), attempt_count=count, inputs=None, outputs=None, error=None,
        created_at=start, queued_at=queued, started_at=attempts[0].started_at if attempts else None,
        ended_at=ended, duration_ms=None, attempts=tuple(attempts),
    )  # fmt: skip
    execution = _overview(
        start, ended if finished else None, "SUCCESS" if finished else "RUNNING", now
    )
    return execution, task


class TestTimelineProperties:
    @given(_schedules())
    def test_segments_are_ordered_contiguous_and_in_span(
        self, schedule: tuple[ExecutionOverview, TaskView]
    ) -> None:
        """Segments alternate in time order without overlap, within [0, span], one run per
        started attempt, and a live lane reaches the span's end."""
        execution, task = schedule
        timeline = build_timeline(execution, [task])
        lane = timeline.lanes[0]
        for segment in lane.segments:
            assert 0 <= segment.start_ms <= segment.end_ms <= timeline.span_ms
        for before, after in itertools.pairwise(lane.segments):
            assert before.end_ms <= after.start_ms
        runs = [s for s in lane.segments if s.kind == "run"]
        assert [s.attempt for s in runs] == [a.attempt for a in task.attempts]
        if not task.finished and lane.segments:
            assert lane.segments[-1].end_ms == timeline.span_ms
