"""Fault injection (obs-schema's faulty VFS) over the collector's write paths.

Every write, sync and truncate of a log batch and of the dropped-entry record is failed in
turn: a batch is visible whole or not at all, ``log_entry_count`` always equals the rows,
and the WARN entry never commits without its ``logs_dropped`` count (nor the reverse).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from autokestra_obs_collector import LogCollector
from autokestra_obs_collector._rows import Row, write_drop_summary, write_rows
from autokestra_obs_collector.testing import ManualClock
from autokestra_obs_schema import Writer
from autokestra_obs_schema.testing import (
    fault_loop,
    inject_faults,
    insert_executions,
    migrated_writer,
    unfaulted_reader,
)


def make_writer(path: Path) -> Writer:
    """A migrated database with exec-1 (checkpoints only when the loop's faults allow)."""
    writer = migrated_writer(path, checkpoint_interval_s=3600)
    insert_executions(writer, "exec-1")
    return writer


KINDS = ["ioerr", "full"]


def _state(path: Path) -> tuple[int, int, int, int]:
    """(log rows, log_entry_count, WARN rows from the engine, logs_dropped) of exec-1."""
    conn = unfaulted_reader(path)
    try:
        rows = conn.execute(
            "SELECT count(*), coalesce(sum(source = 'engine'), 0) FROM execution_logs"
            " WHERE execution_id = 'exec-1'"
        ).fetchall()[0]
        counts = conn.execute(
            "SELECT log_entry_count, logs_dropped FROM executions WHERE execution_id = 'exec-1'"
        ).fetchall()[0]
    finally:
        conn.close()
    return tuple(int(str(value)) for value in (rows[0], counts[0], rows[1], counts[1]))  # type: ignore[return-value]  # four ints


def _batch(start: int, size: int) -> list[Row]:
    return [
        ("exec-1", "task", 1, start + i, "INFO", "worker", f"line {start + i} " + "x" * 300, None)
        for i in range(size)
    ]


class TestBatchFaults:
    @pytest.mark.parametrize("kind", KINDS)
    def test_no_partial_batch_is_ever_visible(self, tmp_path: Path, kind: str) -> None:
        """At each injection point the batch is whole or absent, and the count matches."""
        path = tmp_path / "logs.db"
        with inject_faults() as faults:
            writer = make_writer(path)
            try:
                seen = {"rows": 0}

                def attempt() -> None:
                    write_rows(writer, _batch(seen["rows"], 250))

                def check(raised: bool) -> None:
                    rows, count, _, _ = _state(path)
                    assert rows == count, "log_entry_count and the rows committed apart"
                    assert rows == seen["rows"] + (0 if raised else 250), "partial batch"
                    seen["rows"] = rows

                points = fault_loop(faults, attempt, check, kind=kind)
            finally:
                writer.close()
        print(f"fault injection points: collector batch {kind}: {points}")
        assert points > 0

    @pytest.mark.parametrize("kind", KINDS)
    def test_drop_record_commits_whole(self, tmp_path: Path, kind: str) -> None:
        """The WARN entry and logs_dropped commit together or not at all."""
        path = tmp_path / "logs.db"
        with inject_faults() as faults:
            writer = make_writer(path)
            try:
                recorded = {"n": 0}
                row: Row = (
                    "exec-1", None, None, 1, "WARN", "engine", "Dropped 7 log entries: x", None,
                )  # fmt: skip

                def attempt() -> None:
                    write_drop_summary(writer, row, 7)

                def check(raised: bool) -> None:
                    rows, count, warns, dropped = _state(path)
                    assert rows == count == warns
                    assert dropped == 7 * warns, "count and WARN entry committed apart"
                    assert warns == recorded["n"] + (0 if raised else 1)
                    recorded["n"] = warns

                points = fault_loop(faults, attempt, check, kind=kind)
            finally:
                writer.close()
        print(f"fault injection points: drop record {kind}: {points}")
        assert points > 0


class TestCollectorUnderFaults:
    def test_each_point_once_then_everything_arrives_once(self, tmp_path: Path) -> None:
        """A one-shot fault at any point of a flush: the collector retries; every entry is
        stored exactly once, in order, and nothing is counted as dropped."""
        path = tmp_path / "logs.db"
        with inject_faults() as faults:
            writer: Writer = make_writer(path)
            try:
                logged = {"n": 0}

                def attempt() -> None:
                    collector = LogCollector(
                        writer,
                        clock=ManualClock(),
                        retry_initial_s=0.001,
                        retry_max_s=0.002,
                        report=io.StringIO(),
                    )
                    try:
                        for _ in range(120):
                            collector.log("exec-1", "INFO", "worker", f"line {logged['n']}")
                            logged["n"] += 1
                        assert collector.flush(timeout=10)
                    finally:
                        collector.shutdown(timeout=5)
                    assert collector.stats().dropped == 0

                def check(raised: bool) -> None:
                    assert not raised  # log() and flush() never raise into the caller
                    conn = unfaulted_reader(path)
                    try:
                        messages = [
                            str(r[0])
                            for r in conn.execute(
                                "SELECT message FROM execution_logs ORDER BY id"
                            ).fetchall()
                        ]
                    finally:
                        conn.close()
                    assert messages == [f"line {i}" for i in range(logged["n"])]

                # The collector swallows the fault: the loop ends when one flush no longer
                # reaches the armed operation.
                points = fault_loop(faults, attempt, check)
            finally:
                writer.close()
        print(f"fault injection points: collector retry: {points}")
        assert points > 0
