"""Fixtures for obs-schema tests: real database files in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer
from autokestra_obs_schema.testing import temp_writer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database path inside a folder that does not exist yet."""
    return tmp_path / "state" / "autokestra.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    """A migrated database with its writer, closed after the test."""
    with temp_writer(db_path) as w:
        yield w
