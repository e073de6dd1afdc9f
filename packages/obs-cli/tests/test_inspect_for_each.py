"""`inspect` of a for_each task: --task shows its iterations, --json holds them, the timeline
collapses them past ten lanes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from autokestra_obs_cli import cli
from autokestra_obs_schema import open_writer
from autokestra_obs_store.testing import fan_out_execution, write_execution


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    path = tmp_path_factory.mktemp("for-each") / "for-each.db"
    writer = open_writer(path)
    ids = {
        "small": write_execution(writer, fan_out_execution(12, seed=41)),
        "large": write_execution(writer, fan_out_execution(120, seed=42)),
    }
    writer.close()
    yield path, ids


def _inspect(db: tuple[Path, dict[str, str]], name: str, *args: str) -> str:
    path, ids = db
    result = CliRunner().invoke(
        cli, ["--db", str(path), "execution", "inspect", ids[name], *args], env={"COLUMNS": "100"}
    )
    assert result.exit_code == 0, result.output
    return result.stdout


class TestTaskOption:
    def test_a_for_each_task_lists_its_iterations(self, db: tuple[Path, dict[str, str]]) -> None:
        """--task process: the task's own details, then counts and one row per iteration."""
        out = _inspect(db, "small", "--task", "process")
        assert "Task process of execution" in out
        assert "Iterations: 12 (SUCCESS 12)" in out
        rows = [line.split()[0] for line in out.splitlines() if line.startswith("process[")]
        assert rows == [f"process[{i}]" for i in range(12)]

    def test_many_iterations_show_counts_and_a_hint(self, db: tuple[Path, dict[str, str]]) -> None:
        """Past 50 iterations: the counts, no table of successes, how to see one."""
        out = _inspect(db, "large", "--task", "process")
        assert "Iterations: 120 (SUCCESS 120)" in out
        assert not [line for line in out.splitlines() if line.startswith("process[")]
        assert "use --task 'process[N]' for one iteration" in out

    def test_one_iteration_has_its_attempts(self, db: tuple[Path, dict[str, str]]) -> None:
        """--task 'process[6]' (failed once, retried) shows two attempts and no iteration list."""
        out = _inspect(db, "small", "--task", "process[6]")
        assert "Attempts:     2" in out
        assert "Iterations:" not in out

    def test_json_of_the_task_holds_its_iterations(self, db: tuple[Path, dict[str, str]]) -> None:
        """--json --task process: the task then its iterations in index order, and their
        lanes; --task 'process[3]' holds that iteration only."""
        document = json.loads(_inspect(db, "large", "--task", "process", "--json"))
        ids = [task["task_id"] for task in document["tasks"]]
        assert ids == ["process", *(f"process[{i}]" for i in range(120))]
        assert len(document["timeline"]["lanes"]) == 121
        one = json.loads(_inspect(db, "large", "--task", "process[3]", "--json"))
        assert [task["task_id"] for task in one["tasks"]] == ["process[3]"]


class TestTimeline:
    def test_iterations_past_ten_collapse_into_a_summary(
        self, db: tuple[Path, dict[str, str]]
    ) -> None:
        """Ten iteration lanes, then one line for the other 110 with counts and the longest."""
        lines = _inspect(db, "large", "--timeline").splitlines()
        lanes = [line for line in lines if "process[" in line]
        assert len(lanes) == 11
        assert lanes[-1].startswith("  ... process[10..119]: 110 more iterations (110 SUCCESS)")
        assert ", longest " in lanes[-1]
