"""The ASCII Gantt chart of ``workflow execution inspect --timeline`` (CLI.md "Details").

One lane per task run, ``<task_id>  |<bar>|  <duration>``: ``#`` while an attempt runs, ``-`` while
the task waits (queue or retry backoff), spaces elsewhere, ``x`` at the end of a failed
attempt, ``*`` before the task id on the critical path; a time axis line follows the lanes.
Plain ASCII, fitted to ``width`` columns, identical on a TTY and in a pipe. The iterations of a
``for_each`` task (``process[0]``, ``process[1]``...) are lanes too; beyond
:data:`ITERATION_LANES` of one task, the first ones are drawn and one summary line stands for
the rest (how many, their states, the longest), so a 1000-item fan-out stays readable.

    for line in render_timeline(inspection, width=80):
        print(line)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from autokestra_obs_schema import escape_control, format_duration_ms
from autokestra_obs_store import Inspection, Segment, TaskTimeline, split_iteration

SHORT_LEGEND = "# running  - waiting  x failed  * critical path"
#: Narrowest bar drawn; below it long task ids are shortened instead.
MIN_BAR = 10
#: Task ids are shortened to no less than this many characters.
MIN_ID = 8
#: Iteration lanes drawn per for_each task before the rest collapse into one summary line.
ITERATION_LANES = 10
LEGEND = "# attempt running  - waiting (queue, retry backoff)  x attempt failed  * critical path"


def _column_range(segment: Segment, span: int, bar: int) -> range:
    """Columns covered by a segment; at least one, so a 5 ms attempt stays visible."""
    first = min(bar - 1, math.floor(segment.start_ms * bar / span))
    last = min(bar - 1, math.ceil(segment.end_ms * bar / span) - 1)
    return range(first, max(first, last) + 1)


def render_bar(segments: Sequence[Segment], span: int, bar: int) -> str:
    """Draw one lane's segments in ``bar`` columns of a chart spanning ``span`` ms.

    Runs win over waits where they share a column, and a failed attempt's final ``x`` wins
    over both, so a failure is never hidden by the retry that follows it.
    """
    span = max(span, 1)
    cells = [" "] * bar
    for kind, mark in (("wait", "-"), ("run", "#")):
        for segment in segments:
            if segment.kind == kind:
                for column in _column_range(segment, span, bar):
                    cells[column] = mark
    for segment in segments:
        if segment.failed:
            cells[_column_range(segment, span, bar)[-1]] = "x"
    return "".join(cells)


def _label(ms: int) -> str:
    return "0s" if ms == 0 else format_duration_ms(ms)


#: Tick steps a reader can add up in their head (ms): 1-2-5 series, then clock-like steps.
_STEPS = (
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000,
    60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000,
    14_400_000, 21_600_000, 43_200_000, 86_400_000,
)  # fmt: skip
#: Minimum columns between two tick labels.
_TICK_SPACING = 14


def _tick_step(span: int, bar: int) -> int:
    wanted = span * _TICK_SPACING / bar
    for step in _STEPS:
        if step >= wanted:
            return step
    return 86_400_000 * math.ceil(wanted / 86_400_000)


def _axis(span: int, bar: int) -> str:
    """Time labels under the bar at round steps, each starting at its column, and the total
    span ending under the bar's closing pipe (ticks that would collide with it are left out)."""
    cells = [" "] * (bar + 2)  # the two pipes plus the bar
    total = _label(span)
    total_start = bar + 2 - len(total)
    cells[total_start:] = list(total)
    placed_until = 0
    step = _tick_step(span, bar)
    for moment in range(0, span, step):
        text = _label(moment)
        start = 1 + min(bar - 1, round(moment * bar / span))
        if start < placed_until or start + len(text) >= total_start:
            continue
        cells[start : start + len(text)] = list(text)
        placed_until = start + len(text) + 1
    return "".join(cells).rstrip()


def _fit_id(task_id: str, width: int) -> str:
    text = escape_control(task_id, keep_newlines=False)
    if len(text) <= width:
        return text.ljust(width)
    return text[: width - 1] + "~"


def _duration(lane: TaskTimeline) -> str:
    return format_duration_ms(lane.duration_ms) if lane.duration_ms is not None else "-"


def _collapsed(lanes: Sequence[TaskTimeline]) -> list[TaskTimeline | str]:
    """The lanes to draw: past ITERATION_LANES iterations of a task, one summary line."""
    kept: list[TaskTimeline | str] = []
    hidden: dict[str, list[TaskTimeline]] = {}
    shown: Counter[str] = Counter()
    for lane in lanes:
        iteration = split_iteration(lane.task_id)
        if iteration is None:
            kept.append(lane)
            continue
        parent = iteration[0]
        if shown[parent] < ITERATION_LANES:
            shown[parent] += 1
            kept.append(lane)
            continue
        if parent not in hidden:
            hidden[parent] = []
            kept.append(parent)  # a placeholder, replaced by the summary below
        hidden[parent].append(lane)
    return [item if not isinstance(item, str) else _summary(item, hidden[item]) for item in kept]


def _summary(parent: str, lanes: list[TaskTimeline]) -> str:
    states = Counter(lane.state for lane in lanes)
    longest = max((lane.duration_ms or 0 for lane in lanes), default=0)
    first = split_iteration(lanes[0].task_id)
    last = split_iteration(lanes[-1].task_id)
    assert first is not None and last is not None  # only iteration lanes are hidden
    counts = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    return (
        f"  ... {parent}[{first[1]}..{last[1]}]: {len(lanes)} more"
        f" iterations ({counts}), longest {format_duration_ms(longest)}"
    )


def render_timeline(inspection: Inspection, width: int) -> list[str]:
    """Render the Gantt chart of an execution in at most ``width`` columns per line.

    Args:
        inspection: the execution's snapshot (its timeline model and overview).
        width: the terminal width; every returned line fits in it.

    Returns:
        Lines without trailing newlines: two header lines, one lane per task, the time axis,
        a legend.
    """
    timeline = inspection.timeline
    execution = inspection.execution
    lanes = timeline.lanes
    durations = [_duration(lane) for lane in lanes]
    dur_w = max((len(d) for d in durations), default=1)
    id_w = max(
        (len(escape_control(lane.task_id, keep_newlines=False)) for lane in lanes), default=4
    )
    # "* " + id + "  |" + bar + "|  " + duration
    fixed = 2 + 3 + 3 + dur_w
    if width - fixed - id_w < MIN_BAR:
        id_w = max(MIN_ID, width - fixed - MIN_BAR)
    bar = max(MIN_BAR, width - fixed - id_w)
    span = max(timeline.span_ms, 1)
    state = execution.state if not execution.in_progress else f"{execution.state}, in progress"
    lines = [
        f"Timeline of {execution.execution_id} ({execution.workflow_id}, {state})",
        f"0s = {_origin(inspection)}, 1 column = {format_duration_ms(max(1, round(span / bar)))}",
    ]
    if not lanes:
        lines.append("(no tasks)")
    duration_of = {lane.task_id: duration for lane, duration in zip(lanes, durations, strict=True)}
    for lane in _collapsed(lanes):
        if isinstance(lane, str):
            lines.append(lane)
            continue
        duration = duration_of[lane.task_id]
        marker = "* " if lane.critical else "  "
        lines.append(
            f"{marker}{_fit_id(lane.task_id, id_w)}  |{render_bar(lane.segments, span, bar)}|"
            f"  {duration}"
        )
    lines.append(" " * (2 + id_w + 2) + _axis(span, bar))
    lines.append(LEGEND if len(LEGEND) <= width else SHORT_LEGEND)
    return [escape_control(line[:width] if len(line) > width else line) for line in lines]


def _origin(inspection: Inspection) -> str:
    from autokestra_obs_schema import iso_from_ms

    return iso_from_ms(inspection.timeline.origin)
