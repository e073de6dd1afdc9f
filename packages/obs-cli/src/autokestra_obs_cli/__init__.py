"""autokestra_obs_cli: the ``workflow`` command (click + rich).

$ workflow --help
"""

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors
from ._escape import escape_control
from ._format import format_bytes, format_duration_ms
from ._main import cli, execution, main

__all__ = [
    "AppContext",
    "CliError",
    "cli",
    "domain_errors",
    "escape_control",
    "execution",
    "format_bytes",
    "format_duration_ms",
    "main",
    "pass_app",
]
