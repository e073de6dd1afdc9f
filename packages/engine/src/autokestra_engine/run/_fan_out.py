"""The bookkeeping of one running ``for_each`` task: which iterations started, which ended.

The scheduler owns one :class:`FanOut` per running ``for_each`` task. Each iteration is its
own task run ``<id>[<index>]`` run by the worker pool like any task (attempts, retries,
logs, outputs); the fan-out only says which one to start next under the task's
``concurrency`` and collects their outcomes and outputs in item order.

    fan = FanOut(task, ["a", "b", "c"])
    while fan.can_start():
        spec = fan.start_next()       # TaskSpec of iteration 0, then 1...
    fan.record(0, outcome, {"n": 1})
    fan.done                          # True once every iteration has an outcome
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from autokestra_obs_schema import State

from ..language._model import Iteration, TaskSpec, iteration_id
from ._worker import TaskOutcome


@dataclass
class FanOut:
    """One running ``for_each`` task.

    Attributes:
        task: the ``for_each`` task as declared.
        items: the list it runs over, resolved.
        next_index: the next iteration to start.
        running: indexes started and not ended.
        outcomes: how each ended iteration ended, by index.
        outputs: the outputs of each successful iteration, by index.
    """

    task: TaskSpec
    items: list[Any]
    next_index: int = 0
    running: set[int] = field(default_factory=set)
    outcomes: dict[int, TaskOutcome] = field(default_factory=dict)
    outputs: dict[int, dict[str, Any]] = field(default_factory=dict)

    def iteration(self, index: int) -> TaskSpec:
        """The task an iteration runs: the declared one, renamed and bound to its item."""
        return dataclasses.replace(
            self.task,
            id=iteration_id(self.task.id, index),
            needs=(),
            condition=None,
            for_each=None,
            concurrency=None,
            iteration=Iteration(self.task.id, index, self.items[index]),
        )

    def can_start(self) -> bool:
        """Whether an iteration is left to start and the concurrency limit allows one more."""
        limit = self.task.concurrency or len(self.items)
        return self.next_index < len(self.items) and len(self.running) < limit

    def start_next(self) -> TaskSpec:
        """Mark the next iteration started and return its task."""
        index = self.next_index
        self.next_index += 1
        self.running.add(index)
        return self.iteration(index)

    def unstarted(self) -> list[int]:
        """Indexes never started (to cancel them when the execution stops)."""
        indexes = list(range(self.next_index, len(self.items)))
        self.next_index = len(self.items)
        return indexes

    def record(self, index: int, outcome: TaskOutcome, outputs: dict[str, Any] | None) -> None:
        """Keep how iteration ``index`` ended (and its outputs when it succeeded)."""
        self.running.discard(index)
        self.outcomes[index] = outcome
        if outcome.state is State.SUCCESS:
            self.outputs[index] = outputs or {}

    @property
    def done(self) -> bool:
        """Every iteration has ended."""
        return len(self.outcomes) == len(self.items)

    def indexes_in(self, state: State) -> list[int]:
        """Indexes of the iterations that ended in ``state``, ascending."""
        return sorted(i for i, outcome in self.outcomes.items() if outcome.state is state)

    def collected(self) -> dict[str, Any]:
        """The ``for_each`` task's outputs: every iteration's outputs in item order."""
        return {
            "results": [self.outputs.get(i, {}) for i in range(len(self.items))],
            "count": len(self.items),
        }
