"""Benchmark: LogStore queries, `workflow execution logs` end to end, follow lag, peak memory.

Builds (once, cached under /tmp/autokestra-bench/ keyed by schema version and size) a database
of 1,000,000 log rows over 1,000 executions (1,000 rows and 100 tasks each, written
interleaved like concurrent executions) plus one execution of 100,000 rows, then measures:

(a) p50/p99 of each store query (all, level, task, since, tail 100) against the same plain
    SQL through apsw in the same run, on a typical execution and on the 100,000-row one; and
    the cost of an idle follow poll on the 100,000-row execution;
(b) wall time of `workflow execution logs` on the 100,000-row execution to a file, against a
    minimal apsw script writing the same rows plainly and `cat` of an equal-size file;
(c) follow lag: a LogCollector flush to the line on a `--follow --jsonl` follower's stdout;
(d) peak RSS of the CLI process (text and --json) against the minimal apsw script.

    .venv/bin/python tools/bench/logs.py            # full size (first build ~1 min)
    .venv/bin/python tools/bench/logs.py --quick    # 100k rows + a 20k execution
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

# Run as `python tools/bench/logs.py`, this folder is sys.path[0], and tools/bench/inspect.py
# would shadow the standard library's inspect (imported by dataclasses): drop the folder.
_HERE = os.path.realpath(os.path.dirname(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]

import apsw  # noqa: E402 - after the sys.path fix above

from autokestra_obs_schema import LATEST_VERSION, open_reader, open_writer  # noqa: E402
from autokestra_obs_store import LogFilter, LogStore  # noqa: E402

CACHE = Path("/tmp/autokestra-bench")
T0 = 1_795_629_600_000
LEVELS = ["INFO"] * 14 + ["DEBUG"] * 2 + ["WARN"] * 3 + ["ERROR"]
SOURCES = ["plugin:core/shell.run", "plugin:core/http.request", "worker", "scheduler"]
INSERT = (
    "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level, source,"
    " message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
CLI = [sys.executable, "-c", "from autokestra_obs_cli import main; main()"]
MINIMAL = """
import sys, apsw
conn = apsw.Connection(sys.argv[1], flags=apsw.SQLITE_OPEN_READONLY)
out = sys.stdout
for ts, level, source, task, message in conn.execute(
    "SELECT timestamp, level, source, task_id, message FROM execution_logs"
    " WHERE execution_id = ? ORDER BY timestamp, id", (sys.argv[2],)):
    out.write(f"{ts} {level} [{source}] {task} {message}\\n")
"""


def rows_of(
    execution_id: str, count: int, tasks: int, start: int, seed: int
) -> Iterator[tuple[Any, ...]]:
    """``count`` plausible log rows of one execution, 10 per millisecond burst."""
    rng = random.Random(seed)
    per_task = max(1, count // tasks)
    for i in range(count):
        task = f"task_{min(i // per_task, tasks - 1):03d}"
        level = rng.choice(LEVELS)
        metadata = '{"continuation": true}' if i % 97 == 0 else None
        message = f"{task} step {i}: processed batch {rng.randrange(10**6)} " + "x" * rng.randrange(
            10, 80
        )
        yield (
            execution_id,
            task,
            1 + (i % 3 == 0),
            start + i // 10,
            level,
            rng.choice(SOURCES),
            message,
            metadata,
        )


def build(db: Path, executions: int, per_execution: int, big: int) -> None:
    """Create the benchmark database with executemany in large transactions."""
    tmp = db.with_suffix(".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    writer = open_writer(tmp)
    started = time.perf_counter()
    with writer.transaction() as conn:
        conn.executemany(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at,"
            " log_entry_count) VALUES (?, 'bench', 'SUCCESS', ?, ?, ?)",
            [(f"exec-{n:05d}", T0, T0, per_execution) for n in range(executions)]
            + [("big", T0, T0, big)],
        )
    # Ten executions run at a time: their rows interleave in the table in chunks of 100,
    # as concurrent executions' collector batches would; the big one runs beside them.
    group = 10
    big_rows = rows_of("big", big, 100, T0, seed=-1)
    big_share = max(1, big // max(1, executions // group))
    for first in range(0, executions, group):
        streams = [
            rows_of(f"exec-{n:05d}", per_execution, 100, T0 + n * 1000, seed=n)
            for n in range(first, min(executions, first + group))
        ]
        with writer.transaction() as conn:
            while streams:
                for stream in list(streams):
                    chunk = [row for _, row in zip(range(100), stream, strict=False)]
                    if not chunk:
                        streams.remove(stream)
                        continue
                    conn.executemany(INSERT, chunk)
            conn.executemany(
                INSERT, [row for _, row in zip(range(big_share), big_rows, strict=False)]
            )
    with writer.transaction() as conn:
        conn.executemany(INSERT, big_rows)
    writer.close()
    tmp.rename(db)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    print(f"built {db} in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50 and p99 of ``samples`` (seconds) in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": statistics.median(ordered) * 1e3, "p99_ms": p99 * 1e3}


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    """Wall times of ``reps`` calls of ``fn`` (after one warm-up)."""
    fn()
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _store_query(store: LogStore, execution_id: str, flt: LogFilter) -> int:
    return len(list(store.logs_for_execution(execution_id, flt)))


def _raw_query(conn: apsw.Connection, sql: str, params: tuple[Any, ...]) -> int:
    return len(conn.execute(sql, params).fetchall())


def _raw_tail(conn: apsw.Connection, sql: str, params: tuple[Any, ...]) -> int:
    return len(conn.execute(sql, params).fetchall()[::-1])


def store_queries(db: Path, typical_ids: list[str], reps_big: int) -> dict[str, Any]:
    """(a) each store query against the same plain SQL, same connection, same run."""
    conn = open_reader(db)
    store = LogStore(conn)

    def since_of(eid: str) -> int:
        # The last 10% of the execution's time span.
        return T0 + 9_000 if eid == "big" else T0 + int(eid[5:]) * 1000 + 90

    levels = frozenset({"ERROR", "WARN"})
    select = (
        "SELECT id, execution_id, task_id, attempt, timestamp, level, source, message, metadata"
        " FROM execution_logs WHERE execution_id = ?"
    )
    cases: list[tuple[str, Callable[[str], LogFilter], str, Callable[[str], tuple[Any, ...]]]] = [
        (
            "all",
            lambda e: LogFilter(),
            " ORDER BY timestamp, id",
            lambda e: (e,),
        ),
        (
            "level ERROR,WARN",
            lambda e: LogFilter(levels=levels),
            " AND level IN (?, ?) ORDER BY timestamp, id",
            lambda e: (e, "ERROR", "WARN"),
        ),
        (
            "task",
            lambda e: LogFilter(task_id="task_042"),
            " AND task_id = ? ORDER BY timestamp, id",
            lambda e: (e, "task_042"),
        ),
        (
            "since (last 10%)",
            lambda e: LogFilter(since_ms=since_of(e)),
            " AND timestamp >= ? ORDER BY timestamp, id",
            lambda e: (e, since_of(e)),
        ),
    ]
    tail_tail = " ORDER BY timestamp DESC, id DESC LIMIT 100"
    results: dict[str, Any] = {}
    scopes = (("typical (1,000 rows)", typical_ids, 3), ("big (100,000 rows)", ["big"], reps_big))
    for scope, ids, reps in scopes:
        scope_results: dict[str, Any] = {}
        for name, make_filter, tail_sql, params in cases:
            store_t: list[float] = []
            raw_t: list[float] = []
            for _ in range(reps):
                for eid in ids:
                    # Interleave the two so machine noise hits both alike.
                    store_t += timed(partial(_store_query, store, eid, make_filter(eid)), 1)
                    raw_t += timed(partial(_raw_query, conn, select + tail_sql, params(eid)), 1)
            scope_results[name] = {"store": percentiles(store_t), "raw": percentiles(raw_t)}
        tail_store: list[float] = []
        tail_raw: list[float] = []
        for _ in range(reps):
            for eid in ids:
                tail_store += timed(partial(_store_query, store, eid, LogFilter(tail=100)), 1)
                tail_raw += timed(partial(_raw_tail, conn, select + tail_tail, (eid,)), 1)
        scope_results["tail 100"] = {"store": percentiles(tail_store), "raw": percentiles(tail_raw)}
        for value in scope_results.values():
            value["ratio_p50"] = value["store"]["p50_ms"] / value["raw"]["p50_ms"]
        results[scope] = scope_results
    follower = store.follow("big")
    for _ in zip(range(10**6), follower, strict=False):
        pass  # read everything; SUCCESS makes it end after the final empty poll
    polls = []
    for _ in range(2_000):
        started = time.perf_counter_ns()
        for _record in follower.poll():
            pass
        polls.append((time.perf_counter_ns() - started) / 1e9)
    results["idle follow poll (100,000-row execution)"] = {
        "p50_us": statistics.median(polls) * 1e6,
        "p99_us": sorted(polls)[int(0.99 * len(polls))] * 1e6,
    }
    conn.close()
    return results


def _hwm_mib(pid: int) -> float | None:
    """VmHWM (peak RSS of the process's current image) from /proc, in MiB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def run_to_file(argv: list[str], out: Path, *, rss: bool = False) -> tuple[float, float]:
    """Run ``argv`` with stdout to ``out``; return (wall seconds, peak RSS MiB or 0).

    The peak is VmHWM polled from /proc every 2 ms: wait4's ru_maxrss would include the
    memory of this (forking) benchmark process, which a child inherits until it execs.
    """
    peak = 0.0
    with out.open("wb") as sink:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=sink, env=bench_env())
        if not rss:
            proc.wait()  # timing runs do not poll: the poller would share the CPU
        while proc.poll() is None:
            hwm = _hwm_mib(proc.pid)
            if hwm is not None:
                peak = max(peak, hwm)
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return elapsed, peak


def bench_env() -> dict[str, str]:
    """Environment of the child processes (no colour, no debug)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKESTRA")}
    env["NO_COLOR"] = "1"
    return env


def whole_process(db: Path, work: Path, reps: int) -> dict[str, Any]:
    """(b) + (d): the CLI on the big execution vs a minimal apsw script vs cat."""
    cli_text = [*CLI, "--db", str(db), "execution", "logs", "big"]
    out = work / "cli.txt"
    samples: dict[str, list[float]] = {
        "cli text": [],
        "cli --json": [],
        "minimal apsw": [],
        "cat": [],
        "python -c pass": [],
        "cli --help": [],
    }
    rss: dict[str, float] = {}
    run_to_file(cli_text, out)  # warm the page cache
    same_size = work / "same-size.txt"
    shutil.copyfile(out, same_size)
    for _ in range(reps):
        for name, argv in (
            ("cli text", cli_text),
            ("cli --json", [*cli_text, "--json"]),
            ("minimal apsw", [sys.executable, "-c", MINIMAL, str(db), "big"]),
            ("cat", ["cat", str(same_size)]),
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("cli --help", [*CLI, "execution", "logs", "--help"]),
        ):
            elapsed, _ = run_to_file(argv, work / f"{name.replace(' ', '_')}.out")
            samples[name].append(elapsed)
            if name not in rss:
                _, rss[name] = run_to_file(argv, work / "rss.out", rss=True)
    _, rss["cli text, typical execution"] = run_to_file(
        [*CLI, "--db", str(db), "execution", "logs", "exec-00000"], work / "small.out", rss=True
    )
    medians = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    return {
        "wall_ms_median": medians,
        "cli_text_vs_minimal": medians["cli text"] / medians["minimal apsw"],
        # The same ratio without each program's fixed start-up (interpreter + imports).
        "cli_text_vs_minimal_after_startup": (medians["cli text"] - medians["cli --help"])
        / (medians["minimal apsw"] - medians["python -c pass"]),
        "output_bytes": out.stat().st_size,
        "peak_rss_mib": rss,
    }


def follow_lag(db: Path, samples: int) -> dict[str, Any]:
    """(c) time from a LogCollector flush returning to the line on a follower's stdout."""
    from autokestra_obs_collector import LogCollector

    writer = open_writer(db)
    eid = f"lag-{os.getpid()}"
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, 'bench', 'RUNNING', 0, 0)",
            (eid,),
        )
    collector = LogCollector(writer, max_age_s=60)
    proc = subprocess.Popen(
        [*CLI, "--db", str(db), "execution", "logs", eid, "--follow", "--jsonl"],
        stdout=subprocess.PIPE, env=bench_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    time.sleep(1.0)  # let the follower start (imports) before timing
    rng = random.Random(7)
    lags: list[float] = []
    pending = b""
    try:
        for n in range(samples):
            time.sleep(rng.uniform(0, 0.1))  # land anywhere in the poll period
            collector.log(eid, "INFO", "worker", f"lag probe {n}")
            collector.flush()
            flushed = time.perf_counter()
            while b"\n" not in pending:
                select.select([fd], [], [], 5)
                pending += os.read(fd, 65536)
            arrived = time.perf_counter()
            line, pending = pending.split(b"\n", 1)
            assert json.loads(line)["message"] == f"lag probe {n}"
            lags.append(arrived - flushed)
    finally:
        collector.shutdown()
        with writer.transaction(durable=True) as conn:
            conn.execute("UPDATE executions SET state = 'SUCCESS' WHERE execution_id = ?", (eid,))
        proc.wait(timeout=30)
        proc.stdout.close()
        with writer.transaction() as conn:
            conn.execute("DELETE FROM execution_logs WHERE execution_id = ?", (eid,))
            conn.execute("DELETE FROM executions WHERE execution_id = ?", (eid,))
        writer.close()
    return {"samples": samples, **percentiles(lags), "max_ms": max(lags) * 1e3}


def main() -> None:
    """Build or reuse the database, run (a)-(d), print a JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 executions and a 20k one")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of whole-process runs")
    parser.add_argument("--lag-samples", type=int, default=200)
    args = parser.parse_args()
    executions, big = (100, 20_000) if args.quick else (1_000, 100_000)
    CACHE.mkdir(parents=True, exist_ok=True)
    db = CACHE / f"logs-schema{LATEST_VERSION}-{executions}x1000-big{big}.db"
    if not db.exists():
        build(db, executions, 1_000, big)
    work = CACHE / "logs-work"
    work.mkdir(exist_ok=True)
    rng = random.Random(1)
    typical = [f"exec-{rng.randrange(executions):05d}" for _ in range(200)]
    report = {
        "database": {"path": str(db), "bytes": db.stat().st_size, "rows": executions * 1000 + big},
        "a_store_queries": store_queries(db, typical, reps_big=20),
        "b_d_whole_process": whole_process(db, work, args.reps),
        "c_follow_lag": follow_lag(db, args.lag_samples),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
