"""autokestra_obs_cli: the ``workflow`` command (click + rich).

$ workflow --help
"""

from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing (and re with it) is a third of --version's cost.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._context import AppContext, pass_app
    from ._entry import main
    from ._errors import CliError, domain_errors
    from ._main import cli, execution

#: Each public name's module, imported on first use: the console script imports this
#: package for ``main``, and ``workflow --version`` must not pay for click and rich.
_MODULES = {
    "AppContext": "._context",
    "CliError": "._errors",
    "cli": "._main",
    "domain_errors": "._errors",
    "execution": "._main",
    "main": "._entry",
    "pass_app": "._context",
}

__all__ = [
    "AppContext",
    "CliError",
    "cli",
    "domain_errors",
    "execution",
    "main",
    "pass_app",
]


if not TYPE_CHECKING:  # hidden from mypy, which then checks each imported name

    def __getattr__(name: str) -> Any:
        module = _MODULES.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
