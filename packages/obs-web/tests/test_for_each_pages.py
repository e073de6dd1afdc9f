"""The execution page groups a for_each task's iterations and says why a task was skipped."""

from __future__ import annotations

import re
from html import unescape
from typing import TYPE_CHECKING

from starlette.testclient import TestClient

from autokestra_obs_store.testing import fan_out_execution, skipped_execution, write_execution
from autokestra_obs_web import create_app

if TYPE_CHECKING:
    from conftest import Database


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


class TestIterations:
    def test_iterations_grouped_under_their_task_past_ten_counted(self, database: Database) -> None:
        """process, then 10 indented iteration rows, then one row counting the other 110
        that links to the task's page; the chart draws the same lanes."""
        eid = write_execution(database.writer, fan_out_execution(120, seed=51))
        with TestClient(create_app(database.path)) as client:
            html = client.get(f"/executions/{eid}").text
        rows = re.findall(
            r'<tr class="(task[^"]*|iteration more)" data-(?:task|parent)="([^"]+)"', html
        )
        ids = [task_id for _, task_id in rows]
        start = ids.index("process")
        assert ids[start + 1 : start + 12] == [*(f"process[{i}]" for i in range(10)), "process"]
        assert [kind for kind, _ in rows][start + 1 : start + 12] == [
            *["task iteration"] * 10,
            "iteration more",
        ]
        assert ids[start + 12] == "total"
        text = _text(html)
        assert "… 110 more iterations of process (110 SUCCESS): all iterations" in text
        assert f'href="/executions/{eid}/tasks/process">all iterations' in html
        options = re.findall(r'<option value="(process[^"]*)"', html)
        assert options == ["process", *(f"process[{i}]" for i in range(10))]
        svg = html[html.index("<svg") : html.index("</svg>")]
        lanes = re.findall(r'<g class="lane[^"]*" data-task="([^"]+)"', svg)
        assert lanes == ["list", "process", *(f"process[{i}]" for i in range(10)), "total"]

    def test_the_task_page_lists_every_iteration(self, database: Database) -> None:
        """/tasks/process lists all 120 iterations, each linking to its own page."""
        eid = write_execution(database.writer, fan_out_execution(120, seed=52))
        with TestClient(create_app(database.path)) as client:
            page = client.get(f"/executions/{eid}/tasks/process")
            one = client.get(f"/executions/{eid}/tasks/process%5B13%5D")
        assert page.status_code == 200
        assert "Iterations (120)" in page.text
        for index in (0, 57, 119):
            link = f'href="/executions/{eid}/tasks/process%5B{index}%5D"'
            assert link in page.text
        assert one.status_code == 200 and "Iterations (" not in one.text
        assert "process[13]" in one.text


class TestSkipped:
    def test_skipped_tasks_show_their_reason_and_audit_event(self, database: Database) -> None:
        """A SKIPPED task shows its reason code and what it means; the audit table shows
        the task's transition; the trail verifies."""
        eid = write_execution(database.writer, skipped_execution())
        with TestClient(create_app(database.path)) as client:
            html = client.get(f"/executions/{eid}").text
        text = _text(html)
        assert (
            "Skipped: CONDITION_FALSE : its if: condition was false. No attempt was made." in text
        )
        assert (
            "Skipped: UPSTREAM_SKIPPED : a task it needs was skipped (run_if: all_success)" in text
        )
        assert "task nothing-to-do : PENDING → SKIPPED (CONDITION_FALSE)" in text
        assert "task archive : PENDING → SKIPPED (UPSTREAM_SKIPPED)" in text
        assert "PENDING → RUNNING" in text and "RUNNING → SUCCESS" in text
        assert "Verified: the hash chain and the state transitions hold (7 events)" in text
        assert 'title="its if: condition was false"' in html
