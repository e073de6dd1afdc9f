"""The HTML pages: what they show, what they escape, where they link (TestClient)."""

from __future__ import annotations

import re
from html import unescape
from typing import TYPE_CHECKING

from starlette.testclient import TestClient

from autokestra_obs_schema import now_ms
from autokestra_obs_store.testing import wide_execution, write_execution
from autokestra_obs_web import create_app

if TYPE_CHECKING:
    from conftest import Database


def _text(html: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", " ", html))


class TestExecutionsPage:
    def test_lists_executions_newest_first_with_links(
        self, client: TestClient, database: Database
    ) -> None:
        """The list shows each execution (short id, workflow, state) linking to its page."""
        html = client.get("/").text
        order = [html.index(f"/executions/{eid}") for eid in (database.running, database.success)]
        assert order == sorted(order)
        for eid in (database.success, database.failure, database.retry, database.running):
            assert f'data-copy="{eid}"' in html  # the whole id, one click to copy
        assert "etl" in html and "FAILED" in html and "RUNNING" in html

    def test_filters_and_pages(self, client: TestClient, database: Database) -> None:
        """state filters; limit gives keyset pages with an Older link."""
        failed = client.get("/?state=FAILED").text
        assert database.failure in failed and database.success not in failed
        first = client.get("/?limit=2").text
        older = re.search(r'rel="next" href="([^"]+)"', first)
        assert older is not None
        second = client.get(unescape(older.group(1))).text
        assert database.failure in second and database.success in second
        assert database.running not in second

    def test_partial_renders_rows_only(self, client: TestClient) -> None:
        """?partial=1 (the auto-refresh) returns the table body alone."""
        part = client.get("/?partial=1").text.strip()
        assert part.startswith("<tbody>") and "<html" not in part

    def test_empty_result_says_so(self, client: TestClient) -> None:
        """A filter matching nothing says "No executions found"."""
        assert "No executions found" in client.get("/?workflow=none-such").text


class TestExecutionPage:
    def test_failure_shows_error_stderr_and_cancelled_dependants(
        self, client: TestClient, database: Database
    ) -> None:
        """The failed task's error and stderr tail, and UPSTREAM_FAILED dependants."""
        text = _text(client.get(f"/executions/{database.failure}").text)
        assert "Command exited with code 2" in text
        assert "make: *** [Makefile:12: all] Error 2" in text
        assert "UPSTREAM_FAILED" in text
        assert "Verified" in text

    def test_gantt_has_one_lane_per_task(self, client: TestClient, database: Database) -> None:
        """The SVG has one lane per task, bars per attempt, the critical path marked."""
        html = client.get(f"/executions/{database.success}").text
        svg = html[html.index("<svg") : html.index("</svg>")]
        lanes = re.findall(r'<g class="lane[^"]*" data-task="([^"]+)"', svg)
        assert lanes == ["fetch", "transform", "notify", "load"]
        assert svg.count('class="bar run') == 4
        assert 'class="lane critical" data-task="fetch"' in svg

    def test_retries_show_attempts_and_backoff(
        self, client: TestClient, database: Database
    ) -> None:
        """A retried task shows each attempt and a wait bar for the backoff between them."""
        html = client.get(f"/executions/{database.retry}").text
        svg = html[html.index("<svg") : html.index("</svg>")]
        assert "retry backoff" in svg
        assert 'class="fail-mark"' in svg
        assert '<td>2</td><td><span class="state state-failed">' in html
        assert '<td>3</td><td><span class="state state-success">' in html

    def test_running_execution_says_in_progress(
        self, client: TestClient, database: Database
    ) -> None:
        """A live execution says so and asks the page script to refresh it."""
        html = client.get(f"/executions/{database.running}").text
        assert "Execution in progress" in html
        assert 'data-in-progress="1"' in html
        live = client.get(f"/executions/{database.running}/live").text
        assert "<html" not in live and "download" in live

    def test_inputs_masked_and_secret_absent(self, client: TestClient, database: Database) -> None:
        """Inputs show the mask; the literal secret of the stored source never appears."""
        html = client.get(f"/executions/{database.success}").text
        assert "***SECRET***" in html
        assert database.secret not in html

    def test_unknown_execution_is_404_page(self, client: TestClient) -> None:
        """An unknown id is a 404 page naming it."""
        response = client.get("/executions/does-not-exist")
        assert response.status_code == 404
        assert "Execution not found: does-not-exist" in response.text


class TestUntrustedText:
    def test_hostile_values_are_escaped_and_made_visible(
        self, client: TestClient, database: Database
    ) -> None:
        """A workflow id with markup, ANSI and bidi renders as inert, visible text."""
        hostile_workflow = "<img src=x onerror=alert(1)>\x1b[31m\u202e"
        with database.writer.transaction() as conn:
            conn.execute(
                "UPDATE executions SET workflow_id = ?, message = ? WHERE execution_id = ?",
                (hostile_workflow, database.hostile, database.failure),
            )
        for url in ("/", f"/executions/{database.failure}"):
            html = client.get(url).text
            assert "<img src=x" not in html and "<script>" not in html
            assert "\x1b" not in html and "\u202e" not in html
            assert "&lt;img src=x onerror=alert(1)&gt;\\x1b[31m\\u202e" in html
        page = client.get(f"/executions/{database.failure}").text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page

    def test_pages_hold_no_inline_script_or_style(
        self, client: TestClient, database: Database
    ) -> None:
        """Every script is the vendored file; no inline handlers, script bodies or styles."""
        for url in ("/", f"/executions/{database.retry}", "/workflows", "/search"):
            html = client.get(url).text
            assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/console.js" defer>']
            assert " style=" not in html and "<style" not in html
            assert not re.search(r"\son[a-z]+=", html)


class TestWorkflowsPage:
    def test_lists_registered_workflows_with_next_fire(
        self, client: TestClient, database: Database
    ) -> None:
        """Registered workflows show their trigger, schedule and next cron fire."""
        assert "No workflows registered" in client.get("/workflows").text
        now = now_ms()
        with database.writer.transaction() as conn:
            conn.execute(
                "INSERT INTO workflows (workflow_id, source, enabled, trigger_type, schedule,"
                " created_at, updated_at, next_fire_at) VALUES (?, ?, 1, 'cron', ?, ?, ?, ?)",
                ("nightly", "id: nightly", "0 2 * * *", now, now, 1_795_665_600_000),
            )
        text = _text(client.get("/workflows").text)
        assert "nightly" in text and "0 2 * * *" in text
        assert "2026-11-26T04:00:00.000Z" in text


class TestStatic:
    def test_vendored_assets_are_served(self, client: TestClient) -> None:
        """The script and the stylesheet come from the package, with their types."""
        js = client.get("/static/console.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        css = client.get("/static/console.css")
        assert "prefers-color-scheme: dark" in css.text


class TestBigExecution:
    def test_details_inline_only_for_notable_tasks_beyond_50(self, database: Database) -> None:
        """Over 50 tasks: failed ones inline, every task reachable on its own page."""
        execution_id = write_execution(database.writer, wide_execution(60, fail_task=20))
        with TestClient(create_app(database.path)) as client:
            html = client.get(f"/executions/{execution_id}").text
            assert html.count('class="task-detail"') == 1  # only the failed task-020
            assert 'id="task-task-020"' in html
            assert f'href="/executions/{execution_id}/tasks/task-001"' in html
            assert html.count('<g class="lane') == 60
            task = client.get(f"/executions/{execution_id}/tasks/task-001")
            assert task.status_code == 200 and "./step.sh 1" in task.text
            missing = client.get(f"/executions/{execution_id}/tasks/nope")
            assert missing.status_code == 404
            assert f"Task not found: nope in execution {execution_id}" in missing.text


class TestSubflowLinks:
    def test_parent_and_child_pages_link_to_each_other(
        self, client: TestClient, database: Database
    ) -> None:
        """A child's page names its parent and task; the parent's page lists the child."""
        with database.writer.transaction() as conn:
            conn.execute(
                "UPDATE executions SET parent_execution_id = ?, parent_task_id = ?"
                " WHERE execution_id = ?",
                (database.failure, "call", database.success),
            )
        child = client.get(f"/executions/{database.success}").text
        assert f'href="/executions/{database.failure}"' in child
        assert f"Parent {database.failure} (task call)" in " ".join(_text(child).split())
        parent = client.get(f"/executions/{database.failure}").text
        assert f'href="/executions/{database.success}"' in parent
        assert "Subflow" in _text(parent) and "task call" in _text(parent)
        api = client.get(f"/api/executions/{database.failure}").json()
        assert api["execution"]["children"] == [
            {
                "execution_id": database.success,
                "task_id": "call",
                "workflow_id": api["execution"]["children"][0]["workflow_id"],
                "state": "SUCCESS",
            }
        ]
        listed = {e["execution_id"]: e for e in client.get("/api/executions").json()}
        assert listed[database.success]["parent_execution_id"] == database.failure
