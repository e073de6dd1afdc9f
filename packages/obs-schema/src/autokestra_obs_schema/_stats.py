"""Storage statistics: real row counts and page bytes per table, and the WAL size.

stats = storage_stats(conn, Path(".autokestra/autokestra.db"))
stats.tables["execution_logs"].bytes
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import apsw

#: Tables reported by ``workflow db status``, each with its fixed count query (table names
#: cannot be bound parameters, and no SQL is built by formatting).
_COUNT_QUERIES: dict[str, str] = {
    "executions": "SELECT COUNT(*) FROM executions",
    "task_runs": "SELECT COUNT(*) FROM task_runs",
    "task_attempts": "SELECT COUNT(*) FROM task_attempts",
    "execution_logs": "SELECT COUNT(*) FROM execution_logs",
    "execution_audit_events": "SELECT COUNT(*) FROM execution_audit_events",
    "workflows": "SELECT COUNT(*) FROM workflows",
    # The full-text index: one entry per log row it covers (read through its content table).
    "execution_logs_fts": "SELECT COUNT(*) FROM execution_logs_fts",
}
#: The b-trees FTS5 keeps for the full-text index (its "shadow" tables), whose bytes are
#: the index's: the virtual table itself has no pages.
_SEARCH_INDEX_SHADOWS = {
    f"execution_logs_fts_{part}": "execution_logs_fts"
    for part in ("data", "idx", "config", "docsize", "content")
}

#: Bytes of every b-tree that belongs to a table: the table itself and its indexes.
_BYTES_QUERY = """
SELECT s.tbl_name, SUM(d.pgsize)
FROM dbstat AS d JOIN sqlite_schema AS s ON s.name = d.name
WHERE d.aggregate = TRUE
GROUP BY s.tbl_name
"""

#: Default size above which a table is reported as too large (DESIGN.md §4: 1 GB).
TABLE_SIZE_WARNING_BYTES = 1024**3


@dataclass(frozen=True, slots=True)
class TableStats:
    """Rows and bytes (table plus its indexes, from real page counts) of one table."""

    rows: int
    bytes: int


@dataclass(frozen=True, slots=True)
class StorageStats:
    """Sizes of the database's tables and of its write-ahead log."""

    tables: dict[str, TableStats]
    wal_bytes: int
    file_bytes: int

    def oversized(self, threshold_bytes: int = TABLE_SIZE_WARNING_BYTES) -> list[str]:
        """Names of the tables whose bytes exceed ``threshold_bytes``, largest first."""
        big = [(s.bytes, name) for name, s in self.tables.items() if s.bytes > threshold_bytes]
        return [name for _, name in sorted(big, reverse=True)]


def _existing_tables(conn: apsw.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


def storage_stats(conn: apsw.Connection, db_path: Path) -> StorageStats:
    """Measure the tables that exist in the database (a partly migrated one too)."""
    present = _existing_tables(conn)
    sizes: dict[str, int] = {}
    for name, size in conn.execute(_BYTES_QUERY).fetchall():
        owner = _SEARCH_INDEX_SHADOWS.get(str(name), str(name))
        sizes[owner] = sizes.get(owner, 0) + (size if isinstance(size, int) else 0)
    tables: dict[str, TableStats] = {}
    for name, query in _COUNT_QUERIES.items():
        if name in present:
            count = conn.execute(query).fetchall()[0][0]
            rows = count if isinstance(count, int) else 0
            tables[name] = TableStats(rows=rows, bytes=sizes.get(name, 0))
    wal = Path(f"{db_path}-wal")
    return StorageStats(
        tables=tables,
        wal_bytes=wal.stat().st_size if wal.exists() else 0,
        file_bytes=db_path.stat().st_size if db_path.exists() else 0,
    )
