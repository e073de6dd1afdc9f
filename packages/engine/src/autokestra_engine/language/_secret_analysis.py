"""Secret analysis of a workflow: which secrets it reads, which values are secret from the
start, and the stored form of an execution (its source and inputs with those values masked).

A workflow reads secrets through ``{{ secrets.NAME }}``; a ``secret: true`` task input makes
its value secret however it is given (a literal in the file, a workflow input read through
``{{ inputs.NAME }}``, the action's default). Everything stored about an execution (its
``workflow_source`` and ``inputs``) is computed here, so the database never holds such a
value in clear, whatever YAML quoting the file uses.

    declared = secret_input_values(workflow, inputs)
    stored = stored_form(workflow, inputs, declared, redactor)
    stored.source    # the YAML with every secret scalar written as "***SECRET***"
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from autokestra_obs_collector import Redactor
from autokestra_obs_schema import SECRET_MASK

from .._secret_store import SecretStore
from ._model import Workflow
from ._problems import Problem, WorkflowInvalid
from ._templates import Reference, iter_templates, secret_strings


def secret_references(workflow: Workflow) -> dict[str, list[str]]:
    """Every ``{{ secrets.NAME }}`` used by the workflow: name -> paths where it appears.

    The webhook trigger's signing secret counts (path ``trigger.secret``): its value must
    exist and is masked in what the execution stores, like any secret a task reads.
    """
    found: dict[str, list[str]] = {}
    if workflow.trigger.secret is not None:
        found[workflow.trigger.secret] = ["trigger.secret"]
    for task in workflow.all_tasks:
        for path, ref in iter_templates(task.inputs, f"tasks[{task.position}].inputs"):
            if isinstance(ref, Reference) and ref.kind == "secrets":
                found.setdefault(ref.name, []).append(path)
    return found


def check_secrets(workflow: Workflow, secrets: SecretStore) -> None:
    """Fail before running when a referenced secret has no value.

    Raises:
        WorkflowInvalid: one problem per use of an unknown secret.
    """
    problems = [
        Problem(
            path,
            f"unknown secret {name!r}: set AUTOKESTRA_SECRET_{name} or add {name} to the "
            "secrets file",
        )
        for name, paths in secret_references(workflow).items()
        if name not in secrets
        for path in paths
    ]
    if problems:
        raise WorkflowInvalid(problems, filename=workflow.source_path)


@dataclass(frozen=True)
class SecretInputValues:
    """Values of ``secret: true`` task inputs that are known before any task runs.

    A literal in the workflow file and a workflow input's value that a secret task input
    takes through ``{{ inputs.NAME }}`` are secrets from the start: the execution's redactor
    gets them before its first task, and its stored source and inputs hide them.

    Attributes:
        values: the secret strings, for the execution's redactor.
        literal_paths: task-input paths holding a literal value in the workflow file.
        input_paths: ``(path, input name)`` for each secret task input reading a workflow
            input that has a value (given or default).
    """

    values: frozenset[str]
    literal_paths: tuple[str, ...]
    input_paths: tuple[tuple[str, str], ...]

    @property
    def input_names(self) -> frozenset[str]:
        """The workflow inputs whose value feeds a secret task input."""
        return frozenset(name for _, name in self.input_paths)

    def __bool__(self) -> bool:
        return bool(self.literal_paths or self.input_paths)

    def refusal(self, verb: str) -> str:
        """One line naming every offending path and the fix (``verb``: ``queued``...)."""
        parts: list[str] = []
        if self.literal_paths:
            parts.append(
                f"{', '.join(self.literal_paths)}: a literal value for a secret input cannot"
                f" be {verb}; use {{{{ secrets.NAME }}}}"
            )
        for path, name in self.input_paths:
            parts.append(
                f"{path}: the value of input {name!r} given to a secret input cannot be"
                f" {verb}; use {{{{ secrets.NAME }}}}"
            )
        return "; ".join(parts)


def _descend_or_whole(value: Any, rest: tuple[str, ...]) -> Any:
    found = value
    for key in rest:
        if isinstance(found, dict) and key in found:
            found = found[key]
        elif isinstance(found, list) and key.isdigit() and int(key) < len(found):
            found = found[int(key)]
        else:
            return value
    return found


_NODE_PROPERTIES = re.compile(r"^(?:[&!]\S*\s+)*")


def mask_scalars(source: str, values: Iterable[str], mask: str) -> str:
    """``source`` with every YAML scalar whose text is one of ``values`` written as ``mask``.

    Finds a value however the file writes it (plain, single- or double-quoted with escapes,
    a ``|``/``>`` block, an anchor's target) and whatever its length; the result is still
    valid YAML. Text that does not parse comes back unchanged.
    """
    wanted = set(values)
    if not wanted:
        return source
    try:
        root = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return source
    spans: dict[int, int] = {}
    stack: list[yaml.Node] = [] if root is None else [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias: the same node again
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.value in wanted:
                spans[node.start_mark.index] = node.end_mark.index
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, item in node.value:
                stack.extend((key, item))
    text = source
    for start in sorted(spans, reverse=True):
        end = spans[start]
        written = text[start:end]
        keep = _NODE_PROPERTIES.match(written)
        prefix = keep.group(0) if keep else ""
        newlines = len(written) - len(written.rstrip("\n"))
        replacement = f"{prefix}{json.dumps(mask)}" + "\n" * newlines
        text = text[:start] + replacement + text[end:]
    return text


def secret_input_values(workflow: Workflow, inputs: Mapping[str, Any]) -> SecretInputValues:
    """The secret values a workflow's file and ``inputs`` give to ``secret: true`` task inputs.

    Args:
        workflow: the validated workflow (its tasks know their secret inputs).
        inputs: the execution's bound input values.

    Returns:
        The values with the paths they were found at; a template inside a secret input
        contributes the workflow inputs it reads (whole or embedded), not its literal text.
    """
    values: set[str] = set()
    literal_paths: list[str] = []
    input_paths: dict[tuple[str, str], None] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str) and "{{" in value:
            for _, ref in iter_templates(value, path):
                if isinstance(ref, Reference) and ref.kind == "inputs" and ref.name in inputs:
                    values.update(secret_strings(_descend_or_whole(inputs[ref.name], ref.rest)))
                    input_paths[(path, ref.name)] = None
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif found := secret_strings(value):
            values.update(found)
            literal_paths.append(path)

    for task in workflow.all_tasks:
        for name in sorted(task.secret_inputs):
            if name in task.inputs:
                walk(task.inputs[name], f"tasks[{task.position}].inputs.{name}")
    values.discard("")
    return SecretInputValues(frozenset(values), tuple(literal_paths), tuple(input_paths))


@dataclass(frozen=True)
class StoredForm:
    """What is stored about a new execution: its workflow source and inputs, secrets masked.

    Attributes:
        source: the workflow YAML with every secret scalar masked, then every other
            occurrence of a secret value of the execution redacted as text.
        inputs: the bound inputs; one read by a secret task input is masked as a whole, any
            other has the execution's secret values redacted.
    """

    source: str
    inputs: dict[str, Any]

    def changed(self, workflow: Workflow, inputs: Mapping[str, Any]) -> list[str]:
        """What masking changed: ``workflow file`` first, then ``inputs.<name>`` in order."""
        changed = [f"inputs.{n}" for n in inputs if self.inputs[n] != inputs[n]]
        if self.source != workflow.source:
            changed.insert(0, "workflow file")
        return changed


def stored_form(
    workflow: Workflow,
    inputs: Mapping[str, Any],
    declared: SecretInputValues,
    redactor: Redactor,
) -> StoredForm:
    """The source and inputs to store for an execution of ``workflow`` with ``inputs``.

    Args:
        workflow: the validated workflow.
        inputs: the execution's bound input values.
        declared: :func:`secret_input_values` of the two.
        redactor: hides every secret value of the execution (``{{ secrets.* }}`` values,
            declared values, secret defaults).

    Returns:
        The masked source and inputs.
    """
    masked_inputs = {
        name: SECRET_MASK if name in declared.input_names else redactor.redact_value(value)
        for name, value in inputs.items()
    }
    # Every scalar the file gives as a secret value, however it is written; then any other
    # occurrence of any secret of the execution as text.
    source = redactor.redact(mask_scalars(workflow.source, declared.values, SECRET_MASK))
    return StoredForm(source=source, inputs=masked_inputs)
