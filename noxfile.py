"""Every build, test, benchmark and demo entry point of Autokestra (`nox -l` is the menu).

Packages are discovered from packages/*/pyproject.toml; a package's local dependencies are the
sibling distributions named in its [project].dependencies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "integration", "browser"]

ROOT = Path(__file__).parent
#: Every session installs against this one pin list, so tool versions change only by a commit.
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
TEST_DEPS = ["pytest>=8", "pytest-xdist>=3", "hypothesis>=6", "httpx2"]
LINT_DEPS = ["ruff>=0.6"]
TYPE_DEPS = ["mypy>=1.10", "types-PyYAML", "pytest>=8", "hypothesis>=6", "httpx2", "playwright"]


def _working_interpreters() -> list[str]:
    """The CPython versions, 3.11 or newer, whose ``python3.N`` on PATH actually runs.

    A pyenv shim for a version that is installed but not selected exits non-zero, so a name on
    PATH is not enough: each candidate is run once.
    """
    found = []
    for minor in range(11, 16):
        name = f"python3.{minor}"
        if shutil.which(name) is None:
            continue
        probe = subprocess.run([name, "-c", "pass"], capture_output=True, check=False)
        if probe.returncode == 0:
            found.append(f"3.{minor}")
    return found or ["3.11"]


#: The tests run on every interpreter present on the machine (at least 3.11).
PYTHONS = _working_interpreters()


def _distribution_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _discover() -> dict[str, tuple[Path, list[str]]]:
    """Map each package folder name to (folder, local dependency folder names)."""
    projects: dict[str, tuple[str, Path, list[str]]] = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        meta = tomllib.loads(pyproject.read_text())["project"]
        deps = [_distribution_name(d) for d in meta.get("dependencies", [])]
        projects[pyproject.parent.name] = (meta["name"].lower(), pyproject.parent, deps)
    by_dist = {dist: folder for folder, (dist, _, _) in projects.items()}
    return {
        folder: (path, [by_dist[d] for d in deps if d in by_dist])
        for folder, (_, path, deps) in projects.items()
    }


PACKAGES = _discover()


def _closure(package: str) -> list[Path]:
    """The package and every local package it depends on, transitively."""
    seen: list[str] = []
    stack = [package]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.append(name)
            stack.extend(PACKAGES[name][1])
    return [PACKAGES[name][0] for name in seen]


def _editable(paths: list[Path]) -> list[str]:
    args: list[str] = []
    for path in paths:
        args += ["-e", str(path)]
    return args


def _all_packages() -> list[Path]:
    return [path for path, _ in PACKAGES.values()]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check over packages, tests, tools and the noxfile."""
    session.install(*CONSTRAINTS, *LINT_DEPS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's source, its tests, the end-to-end suite and tools."""
    session.install(*CONSTRAINTS, *TYPE_DEPS, *_editable(_all_packages()))
    targets = [str(path / "src") for path in _all_packages()]
    session.run("mypy", "--strict", *targets)
    # Each package's tests have their own conftest module: one mypy run per folder.
    for tests_dir in [path / "tests" for path in _all_packages()] + [ROOT / "tests-integration"]:
        session.run("mypy", "--strict", str(tests_dir))
    session.run("mypy", "--strict", str(ROOT / "tools" / "bench"))


@nox.session(python=PYTHONS)
@nox.parametrize("package", sorted(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """One package's unit tests, with only that package and its local dependencies installed."""
    session.install(*CONSTRAINTS, *TEST_DEPS, *_editable(_closure(package)))
    tests_dir = PACKAGES[package][0] / "tests"
    session.run("pytest", "-n", "auto", "-q", str(tests_dir), *session.posargs)


def _ensure_prometheus(session: nox.Session) -> None:
    """Install Debian's prometheus for the telemetry test when missing (root only)."""
    if shutil.which("prometheus") is not None:
        return
    if os.geteuid() != 0:
        session.error(
            "the telemetry integration test needs Prometheus: run as root (this session then"
            " installs it) or `sudo apt-get install -y prometheus`"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-q", external=True, env=env)
    session.run("apt-get", "install", "-y", "-q", "prometheus", external=True, env=env)


@nox.session(python=PYTHONS)
@nox.parametrize("launcher", ["fork", "spawn"])
def integration(session: nox.Session, launcher: str) -> None:
    """The end-to-end suite: every package installed, real processes, real database files.

    Run once per plugin launcher (execution.launcher, through AUTOKESTRA_LAUNCHER): the
    whole suite, not a subset, because every workflow in it starts Python plugins.
    """
    session.install(*CONSTRAINTS, *TEST_DEPS, *_editable(_all_packages()))
    _ensure_prometheus(session)
    browser_tests = str(ROOT / "tests-integration" / "browser")
    # One worker more than CPUs: these tests spend much of their time waiting on the child
    # processes they start (measured on 2 CPUs: 305 s with 2 workers, 210 s with 3).
    workers = str((os.cpu_count() or 1) + 1)
    session.run(
        "pytest",
        "-n",
        workers,
        "-q",
        "tests-integration",
        "--ignore",
        browser_tests,
        *session.posargs,
        env={"AUTOKESTRA_LAUNCHER": launcher},
    )


#: Debian's Chromium, driven by Playwright from PyPI (never a browser Playwright downloads).
CHROMIUM = Path("/usr/bin/chromium")


def _ensure_chromium(session: nox.Session) -> None:
    """Install Debian's chromium package when it is missing, or stop with what to do."""
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        session.error(
            f"{CHROMIUM} is missing and cannot be installed here (needs apt-get as root): "
            "install Debian's chromium package (apt-get install chromium), then rerun"
        )
    session.run(apt, "update", external=True)
    session.run(apt, "install", "-y", "chromium", external=True)
    if not CHROMIUM.exists():
        session.error(f"apt-get installed chromium but {CHROMIUM} is still missing")


@nox.session
def browser(session: nox.Session) -> None:
    """Browser tests of the console: Playwright drives Debian's chromium (installed if missing)."""
    _ensure_chromium(session)
    session.install(*CONSTRAINTS, *TEST_DEPS, "playwright", *_editable(_all_packages()))
    # One browser for the whole session: no xdist workers (each would launch its own).
    session.run("pytest", "-q", "-p", "no:xdist", "tests-integration/browser", *session.posargs)


def _latest_execution(session: nox.Session, workflow_id: str) -> str:
    """The id of the newest execution of ``workflow_id``, read through the CLI's --json."""
    listing = str(
        session.run(
            "workflow",
            "execution",
            "list",
            "--workflow",
            workflow_id,
            "--limit",
            "1",
            "--json",
            silent=True,
        )
    )
    return str(json.loads(listing[listing.index("[") :])[0]["execution_id"])


@nox.session
def demo(session: nox.Session) -> None:
    """Run the demo on the default embedded database (./.autokestra/autokestra.db)."""
    session.install(*CONSTRAINTS, *_editable(_all_packages()))
    session.run("workflow", "db", "migrate")
    # Every example runs; failing-pipeline, cleanup-on-failure and notify-on-failure are meant
    # to fail (exit 1), so 1 is not an error.
    secret_env = {"AUTOKESTRA_SECRET_API_TOKEN": "demo-t0ken-4f2a9c1e"}
    # A subflow starts a registered workflow: subflow.yaml calls subflow-child.yaml.
    session.run("workflow", "apply", str(ROOT / "examples" / "workflows" / "subflow-child.yaml"))
    for example in sorted((ROOT / "examples" / "workflows").glob("*.yaml")):
        if example.stem == "webhook":  # started by a signed request to a server, not `run`
            session.run("workflow", "validate", str(example))
            continue
        session.run("workflow", "run", str(example), env=secret_env, success_codes=[0, 1])
    session.run("workflow", "execution", "list")
    fan_out = _latest_execution(session, "fan-out-fan-in")
    session.run("workflow", "execution", "logs", fan_out)
    session.run("workflow", "execution", "inspect", fan_out, "--timeline")
    failed = _latest_execution(session, "failing-pipeline")
    session.run("workflow", "execution", "inspect", failed)
    session.run("workflow", "execution", "logs", failed, "--level", "WARN,ERROR")
    session.run("workflow", "execution", "inspect", failed, "--audit")
    for_each = _latest_execution(session, "for-each")
    session.run("workflow", "execution", "inspect", for_each, "--task", "resize")
    session.run("workflow", "execution", "logs", for_each, "--task", "resize")
    conditions = _latest_execution(session, "conditions")
    session.run("workflow", "execution", "inspect", conditions, "--audit")
    session.run("workflow", "db", "status")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks in tools/bench/ (figures are ratios against same-run baselines)."""
    # web.py serves through Starlette's TestClient (httpx2) and drives Chromium (playwright).
    session.install(*CONSTRAINTS, "httpx2", "playwright", *_editable(_all_packages()))
    scripts = sorted((ROOT / "tools" / "bench").glob("*.py"))
    selected = [s for s in scripts if not session.posargs or s.stem in session.posargs]
    for script in selected:
        # -P: the script's folder must not shadow the standard library (inspect.py would).
        session.run("python", "-P", str(script))


@nox.session(venv_backend="none")
def dev(session: nox.Session) -> None:
    """Create .venv with every package editable plus the dev tools, and say how to use it."""
    session.run("python3", "-m", "venv", ".venv", external=True)
    pip = str(ROOT / ".venv" / "bin" / "pip")
    session.run(pip, "install", "-q", "--upgrade", "pip", external=True)
    session.run(
        pip,
        "install",
        "-q",
        *CONSTRAINTS,
        *TEST_DEPS,
        *LINT_DEPS,
        *TYPE_DEPS,
        "nox",
        *_editable(_all_packages()),
        external=True,
    )
    session.log("Activate with: source .venv/bin/activate   (then: workflow --help)")
