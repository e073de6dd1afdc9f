"""``workflow audit verify``: check executions' audit trails (hash chain and invariants).

The same check as ``workflow execution inspect ID --verify``, for one or more executions or
every execution in the database (``--all``), so an operator can sweep a copied database after
an incident. Exit 1 if any trail has a violation.

$ workflow audit verify --all
"""

from __future__ import annotations

import click

from autokestra_obs_schema import escape_control

from ._context import AppContext, pass_app
from ._errors import CliError


@click.group("audit")
def audit_group() -> None:
    """Audit trails: verify their integrity.

    \b
    Example:
      workflow audit verify 0190f3c2-8d1e-7c4a-9b2f-3e5d6a7b8c9d
      workflow audit verify --all
    """


@audit_group.command("verify")
@click.argument("execution_ids", metavar="[ID]...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Verify every execution in the database.")
@pass_app
def verify_command(app: AppContext, *, execution_ids: tuple[str, ...], every: bool) -> None:
    """Check audit hash chains and state invariants; exit 1 on any violation.

    Checks, per execution: each event links to the previous one and its hash matches its
    content; CREATED comes first; transitions are legal; exactly one terminal event; the
    execution's state equals the state its last event implies.

    \b
    Example:
      workflow audit verify 0190f3c2-8d1e-7c4a-9b2f-3e5d6a7b8c9d
      workflow audit verify --all
    """
    from rich.text import Text

    from autokestra_obs_schema import AutokestraError, ExecutionNotFound
    from autokestra_obs_store import (
        KEYED_STATUS,
        UNKEYED_STATUS,
        ExecutionInspector,
        all_execution_ids,
    )

    from ._settings import configured_retention_days

    if bool(execution_ids) == every:
        raise click.UsageError("Give one or more execution ids, or --all.")
    conn = app.reader()
    ids = list(execution_ids)
    if every:
        ids = all_execution_ids(conn)
    inspector = ExecutionInspector(conn)
    retention_days = configured_retention_days(app)
    broken = 0
    keyed = True
    for execution_id in ids:
        shown = escape_control(execution_id, keep_newlines=False)
        try:
            verdict = inspector.verify_trail(execution_id, retention_days=retention_days)
        except ExecutionNotFound as exc:
            if every:
                continue  # deleted between the listing and the check
            raise CliError(escape_control(str(exc), keep_newlines=False)) from exc
        except AutokestraError as exc:  # an unusable audit key
            raise CliError(str(exc)) from exc
        keyed = keyed and verdict.keyed
        violation = verdict.violation
        if violation is None:
            # A finished execution whose trail retention removed (whole) has no events left.
            purged = not inspector.audit_trail(execution_id)
            note = "  (no audit events: removed by retention)" if purged else ""
            app.out.print(Text(f"OK      {shown}{note}"))
        else:
            broken += 1
            message = escape_control(str(violation), keep_newlines=False)
            app.out.print(Text(f"BROKEN  {shown}  {message}", style="red"))
    # Say once what the verdicts are worth: with the key, content is authenticated; without
    # it (a copied db, an export) only the links were checked (DESIGN.md §6.8).
    if ids:
        app.out.print(Text(KEYED_STATUS if keyed else UNKEYED_STATUS))
    if broken:
        raise CliError(f"Audit verification failed for {broken} of {len(ids)} executions")
    if every:
        app.err.print(Text(f"{len(ids)} audit trails verified"))
