"""Typed values: checking a value against a declared input type, and binding run inputs.

Workflow parameters (``inputs:`` of a workflow) and plugin action inputs share one small type
vocabulary (:data:`INPUT_TYPES`). ``workflow run --input KEY=VALUE`` gives text; it is
converted to the declared type here.

    bind_inputs(workflow, {"count": "3"})   # {"count": 3, "greeting": "hello"}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from autokestra_obs_schema import parse_duration_ms

from ._model import INPUT_TYPES, Workflow
from ._problems import Problem, WorkflowInvalid

#: Spellings accepted in files for the canonical type names.
TYPE_ALIASES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "map": "object",
    "dict": "object",
}

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def canonical_type(name: str) -> str | None:
    """The canonical type name for ``name`` (``map`` -> ``object``), or None if unknown."""
    name = TYPE_ALIASES.get(name, name)
    return name if name in INPUT_TYPES else None


def type_error(value: Any, type_name: str) -> str | None:
    """Why ``value`` is not of ``type_name``, or None when it is.

    Args:
        value: a YAML/JSON value.
        type_name: a canonical type name from :data:`INPUT_TYPES`.
    """
    ok: bool
    if type_name == "any":
        ok = True
    elif type_name == "string":
        ok = isinstance(value, str)
    elif type_name == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_name == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif type_name == "boolean":
        ok = isinstance(value, bool)
    elif type_name == "array":
        ok = isinstance(value, list)
    elif type_name == "object":
        ok = isinstance(value, dict)
    elif type_name == "duration":
        if not isinstance(value, str):
            return f"expected a duration such as 30s or 5m, got {_kind(value)}"
        try:
            parse_duration_ms(value)
        except ValueError as exc:
            return f"invalid duration: {exc}"
        return None
    else:
        return f"unknown type {type_name!r}"
    return None if ok else f"expected {type_name}, got {_kind(value)}"


#: JSON names of Python values, bool before int (a bool is an int).
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for python_type, name in _KINDS:
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def coerce_text(text: str, type_name: str) -> Any:
    """Convert command-line text to a value of ``type_name``.

    ``array`` and ``object`` take JSON; ``boolean`` takes true/false/yes/no/on/off/1/0;
    ``any`` takes JSON when the text parses as JSON, else the text itself.

    Raises:
        ValueError: the text does not convert.
    """
    coerce = _COERCERS.get(type_name, _coerce_any)
    return coerce(text, type_name)


def _coerce_checked(text: str, type_name: str) -> Any:
    problem = type_error(text, type_name)
    if problem:
        raise ValueError(problem)
    return text


def _coerce_integer(text: str, type_name: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None


def _coerce_number(text: str, type_name: str) -> Any:
    try:
        number = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    return int(number) if number.is_integer() and "." not in text else number


def _coerce_boolean(text: str, type_name: str) -> Any:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _coerce_json(text: str, type_name: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"expected a JSON {type_name}, got {text!r}") from None
    problem = type_error(value, type_name)
    if problem:
        raise ValueError(problem)
    return value


def _coerce_any(text: str, type_name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


_COERCERS: dict[str, Callable[[str, str], Any]] = {
    "string": _coerce_checked,
    "duration": _coerce_checked,
    "integer": _coerce_integer,
    "number": _coerce_number,
    "boolean": _coerce_boolean,
    "array": _coerce_json,
    "object": _coerce_json,
}


def bind_inputs(workflow: Workflow, given: Mapping[str, Any]) -> dict[str, Any]:
    """The execution's input values: given values (text is converted) plus defaults.

    Args:
        workflow: the validated workflow declaring its parameters.
        given: values by name; ``str`` values are converted to the declared type, others
            are checked against it.

    Returns:
        A value for every declared input that has one (given or default).

    Raises:
        WorkflowInvalid: an undeclared name, a value of the wrong type, or a required input
            without value; every problem at ``inputs.<name>``.
    """
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for name, raw in given.items():
        spec = workflow.inputs.get(name)
        path = f"inputs.{name}"
        if spec is None:
            declared = ", ".join(sorted(workflow.inputs)) or "none"
            problems.append(Problem(path, f"undeclared input (declared: {declared})"))
            continue
        if isinstance(raw, str):
            try:
                values[name] = coerce_text(raw, spec.type)
            except ValueError as exc:
                problems.append(Problem(path, str(exc)))
            continue
        problem = type_error(raw, spec.type)
        if problem:
            problems.append(Problem(path, problem))
        else:
            values[name] = raw
    for name, spec in workflow.inputs.items():
        if name in values or name in given:
            continue
        if spec.default is not None:
            values[name] = spec.default
        elif spec.required:
            problems.append(Problem(f"inputs.{name}", "required input has no value"))
    if problems:
        raise WorkflowInvalid(problems, filename=workflow.source_path)
    return values
