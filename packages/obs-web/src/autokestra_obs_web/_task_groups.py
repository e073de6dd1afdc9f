"""The execution page's task table and chart with ``for_each`` iterations grouped.

Iterations (``resize[0]``, ``resize[1]``...) are rows right under their task, indented. Past
:data:`ITERATION_ROWS` of one task, only the failed and live ones stay as rows and one
summary row counts the others by state and links to the task's page, which lists every
iteration; the Gantt chart keeps the same lanes, so a 1,000-item fan-out stays a page a
browser draws at once (the CLI's ``--timeline`` collapses the same way).

    rows = task_rows(document["tasks"], execution_id)
    lanes = drawn_lanes(document["timeline"]["lanes"], rows)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autokestra_obs_schema import State
from autokestra_obs_store import split_iteration

#: Iteration rows shown per for_each task before the rest are counted in one row.
ITERATION_ROWS = 10
#: Iterations always shown as rows: a failure or a live one is what a person looks for.
_NOTABLE = frozenset({State.FAILED.value, State.RUNNING.value, State.WAITING.value})

#: What a SKIPPED task's reason code means, in the words of docs/workflows.md.
_SKIP_REASONS = {
    "CONDITION_FALSE": "its if: condition was false",
    "UPSTREAM_SKIPPED": "a task it needs was skipped (run_if: all_success)",
    "TRIGGER_RULE_UNMET": "no task it needs failed (run_if: any_failed)",
    "NO_FAILURE": "the execution did not fail (failure handler)",
}


def skip_reason(reason_code: object) -> str:
    """Why a task with this reason code was skipped, as a phrase ("" for other codes)."""
    return _SKIP_REASONS.get(str(reason_code), "")


@dataclass
class TaskRow:
    """One row of the task table.

    Attributes:
        kind: ``task``, ``iteration`` (indented under its task) or ``more`` (a summary).
        task: the task document (``task`` and ``iteration`` rows).
        parent: the for_each task (``iteration`` and ``more`` rows).
        hidden: how many iterations the ``more`` row stands for, and their states.
    """

    kind: str
    task: dict[str, Any] | None = None
    parent: str | None = None
    hidden: int = 0
    states: Counter[str] = field(default_factory=Counter)

    @property
    def counts(self) -> str:
        """``110 SUCCESS, 2 SKIPPED`` for a ``more`` row."""
        return ", ".join(f"{count} {state}" for state, count in sorted(self.states.items()))


def task_rows(tasks: Sequence[dict[str, Any]]) -> list[TaskRow]:
    """The task table's rows, in the documents' order (a for_each task before its
    iterations, in index order), with iterations past :data:`ITERATION_ROWS` counted."""
    rows: list[TaskRow] = []
    shown: Counter[str] = Counter()
    more: dict[str, TaskRow] = {}
    for task in tasks:
        parts = split_iteration(task["task_id"])
        if parts is None:
            rows.append(TaskRow("task", task))
            continue
        parent = parts[0]
        if shown[parent] < ITERATION_ROWS or task["state"] in _NOTABLE:
            shown[parent] += 1
            rows.append(TaskRow("iteration", task, parent))
            continue
        summary = more.get(parent)
        if summary is None:
            summary = more[parent] = TaskRow("more", parent=parent)
        summary.hidden += 1
        summary.states[task["state"]] += 1
    # Each summary goes after the last row of its task's group.
    for parent, summary in more.items():
        last = max(i for i, row in enumerate(rows) if row.parent == parent)
        rows.insert(last + 1, summary)
    return rows


def drawn_lanes(lanes: Sequence[dict[str, Any]], rows: Sequence[TaskRow]) -> list[dict[str, Any]]:
    """The Gantt lanes of the rows shown (counted iterations get no lane)."""
    shown = {row.task["task_id"] for row in rows if row.task is not None}
    return [lane for lane in lanes if lane["task_id"] in shown]
