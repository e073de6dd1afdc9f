"""Benchmark: CLI start-up, as CPU time of the whole process against ``python -c pass``.

Measured, each as the median of N runs (interleaved so machine load hits them alike), the
user+system CPU time of the child process (``os.wait4``), output to ``/dev/null``:

- ``python -c pass`` (the same-run baseline: an interpreter that imports nothing);
- ``workflow --version``;
- ``workflow execution logs ID`` of an execution of 1,000 log lines (built once here by a
  real engine run of ``core/python.run`` printing them).

Bytecode caches are written (``PYTHONDONTWRITEBYTECODE`` is dropped, one warm-up run each), as
for an installed CLI.

Targets: ``--version`` under 60 ms and ``execution logs`` under 120 ms of CPU; the ratios to
``python -c pass`` are printed with them. With ``--imports`` it also lists, from
``python -X importtime``, what each command imports beyond the interpreter's own start-up.

Run: ``python tools/bench/startup.py [--runs N] [--imports]``.
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
from pathlib import Path  # noqa: E402
from statistics import median  # noqa: E402

WORKFLOW = str(Path(sys.executable).parent / "workflow")
LINES_SCRIPT = "for i in range(1000):\n    print(f'line {i} of the task output')\n"
TARGETS_MS = {"--version": 60.0, "execution logs": 120.0}


def build_execution(db: Path) -> str:
    """One execution whose task printed 1,000 lines, run by the real engine."""
    from autokestra_engine import (
        Engine,
        EngineConfig,
        PluginRegistry,
        SecretStore,
        parse_workflow,
    )
    from autokestra_obs_collector import LogCollector
    from autokestra_obs_schema import open_writer

    writer = open_writer(db)
    collector = LogCollector(writer)
    registry = PluginRegistry.discover([])
    engine = Engine(
        dataclasses.replace(EngineConfig(db_path=db), max_concurrent_tasks=1),
        writer=writer,
        collector=collector,
        registry=registry,
        secrets=SecretStore(),
    )
    try:
        yaml_text = (
            "id: lines\ntasks:\n  - id: print\n    type: core/python.run\n"
            f"    inputs: {{script: {json.dumps(LINES_SCRIPT)}}}\n"
        )
        workflow = parse_workflow(yaml_text, registry, filename="lines.yaml")
        execution_id = engine.create_execution(workflow, {})
        engine.run(execution_id)
    finally:
        engine.close()
        collector.shutdown()
        writer.close()
    return execution_id


def cpu_ms(argv: list[str], env: dict[str, str]) -> float:
    """User+system CPU time of one run of argv (stdout and stderr to /dev/null)."""
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(argv, stdout=devnull, stderr=devnull, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return (usage.ru_utime + usage.ru_stime) * 1000


def imported_modules(argv: list[str], env: dict[str, str]) -> set[str]:
    """Top-level packages imported by a command, from ``-X importtime``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def main(argv: list[str]) -> int:
    """Measure; exit 1 when a CPU target is missed."""
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 21
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    # Measure an installed CLI: its modules' bytecode cached (an editable install under
    # PYTHONDONTWRITEBYTECODE=1 recompiles every module on every run: 3 to 10 times slower).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="autokestra-startup-") as folder:
        db = Path(folder) / "startup.db"
        execution_id = build_execution(db)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--version": [WORKFLOW, "--version"],
            "execution logs": [WORKFLOW, "--db", str(db), "execution", "logs", execution_id],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():
            cpu_ms(command, env)  # warm-up: writes the bytecode caches
        for _ in range(runs):
            for name, command in commands.items():
                samples[name].append(cpu_ms(command, env))
        base = median(samples["python -c pass"])
        ok = True
        print(f"CPU time, median of {runs} runs (user+system of the whole process):")
        for name, values in samples.items():
            value = median(values)
            line = f"  {name:16} {value:7.1f} ms  {value / base:5.2f}x python -c pass"
            target = TARGETS_MS.get(name)
            if target is not None:
                verdict = "PASS" if value < target else "FAIL"
                ok = ok and value < target
                line += f"  (target < {target:.0f} ms: {verdict})"
            print(line)
        if "--imports" in argv:
            python = [sys.executable, "-c", "pass"]
            baseline = imported_modules(python[1:], env)
            script = [WORKFLOW]
            for name, command in list(commands.items())[1:]:
                extra = imported_modules([*script, *command[1:]], env) - baseline
                print(f"  {name}: imports {', '.join(sorted(extra))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
