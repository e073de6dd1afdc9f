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
