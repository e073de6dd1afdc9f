"""``workflow execution cancel ID``: request the cancellation of an execution, from any process.

The request is recorded in the database; the engine process running the execution notices it
within 250 ms, stops its tasks and records who asked and why.

    $ workflow execution cancel 0193a0c4-... --reason "wrong input"
"""

from __future__ import annotations

import getpass

import click
from rich.text import Text

from autokestra_engine import EngineConfig, EngineRuntime

from ._context import AppContext, pass_app
from ._errors import domain_errors


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (containers)
        return "unknown"


@click.command("cancel")
@click.argument("execution_id")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the audit trail).")
@pass_app
def cancel_command(app: AppContext, execution_id: str, reason: str | None) -> None:
    """Request cancellation of an execution; works from any process.

    The engine process running it stops its tasks within 250 ms and records who asked
    (`user:<login>`) and why. An execution queued with `run --detach` is cancelled at once.

    \b
    Example:
      workflow execution cancel 0193a0c4-5d7e-7c1a-9f00-8d2b6c1e4a10 --reason "wrong input"
    """
    by = f"user:{_login()}"
    # Only the database path: a cancel opens no plugins or secrets, and a bad AUTOKESTRA_*
    # setting of the engine must not stand between an operator and stopping a run.
    with EngineRuntime(EngineConfig(db_path=app.db_path)) as runtime, domain_errors():
        outcome = runtime.request_cancel(execution_id, by=by, reason=reason)
    if outcome.cancelled_now:
        app.out.print(Text(f"Execution {execution_id} CANCELLED (it was queued)"))
    elif outcome.recorded:
        app.out.print(Text(f"Cancellation of execution {execution_id} requested by {by}"))
    else:
        app.out.print(Text(f"Cancellation of execution {execution_id} was already requested"))
