"""The console in a real browser, on executions the real engine made from the examples.

What a person sees: the list, a failed pipeline with its cancelled dependants and stderr,
retries with their backoff, the timeline's lanes and overlapping parallel bars; and what
must never happen: a secret on screen or in the API, a missing security header, a 200 for
an unknown id. Screenshots for docs/web.md are taken here, from the examples.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect

if TYPE_CHECKING:
    from conftest import Examples, Served

pytestmark = pytest.mark.integration

#: The screenshots docs/web.md shows, rewritten by every run so they cannot go stale.
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SECRET = "demo-t0ken-4f2a9c1e"
SECRET_FORMS = (SECRET, SECRET.encode().hex(), SECRET.encode().hex().upper())


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def _wait_for_log(page: Page) -> None:
    """Wait until the log view has loaded and the finished execution's stream ended."""
    expect(page.locator("#log-rows tr").first).to_be_visible(timeout=15_000)
    expect(page.locator("#log-status")).to_contain_text("Execution ended", timeout=15_000)


def _screenshot(page: Page, name: str, selector: str | None = None) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    target = page.locator(selector) if selector else page
    target.screenshot(path=str(IMAGES / name))


class TestExecutionsList:
    def test_lists_the_example_executions(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """Each example execution is a row with its workflow and final state, newest first."""
        page.goto(console.base + "/")
        rows = page.locator("tr.execution")
        # subflow.yaml starts three children: north, then one per item of its for_each.
        assert examples.children == 3
        expect(rows).to_have_count(len(examples.ids) + examples.children)
        workflows = rows.locator("td:nth-child(2)").all_inner_texts()
        expected = []  # run last, shown first; a subflow's children started after it
        for workflow in reversed(examples.ids):
            if workflow == "subflow":
                expected += ["subflow-child"] * examples.children
            expected.append(workflow)
        assert workflows == expected
        states = dict(
            zip(workflows, rows.locator("td:nth-child(3)").all_inner_texts(), strict=True)
        )
        assert "failing-pipeline" in examples.failed
        assert {w for w, state in states.items() if state == "FAILED"} == examples.failed
        assert {states[w] for w in workflows if w not in examples.failed} == {"SUCCESS"}
        _screenshot(page, "console-executions.png")

    def test_filter_by_state_and_follow_the_link(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """Filtering on FAILED leaves the failed examples; a row links to its page."""
        page.goto(console.base + "/")
        page.select_option("select[name=state]", "FAILED")
        page.click("form.filters button[type=submit]")
        rows = page.locator("tr.execution")
        expect(rows).to_have_count(len(examples.failed))
        rows.filter(has_text="failing-pipeline").locator("td a").first.click()
        expect(page).to_have_url(f"{console.base}/executions/{examples.ids['failing-pipeline']}")


class TestExecutionPage:
    def test_failure_shows_stderr_and_upstream_cancellation(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """build FAILED with its stderr tail; test and deploy CANCELLED (UPSTREAM_FAILED)."""
        page.goto(f"{console.base}/executions/{examples.ids['failing-pipeline']}")
        tasks = page.locator("table.task-table tr.task")
        expect(tasks).to_have_count(5)
        states = {
            row.get_attribute("data-task"): row.locator("td:nth-child(3)").inner_text()
            for row in tasks.all()
        }
        assert states["build"].startswith("FAILED")
        assert states["test"] == "CANCELLED UPSTREAM_FAILED"
        assert states["deploy"] == "CANCELLED UPSTREAM_FAILED"
        assert states["lint"] == "SUCCESS"
        error = page.locator("#task-build .error")
        expect(error).to_contain_text("error: undefined symbol 'frobnicate' in core/io.c:88")
        _wait_for_log(page)
        expect(page.locator(".verify.ok")).to_be_visible()
        _screenshot(page, "console-execution.png")

    def test_iterations_under_their_task_and_skips_with_their_reason(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """for-each: resize's three iterations are indented rows right after it; conditions:
        the skipped tasks say why, and the audit table shows their transitions."""
        page.goto(f"{console.base}/executions/{examples.ids['for-each']}")
        rows = page.locator("table.task-table tr.task")
        expect(rows).to_have_count(6)
        ids = [row.get_attribute("data-task") for row in rows.all()]
        assert ids == ["list", "resize", "resize[0]", "resize[1]", "resize[2]", "report"]
        expect(page.locator("tr.iteration")).to_have_count(3)
        page.goto(f"{console.base}/executions/{examples.ids['conditions']}")
        skipped = page.locator('tr.task[data-task="archive"] td:nth-child(3)')
        expect(skipped).to_have_text("SKIPPED UPSTREAM_SKIPPED")
        page.locator("#task-archive summary").click()
        expect(page.locator("#task-archive .skipped")).to_contain_text(
            "a task it needs was skipped (run_if: all_success)"
        )
        expect(page.locator("table.audit-events")).to_contain_text(
            "task nothing-to-do: PENDING → SKIPPED (CONDITION_FALSE)"
        )

    def test_retries_show_attempts_and_backoff(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """The flaky task shows two attempts, a failed one then a success, and the backoff."""
        page.goto(f"{console.base}/executions/{examples.ids['flaky-retry']}")
        page.locator("#task-call-api summary").click()  # open the task's details
        attempts = page.locator("#task-call-api table.attempts tbody tr")
        expect(attempts).to_have_count(2)
        assert attempts.nth(0).locator("td").nth(1).inner_text() == "FAILED"
        assert attempts.nth(1).locator("td").nth(1).inner_text() == "SUCCESS"
        lane = page.locator('svg.gantt g.lane[data-task="call-api"]')
        expect(lane.locator("rect.bar.run")).to_have_count(2)
        expect(lane.locator("rect.bar.wait")).not_to_have_count(0)
        expect(lane.locator("text.fail-mark")).to_have_count(1)

    def test_timeline_lanes_and_parallel_bars(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """One lane per task in order; parallel extracts' bars overlap, merge comes after.

        The engine runs max(2, CPUs) tasks at once: each extract overlaps at least one other.
        """
        page.goto(f"{console.base}/executions/{examples.ids['fan-out-fan-in']}")
        lanes = page.locator("svg.gantt g.lane")
        assert [lane.get_attribute("data-task") for lane in lanes.all()] == [
            "prepare",
            "extract-north",
            "extract-south",
            "extract-east",
            "extract-west",
            "merge",
        ]
        spans = []
        for region in ("north", "south", "east", "west"):
            box = page.locator(f'g.lane[data-task="extract-{region}"] rect.bar.run').bounding_box()
            assert box is not None
            spans.append((box["x"], box["x"] + box["width"]))
        for index, (start, end) in enumerate(spans):
            others = spans[:index] + spans[index + 1 :]
            assert any(start < o_end and o_start < end for o_start, o_end in others)
        merge = page.locator('g.lane[data-task="merge"] rect.bar.run').bounding_box()
        # The critical path is stroked (1.5 units wide): allow its half-width either side.
        assert merge is not None and merge["x"] >= max(end for _, end in spans) - 4
        expect(page.locator("g.lane.critical").first).to_be_visible()
        _screenshot(page, "console-timeline.png", "section.timeline")

    def test_dark_theme_renders(
        self, browser: Browser, console: Served, examples: Examples
    ) -> None:
        """The page reads in dark mode too (a screenshot for the docs)."""
        context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="dark")
        try:
            page = context.new_page()
            page.goto(f"{console.base}/executions/{examples.ids['fan-out-fan-in']}")
            _wait_for_log(page)
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(13, 17, 23)"
            _screenshot(page, "console-execution-dark.png")
        finally:
            context.close()


class TestSearch:
    def test_search_finds_the_failure_and_links_to_it(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """Searching a word of the build's stderr finds it, marked, linking to the execution."""
        page.goto(console.base + "/search")
        page.fill("input[name=q]", "frobnicate")
        page.click("form.filters button[type=submit]")
        hits = page.locator("tr.hit")
        expect(hits.first.locator("mark")).to_have_text("frobnicate")
        hits.first.locator("a").click()
        expect(page).to_have_url(f"{console.base}/executions/{examples.ids['failing-pipeline']}")


class TestSafety:
    def test_no_secret_in_any_page_or_api_response(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """The secret the example ran with appears nowhere: pages, API, logs, stream."""
        secret_id = examples.ids["secret"]
        page.goto(f"{console.base}/executions/{secret_id}")
        _wait_for_log(page)
        expect(page.locator("#log-rows")).to_contain_text("***SECRET***")
        shown = page.content() + page.locator("body").inner_text()
        for url in (
            "/",
            "/workflows",
            f"/executions/{secret_id}",
            "/api/executions",
            f"/api/executions/{secret_id}",
            f"/api/executions/{secret_id}/logs",
            f"/api/executions/{secret_id}/logs/stream",
            f'/api/search?q="{SECRET}"',
            "/api/search?q=authenticating",
        ):
            status, body, _ = _get(console.base + url)
            assert status == 200, url
            shown += body
        for form in SECRET_FORMS:
            assert form not in shown

    def test_security_headers_on_pages(
        self, page: Page, console: Served, examples: Examples
    ) -> None:
        """The browser receives the CSP (no 'unsafe-inline'), nosniff and no-referrer, and
        the page works under it: no CSP violation is reported."""
        violations: list[str] = []
        page.on("console", lambda message: violations.append(message.text))
        response = page.goto(f"{console.base}/executions/{examples.ids['hello']}")
        assert response is not None
        headers = response.headers
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        _wait_for_log(page)
        assert not [v for v in violations if "Content Security Policy" in v]

    def test_unknown_ids_are_404(self, page: Page, console: Served) -> None:
        """An unknown execution is a 404 page and a 404 from every API endpoint."""
        response = page.goto(f"{console.base}/executions/00000000-0000-7000-8000-000000000000")
        assert response is not None and response.status == 404
        expect(page.locator("p.error")).to_contain_text("Execution not found")
        for suffix in ("", "/logs", "/logs/stream"):
            status, body, _ = _get(f"{console.base}/api/executions/nope{suffix}")
            assert status == 404
            assert body == '{"error": "Execution not found: nope"}'
