"""Terminal colours of states and log levels, keyed by the vocabulary's enums.

docs/cli/inspect.md and docs/cli/logs.md name them; the console drops every style when colour
is off (a pipe, ``--no-color``, ``NO_COLOR``).

    Text(state, style=state_style(state))
"""

from __future__ import annotations

from autokestra_obs_schema import LogLevel, State

#: SUCCESS green, FAILED red, RUNNING yellow, WAITING cyan, PENDING dim, CANCELLED magenta.
#: Keyed by the enum members, looked up with states as stored (a StrEnum hashes as its value).
STATE_STYLES: dict[str, str] = {
    State.SUCCESS: "green",
    State.FAILED: "red",
    State.RUNNING: "yellow",
    State.WAITING: "cyan",
    State.PENDING: "dim",
    State.CANCELLED: "magenta",
}
#: ERROR red, WARN yellow, DEBUG dim; INFO in the default colour.
LEVEL_STYLES: dict[str, str] = {
    LogLevel.ERROR: "red",
    LogLevel.WARN: "yellow",
    LogLevel.DEBUG: "dim",
}


def state_style(state: str) -> str:
    """The style of a state as stored (a plain string), or no style for anything else."""
    return STATE_STYLES.get(state, "")
