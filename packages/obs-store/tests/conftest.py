"""Fixtures shared by obs-store's tests: a real, migrated database file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer, open_reader
from autokestra_obs_schema.testing import temp_writer
from autokestra_obs_store import LogStore


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    """A migrated database in the test's folder and its writer."""
    with temp_writer(tmp_path / "store.db") as w:
        yield w


@pytest.fixture
def store(writer: Writer) -> Iterator[LogStore]:
    """A LogStore on a read-only connection to the writer's database."""
    conn = open_reader(writer.path)
    yield LogStore(conn)
    conn.close()


@pytest.fixture
def db(writer: Writer) -> tuple[Writer, Path]:
    """The writer and its database path, for tests that open their own readers."""
    return writer, writer.path
