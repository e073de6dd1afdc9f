"""Fault injection over retention batches: each batch is whole, trails go whole.

Every write, sync and truncate of a purge is failed in turn. After each fault the database
shows only whole batches: ``log_entry_count`` equals the rows left, an audit trail is either
complete or gone, and running the purge again finishes the job.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autokestra_obs_schema import StorageError, Writer, audit_digest, open_writer
from autokestra_obs_schema.testing import fault_loop, inject_faults, unfaulted_reader
from autokestra_obs_store import purge

KINDS = ["ioerr", "full"]
OLD, CUTOFF = 1_000, 10_000


def _seed(writer: Writer) -> None:
    with writer.transaction() as conn:
        for n in range(2):
            eid = f"done-{n}"
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at, log_entry_count) VALUES (?, 'wf', 'SUCCESS', 0, 0, 60)",
                (eid,),
            )
            conn.executemany(
                "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
                " VALUES (?, ?, 'INFO', 'worker', ?)",
                [(eid, OLD + i, "m" * 100) for i in range(60)],
            )
            prev = None
            for i, etype in enumerate(("CREATED", "STARTED", "COMPLETED")):
                meta = {
                    "CREATED": '{"trigger_type":"manual","workflow_id":"wf"}',
                    "STARTED": "{}",
                    "COMPLETED": '{"duration_ms":1,"task_count":1}',
                }[etype]
                digest = audit_digest(prev, eid, etype, OLD + i, meta)
                conn.execute(
                    "INSERT INTO execution_audit_events (execution_id, event_type, timestamp,"
                    " metadata, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
                    (eid, etype, OLD + i, meta, prev, digest),
                )
                prev = digest


def _check_whole(path: Path) -> tuple[int, int]:
    conn = unfaulted_reader(path)
    try:
        for eid, count in conn.execute(
            "SELECT execution_id, log_entry_count FROM executions"
        ).fetchall():
            rows = conn.execute(
                "SELECT count(*) FROM execution_logs WHERE execution_id = ?", (eid,)
            ).fetchall()[0][0]
            assert rows == count, f"{eid}: log_entry_count and rows disagree"
            events = conn.execute(
                "SELECT count(*) FROM execution_audit_events WHERE execution_id = ?", (eid,)
            ).fetchall()[0][0]
            assert events in (0, 3), f"{eid}: a partial audit trail is visible"
        logs = conn.execute("SELECT count(*) FROM execution_logs").fetchall()[0][0]
        audits = conn.execute("SELECT count(*) FROM execution_audit_events").fetchall()[0][0]
    finally:
        conn.close()
    assert (120 - int(str(logs))) % 25 == 0 or logs == 0, "a partial batch was committed"
    return int(str(logs)), int(str(audits))


class TestRetentionFaults:
    @pytest.mark.parametrize("kind", KINDS)
    def test_only_whole_batches_and_whole_trails(self, tmp_path: Path, kind: str) -> None:
        """Each fault leaves whole batches; the next purge finishes without error."""
        counter = {"n": 0}
        current: dict[str, Writer] = {}
        template = tmp_path / "template.db"
        seeded = open_writer(template)
        _seed(seeded)
        seeded.close()  # checkpointed: the file alone is the whole database

        with inject_faults() as faults:

            def setup() -> None:
                if "writer" in current:
                    current["writer"].close()
                counter["n"] += 1
                path = tmp_path / f"r{counter['n']}.db"
                shutil.copy(template, path)
                current["writer"] = Writer(path)

            def attempt() -> None:
                purge(current["writer"], CUTOFF, batch_size=25, pause_factor=0)

            def check(raised: bool) -> None:
                writer = current["writer"]
                logs, audits = _check_whole(writer.path)
                if not raised:
                    assert (logs, audits) == (0, 0)
                    return
                try:
                    purge(writer, CUTOFF, batch_size=25, pause_factor=0)
                except StorageError as exc:  # pragma: no cover - reported with its cause
                    raise AssertionError(f"the purge did not resume: {exc}") from exc
                assert _check_whole(writer.path) == (0, 0)

            try:
                points = fault_loop(faults, attempt, check, kind=kind, setup=setup)
            finally:
                current["writer"].close()
        print(f"fault injection points: retention {kind}: {points}")
        assert points > 0
