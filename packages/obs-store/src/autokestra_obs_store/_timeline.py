"""The timeline model of an execution: per-task lanes of wait and run segments, critical path.

Pure computation over rows already read (no queries), so the Gantt chart of a 500-task
execution costs the same four queries as its overview.

    timeline = build_timeline(execution, tasks)
    for lane in timeline.lanes:
        print(lane.task_id, [(s.kind, s.start_ms, s.end_ms) for s in lane.segments])

Offsets are milliseconds from the execution start (its ``created_at`` until it starts). A lane
reads: waiting from ``queued_at`` to the first attempt, each attempt running, the retry backoff
between attempts as waiting, and, for a live task, waiting or running up to "now".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from autokestra_obs_schema import State

from ._inspect_model import ExecutionOverview, Segment, TaskTimeline, TaskView, Timeline


def _offset(origin: int, moment: int) -> int:
    # A task queued a few ms before the execution row says it started is drawn at 0, not
    # before the axis.
    return max(0, moment - origin)


def _segments(task: TaskView, origin: int, horizon: int) -> tuple[Segment, ...]:
    """Cut one task's history into wait and run segments, in time order.

    Args:
        horizon: where open-ended segments stop: now for a live execution, else its end.
    """
    segments: list[Segment] = []
    cursor = task.queued_at
    for attempt in sorted(task.attempts, key=lambda a: a.attempt):
        if attempt.started_at is None:
            continue  # created but not started yet: the wait after `cursor` covers it
        if cursor is not None and attempt.started_at > cursor:
            segments.append(
                Segment(
                    "wait",
                    _offset(origin, cursor),
                    _offset(origin, attempt.started_at),
                    attempt.attempt,
                    None,
                )
            )
        ended = attempt.ended_at
        segments.append(
            Segment(
                "run",
                _offset(origin, attempt.started_at),
                _offset(origin, ended if ended is not None else max(horizon, attempt.started_at)),
                attempt.attempt,
                attempt.state if ended is not None else State.RUNNING,
            )
        )
        cursor = ended
        if ended is None:
            return tuple(segments)
    if cursor is None:
        return tuple(segments)
    # Still waiting (queued, or in retry backoff), or ended while waiting: cancelled in the
    # queue or during a backoff. A task whose last attempt decided its state stops there (the
    # engine records the task's end a millisecond or so after the attempt's).
    if task.finished:
        started = [a for a in task.attempts if a.started_at is not None]
        waited = not started or (
            task.state == State.CANCELLED and started[-1].state == State.FAILED
        )
        if not waited or task.ended_at is None:
            return tuple(segments)
        stop = task.ended_at
    else:
        stop = horizon
    if stop > cursor:
        upcoming = max((a.attempt for a in task.attempts), default=0) + 1
        segments.append(
            Segment("wait", _offset(origin, cursor), _offset(origin, stop), upcoming, None)
        )
    return tuple(segments)


def _critical_path(lanes: Sequence[TaskTimeline], needs: dict[str, list[str]]) -> list[str]:
    """The chain of tasks that gated the end: from the last-ending task back through the
    dependency that ended last, until a task with no (timed) dependency."""
    # Only tasks that ran are candidates: a task cancelled before it started gated nothing.
    ends = {
        lane.task_id: lane.end_ms
        for lane in lanes
        if lane.end_ms is not None and any(s.kind == "run" for s in lane.segments)
    }
    if not ends:
        return []
    # Ties (live tasks all "end" now): prefer a lane that is running over one that waits.
    busy = {lane.task_id: bool(lane.segments) and lane.segments[-1].kind == "run" for lane in lanes}
    order = {lane.task_id: index for index, lane in enumerate(lanes)}
    current: str | None = max(ends, key=lambda tid: (ends[tid], busy[tid], order[tid]))
    path: list[str] = []
    seen: set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        path.append(current)
        timed = [need for need in needs.get(current, []) if need in ends]
        current = max(timed, key=lambda tid: (ends[tid], busy[tid], order[tid])) if timed else None
    path.reverse()
    return path


def _draft_lane(task: TaskView, origin: int, horizon: int) -> TaskTimeline:
    """One task's lane, before the critical path is known (``critical`` is False)."""
    segments = _segments(task, origin, horizon)
    start = task.started_at
    if start is None:
        first_run = next((s for s in segments if s.kind == "run"), None)
        start = origin + first_run.start_ms if first_run is not None else None
    if task.ended_at is not None:
        end_ms: int | None = _offset(origin, task.ended_at)
    elif segments:
        end_ms = segments[-1].end_ms
    else:
        end_ms = None
    return TaskTimeline(
        task_id=task.task_id,
        state=task.state,
        queued_ms=_offset(origin, task.queued_at) if task.queued_at is not None else None,
        start_ms=_offset(origin, start) if start is not None else None,
        end_ms=end_ms,
        duration_ms=task.duration_ms,
        segments=segments,
        critical=False,
        running=not task.finished and task.started_at is not None,
    )


def build_timeline(execution: ExecutionOverview, tasks: Sequence[TaskView]) -> Timeline:
    """Compute the timeline model of an execution from its rows.

    Args:
        execution: the overview; its ``observed_at`` is "now" for live executions.
        tasks: every task run with its attempts.

    Returns:
        A :class:`Timeline` whose lanes follow the tasks' declaration order.
    """
    origin = execution.started_at if execution.started_at is not None else execution.created_at
    live = execution.in_progress
    horizon = execution.observed_at if live or execution.ended_at is None else execution.ended_at
    horizon = max(horizon, origin)
    drafts = [_draft_lane(task, origin, horizon) for task in tasks]
    needs = {task.task_id: [dep.task_id for dep in task.needs] for task in tasks}
    path = _critical_path(drafts, needs)
    on_path = set(path)
    lanes = tuple(replace(lane, critical=lane.task_id in on_path) for lane in drafts)
    last_end = max((lane.end_ms for lane in lanes if lane.end_ms is not None), default=0)
    span = max(horizon - origin, last_end)
    return Timeline(
        origin=origin,
        span_ms=span,
        lanes=lanes,
        critical_path=tuple(path),
    )
