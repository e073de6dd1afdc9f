"""`inspect --timeline`: lanes, overlapping bars, retries, critical path, terminal width."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from autokestra_obs_cli import cli
from autokestra_obs_cli._inspect_timeline import render_bar
from autokestra_obs_schema import open_writer
from autokestra_obs_store import Segment
from autokestra_obs_store.testing import (
    failure_execution,
    retry_execution,
    running_execution,
    success_execution,
    wide_execution,
    write_execution,
)

LANE = re.compile(r"^([* ]) (\S+)\s*  \|([#x\- ]+)\|  (\S.*)$")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    path = tmp_path_factory.mktemp("timeline") / "timeline.db"
    writer = open_writer(path)
    ids = {
        "success": write_execution(writer, success_execution()),
        "failure": write_execution(writer, failure_execution()),
        "retry": write_execution(writer, retry_execution()),
        "running": write_execution(writer, running_execution()),
        "wide": write_execution(writer, wide_execution(120)),
    }
    writer.close()
    yield path, ids


def _timeline(db: tuple[Path, dict[str, str]], name: str, columns: int) -> list[str]:
    path, ids = db
    result = CliRunner().invoke(
        cli,
        ["--db", str(path), "execution", "inspect", ids[name], "--timeline"],
        env={"COLUMNS": str(columns)},
    )
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def _lanes(lines: list[str]) -> dict[str, tuple[bool, str, str]]:
    """task id -> (critical, bar, duration label)."""
    lanes = {}
    for line in lines:
        match = LANE.match(line)
        if match:
            lanes[match.group(2)] = (match.group(1) == "*", match.group(3), match.group(4))
    return lanes


def _columns(bar: str, marks: str = "#x") -> set[int]:
    return {index for index, char in enumerate(bar) if char in marks}


class TestLayout:
    @pytest.mark.parametrize("columns", [80, 200])
    def test_fits_the_terminal_width(self, db: tuple[Path, dict[str, str]], columns: int) -> None:
        """Every line fits the width, and the bars use the space the width leaves."""
        for name in ("success", "failure", "retry", "running", "wide"):
            lines = _timeline(db, name, columns)
            assert max(len(line) for line in lines) <= columns
            lanes = _lanes(lines)
            assert lanes, name
            widths = {len(bar) for _, bar, _ in lanes.values()}
            assert len(widths) == 1
            lane_lines = [line for line in lines if LANE.match(line)]
            assert max(len(line) for line in lane_lines) >= columns - 8

    def test_one_lane_per_task_with_duration(self, db: tuple[Path, dict[str, str]]) -> None:
        """Each task has one lane ending with its human duration."""
        lanes = _lanes(_timeline(db, "success", 80))
        assert list(lanes) == ["fetch", "transform", "notify", "load"]
        assert [label for _, _, label in lanes.values()] == ["1.2s", "1.3s", "255ms", "770ms"]

    def test_plain_ascii_with_time_axis(self, db: tuple[Path, dict[str, str]]) -> None:
        """The chart is ASCII and a time axis from 0s to the span follows the lanes."""
        lines = _timeline(db, "success", 80)
        assert all(line.isascii() for line in lines)
        last_lane = max(i for i, line in enumerate(lines) if LANE.match(line))
        axis = lines[last_lane + 1]
        assert axis.split()[0] == "0s"
        assert axis.split()[-1] == "3.3s"
        bar_end = lines[last_lane].rindex("|")
        assert len(axis) - 1 == bar_end  # the span label ends under the closing pipe

    def test_wide_execution_has_every_lane(self, db: tuple[Path, dict[str, str]]) -> None:
        """A 120-task timeline draws 120 lanes (no summary mode in the timeline)."""
        assert len(_lanes(_timeline(db, "wide", 80))) == 120


class TestBars:
    @pytest.mark.parametrize("columns", [80, 200])
    def test_parallel_tasks_overlap(self, db: tuple[Path, dict[str, str]], columns: int) -> None:
        """Tasks that ran in parallel draw bars over the same columns; sequential ones don't."""
        lanes = _lanes(_timeline(db, "success", columns))
        transform, notify = _columns(lanes["transform"][1]), _columns(lanes["notify"][1])
        fetch, load = _columns(lanes["fetch"][1]), _columns(lanes["load"][1])
        assert transform & notify
        assert min(notify) >= max(fetch) - 1
        assert min(load) >= max(transform)
        assert max(load) == len(lanes["load"][1]) - 1  # the last task reaches the right edge

    def test_retries_and_backoff_within_a_lane(self, db: tuple[Path, dict[str, str]]) -> None:
        """A retried task's lane reads run, x, backoff, run, x, backoff, run."""
        bar = _lanes(_timeline(db, "retry", 80))["flaky"][1]
        assert re.fullmatch(r"#+x-+#+x-+#+ *", bar), bar

    def test_failed_attempt_ends_with_x(self, db: tuple[Path, dict[str, str]]) -> None:
        """A task whose only attempt failed ends its bar with x; never-run tasks are blank."""
        lanes = _lanes(_timeline(db, "failure", 80))
        assert lanes["build"][1].rstrip().endswith("x")
        assert lanes["test"][1].strip() == ""
        assert lanes["test"][2] == "-"

    def test_critical_path_marked(self, db: tuple[Path, dict[str, str]]) -> None:
        """A `*` marks the tasks of the critical path only."""
        lanes = _lanes(_timeline(db, "success", 80))
        assert [tid for tid, (critical, _, _) in lanes.items() if critical] == [
            "fetch",
            "transform",
            "load",
        ]

    def test_live_lanes(self, db: tuple[Path, dict[str, str]]) -> None:
        """A running attempt runs to the right edge; a retry backoff in progress waits to it."""
        lanes = _lanes(_timeline(db, "running", 80))
        assert lanes["download"][1].endswith("#")
        assert lanes["probe"][1].endswith("-")
        assert "x" in lanes["probe"][1]
        assert lanes["extract"][1].strip() == ""


class TestRenderBar:
    def test_short_segments_stay_visible(self) -> None:
        """A segment shorter than a column still draws one character."""
        bar = render_bar([Segment("run", 500, 501, 1, "SUCCESS")], 1000, 10)
        assert bar == "     #    "

    def test_failure_mark_wins_over_the_next_attempt(self) -> None:
        """When a failure and its retry share a column, the x stays visible."""
        segments = [
            Segment("run", 0, 95, 1, "FAILED"),
            Segment("wait", 95, 100, 2, None),
            Segment("run", 100, 200, 2, "SUCCESS"),
        ]
        assert render_bar(segments, 200, 4) == "#x##"

    def test_wait_then_run(self) -> None:
        """Waiting draws '-', running '#', the rest stays blank."""
        segments = [Segment("wait", 0, 50, 1, None), Segment("run", 50, 100, 1, "SUCCESS")]
        assert render_bar(segments, 200, 8) == "--##    "


_segment = st.builds(
    lambda start, length, kind, state: Segment(kind, start, start + length, 1, state),
    st.integers(0, 10_000),
    st.integers(0, 5_000),
    st.sampled_from(["wait", "run"]),
    st.sampled_from([None, "SUCCESS", "FAILED", "RUNNING"]),
)


class TestRenderBarProperties:
    @given(st.lists(_segment, max_size=8), st.integers(1, 20_000), st.integers(10, 200))
    def test_bar_shape(self, segments: list[Segment], span: int, bar: int) -> None:
        """Any segments give exactly `bar` characters from the lane alphabet, one per segment
        at least, even when a segment lies beyond the span."""
        drawn = render_bar(segments, span, bar)
        assert len(drawn) == bar
        assert set(drawn) <= set(" #-x")
        if segments:
            assert drawn.strip()
        if any(s.kind == "run" and s.state == "FAILED" for s in segments):
            assert "x" in drawn


class TestLongTaskIds:
    def test_64_char_ids_are_shortened_to_fit(self, tmp_path: Path) -> None:
        """A 64-character task id is shortened with `~` so the lane still fits 80 columns."""
        record = success_execution(seed=44)
        long_id = "x" * 60 + "-end"
        record.tasks[0].task_id = long_id
        record.tasks[1].needs = (long_id,)
        record.tasks[2].needs = (long_id,)
        path = tmp_path / "long.db"
        writer = open_writer(path)
        eid = write_execution(writer, record)
        writer.close()
        lines = _timeline((path, {"long": eid}), "long", 80)
        assert max(len(line) for line in lines) <= 80
        lane = next(line for line in lines if "~" in line)
        match = LANE.match(lane)
        assert match is not None
        assert len(match.group(3)) >= 10  # the bar keeps its minimum width
