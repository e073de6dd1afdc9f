"""Storage exceptions: the domain errors every package above obs-schema may catch."""

from __future__ import annotations

from ._vocabulary import AutokestraError


class StorageError(AutokestraError):
    """The database could not do what was asked (I/O error, corruption, bad file)."""


class StorageFull(StorageError):
    """The disk (or the database's page limit) is full; the transaction was rolled back."""


class StorageBusy(StorageError):
    """Another process held the write lock past the busy timeout."""


class DatabaseNotFound(StorageError):
    """A read-only open found no database file at the path."""


class UnsafeDatabasePath(StorageError):
    """The database path is a symlink or otherwise refused for safety."""


class SchemaVersionError(StorageError):
    """The database schema is not the version this code works with."""


class RollbackWouldDeleteRows(SchemaVersionError):
    """A schema rollback would delete rows and was not confirmed; nothing was changed.

    Attributes:
        rows: rows that would be deleted, per table.
    """

    def __init__(self, rows: dict[str, int]) -> None:
        self.rows = dict(rows)
        total = sum(self.rows.values())
        tables = ", ".join(self.rows)
        super().__init__(f"rollback would delete {total} rows from {tables}; add --yes to confirm")
