"""Test helpers: a migrated database file with its writer, and execution rows to hang data on.

Every package's tests need a real, migrated database file (WAL does not apply to
``:memory:``) and a few ``executions`` rows, because logs, task runs and audit events have
foreign keys to them. These helpers are that set-up, written once; a ``conftest.py`` wraps
them in fixtures (this module does not import pytest).

    @pytest.fixture
    def writer(tmp_path: Path) -> Iterator[Writer]:
        with temp_writer(tmp_path / "test.db") as w:
            insert_executions(w, "exec-1", "exec-2")
            yield w
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._open import open_writer
from ._vocabulary import State
from ._writer import CHECKPOINT_INTERVAL_S, Writer

__all__ = ["insert_executions", "migrated_writer", "temp_writer"]


def migrated_writer(
    path: Path | str, *, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
) -> Writer:
    """Open (creating it) a database migrated to the latest schema, and its writer.

    Args:
        path: the database file; its folder is created if missing.
        checkpoint_interval_s: the writer's routine checkpoint interval (a long one keeps
            checkpoints out of tests that shorten the busy timeout on purpose).

    Returns:
        The writer; the caller closes it.
    """
    return open_writer(path, checkpoint_interval_s=checkpoint_interval_s)


@contextmanager
def temp_writer(
    path: Path | str, *, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S
) -> Iterator[Writer]:
    """:func:`migrated_writer` as a context manager: the writer is closed on exit."""
    writer = migrated_writer(path, checkpoint_interval_s=checkpoint_interval_s)
    try:
        yield writer
    finally:
        writer.close()


def insert_executions(
    writer: Writer,
    *execution_ids: str,
    state: State = State.RUNNING,
    workflow_id: str = "wf",
    at_ms: int = 0,
) -> None:
    """Insert minimal ``executions`` rows (one transaction), for rows that reference them.

    Args:
        writer: the database's writer.
        execution_ids: the ids to insert (``"exec-1"`` when none is given).
        state: the state of every inserted row.
        workflow_id: their workflow.
        at_ms: their ``created_at`` and ``updated_at``.
    """
    with writer.transaction() as conn:
        for execution_id in execution_ids or ("exec-1",):
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?)",
                (execution_id, workflow_id, state.value, at_ms, at_ms),
            )
