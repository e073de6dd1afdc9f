"""Fixtures: a migrated database file with one execution row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import State, Writer
from autokestra_obs_schema.testing import insert_executions, temp_writer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    with temp_writer(db_path) as w:
        insert_executions(w, "exec-1", "exec-2", state=State.PENDING)
        yield w
