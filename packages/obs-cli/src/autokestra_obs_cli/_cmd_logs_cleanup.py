"""``workflow logs cleanup``: run log retention now.

Deletes the log rows and audit events strictly older than the cutoff that belong to
terminal executions (execution and task rows stay), in batches of 1000 rows per transaction.

$ workflow logs cleanup --older-than 7d --dry-run
Would delete 1200 log entries and 35 audit events (310.2 KiB would be freed)
"""

from __future__ import annotations

import time

import click

from autokestra_obs_schema import (
    format_bytes,
    format_duration_ms,
    iso_from_ms,
    now_ms,
    parse_duration_ms,
)
from autokestra_obs_store import PurgeReport, purge

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors

#: Seconds between progress lines on stderr (a short cleanup prints none).
PROGRESS_INTERVAL_S = 2.0
DAY_MS = 86_400_000


class _Progress:
    """Prints the running totals to stderr at most every ``PROGRESS_INTERVAL_S`` seconds."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.last = time.monotonic()

    def __call__(self, report: PurgeReport) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        self.app.err.print(
            f"... {report.log_rows} log entries and {report.audit_rows} audit events deleted "
            f"so far ({format_duration_ms(int(report.elapsed_ms))})"
        )


@click.group("logs")
def log_maintenance_group() -> None:
    """Logs across executions: full-text search and retention.

    \b
    Examples:
      workflow logs search connection refused --since 7d
      workflow logs cleanup --older-than 30d --dry-run
    """


@log_maintenance_group.command("cleanup")
@click.option(
    "--older-than",
    "older_than",
    metavar="DURATION",
    default=None,
    help="Delete entries strictly older than this (30s, 12h, 7d, 1h30m) "
    "[default: the retention window, AUTOKESTRA_LOG_RETENTION_DAYS or 30 days].",
)
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@pass_app
def logs_cleanup_command(app: AppContext, older_than: str | None, dry_run: bool) -> None:
    """Delete log entries and audit events of finished executions older than the cutoff.

    Rows of executions that are still PENDING, RUNNING or WAITING are never deleted; the
    execution and task rows always stay. Safe to interrupt: run it again to finish.

    \b
    Example:
      workflow logs cleanup --older-than 7d
    """
    if older_than is not None:
        try:
            window_ms = parse_duration_ms(older_than)
        except ValueError as exc:
            raise CliError("Invalid time format. Examples: 5m, 2h, 1d") from exc
        window = older_than
    else:
        # Imported here: the engine's config loader is heavy, and `logs search` (same group)
        # must not pay for it.
        from ._settings import configured_retention_days

        days = configured_retention_days(app)
        window_ms, window = days * DAY_MS, f"{days}d"
    if not app.db_path.exists():
        raise CliError(f"No database at {app.db_path}")
    cutoff = now_ms() - window_ms
    app.err.print(f"Cutoff {iso_from_ms(cutoff)} (entries older than {window})")
    with domain_errors():
        report = purge(app.writer(), cutoff, dry_run=dry_run, progress=_Progress(app))
    size = format_bytes(report.bytes_freed)
    if dry_run:
        app.out.print(
            f"Would delete {report.log_rows} log entries and {report.audit_rows} audit events "
            f"({size} would be freed)"
        )
    else:
        app.out.print(
            f"Deleted {report.log_rows} log entries and {report.audit_rows} audit events "
            f"({size} freed)"
        )


# `workflow logs search` lives in its own module; the `logs` group is defined here.
from ._cmd_logs_search import search_command  # noqa: E402 - registered after the group exists

log_maintenance_group.add_command(search_command)
