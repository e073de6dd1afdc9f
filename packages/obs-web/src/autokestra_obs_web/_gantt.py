"""The Gantt chart of an execution as SVG geometry, from the timeline of ``inspect --json``.

One lane per task (declaration order), a bar per attempt, the waits (queue, retry backoff)
as thin bars, a mark at the end of a failed attempt, the critical path flagged; an axis of
round ticks. Pure layout: the template draws the shapes with classes (the CSP forbids inline
styles), so light and dark themes colour them.

    chart = gantt_chart(document["timeline"])
    for lane in chart.lanes:
        print(lane.task_id, [(bar.x, bar.width, bar.kind) for bar in lane.bars])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from autokestra_obs_schema import State, format_duration_ms

from ._format import visible

#: Width of the drawing area in SVG user units (the SVG scales to the page width).
PLOT_WIDTH = 800.0
#: Room on the left for task ids.
LABEL_WIDTH = 200.0
#: Room on the right for duration labels.
DURATION_WIDTH = 80.0
LANE_HEIGHT = 22.0
AXIS_HEIGHT = 24.0
#: Shortest bar drawn, so a 1 ms attempt stays visible.
MIN_BAR = 1.5
_TICK_STEPS_MS = (
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    21_600_000,
    43_200_000,
    86_400_000,
)


@dataclass(frozen=True, slots=True)
class Bar:
    """One segment of a lane: ``run`` (an attempt) or ``wait`` (queue or backoff)."""

    x: float
    width: float
    kind: str
    state: str | None
    attempt: int | None
    failed: bool
    title: str


@dataclass(frozen=True, slots=True)
class Lane:
    """One task's row of the chart."""

    task_id: str
    state: str
    y: float
    critical: bool
    running: bool
    duration: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    """One axis label at ``x``."""

    x: float
    label: str


@dataclass(frozen=True, slots=True)
class GanttChart:
    """Everything the template needs to draw the chart."""

    width: float
    height: float
    plot_x: float
    plot_width: float
    axis_y: float
    lanes: tuple[Lane, ...]
    ticks: tuple[Tick, ...]
    critical_path: tuple[str, ...]


def _tick_step(span_ms: int, wanted: int = 8) -> int:
    for step in _TICK_STEPS_MS:
        if span_ms / step <= wanted:
            return step
    return _TICK_STEPS_MS[-1] * max(1, span_ms // (_TICK_STEPS_MS[-1] * wanted) + 1)


def _bar_title(task_id: str, segment: dict[str, Any]) -> str:
    length = format_duration_ms(int(segment["end_ms"]) - int(segment["start_ms"]))
    if segment["kind"] == "wait":
        what = "queued" if segment["attempt"] in (None, 1) else "retry backoff"
        return f"{task_id}: {what} before attempt {segment['attempt']}, {length}"
    return f"{task_id}: attempt {segment['attempt']} {segment['state']}, {length}"


def gantt_chart(timeline: dict[str, Any]) -> GanttChart:
    """Lay out the chart of a timeline document (the ``timeline`` of ``inspect --json``).

    Args:
        timeline: ``{origin, span_ms, critical_path, lanes: [{task_id, segments, ...}]}``.

    Returns:
        The geometry, in SVG user units.
    """
    span = max(1, int(timeline["span_ms"]))
    scale = PLOT_WIDTH / span
    lanes: list[Lane] = []
    for index, lane in enumerate(timeline["lanes"]):
        bars: list[Bar] = []
        for segment in lane["segments"]:
            start, end = int(segment["start_ms"]), int(segment["end_ms"])
            x = LABEL_WIDTH + start * scale
            width = max(MIN_BAR, (end - start) * scale)
            bars.append(
                Bar(
                    x=round(x, 2),
                    width=round(min(width, LABEL_WIDTH + PLOT_WIDTH - x + MIN_BAR), 2),
                    kind=str(segment["kind"]),
                    state=segment["state"],
                    attempt=segment["attempt"],
                    failed=segment["kind"] == "run" and segment["state"] == State.FAILED,
                    title=_bar_title(str(lane["task_id"]), segment),
                )
            )
        duration = lane["duration_ms"]
        lanes.append(
            Lane(
                task_id=str(lane["task_id"]),
                state=str(lane["state"]),
                y=AXIS_HEIGHT + index * LANE_HEIGHT,
                critical=bool(lane["critical"]),
                running=bool(lane["running"]),
                duration="-" if duration is None else format_duration_ms(int(duration)),
                bars=tuple(bars),
            )
        )
    step = _tick_step(span)
    ticks = tuple(
        Tick(x=round(LABEL_WIDTH + ms * scale, 2), label=format_duration_ms(ms) if ms else "0")
        for ms in range(0, span + 1, step)
    )
    return GanttChart(
        width=LABEL_WIDTH + PLOT_WIDTH + DURATION_WIDTH,
        height=AXIS_HEIGHT + len(lanes) * LANE_HEIGHT + 4,
        plot_x=LABEL_WIDTH,
        plot_width=PLOT_WIDTH,
        axis_y=AXIS_HEIGHT - 8,
        lanes=tuple(lanes),
        ticks=ticks,
        critical_path=tuple(timeline["critical_path"]),
    )


def _attr(value: object) -> str:
    return str(escape(visible(value)))


def render_svg(chart: GanttChart) -> Markup:
    """The chart as an SVG element: classes only (no inline style), every text escaped.

    Built here rather than in a template loop: a 500-lane chart is some 2,000 elements, and a
    Jinja2 loop over them cost most of the execution page's time (measured by
    tools/bench/web.py); the markup is the same, and every value still goes through
    ``escape`` (task ids, titles) or is a number.
    """
    parts = [
        f'<svg class="gantt" id="gantt" viewBox="0 0 {chart.width} {chart.height}" role="img"'
        ' aria-label="Gantt timeline of the tasks" preserveAspectRatio="xMinYMin meet"'
        ' xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in chart.ticks:
        parts.append(
            f'<line class="tick" x1="{tick.x}" y1="{chart.axis_y + 4}" x2="{tick.x}"'
            f' y2="{chart.height}"/><text class="tick-label" x="{tick.x}" y="{chart.axis_y}"'
            f' text-anchor="middle">{escape(tick.label)}</text>'
        )
    label_x = chart.plot_x - 8
    duration_x = chart.plot_x + chart.plot_width + 8
    for lane in chart.lanes:
        classes = (
            "lane" + (" critical" if lane.critical else "") + (" running" if lane.running else "")
        )
        mark = "* " if lane.critical else ""
        parts.append(
            f'<g class="{classes}" data-task="{_attr(lane.task_id)}">'
            f'<text class="lane-label" x="{label_x}" y="{lane.y + 15}" text-anchor="end">'
            f"{mark}{_attr(lane.task_id)}</text>"
        )
        for bar in lane.bars:
            state = (bar.state or "wait").lower()
            y, height = (lane.y + 9, 4) if bar.kind == "wait" else (lane.y + 4, 14)
            parts.append(
                f'<rect class="bar {bar.kind} state-{escape(state)}" x="{bar.x}" y="{y}"'
                f' width="{bar.width}" height="{height}" data-attempt="{bar.attempt}">'
                f"<title>{_attr(bar.title)}</title></rect>"
            )
            if bar.failed:
                parts.append(
                    f'<text class="fail-mark" x="{round(bar.x + bar.width - 1, 2)}"'
                    f' y="{lane.y + 15}" text-anchor="end">x</text>'
                )
        parts.append(
            f'<text class="lane-duration" x="{duration_x}" y="{lane.y + 15}">'
            f"{escape(lane.duration)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
