"""Benchmark: Windmill's orchestrator benchmark (Airflow, Prefect, Temporal, Kestra, Hatchet).

Two workflows of sequential ``core/python.run`` tasks, as that benchmark defines them:

- light: 40 tasks, each computing fib(10);
- long: 10 tasks, each computing fib(33).

For each, printed like Windmill reports it: the total time (execution created to terminal)
and, per task, the mean **assignment** (handed to the worker pool -> attempt started),
**execution** (attempt started -> task ended: process start, the script, capture, cleanup)
and **transition** (task ended -> the next task handed to the pool), from the stored
``task_runs`` timestamps (ms). Same-run baselines: a bare ``python -c pass`` spawn, and each
long task's own compute time (the script times fib(33) itself and writes it as an output).
Both launchers run, fork first; targets are for the default (fork):

- light: total < 1.0 s;
- long: total within 5 % of the sum of the tasks' own compute time.

Run: ``python tools/bench/windmill.py`` (``--repeats N``, default 3, best run reported).
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
from pathlib import Path  # noqa: E402
from statistics import mean  # noqa: E402

from autokestra_engine import (  # noqa: E402
    Engine,
    EngineConfig,
    LauncherMode,
    PluginRegistry,
    SecretStore,
    parse_workflow,
)
from autokestra_obs_collector import LogCollector  # noqa: E402
from autokestra_obs_schema import State, open_reader, open_writer  # noqa: E402

FIB = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
SCRIPT = (
    FIB + "import json, os, time\n"
    "started = time.perf_counter()\n"
    "value = fib(int(inputs['args'][0]))\n"
    "compute_ms = (time.perf_counter() - started) * 1000\n"
    "with open(os.environ['AUTOKESTRA_OUTPUTS'], 'w') as f:\n"
    "    json.dump({'fib': value, 'compute_ms': compute_ms}, f)\n"
)


def workflow_yaml(name: str, tasks: int, n: int) -> str:
    """``tasks`` sequential core/python.run tasks computing fib(n)."""
    lines = [f"id: {name}", "tasks:"]
    for i in range(tasks):
        lines.append(f"  - id: t{i}")
        lines.append("    type: core/python.run")
        if i:
            lines.append(f"    needs: [t{i - 1}]")
        lines.append(f"    inputs: {{script: {json.dumps(SCRIPT)}, args: [{n}]}}")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class Run:
    """One execution's figures (ms)."""

    total_ms: float
    assignment_ms: float
    execution_ms: float
    transition_ms: float
    compute_ms: float


def run_workflow(tmp: Path, yaml_text: str, launcher: LauncherMode) -> Run:
    """Run the workflow on a fresh engine and database; read the split from task_runs."""
    db = tmp / f"windmill-{time.monotonic_ns()}.db"
    writer = open_writer(db)
    collector = LogCollector(writer)
    registry = PluginRegistry.discover([])
    config = dataclasses.replace(
        EngineConfig(db_path=db), max_concurrent_tasks=1, launcher=launcher
    )
    engine = Engine(
        config, writer=writer, collector=collector, registry=registry, secrets=SecretStore()
    )
    try:
        workflow = parse_workflow(yaml_text, registry, filename="windmill.yaml")
        engine.run(engine.create_execution(workflow, {}))  # warm-up: servers, caches
        started = time.perf_counter()
        execution_id = engine.create_execution(workflow, {})
        state = engine.run(execution_id).state
        total_ms = (time.perf_counter() - started) * 1000
        if state is not State.SUCCESS:
            raise SystemExit(f"benchmark execution ended {state}")
    finally:
        engine.close()
        collector.shutdown()
        writer.close()
    conn = open_reader(db)
    try:
        rows = conn.execute(
            "SELECT queued_at, started_at, ended_at, outputs FROM task_runs"
            " WHERE execution_id = ? ORDER BY position",
            (execution_id,),
        ).fetchall()
    finally:
        conn.close()
    queued = [int(str(r[0])) for r in rows]
    begun = [int(str(r[1])) for r in rows]
    ended = [int(str(r[2])) for r in rows]
    return Run(
        total_ms=total_ms,
        assignment_ms=mean([s - q for q, s in zip(queued, begun, strict=True)]),
        execution_ms=mean([e - s for s, e in zip(begun, ended, strict=True)]),
        transition_ms=mean([q - e for e, q in zip(ended[:-1], queued[1:], strict=True)]),
        compute_ms=sum(float(json.loads(str(r[3]))["compute_ms"]) for r in rows),
    )


def bare_python_ms(runs: int = 20) -> float:
    """Best per-spawn time of ``python -c pass`` (the same-run start-up baseline)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(runs):
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        best = min(best, (time.perf_counter() - started) * 1000 / runs)
    return best


def report(label: str, launcher: str, run: Run, tasks: int) -> None:
    print(
        f"{label:5} {launcher:5} total {run.total_ms / 1000:6.3f} s | per task: assignment"
        f" {run.assignment_ms:6.2f} ms, execution {run.execution_ms:7.2f} ms, transition"
        f" {run.transition_ms:5.2f} ms | compute {run.compute_ms / tasks:7.2f} ms/task"
    )


def main(argv: list[str]) -> int:
    """Run both workflows with both launchers; exit 1 when a fork-mode target is missed."""
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
    bare = bare_python_ms()
    print(f"baseline: python -c pass {bare:.2f} ms per spawn")
    light_yaml, long_yaml = workflow_yaml("light", 40, 10), workflow_yaml("long", 10, 33)
    results: dict[tuple[str, str], Run] = {}
    with tempfile.TemporaryDirectory(prefix="autokestra-windmill-") as folder:
        tmp = Path(folder)
        for label, yaml_text, tasks in (("light", light_yaml, 40), ("long", long_yaml, 10)):
            for launcher in ("fork", "spawn"):
                runs = [run_workflow(tmp, yaml_text, launcher) for _ in range(repeats)]
                best = min(runs, key=lambda r: r.total_ms)
                results[(label, launcher)] = best
                report(label, launcher, best, tasks)
    light, long = results[("light", "fork")], results[("long", "fork")]
    light_ok = light.total_ms < 1000
    long_ratio = long.total_ms / long.compute_ms
    long_ok = long_ratio <= 1.05
    print(
        f"target: light total < 1.0 s: {light.total_ms / 1000:.3f} s"
        f" ({light.total_ms / 40 / bare:.2f}x python -c pass per task)"
        f" -> {'PASS' if light_ok else 'FAIL'}"
    )
    print(
        f"target: long total within 5% of compute: {long.total_ms / 1000:.3f} s"
        f" / {long.compute_ms / 1000:.3f} s = {long_ratio:.3f} -> {'PASS' if long_ok else 'FAIL'}"
    )
    return 0 if light_ok and long_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
