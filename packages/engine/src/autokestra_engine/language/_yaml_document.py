"""Safe YAML loading for workflow files: duplicate keys reported, alias bombs bounded.

PyYAML's safe loader silently keeps the last of two equal mapping keys and expands aliases
without limit; a workflow file deserves a problem for the first and a refusal for the
second ("billion laughs": a small file describing a huge tree).

    data, problems = load_yaml(text)      # problems: duplicate keys, or the syntax error
    if expanded_size(data, MAX_EXPANDED_VALUES) > MAX_EXPANDED_VALUES:
        ...
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from ._problems import Problem

#: Values a document may hold with its aliases expanded (a generous bound for real files).
MAX_EXPANDED_VALUES = 100_000


class NestingTooDeep(Exception):
    """The document nests collections deeper than the loader's ``max_depth``."""


class _Loader(yaml.SafeLoader):
    """Safe YAML loading that notes duplicate mapping keys instead of silently keeping one.

    It also bounds nesting while composing: PyYAML composes (and later constructs) one
    Python frame per level, so a deep document would otherwise end in a RecursionError that
    names no file, after seconds of work.
    """

    def __init__(self, stream: str, max_depth: int) -> None:
        super().__init__(stream)
        self.duplicates: list[Problem] = []
        self._max_depth = max_depth
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        # Only collections nest: a scalar leaf is not a level.
        nests = self.check_event(yaml.MappingStartEvent, yaml.SequenceStartEvent)
        self._depth += nests
        try:
            if self._depth > self._max_depth:
                raise NestingTooDeep
            return super().compose_node(parent, index)
        finally:
            self._depth -= nests

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` merge keys are resolved by the base class
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                mark = key_node.start_mark
                self.duplicates.append(
                    Problem(f"{mark.line + 1}:{mark.column + 1}", f"duplicate key {key!r}")
                )
            if isinstance(key, str | int | float | bool):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


#: libyaml's event parser when PyYAML was built with it: the pre-scan below then reads a
#: 1 MiB file in a fraction of the time the pure-Python loader needs to build it.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def prescan(text: str, max_depth: int) -> int | None:
    """Check nesting and count top-level ``tasks`` from parser events, building nothing.

    Returns:
        How many items the top-level ``tasks`` sequence has (None when there is none, or
        the text is not valid YAML: the full load reports that with its position).

    Raises:
        NestingTooDeep: collections nested deeper than ``max_depth`` levels.
    """
    # Each open collection: [is a mapping, next node is a key, last key, is `tasks`].
    stack: list[list[Any]] = []
    count: int | None = None
    try:
        for event in yaml.parse(text, Loader=_FAST_LOADER):
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue  # stream and document boundaries
            parent = stack[-1] if stack else None
            tasks_value = False
            if parent is not None and parent[0]:
                if parent[1]:
                    parent[2] = event.value if isinstance(event, yaml.ScalarEvent) else None
                else:
                    tasks_value = len(stack) == 1 and parent[2] == "tasks"
                parent[1] = not parent[1]
            elif parent is not None and parent[3]:
                count = (count or 0) + 1
            if isinstance(event, yaml.CollectionStartEvent):
                is_map = isinstance(event, yaml.MappingStartEvent)
                stack.append([is_map, True, None, tasks_value and not is_map])
                if tasks_value and not is_map:
                    count = 0
                if len(stack) > max_depth:
                    raise NestingTooDeep
    except yaml.YAMLError:
        return None
    return count


def load_yaml(text: str, max_depth: int = 64) -> tuple[Any, list[Problem]]:
    """The document and its duplicate-key problems, or (None, [the syntax error]).

    Raises:
        NestingTooDeep: collections nested deeper than ``max_depth`` levels.
    """
    try:
        # The reader checks every character when it is created: a control character such
        # as \x1f raises here, before any parsing.
        loader = _Loader(text, max_depth)
    except yaml.YAMLError as exc:
        return None, [Problem("yaml", str(exc).replace("\n", " "))]
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark is not None else "yaml"
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, [Problem(where, message or "invalid YAML")]
    except yaml.YAMLError as exc:
        return None, [Problem("yaml", str(exc))]
    finally:
        loader.dispose()
    return data, loader.duplicates


def expanded_size(value: Any, limit: int) -> int:
    """How many values the document holds once YAML aliases are expanded (stops past limit).

    Aliases make a small file describe a huge tree ("billion laughs"); walking such a tree
    would hang validation and every template pass. Shared nodes are sized once (memo by id).
    """
    memo: dict[int, int] = {}

    def size(node: Any) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        total = 1
        if isinstance(node, dict | list):
            # While its children are sized a node counts as over the limit: an alias to an
            # ancestor (`&a [*a]`) is an infinite document, not an infinite recursion.
            memo[key] = limit + 1
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            children = ()
        for child in children:
            total += size(child)
            if total > limit:
                break
        if isinstance(node, dict | list):
            memo[key] = total
        return total

    return size(value)
