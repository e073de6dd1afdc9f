"""Benchmark: `workflow execution inspect` of a 500-task execution, against same-run baselines.

Builds (once, cached under /tmp/autokestra-bench/ keyed by schema version) a database holding
1,000 executions of 20 tasks each (retries included, about 23,000 attempt rows and 3,000
audit events) plus one execution of 500 tasks with retries and backoff and one of 10 tasks,
all written through a Writer by the same builder the tests use. Then measures:

(a) whole-process wall time (median and p90 of N alternating runs) of `workflow --version`
    (the start-up baseline), `inspect` (summary view), `inspect --json`, `inspect --timeline`
    and `inspect --task` on the 500-task execution, and a minimal apsw script that runs the
    same four reads and prints the rows (the raw-SQL baseline);
(b) in-process: ExecutionInspector.snapshot() against the four plain SQL reads;
(c) the number of SQL statements of each inspector method for 10 and for 500 tasks (apsw
    exec tracer).

Target: `inspect --timeline` of the 500-task execution within 3x `workflow --version`.

    .venv/bin/python tools/bench/inspect.py              # 15 runs per command
    .venv/bin/python tools/bench/inspect.py --runs 5     # quicker
"""

from __future__ import annotations

import os
import sys

# This file is named inspect.py, like the stdlib module that dataclasses imports: drop the
# script's own folder from the import path before anything imports `inspect`.
_HERE = os.path.realpath(os.path.dirname(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]

import argparse  # noqa: E402 - after the sys.path fix above
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import apsw  # noqa: E402

from autokestra_obs_schema import LATEST_VERSION, open_reader, open_writer  # noqa: E402
from autokestra_obs_store import ExecutionInspector  # noqa: E402
from autokestra_obs_store.testing import T0, wide_execution, write_execution  # noqa: E402

CACHE = Path("/tmp/autokestra-bench")
CLI = [sys.executable, "-c", "from autokestra_obs_cli import main; main()"]
#: The same four reads ExecutionInspector.snapshot() makes, printed plainly.
MINIMAL = """
import sys, apsw
conn = apsw.Connection(sys.argv[1], flags=apsw.SQLITE_OPEN_READONLY)
eid = sys.argv[2]
out = sys.stdout
conn.execute("BEGIN")
for query in (
    "SELECT * FROM executions WHERE execution_id = ?",
    "SELECT * FROM task_runs WHERE execution_id = ? ORDER BY position, task_id",
    "SELECT * FROM task_attempts WHERE execution_id = ? ORDER BY task_id, attempt",
    "SELECT * FROM execution_audit_events WHERE execution_id = ? ORDER BY id",
):
    for row in conn.execute(query, (eid,)):
        out.write(repr(row) + "\\n")
conn.execute("COMMIT")
"""
RAW_READS = (
    "SELECT * FROM executions WHERE execution_id = ?",
    "SELECT * FROM task_runs WHERE execution_id = ? ORDER BY position, task_id",
    "SELECT * FROM task_attempts WHERE execution_id = ? ORDER BY task_id, attempt",
    "SELECT * FROM execution_audit_events WHERE execution_id = ? ORDER BY id",
)


def build(path: Path) -> dict[str, str]:
    """Write the benchmark database once; return the ids of the measured executions."""
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        ids: dict[str, str] = json.loads(meta.read_text())
        return ids
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    writer = open_writer(path)
    with writer.transaction():  # one commit for the bulk load; write_execution joins it
        for index in range(1_000):
            fail = 7 if index % 10 == 3 else None
            record = wide_execution(20, t0=T0 + index * 60_000, seed=1_000 + index, fail_task=fail)
            write_execution(writer, record)
        ids = {
            "large": write_execution(writer, wide_execution(500, t0=T0 + 90_000_000, seed=5)),
            "small": write_execution(writer, wide_execution(10, t0=T0 + 95_000_000, seed=6)),
        }
    writer.close()
    meta.write_text(json.dumps(ids))
    print(f"built {path} in {time.perf_counter() - started:.1f}s")
    return ids


def wall(command: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit of one process whose output goes to /dev/null."""
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def measure_processes(path: Path, eid: str, runs: int) -> dict[str, tuple[float, float]]:
    """(a): whole-process wall times, commands interleaved so drift hits all alike."""
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    inspect = [*CLI, "--db", str(path), "execution", "inspect", eid]
    commands = {
        "workflow --version": [*CLI, "--version"],
        "raw SQL script (4 reads)": [sys.executable, "-c", MINIMAL, str(path), eid],
        "inspect": inspect,
        "inspect --json": [*inspect, "--json"],
        "inspect --timeline": [*inspect, "--timeline"],
        "inspect --task task-499": [*inspect, "--task", "task-499"],
    }
    for command in commands.values():  # warm the page cache and .pyc files
        wall(command, env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(wall(command, env))
    return {name: stats(values) for name, values in samples.items()}


def measure_in_process(path: Path, eid: str, runs: int) -> dict[str, tuple[float, float]]:
    """(b): the inspector's snapshot against the plain reads, same connection."""
    conn = open_reader(path)
    inspector = ExecutionInspector(conn)

    def raw() -> None:
        conn.execute("BEGIN")
        for query in RAW_READS:
            conn.execute(query, (eid,)).fetchall()
        conn.execute("COMMIT")

    results = {}
    for name, call in (("raw SQL (4 reads)", raw), ("snapshot()", lambda: inspector.snapshot(eid))):
        call()
        samples = []
        for _ in range(max(runs, 10)):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        results[name] = stats(samples)
    conn.close()
    return results


def count_queries(path: Path, ids: dict[str, str]) -> dict[str, tuple[int, int]]:
    """(c): statements per inspector method for the 10-task and the 500-task execution."""
    conn = open_reader(path)
    inspector = ExecutionInspector(conn)
    counts: dict[str, tuple[int, int]] = {}
    methods: dict[str, Callable[[str], Any]] = {
        "snapshot": inspector.snapshot,
        "overview": inspector.overview,
        "tasks": inspector.tasks,
        "timeline": inspector.timeline,
        "audit_trail": inspector.audit_trail,
        "verify": inspector.verify,
        "task": lambda eid: inspector.task(eid, "task-009"),
    }
    for name, method in methods.items():
        seen = []
        for key in ("small", "large"):
            statements: list[str] = []

            def trace(
                cursor: apsw.Cursor, sql: str, bindings: Any, sink: list[str] = statements
            ) -> bool:
                sink.append(sql)
                return True

            conn.exec_trace = trace
            method(ids[key])
            conn.exec_trace = None
            seen.append(len(statements))
        counts[name] = (seen[0], seen[1])
    conn.close()
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    args = parser.parse_args()
    path = CACHE / f"inspect-v{LATEST_VERSION}.db"
    ids = build(path)
    conn = open_reader(path)
    tasks = conn.execute("SELECT count(*) FROM task_runs").fetchall()[0][0]
    attempts = conn.execute("SELECT count(*) FROM task_attempts").fetchall()[0][0]
    large_attempts = conn.execute(
        "SELECT count(*) FROM task_attempts WHERE execution_id = ?", (ids["large"],)
    ).fetchall()[0][0]
    conn.close()
    print(f"database: {tasks} task runs, {attempts} attempts, {path.stat().st_size >> 20} MiB")
    print(f"measured: 500-task execution with {large_attempts} attempts ({ids['large']})")

    print(f"\n(a) whole process, {args.runs} interleaved runs each (median / p90)")
    processes = measure_processes(path, ids["large"], args.runs)
    base = processes["workflow --version"][0]
    for name, (median, p90) in processes.items():
        print(f"  {name:<28} {median * 1000:7.1f} ms / {p90 * 1000:7.1f} ms   x{median / base:.2f}")

    print("\n(b) in process, 500 tasks (median / p90)")
    in_process = measure_in_process(path, ids["large"], args.runs)
    for name, (median, p90) in in_process.items():
        print(f"  {name:<28} {median * 1000:7.2f} ms / {p90 * 1000:7.2f} ms")

    print("\n(c) SQL statements per method: 10 tasks vs 500 tasks")
    counts = count_queries(path, ids)
    for name, (small, large) in counts.items():
        print(f"  {name:<12} {small:3d} vs {large:3d}  {'same' if small == large else 'DIFFERENT'}")

    ratio = processes["inspect --timeline"][0] / base
    ok = ratio <= 3.0 and all(small == large for small, large in counts.values())
    print(f"\ntarget: inspect --timeline within 3x workflow --version: x{ratio:.2f} -> "
          f"{'PASS' if ratio <= 3.0 else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
