"""autokestra_obs_schema: the one owner of Autokestra's SQLite database.

Connection policy, the single-writer transaction path, versioned migrations, storage
statistics and the primitives of the append-only audit table.

    from autokestra_obs_schema import open_reader, open_writer

    writer = open_writer(".autokestra/autokestra.db")
    with writer.transaction(durable=True) as conn:
        ...
"""

from ._connection import APPLICATION_ID, BUSY_TIMEOUT_MS, connect, file_mode
from ._digest import audit_digest, canonical_metadata
from ._durations import MAX_DURATION_MS, parse_duration_ms
from ._errors import (
    DatabaseNotFound,
    SchemaVersionError,
    StorageBusy,
    StorageError,
    StorageFull,
    UnsafeDatabasePath,
)
from ._guard import register_retention_guard
from ._migrations import (
    MigrationStatus,
    current_version,
    migrate,
    require_current,
    rollback,
    status,
)
from ._open import DEFAULT_DB_PATH, open_reader, open_writer
from ._stats import TABLE_SIZE_WARNING_BYTES, StorageStats, TableStats, storage_stats
from ._steps import LATEST_VERSION, RETENTION_GUARD_FUNCTION, STEPS, MigrationStep
from ._time import iso_from_ms, ms_from_iso, now_ms
from ._vocabulary import (
    INVALID_LEVEL_MESSAGE,
    SECRET_MASK,
    TERMINAL_EVENT_TYPES,
    TERMINAL_STATES,
    UNSUCCESSFUL_STATES,
    AuditEventType,
    AutokestraError,
    ExecutionNotFound,
    LogLevel,
    Reason,
    State,
)
from ._writer import Writer, translate_error

__all__ = [
    "APPLICATION_ID",
    "AuditEventType",
    "AutokestraError",
    "BUSY_TIMEOUT_MS",
    "DEFAULT_DB_PATH",
    "DatabaseNotFound",
    "ExecutionNotFound",
    "INVALID_LEVEL_MESSAGE",
    "LATEST_VERSION",
    "LogLevel",
    "MAX_DURATION_MS",
    "MigrationStatus",
    "MigrationStep",
    "RETENTION_GUARD_FUNCTION",
    "Reason",
    "SECRET_MASK",
    "STEPS",
    "SchemaVersionError",
    "State",
    "StorageBusy",
    "StorageError",
    "StorageFull",
    "StorageStats",
    "TABLE_SIZE_WARNING_BYTES",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_STATES",
    "TableStats",
    "UNSUCCESSFUL_STATES",
    "UnsafeDatabasePath",
    "Writer",
    "audit_digest",
    "canonical_metadata",
    "connect",
    "current_version",
    "file_mode",
    "iso_from_ms",
    "migrate",
    "ms_from_iso",
    "now_ms",
    "open_reader",
    "open_writer",
    "parse_duration_ms",
    "register_retention_guard",
    "require_current",
    "rollback",
    "status",
    "storage_stats",
    "translate_error",
]
