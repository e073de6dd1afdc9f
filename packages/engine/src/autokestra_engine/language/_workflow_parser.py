"""The workflow DSL: YAML in, a validated :class:`Workflow` out, or every problem at once.

Each problem carries the path of the offending value (``tasks[2].needs[0]: unknown task
'fetch'``); YAML syntax errors carry ``line:column``. Checked: keys and their types, ids,
task types against the plugin registry, task inputs against the action's declarations,
dependencies (unknown, duplicate, cycles, named), durations, cron schedules, and templates
(a ``tasks.<id>.outputs`` reference must name an upstream dependency).

    registry = PluginRegistry.discover([Path("plugins")])
    try:
        workflow = load_workflow(Path("hello.yaml"), registry)
    except WorkflowInvalid as exc:
        for problem in exc.problems:
            print(problem)
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from croniter import croniter

from autokestra_obs_schema import parse_duration_ms

from ._conditions import ConditionError, parse_condition
from ._inputs import canonical_type, type_error
from ._limits import (
    DEFAULT_LIMITS,
    MAX_NESTING,
    WorkflowLimits,
    check_task_count,
    read_workflow_text,
    too_deep,
    unencodable_strings,
)
from ._model import (
    RUN_IF_RULES,
    ActionSpec,
    InputSpec,
    RetryPolicy,
    RunIf,
    TaskSpec,
    Trigger,
    TriggerType,
    Workflow,
)
from ._plugin_registry import PluginRegistry
from ._problems import Problem, UnknownAction, WorkflowInvalid
from ._subflows import literal_problems
from ._task_graph import ancestors, find_cycles
from ._templates import Reference, is_whole_template, iter_templates, parse_reference
from ._yaml_document import (
    MAX_EXPANDED_VALUES,
    NestingTooDeep,
    expanded_size,
    load_yaml,
    prescan,
)

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TYPE_PATTERN = re.compile(r"^[a-z0-9-]+/[a-z0-9-]+\.[a-z0-9-]+$")
MAX_RETRIES = 100
_TOP_KEYS = ("id", "description", "enabled", "trigger", "inputs", "timeout", "tasks", "on_failure")
_TASK_KEYS = (
    "id",
    "type",
    "description",
    "needs",
    "inputs",
    "retry",
    "timeout",
    "if",
    "run_if",
    "allow_failure",
    "for_each",
    "concurrency",
)
_INPUT_KEYS = ("type", "default", "required", "description")
_TRIGGER_KEYS = ("type", "schedule", "secret")
_RETRY_KEYS = ("max", "backoff")
_BACKOFF_KEYS = ("type", "delay", "max_delay")
_TRIGGER_TYPES = ("manual", "cron", "webhook")


class _Checker:
    """Walks a parsed workflow, collecting problems with their paths."""

    def __init__(self, registry: PluginRegistry) -> None:
        self.registry = registry
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def mapping(self, value: Any, path: str, allowed: Iterable[str]) -> dict[str, Any]:
        """The value as a mapping (unknown keys reported), or {} after reporting."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {_kind(value)}")
            return {}
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.add(where, f"unknown key (allowed: {', '.join(allowed)})")
        return {str(k): v for k, v in value.items()}

    def ident(self, value: Any, path: str, what: str) -> str | None:
        if value is None:
            self.add(path, f"missing required {what} id")
            return None
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            self.add(path, f"invalid {what} id {value!r}: 1-64 letters, digits, '_' or '-' only")
            return None
        return value

    def duration(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(path, f"expected a duration such as 30s, 5m or 1h30m, got {_kind(value)}")
            return None
        try:
            return parse_duration_ms(value)
        except ValueError as exc:
            self.add(path, f"invalid duration: {exc} (examples: 250ms, 30s, 5m, 1h30m)")
            return None

    def text(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.add(path, f"expected a string, got {_kind(value)}")
            return ""
        return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


def _trigger(check: _Checker, raw: Any) -> Trigger:
    body = check.mapping(raw, "trigger", _TRIGGER_KEYS)
    kind = body.get("type", "manual")
    if kind not in _TRIGGER_TYPES:
        check.add("trigger.type", f"unknown trigger type {kind!r} (use manual, cron or webhook)")
        kind = "manual"
    schedule = body.get("schedule")
    if kind == "cron":
        if not isinstance(schedule, str) or not schedule.strip():
            check.add("trigger.schedule", "a cron trigger needs a schedule, e.g. '*/5 * * * *'")
            schedule = None
        elif not croniter.is_valid(schedule):
            check.add("trigger.schedule", f"invalid cron expression {schedule!r}")
    elif schedule is not None:
        check.add("trigger.schedule", f"only cron triggers take a schedule (type is {kind})")
        schedule = None
    return Trigger(
        type=cast(TriggerType, kind),
        schedule=schedule,
        secret=_webhook_secret(check, kind, body.get("secret")),
    )


def _webhook_secret(check: _Checker, kind: str, raw: Any) -> str | None:
    """The secret name of ``secret: "{{ secrets.NAME }}"``; a webhook trigger needs one.

    Only a reference is accepted: the registry stores the file as written, so a value
    written in it would be stored (and shown) in clear.
    """
    if kind != "webhook":
        if raw is not None:
            check.add("trigger.secret", f"only webhook triggers take a secret (type is {kind})")
        return None
    usage = 'a webhook trigger needs secret: "{{ secrets.NAME }}" (the key that signs requests)'
    if raw is None:
        check.add("trigger.secret", usage)
        return None
    ref: Reference | None = None
    if isinstance(raw, str) and is_whole_template(raw):
        with contextlib.suppress(ValueError):
            ref = parse_reference(raw[2:-2])
    if ref is None or ref.kind != "secrets":
        check.add("trigger.secret", f"{usage}; a value written in the file is refused")
        return None
    return ref.name


def _workflow_inputs(check: _Checker, raw: Any) -> dict[str, InputSpec]:
    specs: dict[str, InputSpec] = {}
    if raw is None:
        return specs
    if not isinstance(raw, dict):
        check.add("inputs", f"expected a mapping of input name to declaration, got {_kind(raw)}")
        return specs
    for name, decl in raw.items():
        path = f"inputs.{name}"
        if not isinstance(name, str) or not ID_PATTERN.match(name):
            check.add(path, "input names use 1-64 letters, digits, '_' or '-'")
            continue
        body = check.mapping(decl, path, _INPUT_KEYS)
        type_name = canonical_type(str(body.get("type", "string")))
        if type_name is None:
            check.add(f"{path}.type", f"unknown type {body.get('type')!r}")
            type_name = "any"
        default = body.get("default")
        if default is not None and (problem := type_error(default, type_name)):
            check.add(f"{path}.default", problem)
        required = body.get("required", False)
        if not isinstance(required, bool):
            check.add(f"{path}.required", "expected true or false")
            required = False
        specs[name] = InputSpec(
            type=type_name,
            default=default,
            required=required,
            description=check.text(body.get("description"), f"{path}.description"),
        )
    return specs


def _retry(check: _Checker, raw: Any, path: str) -> RetryPolicy:
    body = check.mapping(raw, path, _RETRY_KEYS)
    policy = RetryPolicy()
    maximum = body.get("max", 0)
    if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < 0:
        check.add(f"{path}.max", f"expected a whole number >= 0, got {maximum!r}")
        maximum = 0
    elif maximum > MAX_RETRIES:
        check.add(f"{path}.max", f"at most {MAX_RETRIES} retries")
        maximum = MAX_RETRIES
    backoff_raw = body.get("backoff")
    if isinstance(backoff_raw, str):  # shorthand: `backoff: exponential`
        backoff_raw = {"type": backoff_raw}
    backoff = check.mapping(backoff_raw, f"{path}.backoff", _BACKOFF_KEYS)
    kind = backoff.get("type", "fixed")
    if kind not in ("fixed", "exponential"):
        check.add(f"{path}.backoff.type", f"expected fixed or exponential, got {kind!r}")
        kind = "fixed"
    delay = check.duration(backoff.get("delay"), f"{path}.backoff.delay")
    max_delay = check.duration(backoff.get("max_delay"), f"{path}.backoff.max_delay")
    return RetryPolicy(
        max=maximum,
        backoff=kind,
        delay_ms=policy.delay_ms if delay is None else delay,
        max_delay_ms=policy.max_delay_ms if max_delay is None else max_delay,
    )


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    return False


def _task_inputs(check: _Checker, raw: Any, path: str, action: ActionSpec | None) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        check.add(path, f"expected a mapping of input name to value, got {_kind(raw)}")
        return {}
    inputs = {str(k): v for k, v in raw.items()}
    if action is None:
        return inputs
    declared = ", ".join(action.inputs) or "none"
    for name, value in inputs.items():
        decl = action.inputs.get(name)
        if decl is None:
            check.add(
                f"{path}.{name}",
                f"input {name!r} is not declared by {action.type} (declared: {declared})",
            )
            continue
        if value is None or is_whole_template(value):
            continue
        if _has_template(value) and decl.type in ("string", "any"):
            continue
        if problem := type_error(value, decl.type):
            check.add(f"{path}.{name}", problem)
        elif decl.enum is not None and value not in decl.enum:
            allowed = ", ".join(str(v) for v in decl.enum)
            check.add(f"{path}.{name}", f"must be one of {allowed}, got {value!r}")
    for name, decl in action.inputs.items():
        if decl.required and decl.default is None and inputs.get(name) is None:
            check.add(path, f"missing required input {name!r} of {action.type}")
    return inputs


def _check_templates(
    check: _Checker,
    tasks: list[tuple[str, TaskSpec]],
    inputs: Mapping[str, InputSpec],
    ancestors: Mapping[str, set[str]],
    readable: frozenset[str] = frozenset(),
) -> None:
    """Templates and ``if:`` paths of ``(path, task)`` pairs read declared inputs and upstreams.

    ``readable`` names tasks every one of them may read besides its ancestors (the failure
    handler reads any task of ``tasks``: they have all ended when it runs).
    """
    task_ids = {task.id for _, task in tasks} | readable
    for where, task in tasks:
        upstream = ancestors.get(task.id, set()) | readable
        templates = [
            *iter_templates(task.inputs, f"{where}.inputs"),
            *iter_templates(task.for_each, f"{where}.for_each"),
        ]
        for path, found in templates:
            if isinstance(found, str):
                check.add(path, found)
                continue
            ref: Reference = found
            if ref.kind in ("item", "index") and (
                task.for_each is None or path.startswith(f"{where}.for_each")
            ):
                check.add(
                    path,
                    f"{{{{ {ref.text} }}}}: only the inputs of a task with for_each have an item",
                )
            elif ref.kind == "inputs":
                _check_input_name(check, path, f"{{{{ {ref.text} }}}}", ref.name, inputs)
            elif ref.kind == "tasks" and ref.task_id is not None:
                _check_task_name(
                    check,
                    path,
                    f"{{{{ {ref.text} }}}}",
                    read_id=ref.task_id,
                    reader_id=task.id,
                    task_ids=task_ids,
                    upstream=upstream,
                )
        if task.condition is not None:
            _check_condition(
                check,
                f"{where}.if",
                task=task,
                inputs=inputs,
                task_ids=task_ids,
                upstream=upstream,
            )


def _check_input_name(
    check: _Checker, path: str, shown: str, name: str, inputs: Mapping[str, InputSpec]
) -> None:
    if name not in inputs:
        declared = ", ".join(inputs) or "none"
        check.add(path, f"{shown}: unknown workflow input {name!r} (declared: {declared})")


def _check_task_name(
    check: _Checker,
    path: str,
    shown: str,
    *,
    read_id: str,
    reader_id: str,
    task_ids: set[str] | frozenset[str],
    upstream: set[str] | frozenset[str],
) -> None:
    if read_id not in task_ids:
        check.add(path, f"{shown}: unknown task {read_id!r}")
    elif read_id == reader_id:
        check.add(path, f"{shown}: a task cannot read its own outputs")
    elif read_id not in upstream:
        check.add(
            path,
            f"{shown}: task {read_id!r} is not an upstream dependency of {reader_id!r}"
            " (add it to needs)",
        )


def _check_condition(
    check: _Checker,
    path: str,
    *,
    task: TaskSpec,
    inputs: Mapping[str, InputSpec],
    task_ids: set[str] | frozenset[str],
    upstream: set[str] | frozenset[str],
) -> None:
    assert task.condition is not None  # only called for tasks with a condition
    try:
        condition = parse_condition(task.condition)
    except ConditionError as exc:
        check.add(path, f"invalid condition: {exc}")
        return
    for parts in condition.paths:
        shown = ".".join(parts)
        if parts[0] == "inputs":
            _check_input_name(check, path, shown, parts[1], inputs)
        elif parts[0] != "trigger":  # trigger paths: _check_trigger_references
            _check_task_name(
                check,
                path,
                shown,
                read_id=parts[1],
                reader_id=task.id,
                task_ids=task_ids,
                upstream=upstream,
            )


def _check_trigger_references(
    check: _Checker, trigger: Trigger, tasks: Iterable[tuple[str, TaskSpec]]
) -> None:
    """``{{ trigger.body }}`` (and its delivery fields) exist only in a webhook workflow."""
    if trigger.type == "webhook":
        return
    for where, task in tasks:
        templates = [
            *iter_templates(task.inputs, f"{where}.inputs"),
            *iter_templates(task.for_each, f"{where}.for_each"),
        ]
        for path, found in templates:
            if isinstance(found, Reference) and found.kind == "trigger" and found.name != "type":
                check.add(
                    path,
                    f"{{{{ {found.text} }}}}: only a webhook workflow has a request"
                    f" (trigger type is {trigger.type})",
                )
        if task.condition is None:
            continue
        with contextlib.suppress(ConditionError):  # reported by _check_condition
            for parts in parse_condition(task.condition).paths:
                if parts[0] == "trigger" and parts[1] != "type":
                    check.add(
                        f"{where}.if",
                        f"{'.'.join(parts)}: only a webhook workflow has a request"
                        f" (trigger type is {trigger.type})",
                    )


def parse_workflow(
    text: str,
    registry: PluginRegistry,
    *,
    filename: str | None = None,
    limits: WorkflowLimits = DEFAULT_LIMITS,
) -> Workflow:
    """Parse and validate a workflow from YAML text.

    Args:
        text: the YAML source.
        registry: the plugins task types are checked against.
        filename: where the text came from (kept as ``source_path``; used in the message).
        limits: the configured ``limits:`` (task count; nesting is always bounded).

    Returns:
        The validated workflow.

    Raises:
        WorkflowInvalid: with every problem found, each with its path.
    """
    check = _Checker(registry)
    data = _load_document(text, check, filename, limits)
    top = _top_level(check, data)
    workflow_id = check.ident(top.get("id"), "id", "workflow")
    description = check.text(top.get("description"), "description")
    enabled = top.get("enabled", True)
    if not isinstance(enabled, bool):
        check.add("enabled", f"expected true or false, got {_kind(enabled)}")
        enabled = True
    trigger = _trigger(check, top.get("trigger"))
    inputs = _workflow_inputs(check, top.get("inputs"))
    timeout_ms = check.duration(top.get("timeout"), "timeout")
    tasks = _section(check, "tasks", _task_list(check, top.get("tasks")), inputs, {})
    main_ids = {task.id: task.position for _, task in tasks}
    handlers = _section(
        check, "on_failure", _handler_list(check, top.get("on_failure")), inputs, main_ids
    )
    _check_trigger_references(check, trigger, [*tasks, *handlers])
    check.problems.extend(literal_problems(workflow_id, tasks + handlers))
    if check.problems or workflow_id is None:
        raise WorkflowInvalid(sorted(check.problems, key=_file_order), filename=filename)
    return Workflow(
        id=workflow_id,
        description=description,
        enabled=enabled,
        trigger=trigger,
        inputs=inputs,
        timeout_ms=timeout_ms,
        tasks=tuple(task for _, task in tasks),
        source=text,
        source_path=filename,
        on_failure=tuple(task for _, task in handlers),
    )


def _section(
    check: _Checker,
    section: str,
    raw_tasks: list[Any],
    inputs: Mapping[str, InputSpec],
    main_ids: Mapping[str, int],
) -> list[tuple[str, TaskSpec]]:
    """The tasks of ``tasks`` or ``on_failure``, with their paths, dependencies resolved.

    ``main_ids`` (empty for ``tasks``) are the ids of ``tasks``: a handler may not reuse
    one, and may read any of them (they have all ended when the handler runs).
    """
    first_seen: dict[str, int] = {}
    drafts = [
        draft
        for index, raw in enumerate(raw_tasks)
        if (draft := _task(check, index, raw, first_seen, section=section, main_ids=main_ids))
        is not None
    ]
    # Dependencies are checked once every id is known (a task may need a later one).
    needs_by_task = _dependencies(check, drafts, first_seen, section)
    tasks = [
        (f"{section}[{draft.index}]", _with_needs(draft.spec, needs_by_task.get(draft.spec.id, ())))
        for draft in drafts
        if draft.spec is not None
    ]
    _check_templates(check, tasks, inputs, ancestors(needs_by_task), frozenset(main_ids))
    return tasks


def _handler_list(check: _Checker, raw: Any) -> list[Any]:
    """The ``on_failure:`` list (empty when absent; reported when not a list)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        check.add("on_failure", f"expected a list of tasks, got {_kind(raw)}")
        return []
    return raw


def _load_document(
    text: str, check: _Checker, filename: str | None, limits: WorkflowLimits
) -> dict[Any, Any]:
    """The YAML document as a mapping; raises at once when nothing more can be checked."""
    try:
        # Nesting and the task count from parser events, before the document is built:
        # building 20,000 tasks alone takes seconds, refusing them takes milliseconds.
        task_count = prescan(text, MAX_NESTING)
        if task_count is not None:
            check_task_count(task_count, limits, filename)
        data, problems = load_yaml(text, MAX_NESTING)
    except NestingTooDeep:
        raise too_deep(filename) from None
    if problems and data is None:
        raise WorkflowInvalid(problems, filename=filename)
    if expanded_size(data, MAX_EXPANDED_VALUES) > MAX_EXPANDED_VALUES:
        problem = Problem(
            "workflow",
            f"too large once YAML aliases are expanded (over {MAX_EXPANDED_VALUES:,} values)",
        )
        raise WorkflowInvalid([problem], filename=filename)
    check.problems.extend(problems)
    check.problems.extend(unencodable_strings(data))
    if not isinstance(data, dict):
        check.add("workflow", f"expected a mapping at the top level, got {_kind(data)}")
        raise WorkflowInvalid(check.problems, filename=filename)
    return data


def _top_level(check: _Checker, data: dict[Any, Any]) -> dict[str, Any]:
    """The top-level keys, with ``secrets:`` refused and ``x-`` anchor keys left out."""
    if "secrets" in data:
        check.add(
            "secrets",
            "a workflow may not declare secrets: reference them as {{ secrets.NAME }} and "
            "provide AUTOKESTRA_SECRET_NAME or the secrets file",
        )
    # `x-` keys are free for YAML anchors shared by tasks (as in docker-compose files).
    return check.mapping(
        {k: v for k, v in data.items() if k != "secrets" and not str(k).startswith("x-")},
        "",
        _TOP_KEYS,
    )


def _task_list(check: _Checker, raw: Any) -> list[Any]:
    """The ``tasks:`` list (empty after reporting when missing, empty or not a list)."""
    if raw is None:
        check.add("tasks", "missing required key: a workflow needs at least one task")
        return []
    if not isinstance(raw, list):
        check.add("tasks", f"expected a list of tasks, got {_kind(raw)}")
        return []
    if not raw:
        check.add("tasks", "a workflow needs at least one task")
    return raw


@dataclass(frozen=True)
class _TaskDraft:
    """A task as read from the file, before its dependencies are resolved.

    Attributes:
        index: its position in ``tasks``.
        task_id: its id when valid, else None.
        needs: ``(position, raw value)`` of each ``needs`` entry.
        spec: the task (without needs) when its id is valid, else None.
        section: ``tasks`` or ``on_failure``.
    """

    index: int
    task_id: str | None
    needs: list[tuple[int, Any]]
    spec: TaskSpec | None
    section: str = "tasks"


def _task(
    check: _Checker,
    index: int,
    raw: Any,
    first_seen: dict[str, int],
    *,
    section: str = "tasks",
    main_ids: Mapping[str, int] | None = None,
) -> _TaskDraft | None:
    """Check one entry of ``tasks`` (or ``on_failure``); None when it is not even a mapping.

    ``first_seen`` maps each task id to the index of its first task; a later task reusing
    an id is reported and loses its id (its own ``needs`` are still checked).
    """
    path = f"{section}[{index}]"
    body = check.mapping(raw, path, _TASK_KEYS)
    if not isinstance(raw, dict):
        return None
    task_id = check.ident(body.get("id"), f"{path}.id", "task")
    if task_id is not None:
        if task_id in first_seen:
            check.add(
                f"{path}.id",
                f"duplicate task id {task_id!r} (first at {section}[{first_seen[task_id]}])",
            )
            task_id = None
        elif main_ids and task_id in main_ids:
            check.add(
                f"{path}.id", f"duplicate task id {task_id!r} (first at tasks[{main_ids[task_id]}])"
            )
            task_id = None
        else:
            first_seen[task_id] = index
    type_str = body.get("type")
    action = _action(check, type_str, f"{path}.type")
    needs = _needs_items(check, body.get("needs"), f"{path}.needs")
    task_inputs = _task_inputs(check, body.get("inputs"), f"{path}.inputs", action)
    retry = _retry(check, body.get("retry"), f"{path}.retry")
    task_timeout = check.duration(body.get("timeout"), f"{path}.timeout")
    condition, run_if, allow_failure = _flow_keys(check, body, path)
    for_each, concurrency = _fan_out_keys(check, body, path)
    spec = None
    if task_id is not None:
        spec = TaskSpec(
            id=task_id,
            type=str(type_str),
            needs=(),
            inputs=task_inputs,
            retry=retry,
            timeout_ms=task_timeout,
            # Handlers are numbered after the tasks, so positions stay unique.
            position=index + (len(main_ids) if main_ids else 0),
            description=check.text(body.get("description"), f"{path}.description"),
            secret_inputs=frozenset(name for name, decl in action.inputs.items() if decl.secret)
            if action is not None
            else frozenset(),
            condition=condition,
            run_if=run_if,
            allow_failure=allow_failure,
            for_each=for_each,
            concurrency=concurrency,
        )
    return _TaskDraft(index, task_id, needs, spec, section)


def _fan_out_keys(check: _Checker, body: Mapping[str, Any], path: str) -> tuple[Any, int | None]:
    """``for_each`` (a list or one whole template) and ``concurrency`` of a task."""
    for_each = body.get("for_each")
    if for_each is not None and not isinstance(for_each, list) and not is_whole_template(for_each):
        check.add(
            f"{path}.for_each",
            "expected a list or one template giving a list, e.g. {{ tasks.list.outputs.items }}",
        )
        for_each = None
    concurrency = body.get("concurrency")
    if concurrency is not None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            check.add(f"{path}.concurrency", f"expected a whole number >= 1, got {concurrency!r}")
            concurrency = None
        elif body.get("for_each") is None:
            check.add(f"{path}.concurrency", "only a task with for_each takes a concurrency")
            concurrency = None
    return for_each, concurrency


def _flow_keys(
    check: _Checker, body: Mapping[str, Any], path: str
) -> tuple[str | None, RunIf, bool]:
    """``if``, ``run_if`` and ``allow_failure`` of a task (defaults after reporting)."""
    condition = body.get("if")
    if condition is not None:
        if isinstance(condition, bool):
            condition = "true" if condition else "false"
        elif not isinstance(condition, str):
            check.add(f"{path}.if", f"expected a condition string, got {_kind(condition)}")
            condition = None
        elif "{{" in condition:
            check.add(
                f"{path}.if",
                "write the condition without {{ }}: e.g. tasks.fetch.outputs.count > 0",
            )
            condition = None
    run_if = body.get("run_if", "all_success")
    if run_if not in RUN_IF_RULES:
        check.add(f"{path}.run_if", f"unknown rule {run_if!r} (use {', '.join(RUN_IF_RULES)})")
        run_if = "all_success"
    allow_failure = body.get("allow_failure", False)
    if not isinstance(allow_failure, bool):
        check.add(f"{path}.allow_failure", "expected true or false")
        allow_failure = False
    return condition, cast(RunIf, run_if), allow_failure


def _action(check: _Checker, type_str: Any, path: str) -> ActionSpec | None:
    """The plugin action a task type names, or None after reporting why not."""
    if type_str is None:
        check.add(path, "missing required task type (namespace/plugin.action)")
    elif not isinstance(type_str, str) or not TYPE_PATTERN.match(type_str):
        check.add(
            path,
            f"invalid task type {type_str!r}: expected namespace/plugin.action "
            "(lowercase letters, digits and '-')",
        )
    else:
        try:
            return check.registry.action(type_str)
        except UnknownAction as exc:
            check.add(path, str(exc))
    return None


def _needs_items(check: _Checker, raw: Any, path: str) -> list[tuple[int, Any]]:
    """``(position, value)`` of each ``needs`` entry; ``needs: build`` is one dependency."""
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, list):
        return list(enumerate(raw))
    if raw is not None:
        check.add(path, f"expected a list of task ids, got {_kind(raw)}")
    return []


def _dependencies(
    check: _Checker, drafts: list[_TaskDraft], first_seen: Mapping[str, int], section: str
) -> dict[str, tuple[str, ...]]:
    """Each task's valid dependencies (unknown, self, duplicate ones reported), cycles named."""
    needs_by_task: dict[str, tuple[str, ...]] = {}
    for draft in drafts:
        valid: list[str] = []
        for position, dep in draft.needs:
            where = f"{section}[{draft.index}].needs[{position}]"
            if not isinstance(dep, str):
                check.add(where, f"expected a task id, got {_kind(dep)}")
            elif dep not in first_seen:
                check.add(where, f"unknown task {dep!r}")
            elif dep == draft.task_id:
                check.add(where, "a task cannot need itself")
            elif dep in valid:
                check.add(where, f"duplicate dependency {dep!r}")
            else:
                valid.append(dep)
        if draft.task_id is not None:
            needs_by_task[draft.task_id] = tuple(valid)
    for cycle in find_cycles(needs_by_task):
        check.add(
            f"{section}[{first_seen[cycle[0]]}].needs", "dependency cycle: " + " -> ".join(cycle)
        )
    return needs_by_task


def _file_order(problem: Problem) -> tuple[int, int]:
    """Sort key keeping top-level problems first, then each task's problems together."""
    match = re.match(r"(tasks|on_failure)\[(\d+)\]", problem.path)
    if match is None:
        return (0, 0)
    return (1 if match.group(1) == "tasks" else 2, int(match.group(2)))


def _with_needs(task: TaskSpec, needs: tuple[str, ...]) -> TaskSpec:
    return dataclasses.replace(task, needs=needs)


def load_workflow(
    path: Path, registry: PluginRegistry, limits: WorkflowLimits = DEFAULT_LIMITS
) -> Workflow:
    """Read and validate a workflow file.

    Args:
        path: the YAML file.
        registry: the plugins task types are checked against.
        limits: the configured ``limits:`` (file size, task count).

    Returns:
        The validated workflow (``source_path`` is ``str(path)``).

    Raises:
        WorkflowInvalid: not a regular file, over a limit, unreadable, or every problem found.
    """
    text = read_workflow_text(path, limits)
    return parse_workflow(text, registry, filename=str(path), limits=limits)
