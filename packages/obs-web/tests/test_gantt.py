"""The Gantt layout: lanes, bars scaled to the span, waits, failures, ticks."""

from __future__ import annotations

from typing import Any

from autokestra_obs_web._gantt import LABEL_WIDTH, PLOT_WIDTH, gantt_chart, render_svg


def _lane(task_id: str, segments: list[dict[str, Any]], critical: bool = False) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "state": "SUCCESS",
        "critical": critical,
        "running": False,
        "queued_ms": 0,
        "start_ms": segments[0]["start_ms"] if segments else None,
        "end_ms": segments[-1]["end_ms"] if segments else None,
        "duration_ms": 1000,
        "segments": segments,
    }


def _run(start: int, end: int, attempt: int = 1, state: str = "SUCCESS") -> dict[str, Any]:
    return {"kind": "run", "attempt": attempt, "state": state, "start_ms": start, "end_ms": end}


class TestGanttChart:
    def test_parallel_tasks_overlap_and_scale_to_the_span(self) -> None:
        """Two tasks running at the same time get bars over the same x range."""
        chart = gantt_chart(
            {
                "origin": "2026-11-25T18:40:00.000Z",
                "span_ms": 2000,
                "critical_path": ["a"],
                "lanes": [_lane("a", [_run(0, 2000)], critical=True), _lane("b", [_run(0, 1000)])],
            }
        )
        a, b = chart.lanes
        assert a.bars[0].x == b.bars[0].x == LABEL_WIDTH
        assert a.bars[0].width == PLOT_WIDTH and b.bars[0].width == PLOT_WIDTH / 2
        assert a.y < b.y and a.critical and not b.critical
        assert chart.ticks[0].label == "0" and chart.ticks[-1].x <= LABEL_WIDTH + PLOT_WIDTH

    def test_retry_has_failed_attempt_backoff_and_success(self) -> None:
        """A failed attempt is marked, the backoff is a wait bar titled as such."""
        wait = {"kind": "wait", "attempt": 2, "state": None, "start_ms": 100, "end_ms": 600}
        chart = gantt_chart(
            {
                "origin": "x",
                "span_ms": 1000,
                "critical_path": [],
                "lanes": [_lane("flaky", [_run(0, 100, 1, "FAILED"), wait, _run(600, 1000, 2)])],
            }
        )
        bars = chart.lanes[0].bars
        assert [bar.kind for bar in bars] == ["run", "wait", "run"]
        assert bars[0].failed and not bars[2].failed
        assert "retry backoff" in bars[1].title

    def test_tiny_bars_stay_visible(self) -> None:
        """A 1 ms attempt in an hour-long execution still gets a visible width."""
        chart = gantt_chart(
            {
                "origin": "x",
                "span_ms": 3_600_000,
                "critical_path": [],
                "lanes": [_lane("t", [_run(10, 11)])],
            }
        )
        assert chart.lanes[0].bars[0].width >= 1.5

    def test_an_execution_not_started_has_an_empty_chart(self) -> None:
        """A queued execution (no lanes, zero span) still lays out an axis and no lane."""
        chart = gantt_chart({"origin": "x", "span_ms": 0, "critical_path": [], "lanes": []})
        assert chart.lanes == () and chart.ticks[0].label == "0"
        assert render_svg(chart).startswith('<svg class="gantt"')
