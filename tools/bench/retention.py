"""Benchmark: retention deleting expired rows while a collector keeps writing.

Seeds a database with ``--rows`` expired log rows (default 500,000) of finished executions,
starts a collector process that commits a batch of 100 log rows every 50 ms to a running
execution, measures its write latency for a few seconds alone (the same-run baseline), then
runs :func:`autokestra_obs_store.purge` and reports deleted rows/s, the longest write-lock
hold of one batch, and the collector's write latency during the purge against its baseline.

    .venv/bin/python tools/bench/retention.py --rows 500000
"""

from __future__ import annotations

import os
import sys

# Running `python tools/bench/retention.py` puts tools/bench/ first on sys.path, where the
# inspect benchmark (inspect.py) would shadow the standard library's inspect module.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]

import argparse  # noqa: E402 - after the sys.path fix above
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from autokestra_obs_schema import Writer, audit_digest, open_writer  # noqa: E402
from autokestra_obs_store import purge  # noqa: E402

ROWS_PER_EXECUTION = 1000
COLLECTOR_BATCH = 100
COLLECTOR_PERIOD_S = 0.05
BASELINE_S = 3.0


def seed(db: Path, rows: int) -> None:
    """Insert ``rows`` expired log rows (and 5 audit events per execution) to delete."""
    writer = open_writer(db)
    executions = max(1, rows // ROWS_PER_EXECUTION)
    message = "bench line " + "x" * 100
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES ('live', 'bench', 'RUNNING', 1, 1)"
        )
        for n in range(executions):
            eid = f"old-{n:06d}"
            conn.execute(
                "INSERT INTO executions (execution_id, workflow_id, state, created_at,"
                " updated_at) VALUES (?, 'bench', 'SUCCESS', 1, 1)",
                (eid,),
            )
            share = rows // executions + (1 if n < rows % executions else 0)
            conn.executemany(
                "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level,"
                " source, message) VALUES (?, 'task', 1, ?, 'INFO', 'plugin:core/shell.run', ?)",
                [(eid, 1000 + i, message) for i in range(share)],
            )
            prev: str | None = None
            for ts in range(1, 6):
                digest = audit_digest(prev, eid, "STATE_CHANGE", ts, "{}")
                conn.execute(
                    "INSERT INTO execution_audit_events (execution_id, event_type, timestamp,"
                    " metadata, prev_hash, hash) VALUES (?, 'STATE_CHANGE', ?, '{}', ?, ?)",
                    (eid, ts, prev, digest),
                )
                prev = digest
    writer.close()


def collector(db: Path, stop: Path) -> None:
    """Child mode: commit a 100-row batch every 50 ms; print (wall time, latency ms) pairs."""
    writer = Writer(db)
    samples: list[tuple[float, float]] = []
    rows = [("live", "collector line", 0)] * COLLECTOR_BATCH
    while not stop.exists():
        started = time.perf_counter()
        wall = time.time()
        with writer.transaction() as conn:
            conn.executemany(
                "INSERT INTO execution_logs (execution_id, timestamp, level, source, message)"
                " VALUES (?, 2000000000000, 'INFO', 'scheduler', ?)",
                [(eid, msg) for eid, msg, _ in rows],
            )
        samples.append((wall, (time.perf_counter() - started) * 1000))
        time.sleep(COLLECTOR_PERIOD_S)
    writer.close()
    print(json.dumps(samples))


def _summary(latencies: list[float]) -> str:
    if not latencies:
        return "no samples"
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, "
        f"max {ordered[-1]:.1f} ms ({len(ordered)} transactions)"
    )


def main() -> None:
    """Run the benchmark and print a Markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--collector", nargs=2, metavar=("DB", "STOP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collector:
        collector(Path(args.collector[0]), Path(args.collector[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        db, stop = Path(tmp) / "bench.db", Path(tmp) / "stop"
        started = time.perf_counter()
        seed(db, args.rows)
        print(f"seeded {args.rows} expired rows in {time.perf_counter() - started:.1f}s")
        child = subprocess.Popen(
            [sys.executable, __file__, "--collector", str(db), str(stop)],
            stdout=subprocess.PIPE,
            text=True,
        )
        baseline_start = time.time()
        time.sleep(BASELINE_S)
        purge_start = time.time()
        writer = Writer(db)
        holds: list[float] = []
        report = purge(
            writer, cutoff_ms=1_000_000_000, progress=lambda r: holds.append(r.last_batch_ms)
        )
        purge_end = time.time()
        writer.close()
        stop.touch()
        out, _ = child.communicate(timeout=60)
        samples: list[list[float]] = json.loads(out)
    baseline = [lat for wall, lat in samples if baseline_start <= wall < purge_start]
    during = [lat for wall, lat in samples if purge_start <= wall < purge_end]
    seconds = report.elapsed_ms / 1000
    rate = (report.log_rows + report.audit_rows) / seconds if seconds else 0.0
    print("## Retention benchmark")
    print(f"- deleted {report.log_rows} log rows + {report.audit_rows} audit events")
    print(f"  in {seconds:.1f}s: {rate:,.0f} rows/s, {report.batches} batches of <= 1000 rows")
    print(f"- write-lock hold per batch: {_summary(holds)}")
    print(f"- longest write-lock hold of one batch: {report.longest_batch_ms:.1f} ms")
    print(
        f"- WAL checkpoints between batches: {report.checkpoints}, longest "
        f"{report.longest_checkpoint_ms:.1f} ms"
    )
    print(f"- collector write latency, baseline (no purge): {_summary(baseline)}")
    print(f"- collector write latency, during the purge:   {_summary(during)}")
    if baseline and during:
        ratio = max(during) / max(*baseline, 0.001)
        print(f"- worst collector wait during purge / baseline worst: {ratio:.1f}x")


if __name__ == "__main__":
    main()
