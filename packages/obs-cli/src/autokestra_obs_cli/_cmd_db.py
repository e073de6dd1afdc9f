"""``workflow db``: schema migrations and storage status.

$ workflow db migrate
$ workflow db status --json
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from autokestra_obs_schema import (
    TABLE_SIZE_WARNING_BYTES,
    Writer,
    connect,
    format_bytes,
    migrate,
    rollback,
    status,
    storage_stats,
)

from ._context import AppContext, pass_app
from ._errors import CliError, domain_errors
from ._types import COUNT


@click.group("db")
def db_group() -> None:
    """Database schema and storage.

    \b
    Example:
      workflow db status
    """


@db_group.command("migrate")
@pass_app
def db_migrate(app: AppContext) -> None:
    """Apply every pending schema migration (creates the database if missing).

    \b
    Example:
      workflow --db ./autokestra.db db migrate
    """
    with domain_errors():
        writer = Writer(app.db_path)
        try:
            with writer.locked() as conn:
                applied = migrate(conn)
                version = status(conn).current
        finally:
            writer.close()
    if not applied:
        app.out.print(f"Database {app.db_path} is up to date (schema version {version})")
        return
    for step in applied:
        app.out.print(f"Applied {step.version:04d}_{step.name}")
    app.out.print(f"Database {app.db_path} is at schema version {version}")


@db_group.command("rollback")
@click.option(
    "--steps",
    default=1,
    show_default=True,
    type=COUNT,
    help="How many migrations to undo, newest first.",
)
@click.option("--yes", is_flag=True, help="Confirm a rollback that deletes rows.")
@pass_app
def db_rollback(app: AppContext, steps: int, yes: bool) -> None:
    """Undo the newest schema migrations (their tables and data are dropped).

    More steps than are applied is an error; a rollback that would delete rows changes
    nothing unless `--yes` is given (it says how many rows, from which tables).

    \b
    Example:
      workflow db rollback --steps 2
      workflow db rollback --steps 1 --yes
    """
    if not app.db_path.exists():
        raise CliError(f"No database at {app.db_path}")
    with domain_errors():
        writer = Writer(app.db_path)
        try:
            with writer.locked() as conn:
                undone = rollback(conn, steps=steps, confirm_data_loss=yes)
                version = status(conn).current
        finally:
            writer.close()
    for step in undone:
        app.out.print(f"Rolled back {step.version:04d}_{step.name}")
    app.out.print(f"Database {app.db_path} is at schema version {version}")


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--size-warning",
    default=None,
    type=COUNT,
    help="Warn when a table (with its indexes) exceeds this many bytes "
    f"[default: logging.table_size_warning, else {TABLE_SIZE_WARNING_BYTES}].",
)
@pass_app
def db_status(app: AppContext, as_json: bool, size_warning: int | None) -> None:
    """Show the schema version, pending migrations, and rows and bytes per table.

    \b
    Example:
      workflow db status --json
    """
    if size_warning is None:
        # Imported here: the engine's config loader is heavy and only this branch needs it.
        from ._settings import configured_size_warning

        size_warning = configured_size_warning(app)
    with domain_errors():
        conn = connect(app.db_path, readonly=True)
        try:
            report = status(conn)
            stats = storage_stats(conn, app.db_path)
        finally:
            conn.close()
    warnings = [
        f"Table {name} is {format_bytes(stats.tables[name].bytes)}, over the "
        f"{format_bytes(size_warning)} warning threshold: consider a shorter retention "
        f"(AUTOKESTRA_LOG_RETENTION_DAYS) and `workflow logs cleanup`"
        for name in stats.oversized(size_warning)
    ]
    if as_json:
        payload = {
            "schema_version": report.current,
            "latest_version": report.latest,
            "pending_migrations": list(report.pending),
            "tables": {
                name: {"rows": s.rows, "bytes": s.bytes} for name, s in stats.tables.items()
            },
            "wal_bytes": stats.wal_bytes,
            "file_bytes": stats.file_bytes,
            "warnings": warnings,
        }
        click.echo(json.dumps(payload, ensure_ascii=True, indent=2))
    else:
        app.out.print(f"Database        {app.db_path}")
        app.out.print(f"Schema version  {report.current} (latest {report.latest})")
        pending = ", ".join(report.pending) if report.pending else "none"
        app.out.print(f"Pending         {pending}")
        table = Table(box=None, pad_edge=False, show_edge=False)
        table.add_column("table")
        table.add_column("rows", justify="right")
        table.add_column("bytes", justify="right")
        for name, s in stats.tables.items():
            table.add_row(name, f"{s.rows:,}", format_bytes(s.bytes))
        app.out.print(table)
        app.out.print(f"WAL             {format_bytes(stats.wal_bytes)}")
    for warning in warnings:
        app.err.print(f"Warning: {warning}")
