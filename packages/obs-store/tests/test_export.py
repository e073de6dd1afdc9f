"""export_execution: a bundle is a fresh database at the latest schema holding one execution."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from autokestra_obs_schema import (
    LATEST_VERSION,
    ExecutionNotFound,
    Writer,
    current_version,
    open_reader,
)
from autokestra_obs_store import ExportRefused, LogStore, export_execution
from autokestra_obs_store._export import _COPIES

T0 = 1_764_000_000_000
TABLES = (
    "executions",
    "task_runs",
    "task_attempts",
    "execution_logs",
    "execution_audit_events",
    "audit_key",
)


def seed(writer: Writer, execution_id: str, logs: int) -> None:
    """An execution with two tasks, attempts, ``logs`` entries and an audit event."""
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at,"
            " log_entry_count, inputs, workflow_source) VALUES (?, 'wf', 'SUCCESS', ?, ?, ?,"
            " '{\"token\": \"***SECRET***\"}', 'id: wf')",
            (execution_id, T0, T0, logs),
        )
        for position, task in enumerate(("a", "b")):
            conn.execute(
                "INSERT INTO task_runs (execution_id, task_id, position, type, state,"
                " attempt_count, created_at) VALUES (?, ?, ?, 'core/log.emit', 'SUCCESS', 1, ?)",
                (execution_id, task, position, T0),
            )
            conn.execute(
                "INSERT INTO task_attempts (execution_id, task_id, attempt, state, started_at,"
                " ended_at) VALUES (?, ?, 1, 'SUCCESS', ?, ?)",
                (execution_id, task, T0, T0 + 5),
            )
        conn.executemany(
            "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
            " source, message) VALUES (?, 'a', 1, ?, 'INFO', 'worker', ?)",
            [(execution_id, T0 + i, f"{execution_id} line {i}") for i in range(logs)],
        )
        conn.execute(
            "INSERT INTO execution_audit_events (execution_id, event_type, timestamp, metadata,"
            " hash) VALUES (?, 'CREATED', ?, '{}', 'h')",
            (execution_id, T0),
        )


def dump(path: Path, execution_id: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the execution, table by table, in a stable order."""
    conn = open_reader(path)
    try:
        return {
            table: sorted(
                (tuple(row) for row in conn.execute(select, (execution_id,))),
                key=repr,
            )
            for table, (select, _) in zip(TABLES, _COPIES, strict=True)
        }
    finally:
        conn.close()


@pytest.fixture
def source(writer: Writer) -> Path:
    seed(writer, "e1", 2500)
    seed(writer, "e2", 3)
    writer.checkpoint()
    return writer.path


class TestBundle:
    def test_holds_exactly_the_execution(self, source: Path, tmp_path: Path) -> None:
        bundle = tmp_path / "out" / "bundle.db"
        report = export_execution(source, "e1", bundle)
        assert report.log_entries == 2500
        assert report.bytes == bundle.stat().st_size
        assert dump(bundle, "e1") == dump(source, "e1")
        conn = open_reader(bundle)
        try:
            for table in TABLES[:-1]:  # audit_key is the database's, not an execution's
                ids = {
                    str(r[0])
                    for r in conn.execute(
                        "SELECT DISTINCT execution_id FROM " + table  # noqa: S608 - constant
                    )
                }
                assert ids == {"e1"}, table
            assert current_version(conn) == LATEST_VERSION
            assert conn.execute("SELECT COUNT(*) FROM workflows").fetchall() == [(0,)]
        finally:
            conn.close()

    def test_is_private_and_self_contained(self, source: Path, tmp_path: Path) -> None:
        out = tmp_path / "out"
        out.mkdir()
        export_execution(source, "e1", out / "bundle.db")
        assert stat.S_IMODE((out / "bundle.db").stat().st_mode) == 0o600
        assert sorted(p.name for p in out.iterdir()) == ["bundle.db"]

    def test_is_searchable(self, source: Path, tmp_path: Path) -> None:
        """The bundle's index was filled by its own triggers as the rows went in."""
        bundle = tmp_path / "bundle.db"
        export_execution(source, "e1", bundle)
        conn = open_reader(bundle)
        try:
            hits = list(LogStore(conn).search('"line 2499"'))
        finally:
            conn.close()
        assert [hit.record.message for hit in hits] == ["e1 line 2499"]

    def test_copies_every_column_of_the_schema(self, source: Path) -> None:
        """A column added by a migration must be listed in the export (or fail here)."""
        conn = open_reader(source)
        try:
            for table, (select, insert) in zip(TABLES, _COPIES, strict=True):
                schema = [
                    str(r[1]) for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))
                ]
                match = re.match(r"SELECT (.*) FROM (\w+)", select)
                assert match is not None and match.group(2) == table
                assert [c.strip() for c in match.group(1).split(",")] == schema, table
                named = re.search(r"\((.*?)\) VALUES", insert)
                assert named is not None
                assert [c.strip() for c in named.group(1).split(",")] == schema, table
        finally:
            conn.close()


class TestRefusals:
    def test_unknown_execution_writes_nothing(self, source: Path, tmp_path: Path) -> None:
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(ExecutionNotFound, match="Execution not found: nope"):
            export_execution(source, "nope", out / "bundle.db")
        assert list(out.iterdir()) == []

    def test_missing_database_is_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(ExecutionNotFound):
            export_execution(tmp_path / "absent.db", "e1", tmp_path / "bundle.db")
        assert not (tmp_path / "absent.db").exists()
        assert not (tmp_path / "bundle.db").exists()

    def test_existing_file_is_refused_unless_forced(self, source: Path, tmp_path: Path) -> None:
        bundle = tmp_path / "bundle.db"
        bundle.write_text("keep me")
        with pytest.raises(ExportRefused, match="already exists; add --force"):
            export_execution(source, "e1", bundle)
        assert bundle.read_text() == "keep me"
        export_execution(source, "e1", bundle, force=True)
        assert dump(bundle, "e1") == dump(source, "e1")

    def test_force_drops_a_stale_wal_of_the_replaced_file(
        self, source: Path, tmp_path: Path
    ) -> None:
        """An old -wal beside the target would be replayed into the new bundle."""
        bundle = tmp_path / "bundle.db"
        export_execution(source, "e2", bundle)
        Path(f"{bundle}-wal").write_bytes(b"stale")
        export_execution(source, "e1", bundle, force=True)
        assert not Path(f"{bundle}-wal").exists() or Path(f"{bundle}-wal").read_bytes() != b"stale"
        assert dump(bundle, "e1") == dump(source, "e1")

    def test_never_overwrites_the_source(self, source: Path) -> None:
        with pytest.raises(ExportRefused, match="database being exported"):
            export_execution(source, "e1", source, force=True)
        assert dump(source, "e2")["executions"]
