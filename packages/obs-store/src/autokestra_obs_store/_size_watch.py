"""Size watch: warn when a table outgrows its threshold (DESIGN.md §4, default 1 GiB).

The server calls :func:`check_sizes` at start and after every retention run, and logs each
warning; the figures are real page counts (``dbstat``), not estimates.

    conn = connect(db_path, readonly=True)
    for warning in check_sizes(conn, db_path, threshold_bytes=512 * 1024**2):
        print(f"WARN {warning.message}")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import apsw

from autokestra_obs_schema import TABLE_SIZE_WARNING_BYTES, storage_stats


def _human_bytes(size: int) -> str:
    """Binary units, the way ``workflow db status`` prints them (``1.5 GiB``)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


@dataclass(frozen=True, slots=True)
class SizeWarning:
    """One table over the size threshold."""

    table: str
    bytes: int
    threshold_bytes: int

    @property
    def message(self) -> str:
        """The operator-facing text, with the remedy."""
        return (
            f"Table {self.table} is {_human_bytes(self.bytes)}, over the "
            f"{_human_bytes(self.threshold_bytes)} warning threshold: consider a shorter "
            "retention (AUTOKESTRA_LOG_RETENTION_DAYS) and `workflow logs cleanup`"
        )


def check_sizes(
    conn: apsw.Connection, db_path: Path, threshold_bytes: int = TABLE_SIZE_WARNING_BYTES
) -> list[SizeWarning]:
    """Measure every table (with its indexes) and return those over ``threshold_bytes``.

    Args:
        conn: a connection to the database (read-only is enough).
        db_path: the database file, for the WAL size measured alongside.
        threshold_bytes: size above which a table is reported.

    Returns:
        One warning per oversized table, largest first; empty when all is well.
    """
    if threshold_bytes < 1:
        raise ValueError("threshold_bytes must be positive")
    stats = storage_stats(conn, db_path)
    return [
        SizeWarning(table=name, bytes=stats.tables[name].bytes, threshold_bytes=threshold_bytes)
        for name in stats.oversized(threshold_bytes)
    ]
