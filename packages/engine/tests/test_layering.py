"""The engine's subpackages form floors: no module imports from a floor above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import autokestra_engine

ROOT = Path(autokestra_engine.__file__).parent

#: Floor of each part of the package (docs/architecture.md, "The engine's parts").
#: language and persistence share a floor but must not import each other.
FLOORS = {
    "_config": 0,
    "_secret_store": 0,
    "language": 1,
    "persistence": 1,
    "run": 2,
    "operations": 3,
    "_runtime": 4,
}


def _part(parts: list[str]) -> str:
    return parts[0] if parts else ""


def _imports() -> list[tuple[str, str, str]]:
    """(module path, its part, imported part) of every relative import between parts."""
    found = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "builtin_plugins" or rel == Path("__init__.py"):
            continue
        package = list(rel.parts[:-1])
        mine = _part(package) or rel.stem
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                target = _part(base + (node.module or "").split("."))
                if target != mine:
                    found.append((str(rel), mine, target))
    return found


class TestLayering:
    def test_every_part_has_a_floor(self) -> None:
        """A new subpackage or top-level module must be placed on a floor deliberately."""
        parts = {_part(list(p.relative_to(ROOT).parts)) for p in ROOT.rglob("*.py")}
        tops = {p.removesuffix(".py") for p in parts} - {"__init__", "builtin_plugins"}
        assert tops <= set(FLOORS)

    def test_no_import_points_up(self) -> None:
        """Each import goes to a lower floor; language and persistence ignore each other."""
        imports = _imports()
        assert imports, "the scan found no imports: it is broken"
        upward = [
            (module, target)
            for module, mine, target in imports
            if FLOORS[target] > FLOORS[mine] or {mine, target} == {"language", "persistence"}
        ]
        assert upward == []
