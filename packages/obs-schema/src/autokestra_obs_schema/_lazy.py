"""Package re-exports resolved on first use: a command that needs one name loads one module.

In a package ``__init__``, with the names also imported under ``TYPE_CHECKING`` for typing
(mypy then checks every name; it would accept any name if it saw the ``__getattr__``)::

    if not TYPE_CHECKING:
        __getattr__, __dir__ = lazy_exports(__name__, {"State": "._vocabulary"}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping


def lazy_exports(
    package: str, modules: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package whose names load on first use.

    Args:
        package: the package's ``__name__``.
        modules: each public name's module, relative to the package (``"._vocabulary"``).
        public: the package's ``__all__``.

    Returns:
        ``(__getattr__, __dir__)``: a resolved name is stored on the package, so the second
        use is a plain attribute read.
    """
    names = frozenset(public)

    def resolve(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def listing() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | names)

    return resolve, listing
