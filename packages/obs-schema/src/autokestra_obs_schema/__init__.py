"""autokestra_obs_schema: the one owner of Autokestra's SQLite database.

Connection policy, the single-writer transaction path, versioned migrations, storage
statistics and the primitives of the append-only audit table.

    from autokestra_obs_schema import open_reader, open_writer

    writer = open_writer(".autokestra/autokestra.db")
    with writer.transaction(durable=True) as conn:
        ...
"""

from ._audit_key import (
    AUDIT_KEY_BYTES,
    AUDIT_KEY_FILE,
    AuditKey,
    AuditKeyError,
    audit_key_path,
    load_audit_key,
    load_or_create_audit_key,
)
from ._connection import APPLICATION_ID, BUSY_TIMEOUT_MS, connect, file_mode
from ._digest import audit_digest, canonical_metadata, keyed_audit_digest, keyed_chain_head
from ._display import escape_control, format_bytes, format_duration_ms
from ._durations import MAX_DURATION_MS, parse_duration_ms
from ._errors import (
    DatabaseNotFound,
    RollbackWouldDeleteRows,
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
    rollback_impact,
    status,
)
from ._open import DEFAULT_DB_PATH, open_reader, open_writer
from ._process import pid_alive
from ._reserve import RESERVE_BYTES, StorageReserve
from ._stats import TABLE_SIZE_WARNING_BYTES, StorageStats, TableStats, storage_stats
from ._steps import LATEST_VERSION, RETENTION_GUARD_FUNCTION, STEPS, MigrationStep
from ._time import iso_from_ms, ms_from_iso, now_ms, uuid7_ms
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
    "AUDIT_KEY_BYTES",
    "AUDIT_KEY_FILE",
    "AuditEventType",
    "AuditKey",
    "AuditKeyError",
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
    "RESERVE_BYTES",
    "RETENTION_GUARD_FUNCTION",
    "Reason",
    "RollbackWouldDeleteRows",
    "SECRET_MASK",
    "STEPS",
    "SchemaVersionError",
    "State",
    "StorageBusy",
    "StorageError",
    "StorageFull",
    "StorageReserve",
    "StorageStats",
    "TABLE_SIZE_WARNING_BYTES",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_STATES",
    "TableStats",
    "UNSUCCESSFUL_STATES",
    "UnsafeDatabasePath",
    "Writer",
    "audit_digest",
    "audit_key_path",
    "canonical_metadata",
    "connect",
    "current_version",
    "escape_control",
    "file_mode",
    "format_bytes",
    "format_duration_ms",
    "iso_from_ms",
    "keyed_audit_digest",
    "keyed_chain_head",
    "load_audit_key",
    "load_or_create_audit_key",
    "migrate",
    "ms_from_iso",
    "now_ms",
    "open_reader",
    "open_writer",
    "parse_duration_ms",
    "pid_alive",
    "register_retention_guard",
    "require_current",
    "rollback",
    "rollback_impact",
    "status",
    "storage_stats",
    "translate_error",
    "uuid7_ms",
]
