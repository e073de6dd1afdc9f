"""A live execution in the browser, and hostile plugin output shown inert.

The real engine (``workflow run``) runs while the page is open: the list shows it running,
its page says so, and its log lines appear without a reload, each exactly once, in order,
through the SSE stream; the overview turns SUCCESS by itself when it ends.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2e import WORKFLOW
from playwright.sync_api import ConsoleMessage, Page, expect

from autokestra_obs_schema import now_ms, open_writer
from autokestra_obs_store.testing import success_execution, write_execution

if TYPE_CHECKING:
    from conftest import Served

pytestmark = pytest.mark.integration

STARTED = re.compile(r"^Execution (\S+) started$")
LINES = 80
#: Lines of the big-log execution (DESIGN.md §7: 100,000 lines, at most 5,000 rows shown).
BIG = 100_000


def live_source(flag: Path) -> str:
    """A workflow printing LINES lines; halfway it waits for ``flag`` to exist, so the test
    sees the first half on the page while the execution is certainly still running."""
    return f"""
id: live-lines
tasks:
  - id: hold
    type: core/wait.sleep
    inputs: {{duration: 1s}}
  - id: emit
    type: core/python.run
    needs: [hold]
    inputs:
      script: |
        import os, time
        for i in range({LINES}):
            if i == {LINES // 2}:
                deadline = time.time() + 60
                while not os.path.exists({str(flag)!r}) and time.time() < deadline:
                    time.sleep(0.05)
            print(f"live line {{i:03d}}", flush=True)
            time.sleep(0.03)
"""


HOSTILE = r"""
id: hostile-output
tasks:
  - id: shout
    type: core/python.run
    inputs:
      script: |
        import sys
        print('<script>window.__pwned = 1</script>', flush=True)
        print('<img src=x onerror="window.__pwned = 2">', flush=True)
        print('\x1b[31mred\x1b[0m and \u202eevil', flush=True)
        print('<svg onload="window.__pwned = 3">', file=sys.stderr, flush=True)
        raise SystemExit(1)
"""


def _start(db: Path, flow: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [WORKFLOW, "--db", str(db), "run", str(flow)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=flow.parent,
    )
    assert process.stdout is not None
    match = STARTED.match(process.stdout.readline().strip())
    if match is None:
        process.kill()
        process.communicate(timeout=10)
        pytest.fail("workflow run did not print its execution id")
    return process, match.group(1)


def _finish(process: subprocess.Popen[str]) -> int:
    try:
        process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)
    return process.returncode


class TestLiveExecution:
    def test_lines_appear_once_in_order_without_reload(
        self, page: Page, scratch: Served, tmp_path: Path
    ) -> None:
        """Running in the list and on its page; every line appears once, in order, live; the
        list and the overview turn SUCCESS by themselves."""
        flow = tmp_path / "live.yaml"
        flag = tmp_path / "go-on"
        flow.write_text(live_source(flag))
        process, execution_id = _start(scratch.db, flow)
        listing = page.context.new_page()
        try:
            listing.goto(scratch.base + "/")
            row = listing.locator("tr.execution", has_text=execution_id[-8:])
            expect(row.locator("td:nth-child(3)")).to_have_text("RUNNING")
            listing.evaluate("window.__sameDocument = true")
            page.goto(f"{scratch.base}/executions/{execution_id}")
            expect(page.locator(".in-progress")).to_have_text("Execution in progress")
            page.evaluate("window.__sameDocument = true")
            half = f"live line {LINES // 2 - 1:03d}"
            expect(page.locator("#log-rows")).to_contain_text(half, timeout=30_000)
            # The first half is on the page while the plugin waits for the flag: live.
            expect(page.locator("#log-status")).to_have_text("Following the live log")
            flag.touch()
            expect(page.locator("#log-status")).to_have_text(
                "Execution ended: SUCCESS", timeout=30_000
            )
        finally:
            assert _finish(process) == 0
        assert page.evaluate("window.__sameDocument") is True  # never reloaded
        messages = page.locator("#log-rows td.msg").all_inner_texts()
        lines = [m for m in messages if m.startswith("live line ")]
        assert lines == [f"live line {i:03d}" for i in range(LINES)]
        ids = [int(i) for i in page.locator("#log-rows tr").evaluate_all(
            "rows => rows.map(r => r.dataset.id)"
        )]  # fmt: skip
        assert ids == sorted(set(ids))
        expect(page.locator(".overview .state")).to_have_text("SUCCESS", timeout=10_000)
        # The list refreshes itself: the same row turns SUCCESS without a reload.
        expect(row.locator("td:nth-child(3)")).to_have_text("SUCCESS", timeout=10_000)
        assert listing.evaluate("window.__sameDocument") is True


class TestUntrustedText:
    def test_hostile_output_is_shown_as_text_and_never_runs(
        self, page: Page, scratch: Served, tmp_path: Path
    ) -> None:
        """<script>, onerror=, ANSI and bidi from a plugin: visible as text, inert."""
        flow = tmp_path / "hostile.yaml"
        flow.write_text(HOSTILE)
        process, execution_id = _start(scratch.db, flow)
        assert _finish(process) == 1
        reports: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            reports.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda error: reports.append(str(error)))
        page.goto(f"{scratch.base}/executions/{execution_id}")
        expect(page.locator("#log-status")).to_have_text("Execution ended: FAILED")
        log = page.locator("#log-rows")
        expect(log).to_contain_text("<script>window.__pwned = 1</script>")
        expect(log).to_contain_text('<img src=x onerror="window.__pwned = 2">')
        expect(log).to_contain_text("\\x1b[31mred\\x1b[0m and \\u202eevil")
        error = page.locator("#task-shout .error")
        expect(error).to_contain_text('<svg onload="window.__pwned = 3">')
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#log-rows script, #log-rows img, .error svg").count() == 0
        body = page.locator("body").inner_text()
        assert "\x1b" not in body and "\u202e" not in body
        assert not [r for r in reports if "pwned" in r]


class TestBigLog:
    def test_newest_lines_first_and_a_bounded_window(self, page: Page, scratch: Served) -> None:
        """100,000 lines: the newest show first; scrolling back loads older pages by keyset
        but the page never holds more than 5,000 rows; "jump to the latest" comes back."""
        writer = open_writer(scratch.db)
        try:
            record = success_execution(now_ms() - 60_000, seed=99)
            execution_id = write_execution(writer, record)
            with writer.transaction() as conn:
                conn.executemany(
                    "INSERT INTO execution_logs (execution_id, task_id, attempt, timestamp,"
                    " level, source, message) VALUES (?, 'load', 1, ?, 'INFO', 'worker', ?)",
                    ((execution_id, record.created + n, f"big line {n:06d}") for n in range(BIG)),
                )
        finally:
            writer.close()
        page.goto(f"{scratch.base}/executions/{execution_id}")
        rows = page.locator("#log-rows tr")
        expect(rows.last).to_contain_text(f"big line {BIG - 1:06d}")
        assert rows.count() <= 500
        window = page.locator("#log-window")
        for _ in range(14):  # 14 pages of 500 older lines: more than the window holds
            before = rows.first.inner_text()
            window.evaluate("box => { box.scrollTop = 0; box.dispatchEvent(new Event('scroll')); }")
            expect(rows.first).not_to_have_text(before)
        assert rows.count() <= 5000
        expect(page.locator("#log-latest")).to_be_visible()
        first = int(rows.first.locator("td.msg").inner_text().rsplit(" ", 1)[1])
        last = int(rows.last.locator("td.msg").inner_text().rsplit(" ", 1)[1])
        assert last - first + 1 == rows.count()  # one contiguous window, no gap, no repeat
        page.click("#log-latest")
        expect(rows.last).to_contain_text(f"big line {BIG - 1:06d}")
        assert rows.count() <= 500
