"""Fault injection over obs-schema's write paths: migration steps and Writer transactions.

Every write, sync and truncate of the path is failed in turn (I/O error, then disk full);
after each fault the database must be whole: at a schema version with exactly that
version's schema, and a failed transaction leaves nothing of itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autokestra_obs_schema import (
    LATEST_VERSION,
    StorageError,
    Writer,
    connect,
    current_version,
    migrate,
)
from autokestra_obs_schema.testing import (
    FaultInjector,
    fault_loop,
    inject_faults,
    insert_executions,
    unfaulted_reader,
)

KINDS = ["ioerr", "full"]


def _schema(path: Path) -> list[tuple[object, ...]]:
    conn = unfaulted_reader(path)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY name").fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def reference_schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[int, object]:
    """The schema of a clean database at each version."""
    schemas: dict[int, object] = {}
    for version in range(LATEST_VERSION + 1):
        path = tmp_path_factory.mktemp("ref") / "ref.db"
        conn = connect(path)
        migrate(conn, target=version)
        conn.close()
        schemas[version] = _schema(path)
    return schemas


class TestMigrationFaults:
    @pytest.mark.parametrize("kind", KINDS)
    def test_every_fault_leaves_a_whole_version(
        self, tmp_path: Path, reference_schemas: dict[int, object], kind: str
    ) -> None:
        """A fault anywhere in a migration leaves the db at a version with exactly its schema,
        and the next migrate finishes the job."""
        counter = {"n": 0}
        state: dict[str, Path] = {}

        def setup() -> None:
            counter["n"] += 1
            state["path"] = tmp_path / f"m{counter['n']}" / "a.db"

        def attempt() -> None:
            conn = connect(state["path"])
            try:
                migrate(conn)
            finally:
                conn.close()

        def check(raised: bool) -> None:
            path = state["path"]
            if not path.exists():
                assert raised  # the very first write failed: nothing was created
                return
            conn = unfaulted_reader(path)
            try:
                version = current_version(conn)
            finally:
                conn.close()
            schema = _schema(path)
            # Version 0 is an empty file, or one with only the bookkeeping table.
            assert schema == reference_schemas[version] or (version == 0 and schema == [])
            if not raised:
                assert version == LATEST_VERSION
            conn = connect(path)
            try:
                migrate(conn)
                assert current_version(conn) == LATEST_VERSION
            finally:
                conn.close()

        with inject_faults() as faults:
            points = fault_loop(faults, attempt, check, kind=kind, setup=setup)
        print(f"fault injection points: migration {kind}: {points}")
        assert points >= LATEST_VERSION  # at least one point per step


class TestWriterFaults:
    @pytest.mark.parametrize("kind", KINDS)
    @pytest.mark.parametrize("durable", [False, True])
    def test_a_failed_transaction_leaves_nothing(
        self, db_path: Path, kind: str, durable: bool
    ) -> None:
        """Every injection point: the transaction either commits whole or leaves nothing,
        and the writer keeps working afterwards (also across its checkpoints)."""
        with inject_faults() as faults:
            writer = Writer(db_path, checkpoint_interval_s=0)  # a checkpoint after every commit
            try:
                with writer.locked() as conn:
                    migrate(conn)
                insert_executions(writer)
                expected = {"rows": 0}

                def attempt() -> None:
                    with writer.transaction(durable=durable) as conn:
                        for i in range(20):
                            conn.execute(
                                "INSERT INTO execution_logs (execution_id, timestamp, level,"
                                " source, message) VALUES ('exec-1', ?, 'INFO', 'worker', ?)",
                                (i, "m" * 500),
                            )
                        conn.execute(
                            "UPDATE executions SET log_entry_count = log_entry_count + 20"
                            " WHERE execution_id = 'exec-1'"
                        )

                def check(raised: bool) -> None:
                    _assert_whole(db_path, faults, raised, expected)
                    # The writer still works: a fault is not a broken connection.
                    with writer.transaction() as conn:
                        conn.execute("SELECT 1").fetchall()

                points = fault_loop(faults, attempt, check, kind=kind)
            finally:
                writer.close()
        print(f"fault injection points: writer durable={durable} {kind}: {points}")
        assert points > 0


def _assert_whole(
    db_path: Path, faults: FaultInjector, raised: bool, expected: dict[str, int]
) -> None:
    conn = unfaulted_reader(db_path)
    try:
        rows = conn.execute("SELECT count(*) FROM execution_logs").fetchall()[0][0]
        count = conn.execute("SELECT log_entry_count FROM executions").fetchall()[0][0]
    finally:
        conn.close()
    assert rows == count, "the count and the rows were committed apart"
    assert rows in (expected["rows"], expected["rows"] + 20), "a partial batch is visible"
    if raised:
        assert rows == expected["rows"], "a transaction that raised was committed"
    else:
        assert rows == expected["rows"] + 20
    expected["rows"] = int(str(rows))
    assert faults.operations > 0


class TestInjector:
    def test_persistent_faults_keep_failing(self, db_path: Path) -> None:
        """A persistent fault (a disk that stays full) fails every later write until disarmed."""
        with inject_faults() as faults:
            writer = Writer(db_path)
            try:
                with writer.locked() as conn:
                    migrate(conn)
                faults.arm(1, "full", persistent=True)
                for _ in range(3):
                    with pytest.raises(StorageError), writer.transaction() as conn:
                        insert_executions(writer, f"e{faults.fired}")
                faults.disarm()
                insert_executions(writer, "after")
            finally:
                writer.close()
        assert faults.fired >= 3
