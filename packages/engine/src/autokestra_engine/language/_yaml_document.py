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


class _Loader(yaml.SafeLoader):
    """Safe YAML loading that notes duplicate mapping keys instead of silently keeping one."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[Problem] = []

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


def load_yaml(text: str) -> tuple[Any, list[Problem]]:
    """The document and its duplicate-key problems, or (None, [the syntax error])."""
    loader = _Loader(text)
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
