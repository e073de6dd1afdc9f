"""Fixtures of the browser tests: real executions, real consoles, one real Chromium.

- one Chromium per test session (Debian's ``/usr/bin/chromium`` driven by Playwright from
  PyPI; never a downloaded browser), a fresh context (cookies, storage) per test;
- a database where the real engine ran every example workflow (``workflow run``), and a
  scratch database for executions a test starts itself;
- ``workflow ui`` processes serving them, stopped when the session ends, also on failure.

Run with ``tools/nox -s browser`` (it installs chromium when it is missing).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e import WORKFLOW
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workflows"
#: Screenshots referenced from docs/web.md, rewritten by every run so they cannot go stale.
IMAGES = ROOT / "docs" / "images"
#: The secret the examples run with: no page or API response may contain it.
SECRET = "demo-t0ken-4f2a9c1e"
STARTED = re.compile(r"^Execution (\S+) started$")


def clean_env() -> dict[str, str]:
    """The environment without the developer's Autokestra settings, plus the demo secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOKESTRA")}
    env["AUTOKESTRA_SECRET_API_TOKEN"] = SECRET
    return env


@dataclass(frozen=True)
class Served:
    """A ``workflow ui`` process and the URL it serves."""

    process: subprocess.Popen[str]
    base: str
    db: Path


def start_ui(db: Path, *args: str) -> Served:
    """Start ``workflow ui`` on a free port; return once it printed its Listening line."""
    process = subprocess.Popen(
        [WORKFLOW, "--db", str(db), "ui", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    if not line.startswith("Listening on http://"):
        stop_ui(process)
        pytest.fail(f"workflow ui did not start: {line}")
    base = line.removeprefix("Listening on ").strip().rstrip("/")
    return Served(process, base, db)


def stop_ui(process: subprocess.Popen[str]) -> int:
    """Stop a console the way an operator does (SIGTERM); kill it if it does not go."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait(timeout=10)
    if process.stderr is not None:
        process.stderr.close()
    return code


def run_workflow(db: Path, flow: Path, cwd: Path) -> tuple[str, int]:
    """Run a workflow to its end with the real engine; return its execution id and exit code."""
    done = subprocess.run(
        [WORKFLOW, "--db", str(db), "run", str(flow)],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=cwd,
        timeout=120,
        check=False,
    )
    match = STARTED.match(done.stdout.splitlines()[0] if done.stdout else "")
    assert match, done.stdout + done.stderr
    return match.group(1), done.returncode


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, started once."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the whole session (Debian's, never a downloaded one)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); "
            "`tools/nox -s browser` does it when it runs as root"
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (light theme, a laptop-sized window)."""
    opened = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab of the test's context."""
    return context.new_page()


@dataclass(frozen=True)
class Examples:
    """The database of the example executions: their ids by workflow id (in the order they
    ran), the workflows whose run failed (exit 1), and how many child executions their
    subflows started (listed too)."""

    db: Path
    ids: dict[str, str]
    failed: frozenset[str]
    children: int


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Examples:
    """Every example workflow run by the real engine (the failure demos fail)."""
    folder = tmp_path_factory.mktemp("examples")
    db = folder / "ak.db"
    ids = {}
    failed = set()
    # As the demo does: subflow.yaml calls the registered subflow-child.yaml, and webhook.yaml
    # is started by a signed request to a server (test_webhook_e2e.py), not by `run`.
    applied = subprocess.run(
        [WORKFLOW, "--db", str(db), "apply", str(EXAMPLES / "subflow-child.yaml")],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    for flow in sorted(EXAMPLES.glob("*.yaml")):
        if flow.stem == "webhook":
            continue
        execution_id, code = run_workflow(db, flow, folder)
        ids[flow.stem] = execution_id
        if code != 0:
            failed.add(flow.stem)
    listed = subprocess.run(
        [WORKFLOW, "--db", str(db), "execution", "list", "--json", "--limit", "100"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=True,
    )
    children = sum(1 for row in json.loads(listed.stdout) if row["parent_execution_id"])
    return Examples(db, ids, frozenset(failed), children)


@pytest.fixture(scope="session")
def console(examples: Examples) -> Iterator[Served]:
    """``workflow ui`` on the examples' database (loopback, no token)."""
    served = start_ui(examples.db, "--listen", "127.0.0.1:0")
    try:
        yield served
    finally:
        stop_ui(served.process)


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``workflow ui`` on a database for executions the tests start themselves."""
    folder = tmp_path_factory.mktemp("scratch")
    db = folder / "ak.db"
    subprocess.run(
        [WORKFLOW, "--db", str(db), "db", "migrate"],
        check=True,
        capture_output=True,
        env=clean_env(),
    )
    served = start_ui(db, "--listen", "127.0.0.1:0")
    try:
        yield served
    finally:
        stop_ui(served.process)


@pytest.fixture
def start_console() -> Iterator[Callable[..., Served]]:
    """Start more ``workflow ui`` processes in a test; each is stopped when the test ends."""
    started: list[Served] = []

    def start(db: Path, *args: str) -> Served:
        served = start_ui(db, *args)
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            stop_ui(served.process)
