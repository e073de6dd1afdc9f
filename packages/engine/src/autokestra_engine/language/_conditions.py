"""Task conditions (``if:``): a tiny expression language, parsed once, never ``eval``-ed.

An expression compares paths and literals and combines the results with ``and``, ``or``,
``not`` and parentheses. Paths read the workflow inputs (``inputs.env``), an upstream task's
outputs (``tasks.fetch.outputs.count``, deeper keys or ``.0`` list indexes allowed), its
state (``tasks.fetch.state``, one of the state names) or a webhook request's body
(``trigger.body.ref``). Literals are numbers, quoted strings,
``true``, ``false`` and ``null``. Operators: ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` and
``in`` (membership in a list, a key of a mapping, a substring of a string). A path whose value
does not exist is ``null``; the result is true or false the way JSON values are truthy
(``null``, ``false``, ``0``, ``""``, ``[]`` and ``{}`` are false).

    condition = parse_condition("tasks.fetch.outputs.count > 0 and inputs.env == 'prod'")
    condition.evaluate(ConditionScope(inputs={"env": "prod"},
                                      outputs={"fetch": {"count": 3}}, states={}))  # True
    condition.paths   # (('tasks', 'fetch', 'outputs', 'count'), ('inputs', 'env'))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>-?\d+(?:\.\d+)?)
      | '(?P<single>[^']*)'
      | "(?P<double>[^"]*)"
      | (?P<op>==|!=|<=|>=|<|>|\(|\))
      | (?P<word>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)
    )""",
    re.VERBOSE,
)
_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=", "in")
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_LITERAL_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_MAX_LENGTH = 2000


class ConditionError(ValueError):
    """An expression that does not parse, or a comparison of values that cannot be ordered."""


@dataclass(frozen=True)
class ConditionScope:
    """What a condition may read when it is evaluated.

    Attributes:
        inputs: the execution's input values.
        outputs: outputs of finished tasks, by task id.
        states: states of finished tasks, by task id (as their names).
        trigger: what started the execution (``type``; a webhook's ``body``,
            ``delivery_id``, ``content_type``).
    """

    inputs: Mapping[str, Any]
    outputs: Mapping[str, Mapping[str, Any]]
    states: Mapping[str, str] = field(default_factory=dict)
    trigger: Mapping[str, Any] = field(default_factory=dict)


Node = Callable[[ConditionScope], Any]


@dataclass(frozen=True)
class Condition:
    """A parsed ``if:`` expression.

    Attributes:
        text: the expression as written.
        paths: every path it reads, split on dots, in order of appearance.
    """

    text: str
    paths: tuple[tuple[str, ...], ...]
    _root: Node

    def evaluate(self, scope: ConditionScope) -> bool:
        """True when the expression holds for ``scope``.

        Raises:
            ConditionError: values that cannot be compared (``'a' < 3``).
        """
        return _truthy(self._root(scope))


def parse_condition(text: str) -> Condition:
    """Parse an ``if:`` expression.

    Args:
        text: the expression.

    Returns:
        The condition, ready to evaluate many times.

    Raises:
        ConditionError: a syntax error, an unknown path form or an empty expression.
    """
    if not text.strip():
        raise ConditionError("empty condition")
    if len(text) > _MAX_LENGTH:
        raise ConditionError(f"condition longer than {_MAX_LENGTH} characters")
    parser = _Parser(_tokens(text))
    root = parser.expression()
    if parser.position < len(parser.tokens):
        raise ConditionError(f"unexpected {parser.tokens[parser.position][1]!r}")
    return Condition(text=text, paths=tuple(parser.paths), _root=root)


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ConditionError(f"unexpected character {text[position:].strip()[0]!r}")
        position = match.end()
        if match.group("number") is not None:
            number = match.group("number")
            tokens.append(("value", float(number) if "." in number else int(number)))
        elif match.group("single") is not None or match.group("double") is not None:
            quoted = match.group("single")
            tokens.append(("value", quoted if quoted is not None else match.group("double")))
        elif match.group("op") is not None:
            tokens.append(("op", match.group("op")))
        else:
            word = match.group("word")
            if word in _LITERAL_WORDS:
                tokens.append(("value", _LITERAL_WORDS[word]))
            elif word in _KEYWORDS:
                tokens.append(("op", word))
            else:
                tokens.append(("path", word))
    return tokens


class _Parser:
    """Recursive descent: or > and > not > comparison > operand."""

    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.paths: list[tuple[str, ...]] = []

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take_op(self, *ops: str) -> str | None:
        token = self._peek()
        if token is not None and token[0] == "op" and token[1] in ops:
            self.position += 1
            return str(token[1])
        return None

    def expression(self) -> Node:
        left = self._and()
        while self._take_op("or"):
            right = self._and()
            left = _or(left, right)
        return left

    def _and(self) -> Node:
        left = self._not()
        while self._take_op("and"):
            right = self._not()
            left = _and(left, right)
        return left

    def _not(self) -> Node:
        if self._take_op("not"):
            inner = self._not()
            return lambda scope: not _truthy(inner(scope))
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._operand()
        op = self._take_op(*_COMPARISONS)
        if op is None:
            return left
        right = self._operand()
        return _compare(op, left, right)

    def _operand(self) -> Node:
        token = self._peek()
        if token is None:
            raise ConditionError("incomplete condition")
        self.position += 1
        kind, value = token
        if kind == "value":
            return lambda _scope: value
        if kind == "path":
            parts = tuple(str(value).split("."))
            _check_path(parts)
            self.paths.append(parts)
            return lambda scope: _read(parts, scope)
        if value == "(":
            inner = self.expression()
            if not self._take_op(")"):
                raise ConditionError("missing ')'")
            return inner
        raise ConditionError(f"unexpected {value!r}")


def _or(left: Node, right: Node) -> Node:
    return lambda scope: _truthy(left(scope)) or _truthy(right(scope))


def _and(left: Node, right: Node) -> Node:
    return lambda scope: _truthy(left(scope)) and _truthy(right(scope))


_PATH_FORMS = (
    "use inputs.<name>, tasks.<id>.outputs.<key>, tasks.<id>.state or trigger.body.<key>"
    " (also trigger.type, trigger.delivery_id, trigger.content_type)"
)
#: What ``trigger.KEY`` may read; only ``body`` goes deeper (as in templates).
_TRIGGER_KEYS = ("type", "body", "delivery_id", "content_type")


def _check_path(parts: tuple[str, ...]) -> None:
    head = parts[0]
    if head == "inputs" and len(parts) >= 2:
        return
    key = parts[1] if head == "trigger" and len(parts) >= 2 else None
    if key in _TRIGGER_KEYS and (key == "body" or len(parts) == 2):
        return
    if head == "tasks" and len(parts) >= 4 and parts[2] == "outputs":
        return
    if head == "tasks" and len(parts) == 3 and parts[2] == "state":
        return
    raise ConditionError(f"unknown path {'.'.join(parts)!r}: {_PATH_FORMS}")


def _read(parts: tuple[str, ...], scope: ConditionScope) -> Any:
    value: Any
    if parts[0] == "inputs":
        value, rest = scope.inputs, parts[1:]
    elif parts[0] == "trigger":
        value, rest = scope.trigger, parts[1:]
    elif parts[2] == "state":
        return scope.states.get(parts[1])
    else:
        value, rest = scope.outputs.get(parts[1]), parts[3:]
    for key in rest:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _compare(op: str, left: Node, right: Node) -> Node:
    def compare(scope: ConditionScope) -> bool:
        a, b = left(scope), right(scope)
        if op == "==":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        if op == "in":
            if isinstance(b, (list, Mapping)):
                return a in b
            if isinstance(b, str) and isinstance(a, str):
                return a in b
            raise ConditionError(f"'in' needs a list, mapping or string on its right, got {b!r}")
        if not _orderable(a, b):
            raise ConditionError(f"cannot compare {a!r} {op} {b!r}")
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])

    return compare


def _orderable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def _truthy(value: Any) -> bool:
    return bool(value)
