"""The task runs of a ``for_each`` task's iterations, named ``<task>[<index>]``.

The engine names iteration ``i`` of task ``resize`` ``resize[i]``; task ids cannot hold
``[`` (``^[A-Za-z0-9_-]{1,64}$``), so the name alone tells an iteration, its task and its
index. Every reader (inspect, timeline, logs, console, traces) asks here.

    split_iteration("resize[3]")          # ("resize", 3)
    split_iteration("resize")             # None
    in_task_family("resize[3]", "resize") # True
"""

from __future__ import annotations

import re

_ITERATION = re.compile(r"^(?P<task>.+)\[(?P<index>\d+)\]$")


def split_iteration(task_id: str) -> tuple[str, int] | None:
    """The ``(for_each task, index)`` of an iteration's task run id, or ``None``.

    Args:
        task_id: a task run id such as ``resize`` or ``resize[3]``.
    """
    match = _ITERATION.match(task_id)
    if match is None:
        return None
    return match.group("task"), int(match.group("index"))


def in_task_family(task_id: str, selected: str) -> bool:
    """Whether ``task_id`` is ``selected`` or one of its iterations.

    Args:
        task_id: the task run id to test.
        selected: the task asked for (``--task``); an iteration id selects only itself.
    """
    if task_id == selected:
        return True
    parts = split_iteration(task_id)
    return parts is not None and parts[0] == selected
