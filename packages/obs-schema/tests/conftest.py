"""Fixtures for obs-schema tests: real database files in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autokestra_obs_schema import Writer, open_writer


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A database path inside a folder that does not exist yet."""
    return tmp_path / "state" / "autokestra.db"


@pytest.fixture
def writer(db_path: Path) -> Iterator[Writer]:
    """A migrated database with its writer, closed after the test."""
    w = open_writer(db_path)
    yield w
    w.close()


def insert_execution(writer: Writer, execution_id: str = "exec-1", state: str = "RUNNING") -> None:
    """Insert one execution row (logs and audit events need it: foreign keys are on)."""
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, 'wf', ?, 1000, 1000)",
            (execution_id, state),
        )
