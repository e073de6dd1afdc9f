"""Benchmark: engine overhead per task against spawning the same plugin processes bare.

Two workloads, each measured against its bare baseline in the same run:

- chain: a linear chain of N ``core/log.emit`` tasks (default 200), one at a time. Baseline:
  the same N ``log.emit`` processes spawned one after the other with ``subprocess.run``
  (inputs on stdin, an outputs file, stdout captured). Reported: ms per task for both, and
  the engine's overhead per task (engine - bare) as a multiple of the bare spawn cost.
  Target: overhead per task < 2x the bare spawn cost.
- fan-out: W parallel ``core/shell.run`` tasks (default 50) each printing 20 lines, at
  ``max_concurrent_tasks`` 4. Baseline: the same W processes, 4 at a time, bare. Reported:
  wall time of both and their ratio.

The engine side is the real thing: Writer, LogCollector, durable state changes and audit
events, task_runs/task_attempts rows, every plugin line stored as a log entry.

Run: ``python tools/bench/engine.py`` (``--quick`` for a 40-task chain and a 12-wide fan-out).
"""

from __future__ import annotations

import os
import sys

# Sibling scripts here (inspect.py, logs.py) would shadow stdlib modules of the same name:
# Python puts the script's folder first on sys.path. Drop it before anything else imports.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from autokestra_engine import (  # noqa: E402
    Engine,
    EngineConfig,
    PluginRegistry,
    SecretStore,
    parse_workflow,
)
from autokestra_obs_collector import LogCollector  # noqa: E402
from autokestra_obs_schema import State, open_reader, open_writer  # noqa: E402

FAN_CONCURRENCY = 4
LINES = 20
SHELL_COMMAND = f"for i in $(seq 1 {LINES}); do echo line $i of the task output; done"


def chain_yaml(n: int) -> str:
    """A workflow of n core/log.emit tasks, each needing the previous one."""
    lines = ["id: bench-chain", "tasks:"]
    for i in range(n):
        needs = f", needs: [t{i - 1}]" if i else ""
        lines.append(f"  - {{id: t{i}, type: core/log.emit{needs}, inputs: {{message: step {i}}}}}")
    return "\n".join(lines) + "\n"


def fan_yaml(width: int) -> str:
    """A workflow of `width` independent core/shell.run tasks printing LINES lines each."""
    lines = ["id: bench-fan", "tasks:"]
    for i in range(width):
        lines.append(f"  - id: s{i}")
        lines.append("    type: core/shell.run")
        lines.append(f"    inputs: {{command: '{SHELL_COMMAND}'}}")
    return "\n".join(lines) + "\n"


def bare_spawn(registry: PluginRegistry, task_type: str, inputs: dict[str, str], tmp: Path) -> None:
    """Spawn one plugin process the simplest way: stdin JSON, outputs file, pipes drained."""
    action = registry.action(task_type)
    outputs = tmp / f"out-{time.monotonic_ns()}.json"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "AUTOKESTRA_OUTPUTS": str(outputs),
        "AUTOKESTRA_WORKDIR": str(tmp),
    }
    subprocess.run(
        list(action.command),
        input=json.dumps(inputs).encode(),
        cwd=action.plugin_dir,
        env=env,
        capture_output=True,
        check=True,
    )
    outputs.unlink(missing_ok=True)


def run_engine(tmp: Path, yaml_text: str, concurrency: int) -> tuple[float, int]:
    """Run the workflow through a fresh engine and database; (wall seconds, log entries)."""
    db = tmp / f"bench-{time.monotonic_ns()}.db"
    writer = open_writer(db)
    collector = LogCollector(writer)
    registry = PluginRegistry.discover([])
    config = dataclasses.replace(EngineConfig(db_path=db), max_concurrent_tasks=concurrency)
    engine = Engine(
        config, writer=writer, collector=collector, registry=registry, secrets=SecretStore()
    )
    try:
        workflow = parse_workflow(yaml_text, registry, filename="bench.yaml")
        started = time.perf_counter()
        execution_id = engine.create_execution(workflow, {})
        state = engine.run(execution_id).state
        wall = time.perf_counter() - started
        if state is not State.SUCCESS:
            raise SystemExit(f"benchmark execution ended {state}")
    finally:
        engine.close()
        collector.shutdown()
        writer.close()
    conn = open_reader(db)
    try:
        (entries,) = conn.execute("SELECT log_entry_count FROM executions").fetchall()[0]
    finally:
        conn.close()
    return wall, int(str(entries))


def bench_chain(tmp: Path, n: int, repeats: int) -> dict[str, float]:
    """The linear chain: per-task cost of the engine against a bare spawn (best of R each)."""
    registry = PluginRegistry.discover([])
    bares: list[float] = []
    walls: list[float] = []
    entries = 0
    for _ in range(repeats):  # interleaved, so machine load hits both sides alike
        started = time.perf_counter()
        for i in range(n):
            bare_spawn(registry, "core/log.emit", {"message": f"step {i}", "level": "INFO"}, tmp)
        bares.append(time.perf_counter() - started)
        wall, entries = run_engine(tmp, chain_yaml(n), concurrency=1)
        walls.append(wall)
    bare_ms = min(bares) * 1000 / n
    engine_ms = min(walls) * 1000 / n
    overhead_ms = engine_ms - bare_ms
    print(
        f"chain of {n} core/log.emit (best of {repeats}): bare {bare_ms:.1f} ms/task,"
        f" engine {engine_ms:.1f} ms/task, overhead {overhead_ms:.1f} ms/task"
        f" = {overhead_ms / bare_ms:.2f}x bare spawn ({entries} log entries stored)"
    )
    return {"bare_ms": bare_ms, "engine_ms": engine_ms, "ratio": overhead_ms / bare_ms}


def bench_fan(tmp: Path, width: int, repeats: int) -> dict[str, float]:
    """The fan-out: wall time of W shell tasks at concurrency 4, engine against bare."""
    registry = PluginRegistry.discover([])
    bares: list[float] = []
    walls: list[float] = []
    entries = 0
    for _ in range(repeats):
        started = time.perf_counter()
        with ThreadPoolExecutor(FAN_CONCURRENCY) as pool:
            list(
                pool.map(
                    lambda _: bare_spawn(
                        registry, "core/shell.run", {"command": SHELL_COMMAND}, tmp
                    ),
                    range(width),
                )
            )
        bares.append(time.perf_counter() - started)
        wall, entries = run_engine(tmp, fan_yaml(width), concurrency=FAN_CONCURRENCY)
        walls.append(wall)
    bare, wall = min(bares), min(walls)
    print(
        f"fan-out of {width} core/shell.run x {LINES} lines at concurrency {FAN_CONCURRENCY}"
        f" (best of {repeats}): bare {bare:.2f} s, engine {wall:.2f} s = {wall / bare:.2f}x"
        f" (overhead {(wall - bare) * 1000 / width:.1f} ms/task; {entries} log entries stored)"
    )
    return {"bare_s": bare, "engine_s": wall, "ratio": wall / bare}


def main(argv: list[str]) -> int:
    """Run both workloads; exit 1 when the chain misses its target."""
    quick = "--quick" in argv
    n, width, repeats = (40, 12, 1) if quick else (200, 50, 3)
    with tempfile.TemporaryDirectory(prefix="autokestra-bench-") as folder:
        tmp = Path(folder)
        chain = bench_chain(tmp, n, repeats)
        bench_fan(tmp, width, repeats)
    verdict = "PASS" if chain["ratio"] < 2.0 else "FAIL"
    print(f"target: engine overhead per task < 2x bare spawn cost -> {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
