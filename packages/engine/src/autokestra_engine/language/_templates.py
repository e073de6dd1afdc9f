"""A small, safe template resolver for task inputs: lookups only, never code.

The references: ``{{ inputs.NAME }}``, ``{{ tasks.<id>.outputs.<key> }}``,
``{{ secrets.NAME }}``, ``{{ execution.id }}`` and ``{{ trigger.body }}`` (the request body of
a webhook execution); inputs, outputs and the body may go deeper with more ``.key`` (or
``.0`` list index) parts. A value read this way is data: it is never resolved again, so a
body holding ``{{ secrets.X }}`` stays that text. A quoted literal, ``{{ '{{' }}``, stands for its
own text: it is how a literal ``{{`` is written (``docker ps --format '{{ '{{' }}.State}}'``
runs ``docker ps --format '{{.State}}'``; a lone ``}}`` needs no escape). A string that is
exactly one template keeps the value's JSON type (``"{{ inputs.count }}"`` gives ``3``); a
template inside a longer string is replaced by its text (strings as they are, anything else
as compact JSON).

    ctx = TemplateContext(inputs={"who": "ops"}, task_outputs={}, secrets=SecretStore(),
                          execution_id="0193...")
    resolved = resolve_task_inputs(task, action, ctx)
    resolved.values     # for the plugin
    resolved.masked     # for storage and logs: secrets as SECRET_MASK
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from autokestra_obs_schema import SECRET_MASK

from .._secret_store import SecretStore
from ._model import ActionSpec, TaskSpec
from ._problems import TemplateError

TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_WHOLE = re.compile(r"\{\{((?:(?!\}\}).)*)\}\}", re.DOTALL)
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: What ``{{ execution.KEY }}`` may read ("" is ``{{ execution }}``, the whole summary).
EXECUTION_KEYS = ("", "id", "workflow_id", "state", "failed_task_id", "message")
#: What ``{{ trigger.KEY }}`` may read; only ``body`` goes deeper.
TRIGGER_KEYS = ("type", "body", "delivery_id", "content_type")
_LITERAL = re.compile(r"""^(?:'([^']*)'|"([^"]*)")$""")

RefKind = Literal["inputs", "tasks", "secrets", "execution", "trigger", "literal", "item", "index"]


@dataclass(frozen=True)
class Reference:
    """One parsed ``{{ ... }}`` expression.

    Attributes:
        kind: which namespace it reads.
        name: input name, output key, secret name, ``id`` (for execution) or the text of
            a quoted literal.
        task_id: the task whose outputs it reads (``tasks`` only).
        rest: further keys/indexes below the value.
        text: the expression as written, stripped.
    """

    kind: RefKind
    name: str
    task_id: str | None = None
    rest: tuple[str, ...] = ()
    text: str = ""


def parse_reference(expression: str) -> Reference:
    """Parse the inside of ``{{ ... }}``.

    Raises:
        ValueError: not one of the four reference forms (message says which are).
    """
    text = expression.strip()
    literal = _LITERAL.match(text)
    if literal is not None:
        return Reference("literal", literal.group(1) or literal.group(2) or "", text=text)
    parts = text.split(".")
    if not text or any(not _SEGMENT.match(part) for part in parts):
        raise ValueError(f"invalid template {{{{ {text} }}}}: {_FORMS}")
    head = parts[0]
    if head == "inputs" and len(parts) >= 2:
        return Reference("inputs", parts[1], rest=tuple(parts[2:]), text=text)
    if head == "tasks" and len(parts) >= 4 and parts[2] == "outputs":
        return Reference("tasks", parts[3], task_id=parts[1], rest=tuple(parts[4:]), text=text)
    if head == "secrets" and len(parts) == 2:
        if not _SECRET_NAME.match(parts[1]):
            raise ValueError(f"invalid secret name {parts[1]!r} in {{{{ {text} }}}}")
        return Reference("secrets", parts[1], text=text)
    if head == "item" or (head == "index" and len(parts) == 1):  # inside a for_each task
        kind: RefKind = "item" if head == "item" else "index"
        return Reference(kind, head, rest=tuple(parts[1:]), text=text)
    return _run_reference(parts, text)


def _run_reference(parts: list[str], text: str) -> Reference:
    """``trigger.*`` (what started the execution) and ``execution.*`` (how it stands)."""
    head, key = parts[0], (parts[1:] or [""])[0]
    if head == "trigger" and key in TRIGGER_KEYS and (key == "body" or len(parts) == 2):
        return Reference("trigger", key, rest=tuple(parts[2:]), text=text)
    if head == "execution" and len(parts) <= 2 and key in EXECUTION_KEYS:
        return Reference("execution", key, text=text)
    raise ValueError(f"unknown template reference {{{{ {text} }}}}: {_FORMS}")


_FORMS = (
    "use inputs.<name>, tasks.<id>.outputs.<key>, secrets.<NAME>, execution.id (or"
    " execution.workflow_id, .state, .failed_task_id, .message), trigger.body (or"
    " trigger.type, .delivery_id, .content_type),"
    " item, index (in a for_each task) or a quoted literal such as '{{'"
)


def is_whole_template(value: Any) -> bool:
    """True when ``value`` is a string that is exactly one ``{{ ... }}`` (keeps its type)."""
    return isinstance(value, str) and _WHOLE.fullmatch(value) is not None


def iter_templates(value: Any, path: str) -> Iterator[tuple[str, str | Reference]]:
    """Every template inside ``value`` (walking lists and mappings), with its path.

    Yields ``(path, Reference)`` for a well-formed reference and ``(path, message)`` for a
    malformed one, so a validator can report every problem at once.
    """
    if isinstance(value, str):
        for match in TEMPLATE.finditer(value):
            try:
                yield path, parse_reference(match.group(1))
            except ValueError as exc:
                yield path, str(exc)
        if "{{" in TEMPLATE.sub("", value):
            yield path, "unterminated template: '{{' without '}}'"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from iter_templates(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_templates(item, f"{path}.{key}")


@dataclass(frozen=True)
class TemplateContext:
    """What templates of one task may read at run time.

    Attributes:
        inputs: the execution's bound input values.
        task_outputs: outputs of finished tasks, by task id.
        secrets: the secret store.
        execution_id: the running execution's id.
        iteration: ``(index, item)`` in an iteration of a ``for_each`` task, else None.
        execution: the execution's summary (``id``, ``workflow_id``, ``state``,
            ``failed_task_id``, ``message``); in the failure handler, how it failed.
        trigger: what started the execution: ``type``, and for a webhook ``body``,
            ``delivery_id`` and ``content_type`` (as stored, so masked).
    """

    inputs: dict[str, Any]
    task_outputs: dict[str, dict[str, Any]]
    secrets: SecretStore
    execution_id: str
    iteration: tuple[int, Any] | None = None
    execution: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None


@dataclass(frozen=True)
class ResolvedInputs:
    """A task's inputs ready to run.

    Attributes:
        values: real values, for the plugin's stdin only.
        masked: the same with every secret-derived value shown as ``SECRET_MASK``.
        secret_values: every secret string used, for the execution's redactor.
    """

    values: dict[str, Any]
    masked: dict[str, Any]
    secret_values: set[str] = field(default_factory=set)


def _descend(value: Any, rest: tuple[str, ...], ref: Reference) -> Any:
    for key in rest:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise TemplateError(f"{{{{ {ref.text} }}}}: no {key!r} in the referenced value")
    return value


def _lookup(ref: Reference, ctx: TemplateContext) -> tuple[Any, bool]:
    """(value, is_secret) of a reference at run time."""
    if ref.kind == "inputs":
        if ref.name not in ctx.inputs:
            raise TemplateError(f"{{{{ {ref.text} }}}}: input {ref.name!r} has no value")
        return _descend(ctx.inputs[ref.name], ref.rest, ref), False
    if ref.kind == "tasks":
        assert ref.task_id is not None  # set by parse_reference for this kind
        outputs = ctx.task_outputs.get(ref.task_id)
        if outputs is None:
            raise TemplateError(f"{{{{ {ref.text} }}}}: task {ref.task_id!r} has no outputs")
        if ref.name not in outputs:
            raise TemplateError(
                f"{{{{ {ref.text} }}}}: task {ref.task_id!r} has no output {ref.name!r}"
            )
        return _descend(outputs[ref.name], ref.rest, ref), False
    if ref.kind == "secrets":
        try:
            return ctx.secrets.get(ref.name), True
        except KeyError:
            raise TemplateError(
                f"unknown secret {ref.name!r} (set AUTOKESTRA_SECRET_{ref.name} "
                "or add it to the secrets file)"
            ) from None
    return _lookup_local(ref, ctx), False


def _lookup_local(ref: Reference, ctx: TemplateContext) -> Any:
    """The value of a literal, ``item``/``index``, ``trigger`` or ``execution`` reference.

    None of them is a secret.
    """
    if ref.kind == "literal":
        return ref.name
    if ref.kind == "trigger":
        trigger = ctx.trigger or {}
        if ref.name not in trigger:
            raise TemplateError(
                f"{{{{ {ref.text} }}}}: only an execution a webhook request started has a body"
            )
        return _descend(trigger[ref.name], ref.rest, ref)
    if ref.kind in ("item", "index"):
        if ctx.iteration is None:
            raise TemplateError(f"{{{{ {ref.text} }}}}: only a for_each task has an item")
        index, item = ctx.iteration
        return index if ref.kind == "index" else _descend(item, ref.rest, ref)
    if ref.name == "id":
        return ctx.execution_id
    summary = ctx.execution or {"id": ctx.execution_id}
    return copy.deepcopy(summary) if not ref.name else summary.get(ref.name)


def stringify(value: Any) -> str:
    """The text of a value embedded in a longer string: strings as is, others as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def resolve_value(value: Any, ctx: TemplateContext) -> tuple[Any, Any, set[str]]:
    """Resolve every template in ``value``.

    Returns:
        ``(real, masked, secret_values)``: the resolved value, the same with secrets masked,
        and the secret strings used.

    Raises:
        TemplateError: a reference has no value (unknown secret, missing output...).
    """
    if isinstance(value, list):
        reals, maskeds, secrets = [], [], set()
        for item in value:
            real, masked, used = resolve_value(item, ctx)
            reals.append(real)
            maskeds.append(masked)
            secrets |= used
        return reals, maskeds, secrets
    if isinstance(value, dict):
        real_map: dict[str, Any] = {}
        masked_map: dict[str, Any] = {}
        used_all: set[str] = set()
        for key, item in value.items():
            real, masked, used = resolve_value(item, ctx)
            real_map[key] = real
            masked_map[key] = masked
            used_all |= used
        return real_map, masked_map, used_all
    if not isinstance(value, str) or "{{" not in value:
        return value, value, set()
    whole = _WHOLE.fullmatch(value)
    if whole is not None:
        ref = _parse_or_raise(whole.group(1))
        found, is_secret = _lookup(ref, ctx)
        if is_secret:
            return found, SECRET_MASK, {found}
        return copy.deepcopy(found), copy.deepcopy(found), set()
    used_here: set[str] = set()
    real_parts: list[str] = []
    masked_parts: list[str] = []
    position = 0
    for match in TEMPLATE.finditer(value):
        literal = value[position : match.start()]
        real_parts.append(literal)
        masked_parts.append(literal)
        ref = _parse_or_raise(match.group(1))
        found, is_secret = _lookup(ref, ctx)
        text = stringify(found)
        real_parts.append(text)
        if is_secret:
            masked_parts.append(SECRET_MASK)
            used_here.add(text)
        else:
            masked_parts.append(text)
        position = match.end()
    real_parts.append(value[position:])
    masked_parts.append(value[position:])
    return "".join(real_parts), "".join(masked_parts), used_here


def _parse_or_raise(expression: str) -> Reference:
    try:
        return parse_reference(expression)
    except ValueError as exc:
        raise TemplateError(str(exc)) from exc


def secret_strings(value: Any) -> set[str]:
    """Every scalar of a value declared secret, as the text the redactor must hide."""
    if isinstance(value, dict):
        return set().union(*(secret_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(secret_strings(v) for v in value)) if value else set()
    if value is None or isinstance(value, bool):
        return set()
    text = stringify(value)
    return {text} if text else set()


def resolve_task_inputs(task: TaskSpec, action: ActionSpec, ctx: TemplateContext) -> ResolvedInputs:
    """Resolve a task's inputs for one attempt, filling the action's defaults.

    An input the action declares ``secret: true`` is masked as a whole and its value added
    to ``secret_values`` even when it did not come from ``{{ secrets.* }}``.

    Args:
        task: the task as declared.
        action: its action (declared inputs, defaults, secret flags).
        ctx: what the templates may read.

    Returns:
        The resolved inputs: real values, masked values and secret strings.

    Raises:
        TemplateError: a reference cannot be resolved; the message names the task and input.
    """
    values: dict[str, Any] = {}
    masked: dict[str, Any] = {}
    secrets: set[str] = set()
    for name, decl in action.inputs.items():
        if name not in task.inputs and decl.default is not None:
            values[name] = copy.deepcopy(decl.default)
            masked[name] = SECRET_MASK if decl.secret else copy.deepcopy(decl.default)
            if decl.secret:
                secrets |= secret_strings(decl.default)
    for name, raw in task.inputs.items():
        try:
            real, shown, used = resolve_value(raw, ctx)
        except TemplateError as exc:
            raise TemplateError(f"task {task.id!r} input {name!r}: {exc}") from exc
        declared = action.inputs.get(name)
        if declared is not None and declared.secret and real is not None:
            shown = SECRET_MASK
            used |= secret_strings(real)
        values[name] = real
        masked[name] = shown
        secrets |= used
    secrets.discard("")
    return ResolvedInputs(values=values, masked=masked, secret_values=secrets)
