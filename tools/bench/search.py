"""Benchmark: full-text search (FTS5) over 1,000,000 log entries, and what the index costs.

Builds (once, cached under /tmp/autokestra-bench/ keyed by schema version and size) a database
of 1,000,000 log entries over 2,000 executions of 20 workflows, with realistic messages from
a fixed seed (HTTP calls, SQL timings, uploads, tracebacks, retries, heartbeats; 3% are
``connection refused: <host>:<port>``; 60 entries say ``payment gateway returned HTTP 502``),
written with direct batched inserts through the Writer (the index triggers fire as they
would for the collector). Then measures, in the same run:

(a) in process, p50/p99 of ``LogStore.search``: a selective query (``gateway 502``, 60 hits)
    and a broad one (``connection refused``, ~30,000 hits, first page of 100); also the broad
    one filtered to a workflow and with highlight, for reference;
(b) the whole ``workflow logs search`` process against ``workflow --version`` and against
    ``workflow logs search --help`` (click's start-up without the search; same run);
(c) the collector's throughput (LogCollector, 4 producers, real redactor) into a database
    with the index against one migrated to the step before it, runs alternated;
(d) the index's bytes against the log table's (rows plus its indexes), from db status stats.

Targets: selective p99 < 20 ms, broad first page p99 < 100 ms; the index costs the collector
at most 30% throughput; whole-process search within 2x ``workflow --version``.

    .venv/bin/python tools/bench/search.py            # full size (first build ~2 min)
    .venv/bin/python tools/bench/search.py --quick    # 100,000 entries over 200 executions
"""

from __future__ import annotations

import os
import sys

# Run as `python tools/bench/search.py`, this folder is sys.path[0], and tools/bench/inspect.py
# would shadow the standard library's inspect (imported by dataclasses): drop the folder.
_HERE = os.path.realpath(os.path.dirname(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from autokestra_obs_collector import LogCollector, Redactor  # noqa: E402
from autokestra_obs_schema import (  # noqa: E402
    LATEST_VERSION,
    STEPS,
    LogLevel,
    Writer,
    migrate,
    open_reader,
    open_writer,
    storage_stats,
)
from autokestra_obs_store import LogStore, SearchFilter  # noqa: E402

CACHE = Path("/tmp/autokestra-bench")
T0 = 1_795_629_600_000
SEED = 20261202
CLI = [sys.executable, "-c", "from autokestra_obs_cli import main; main()"]
SELECTIVE = "gateway 502"
BROAD = "connection refused"
NEEDLES = 60
INSERT = (
    "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp, level, source,"
    " message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
LEVELS = ["INFO"] * 14 + ["DEBUG"] * 2 + ["WARN"] * 3 + ["ERROR"]
SOURCES = ["plugin:core/shell.run", "plugin:core/http.request", "worker", "scheduler"]
HOSTS = ["db-primary", "db-replica-2", "cache-1", "api.internal", "billing.svc", "kafka-0"]
TABLES = ["orders", "customers", "invoices", "events", "payments", "sessions"]
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]
ERRORS = [
    "ValueError: invalid literal for int() with base 10: '{w}'",
    "KeyError: '{w}_id'",
    "TimeoutError: read timed out after {s}s",
    "PermissionError: [Errno 13] Permission denied: '/data/{w}.csv'",
]


def _refused(rng: random.Random, task: str) -> str:
    host, port = rng.choice(HOSTS), rng.choice([5432, 6379, 443, 9092])
    return f"connection refused: {host}:{port} (attempt {rng.randint(1, 5)}/5)"


def _http(rng: random.Random, task: str) -> str:
    status = rng.choice([200, 200, 200, 201, 204, 404, 500])
    return (
        f"GET https://api.example.com/v1/{rng.choice(TABLES)}/{rng.randrange(10**6)}"
        f" -> {status} in {rng.randrange(2, 900)}ms"
    )


def _batch(rng: random.Random, task: str) -> str:
    return (
        f"processed batch {rng.randrange(10**5)}: {rng.randrange(1000)} records,"
        f" {rng.randrange(20)} skipped"
    )


def _query(rng: random.Random, task: str) -> str:
    return (
        # A log message quoting a query (not SQL this script runs).
        f"query took {rng.randrange(1, 500)}ms: SELECT * FROM {rng.choice(TABLES)}"  # noqa: S608
        f" WHERE id = {rng.randrange(10**7)}"
    )


def _upload(rng: random.Random, task: str) -> str:
    return (
        f"uploading {rng.choice(WORDS)}-{rng.randrange(10**4)}.parquet to"
        f" s3://bucket-{rng.choice(WORDS)}/2026-11-{rng.randint(1, 30):02d}/"
        f" ({rng.randrange(1, 900)} MiB)"
    )


def _cache(rng: random.Random, task: str) -> str:
    return f"cache miss for key user:{rng.randrange(10**6)} on {rng.choice(HOSTS)}"


def _retry(rng: random.Random, task: str) -> str:
    return (
        f"retrying {task} in {rng.choice([1, 2, 4, 8, 16])}s after timeout"
        f" ({rng.choice(WORDS)} {rng.choice(WORDS)})"
    )


def _traceback(rng: random.Random, task: str) -> str:
    error = rng.choice(ERRORS).format(w=rng.choice(WORDS), s=rng.randrange(5, 60))
    return (
        "Traceback (most recent call last):\n"
        f'  File "/app/{task}.py", line {rng.randrange(10, 400)}, in run\n{error}'
    )


def _step(rng: random.Random, task: str) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(3))
    return f"{task}: step {rng.randrange(100)} {words} done, token=***SECRET***"


def _heartbeat(rng: random.Random, task: str) -> str:
    return (
        f"worker {rng.randrange(16)} heartbeat ok, queue depth {rng.randrange(50)},"
        f" rss {rng.randrange(50, 900)} MiB"
    )


#: (cumulative share, message kind): 3% connection refused, 17% HTTP calls, ...
MIX: list[tuple[float, Callable[[random.Random, str], str]]] = [
    (0.03, _refused),
    (0.20, _http),
    (0.35, _batch),
    (0.45, _query),
    (0.55, _upload),
    (0.62, _cache),
    (0.70, _retry),
    (0.78, _traceback),
    (0.88, _step),
    (1.00, _heartbeat),
]


def message(rng: random.Random, task: str) -> str:
    """One plausible log message (the mix of a data pipeline's plugins)."""
    r = rng.random()
    kind = next(kind for share, kind in MIX if r < share)
    return kind(rng, task)


def rows_of(
    execution_id: str, count: int, start: int, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """``count`` log rows of one execution over 10 tasks, 10 per millisecond burst."""
    for i in range(count):
        task = f"task_{i * 10 // count:02d}"
        yield (
            execution_id,
            task,
            1,
            start + i // 10,
            rng.choice(LEVELS),
            rng.choice(SOURCES),
            message(rng, task),
            None,
        )


def build(db: Path, entries: int, executions: int) -> None:
    """The benchmark database: batched executemany through the Writer, index triggers on."""
    tmp = db.with_suffix(".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    rng = random.Random(SEED)
    per_execution = entries // executions
    writer = open_writer(tmp)
    started = time.perf_counter()
    ids = [f"exec-{n:05d}" for n in range(executions)]
    with writer.transaction() as conn:
        conn.executemany(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at,"
            " log_entry_count) VALUES (?, ?, 'SUCCESS', ?, ?, ?)",
            [
                (eid, f"workflow-{n % 20:02d}", T0 + n * 60_000, T0, per_execution)
                for n, eid in enumerate(ids)
            ],
        )
    # The needles: spread over executions, each in the middle of its execution's log.
    needles = {rng.randrange(executions): None for _ in range(NEEDLES * 4)}
    needle_executions = sorted(needles)[:NEEDLES]
    # Ten executions at a time, their batches of 100 interleaved like concurrent runs.
    for first in range(0, executions, 10):
        group = range(first, min(executions, first + 10))
        streams = [rows_of(ids[n], per_execution, T0 + n * 60_000, rng) for n in group]
        with writer.transaction() as conn:
            while streams:
                for stream in list(streams):
                    chunk = [row for _, row in zip(range(100), stream, strict=False)]
                    if not chunk:
                        streams.remove(stream)
                        continue
                    conn.executemany(INSERT, chunk)
            for n in group:
                if n in needle_executions:
                    conn.execute(
                        INSERT,
                        (
                            ids[n],
                            "task_05",
                            1,
                            T0 + n * 60_000 + per_execution // 20,
                            "ERROR",
                            "plugin:core/http.request",
                            f"payment gateway returned HTTP 502 for order {rng.randrange(10**6)}",
                            None,
                        ),
                    )
    writer.close()
    tmp.rename(db)
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    print(f"built {db} in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def percentiles(samples: list[float], prefix: str = "") -> dict[str, float]:
    """p50 and p99 of ``samples`` (seconds) in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        f"{prefix}p50_ms": round(statistics.median(ordered) * 1e3, 3),
        f"{prefix}p99_ms": round(p99 * 1e3, 3),
    }


def timed(fn: Callable[[], object], reps: int) -> tuple[list[float], list[float]]:
    """Wall and thread-CPU times of ``reps`` calls of ``fn`` (after one warm-up).

    The CPU time leaves out the time the thread waited for a CPU: on a loaded machine the
    wall p99 is the scheduler's, the CPU p99 the query's.
    """
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        started, started_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    return wall, cpu


def in_process(db: Path, reps: int) -> dict[str, Any]:
    """(a) LogStore.search p50/p99 and hit counts."""
    store = LogStore(open_reader(db))
    total = {
        name: sum(1 for _ in store.search(query, limit=10**9))
        for name, query in (("selective", SELECTIVE), ("broad", BROAD))
    }
    cases: dict[str, Callable[[], object]] = {
        "selective": lambda: list(store.search(SELECTIVE)),
        "broad first page": lambda: list(store.search(BROAD)),
        "broad, one workflow": lambda: list(
            store.search(BROAD, SearchFilter(workflow_id="workflow-07"))
        ),
        "broad, highlight": lambda: list(store.search(BROAD, highlight=True)),
        "broad, --level error": lambda: list(
            store.search(BROAD, SearchFilter(levels=frozenset({LogLevel.ERROR.value})))
        ),
    }
    out: dict[str, Any] = {"hits": total}
    for name, fn in cases.items():
        wall, cpu = timed(fn, reps)
        out[name] = {**percentiles(wall), **percentiles(cpu, "cpu ")}
    store.connection.close()
    return out


def process_times(db: Path, reps: int) -> dict[str, Any]:
    """(b) the whole `workflow logs search` process against two start-up baselines.

    ``workflow --version`` is the issue's baseline; since the start-up work it prints a
    constant without loading click, so twice it is less than importing click alone.
    ``workflow logs search --help`` is the same command parsed by click and printing only
    its help: the CLI's start-up as every command pays it.
    """

    def run(args: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run([*CLI, *args], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    version: list[float] = []
    help_only: list[float] = []
    selective: list[float] = []
    broad: list[float] = []
    run(["--version"])
    run(["logs", "search", "--help"])
    for _ in range(reps):  # interleaved: machine load hits all four alike
        version.append(run(["--version"]))
        help_only.append(run(["logs", "search", "--help"]))
        selective.append(run(["--db", str(db), "logs", "search", *SELECTIVE.split()]))
        broad.append(run(["--db", str(db), "logs", "search", *BROAD.split()]))
    base = statistics.median(version)
    help_base = statistics.median(help_only)
    return {
        "workflow --version": percentiles(version),
        "workflow logs search --help": percentiles(help_only),
        "logs search selective": percentiles(selective),
        "logs search broad": percentiles(broad),
        "selective / --version": round(statistics.median(selective) / base, 2),
        "broad / --version": round(statistics.median(broad) / base, 2),
        "selective / --help": round(statistics.median(selective) / help_base, 2),
        "broad / --help": round(statistics.median(broad) / help_base, 2),
    }


_SEARCH_STEP = next(step for step in STEPS if step.name == "log_search")
EXECUTION = "0190bench-0000-7000-8000-000000000000"


def _collector_db(folder: Path, name: str, *, index: bool) -> Writer:
    writer = Writer(folder / name)
    with writer.locked() as conn:
        migrate(conn, target=None if index else _SEARCH_STEP.version - 1)
    with writer.transaction() as conn:
        conn.execute(
            "INSERT INTO executions (execution_id, workflow_id, state, created_at, updated_at)"
            " VALUES (?, 'bench', 'RUNNING', 0, 0)",
            (EXECUTION,),
        )
    return writer


def collector_rate(
    folder: Path, n: int, *, index: bool, run: int, max_batch: int = 100
) -> tuple[float, float]:
    """Entries/s through LogCollector from 4 producers until every entry is committed, and
    the process's CPU microseconds per entry meanwhile (steadier than wall time on a loaded
    machine: other processes' load slows the wall clock, not this process's CPU bill)."""
    writer = _collector_db(folder, f"collector-{index}-{run}-{max_batch}.db", index=index)
    logs = LogCollector(writer, max_batch=max_batch)
    logs.set_redactor(EXECUTION, Redactor(["bench-secret-value"]))
    rng = random.Random(SEED + run)
    producers = 4
    messages = [[message(rng, "fetch") for _ in range(n // producers)] for _ in range(producers)]

    def produce(k: int) -> None:
        for text in messages[k]:
            logs.log(EXECUTION, LogLevel.INFO, "plugin:core/shell.run", text, task_id="fetch")

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if not logs.flush(timeout=300):
        raise SystemExit("collector did not drain within 300 s")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    dropped = logs.stats().dropped
    logs.shutdown()
    writer.close()
    if dropped:
        raise SystemExit(f"collector dropped {dropped} entries")
    return n / elapsed, cpu / n * 1e6


def collector_cost(n: int, rounds: int) -> dict[str, Any]:
    """(c) collector entries/s with the index against without, alternated, medians."""
    with_index: list[tuple[float, float]] = []
    without: list[tuple[float, float]] = []
    big_batches: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="ak-search-bench-") as tmp:
        folder = Path(tmp)
        for run in range(rounds):
            without.append(collector_rate(folder, n, index=False, run=run))
            with_index.append(collector_rate(folder, n, index=True, run=run))
            # For reference: FTS5 writes a segment per commit, so bigger batches amortize it.
            big_batches.append(collector_rate(folder, n, index=True, run=run, max_batch=500))
    a = statistics.median(rate for rate, _ in with_index)
    b = statistics.median(rate for rate, _ in without)
    a_cpu = statistics.median(cpu for _, cpu in with_index)
    b_cpu = statistics.median(cpu for _, cpu in without)
    return {
        "entries": n,
        "rounds": rounds,
        "with index /s": round(a),
        "without index /s": round(b),
        "throughput cost": f"{(1 - a / b) * 100:.1f}%",
        "with index CPU us/entry": round(a_cpu, 1),
        "without index CPU us/entry": round(b_cpu, 1),
        "CPU cost": f"{(a_cpu / b_cpu - 1) * 100:.1f}%",
        "with index, max_batch=500 /s": round(statistics.median(r for r, _ in big_batches)),
        "with index, max_batch=500 CPU us/entry": round(
            statistics.median(c for _, c in big_batches), 1
        ),
    }


def sizes(db: Path) -> dict[str, Any]:
    """(d) index bytes against the log table's bytes (rows plus its three indexes)."""
    conn = open_reader(db)
    stats = storage_stats(conn, db)
    conn.close()
    logs = stats.tables["execution_logs"]
    index = stats.tables["execution_logs_fts"]
    return {
        "log rows": logs.rows,
        "log table MiB": round(logs.bytes / 2**20, 1),
        "index MiB": round(index.bytes / 2**20, 1),
        "index / table": f"{index.bytes / logs.bytes * 100:.1f}%",
        "index bytes per entry": round(index.bytes / max(1, logs.rows), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 entries, fewer repeats")
    args = parser.parse_args()
    entries, executions = (100_000, 200) if args.quick else (1_000_000, 2_000)
    reps, process_reps, rounds = (50, 5, 1) if args.quick else (300, 15, 3)
    CACHE.mkdir(exist_ok=True)
    # Keyed by the index's DDL too: a cached database built with other settings would lie.
    ddl = hashlib.sha256(_SEARCH_STEP.up.encode()).hexdigest()[:8]
    db = CACHE / f"search-v{LATEST_VERSION}-{ddl}-{entries}-{SEED}.db"
    if not db.exists():
        build(db, entries, executions)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    report = {
        "database": str(db),
        "sizes": sizes(db),
        "in process": in_process(db, reps),
        "process": process_times(db, process_reps),
        "collector": collector_cost(20_000 if args.quick else 100_000, rounds),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
