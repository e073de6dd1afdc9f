"""The dependency graph of a workflow's tasks: transitive upstreams and named cycles.

The parser reports each cycle by name and checks that a template only reads the outputs
of an upstream task; both work on ``task id -> ids it needs``.

    find_cycles({"a": ("b",), "b": ("a",)})   # [["a", "b", "a"]]
    ancestors({"a": (), "b": ("a",)})        # {"a": set(), "b": {"a"}}
"""

from __future__ import annotations

from collections.abc import Mapping


def ancestors(needs: Mapping[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Every task's transitive dependencies (cycles tolerated)."""
    result: dict[str, set[str]] = {}
    for task in needs:
        seen: set[str] = set()
        stack = list(needs[task])
        while stack:
            item = stack.pop()
            if item not in seen and item in needs:
                seen.add(item)
                stack.extend(needs[item])
        result[task] = seen
    return result


def find_cycles(needs: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Each dependency cycle once, as the task ids along it (first id repeated at the end).

    Self-dependencies are left out (they are reported on their own). Deterministic: tasks
    are visited in mapping order.
    """
    order = {task: index for index, task in enumerate(needs)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()

    def visit(task: str, path: list[str]) -> None:
        state[task] = 1
        path.append(task)
        for dep in needs.get(task, ()):
            if dep == task or dep not in needs:
                continue
            if state.get(dep) == 1:
                loop = path[path.index(dep) :]
                members = frozenset(loop)
                if members not in seen_sets:
                    seen_sets.add(members)
                    start = min(loop, key=order.__getitem__)
                    at = loop.index(start)
                    # Written in dependency order: a needs b needs c needs a.
                    ordered = loop[at:] + loop[:at]
                    cycles.append([*ordered, ordered[0]])
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[task] = 2

    for task in needs:
        if task not in state:
            visit(task, [])
    return cycles
