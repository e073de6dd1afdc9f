"""Subflows in the language: the ``core/flow.subflow`` task and what can be checked about it.

A subflow task starts a registered workflow (``workflow apply``) as a child execution,
waits for it and exposes its outputs (Kestra's ``Subflow``, Airflow's ``TriggerDagRun`` with
``wait_for_completion``). Its ``workflow`` input is a literal id, so the call graph is known
before anything runs: the parser refuses a template or a workflow calling itself
(:func:`literal_problems`); ``validate`` checks the callee against the registered workflows
(:func:`callee_problems`): unknown id, undeclared or missing inputs, a literal of the wrong
type, a call cycle through other workflows.

    problems = callee_problems(workflow, registered.get)
    # [Problem('tasks[1].inputs.workflow', "unknown workflow 'child' (register it ...)")]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from ._inputs import type_error
from ._model import TaskSpec, Workflow
from ._problems import Problem, WorkflowInvalid

#: The built-in task type of a subflow (run by the engine itself, no plugin process).
SUBFLOW_TYPE = "core/flow.subflow"
#: How many executions a chain of subflows may hold at run time: the root and 4 levels of
#: children. A guard against recursion the static check cannot see (the registry changed
#: since ``validate``, or the file was never validated).
MAX_SUBFLOW_DEPTH = 5

#: A registered workflow by id, or None (``validate`` builds it from the database).
WorkflowLookup = Callable[[str], Workflow | None]

_WORKFLOW_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def task_path(workflow: Workflow, task: TaskSpec) -> str:
    """Where a task is declared: ``tasks[2]`` or ``on_failure[0]``."""
    if task.position < len(workflow.tasks):
        return f"tasks[{task.position}]"
    return f"on_failure[{task.position - len(workflow.tasks)}]"


def callee_of(task: TaskSpec) -> str | None:
    """The workflow id a subflow task calls; None for another task or a malformed value."""
    if task.type != SUBFLOW_TYPE:
        return None
    value = task.inputs.get("workflow")
    return value if isinstance(value, str) and _WORKFLOW_ID.fullmatch(value) else None


def subflow_tasks(workflow: Workflow) -> Iterator[tuple[str, TaskSpec, str]]:
    """``(path, task, callee id)`` for each well-formed subflow task of a workflow."""
    for task in workflow.all_tasks:
        callee = callee_of(task)
        if callee is not None:
            yield task_path(workflow, task), task, callee


def literal_problems(workflow_id: str | None, tasks: list[tuple[str, TaskSpec]]) -> list[Problem]:
    """What the parser can tell about subflow tasks alone: a literal id, not its own.

    Args:
        workflow_id: the id of the workflow declaring them (None when it is invalid).
        tasks: ``(path, task)`` of every task of the file.
    """
    problems: list[Problem] = []
    for path, task in tasks:
        if task.type != SUBFLOW_TYPE:
            continue
        value = task.inputs.get("workflow")
        where = f"{path}.inputs.workflow"
        if isinstance(value, str) and "{{" in value:
            problems.append(
                Problem(where, "must be a literal workflow id (templates are not allowed here)")
            )
        elif isinstance(value, str) and not _WORKFLOW_ID.fullmatch(value):
            problems.append(Problem(where, f"invalid workflow id {value!r}"))
        elif value is not None and value == workflow_id:
            problems.append(Problem(where, f"recursive subflow: {value} -> {value}"))
    return problems


def callee_problems(workflow: Workflow, lookup: WorkflowLookup) -> list[Problem]:
    """Check each subflow task against the workflow it calls.

    Args:
        workflow: a parsed workflow.
        lookup: the callable workflows by id (registered ones, and files validated together);
            it may raise :class:`WorkflowInvalid` for one that no longer loads.

    Returns:
        Every problem with its path: an unknown callee, an undeclared input, a missing
        required one, a literal of the wrong type, a call cycle back to ``workflow``.
    """
    problems: list[Problem] = []
    for path, task, callee_id in subflow_tasks(workflow):
        if callee_id == workflow.id:
            continue  # the parser reported it
        try:
            callee = lookup(callee_id)
        except WorkflowInvalid as exc:
            problems.append(
                Problem(f"{path}.inputs.workflow", f"workflow {callee_id!r} does not load: {exc}")
            )
            continue
        if callee is None:
            problems.append(
                Problem(
                    f"{path}.inputs.workflow",
                    f"unknown workflow {callee_id!r} (register it with `workflow apply`)",
                )
            )
            continue
        problems.extend(_input_problems(path, task, callee))
        cycle = _cycle(workflow.id, callee, lookup)
        if cycle is not None:
            problems.append(
                Problem(f"{path}.inputs.workflow", "recursive subflow: " + " -> ".join(cycle))
            )
    return problems


def _input_problems(path: str, task: TaskSpec, callee: Workflow) -> Iterator[Problem]:
    given = task.inputs.get("inputs")
    if not isinstance(given, dict):
        given = {}  # a template, or absent: checked when the child is created
    declared = ", ".join(sorted(callee.inputs)) or "none"
    for name, value in given.items():
        spec = callee.inputs.get(str(name))
        where = f"{path}.inputs.inputs.{name}"
        if spec is None:
            yield Problem(
                where,
                f"input {name!r} is not declared by workflow {callee.id} (declared: {declared})",
            )
        elif not _holds_template(value) and (problem := type_error(value, spec.type)):
            yield Problem(where, problem)
    for name, spec in callee.inputs.items():
        if spec.required and spec.default is None and name not in given:
            yield Problem(
                f"{path}.inputs.inputs", f"missing required input {name!r} of workflow {callee.id}"
            )


def _holds_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, list):
        return any(_holds_template(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_template(v) for v in value.values())
    return False


def _cycle(origin: str, callee: Workflow, lookup: WorkflowLookup) -> list[str] | None:
    """The call chain from ``origin`` back to itself through ``callee``, if there is one."""
    seen: set[str] = set()

    def walk(current: Workflow, chain: list[str]) -> list[str] | None:
        if current.id in seen:
            return None
        seen.add(current.id)
        for _, _, next_id in subflow_tasks(current):
            if next_id == origin:
                return [*chain, current.id, origin]
            try:
                following = lookup(next_id)
            except WorkflowInvalid:
                continue  # reported where it is called from, when validated
            if following is not None:
                found = walk(following, [*chain, current.id])
                if found is not None:
                    return found
        return None

    return walk(callee, [origin])
