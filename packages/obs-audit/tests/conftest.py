"""Fixtures: a migrated database file with one execution row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer, open_writer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    w = open_writer(db_path)
    with w.transaction() as conn:
        for eid in ("exec-1", "exec-2"):
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, 'wf', 'PENDING', 0, 0)",
                (eid,),
            )
    yield w
    w.close()
