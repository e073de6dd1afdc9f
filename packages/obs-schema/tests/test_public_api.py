"""Pins the public API: changing it must be a deliberate act."""

from __future__ import annotations

import autokestra_obs_schema


class TestPublicApi:
    def test_all_is_pinned_and_sorted(self) -> None:
        """__all__ lists exactly the public names, sorted."""
        assert autokestra_obs_schema.__all__ == sorted(autokestra_obs_schema.__all__)
        assert set(autokestra_obs_schema.__all__) == {
            "APPLICATION_ID",
            "AUDIT_KEY_BYTES",
            "AUDIT_KEY_FILE",
            "AuditKey",
            "AuditKeyError",
            "audit_key_path",
            "load_audit_key",
            "load_or_create_audit_key",
            "keyed_audit_digest",
            "keyed_chain_head",
            "lazy_exports",
            "RollbackWouldDeleteRows",
            "rollback_impact",
            "RESERVE_BYTES",
            "StorageReserve",
            "uuid7_ms",
            "State",
            "Reason",
            "LogLevel",
            "ExecutionNotFound",
            "AutokestraError",
            "AuditEventType",
            "UNSUCCESSFUL_STATES",
            "TERMINAL_STATES",
            "TERMINAL_EVENT_TYPES",
            "SECRET_MASK",
            "INVALID_LEVEL_MESSAGE",
            "BUSY_TIMEOUT_MS",
            "DEFAULT_DB_PATH",
            "DatabaseNotFound",
            "LATEST_VERSION",
            "MAX_DURATION_MS",
            "MigrationStatus",
            "MigrationStep",
            "RETENTION_GUARD_FUNCTION",
            "STEPS",
            "SchemaVersionError",
            "StorageBusy",
            "StorageError",
            "StorageFull",
            "StorageStats",
            "TABLE_SIZE_WARNING_BYTES",
            "TableStats",
            "UnsafeDatabasePath",
            "Writer",
            "audit_digest",
            "escape_control",
            "format_bytes",
            "format_duration_ms",
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
            "pid_alive",
            "register_retention_guard",
            "require_current",
            "rollback",
            "status",
            "storage_stats",
            "translate_error",
        }

    def test_every_name_resolves(self) -> None:
        """Every name in __all__ is importable from the package."""
        for name in autokestra_obs_schema.__all__:
            assert getattr(autokestra_obs_schema, name) is not None


class TestLazyExports:
    def test_every_public_name_resolves_and_is_listed(self) -> None:
        """Each name of __all__ loads from its module on first use; dir() lists them all."""
        for name in autokestra_obs_schema.__all__:
            assert getattr(autokestra_obs_schema, name) is not None
        assert set(autokestra_obs_schema.__all__) <= set(dir(autokestra_obs_schema))

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        try:
            autokestra_obs_schema.NoSuchName  # type: ignore[attr-defined]  # noqa: B018
        except AttributeError as exc:
            assert "NoSuchName" in str(exc)
        else:
            raise AssertionError("an unknown name resolved")
