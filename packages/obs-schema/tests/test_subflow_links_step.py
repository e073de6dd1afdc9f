"""The subflow_links migration: an execution names the execution and task that started it."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from autokestra_obs_schema import STEPS, Writer, current_version, migrate, rollback
from autokestra_obs_schema.testing import insert_executions

STEP = next(step for step in STEPS if step.name == "subflow_links")
LINK = "UPDATE executions SET parent_execution_id = ?, parent_task_id = ? WHERE execution_id = ?"
CHILDREN = "SELECT execution_id FROM executions WHERE parent_execution_id = ?"


def columns(conn: apsw.Connection) -> set[str]:
    return {str(r[1]) for r in conn.execute("SELECT * FROM pragma_table_info('executions')")}


@pytest.fixture
def before_step(db_path: Path) -> Writer:
    """A database at the version just before the links, holding two executions."""
    writer = Writer(db_path)
    with writer.locked() as conn:
        migrate(conn, target=STEP.version - 1)
    insert_executions(writer, "parent", "child")
    return writer


class TestSubflowLinksStep:
    def test_existing_executions_have_no_parent(self, before_step: Writer) -> None:
        """Executions written before the step read as started by no one (NULL links)."""
        with before_step.locked() as conn:
            migrate(conn)
            rows = conn.execute(
                "SELECT parent_execution_id, parent_task_id FROM executions"
            ).fetchall()
        before_step.close()
        assert rows == [(None, None), (None, None)]

    def test_children_are_found_through_the_index(self, before_step: Writer) -> None:
        """A child links to its parent, and the lookup by parent uses the partial index."""
        with before_step.locked() as conn:
            migrate(conn)
        with before_step.transaction() as conn:
            conn.execute(LINK, ("parent", "call", "child"))
        with before_step.locked() as conn:
            assert conn.execute(CHILDREN, ("parent",)).fetchall() == [("child",)]
            plan = " ".join(
                str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + CHILDREN, ("parent",))
            )
        before_step.close()
        assert "idx_executions_parent" in plan

    def test_rollback_drops_the_links_and_keeps_the_rows(self, before_step: Writer) -> None:
        """Undoing the step removes both columns and the index; no execution is lost."""
        with before_step.locked() as conn:
            migrate(conn)
        with before_step.transaction() as conn:
            conn.execute(LINK, ("parent", "call", "child"))
        with before_step.locked() as conn:
            rollback(conn, steps=1)
            assert current_version(conn) == STEP.version - 1
            assert not {"parent_execution_id", "parent_task_id"} & columns(conn)
            count = conn.execute("SELECT count(*) FROM executions").fetchall()
            indexes = conn.execute(
                "SELECT name FROM sqlite_schema WHERE name = 'idx_executions_parent'"
            ).fetchall()
            migrate(conn)
            assert {"parent_execution_id", "parent_task_id"} <= columns(conn)
        before_step.close()
        assert count == [(2,)]
        assert indexes == []
