"""The JSON API and the SSE stream (DESIGN.md §7), through Starlette's TestClient."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from starlette.testclient import TestClient

from autokestra_obs_schema import open_reader
from autokestra_obs_store import ExecutionInspector, inspection_document

if TYPE_CHECKING:
    from conftest import Database


def _events(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body into ``{event, id, data}`` dicts (comments skipped)."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {"event": "message"}
        for line in block.splitlines():
            if line.startswith(":") or not line:
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


class TestExecutionsApi:
    def test_list_is_newest_first_with_cli_keys(
        self, client: TestClient, database: Database
    ) -> None:
        """/api/executions is an array of execution objects, newest first, ISO timestamps."""
        body = client.get("/api/executions").json()
        assert [e["execution_id"] for e in body] == [
            database.running,
            database.retry,
            database.failure,
            database.success,
        ]
        first = body[-1]
        assert first["created_at"].endswith("Z") and "T" in first["created_at"]
        assert {"workflow_id", "state", "trigger_type", "log_entry_count", "inputs"} <= set(first)

    def test_filters_by_state_and_workflow(self, client: TestClient, database: Database) -> None:
        """state (any case) and workflow select the executions, like the CLI's options."""
        failed = client.get("/api/executions?state=failed").json()
        assert [e["execution_id"] for e in failed] == [database.failure]
        etl = client.get("/api/executions?workflow=etl").json()
        assert [e["execution_id"] for e in etl] == [database.success]

    def test_keyset_pages_follow_the_link_header(self, client: TestClient) -> None:
        """limit=1 pages walk every execution once through Link rel=next, then stop."""
        seen: list[str] = []
        url: str | None = "/api/executions?limit=1"
        while url is not None:
            response = client.get(url)
            seen += [e["execution_id"] for e in response.json()]
            link = response.headers.get("link")
            url = link[1 : link.index(">")] if link else None
        assert len(seen) == 4 and len(set(seen)) == 4

    def test_invalid_parameters_are_400(self, client: TestClient) -> None:
        """A bad state, limit or cursor is a 400 with a message, not a 500."""
        assert client.get("/api/executions?state=DONE").status_code == 400
        assert client.get("/api/executions?limit=0").status_code == 400
        response = client.get("/api/executions?before=garbage")
        assert response.status_code == 400
        assert "before" in response.json()["error"]

    def test_inspect_document_is_the_one_serializer(
        self, client: TestClient, database: Database
    ) -> None:
        """/api/executions/<id> equals the inspect --json document (bar the live clock)."""
        body = client.get(f"/api/executions/{database.failure}").json()
        conn = open_reader(database.path)
        try:
            expected = inspection_document(ExecutionInspector(conn).snapshot(database.failure))
        finally:
            conn.close()
        body["execution"].pop("observed_at")
        expected["execution"].pop("observed_at")
        assert body == expected
        build = next(t for t in body["tasks"] if t["task_id"] == "build")
        assert build["error"]["stderr_tail"]

    def test_no_secret_in_any_document(self, client: TestClient, database: Database) -> None:
        """The literal secret of the stored workflow source is masked everywhere."""
        for url in (
            "/api/executions",
            f"/api/executions/{database.success}",
            f"/api/executions/{database.success}/logs",
        ):
            assert database.secret not in client.get(url).text
        source = client.get(f"/api/executions/{database.success}").json()["execution"]
        assert "***SECRET***" in source["workflow_source"]

    def test_unknown_ids_are_404(self, client: TestClient) -> None:
        """Every per-execution endpoint answers 404 with the CLI's message."""
        for url in (
            "/api/executions/nope",
            "/api/executions/nope/logs",
            "/api/executions/nope/logs/stream",
        ):
            response = client.get(url)
            assert response.status_code == 404
            assert response.json() == {"error": "Execution not found: nope"}


class TestLogsApi:
    def test_records_match_logs_json_and_page_by_id(
        self, client: TestClient, database: Database
    ) -> None:
        """Records carry logs --json keys; next_after resumes exactly after the page."""
        first = client.get(f"/api/executions/{database.success}/logs?limit=4").json()
        assert list(first["records"][0]) == [
            "id",
            "execution_id",
            "task_id",
            "attempt",
            "timestamp",
            "level",
            "source",
            "message",
            "metadata",
        ]
        assert first["records"][0]["metadata"] == {"n": 0}
        rest = client.get(
            f"/api/executions/{database.success}/logs?after={first['next_after']}"
        ).json()
        messages = [r["message"] for r in first["records"] + rest["records"]]
        assert len(messages) == 6 and messages[0] == "Execution started"
        assert rest["next_after"] == rest["records"][-1]["id"]

    def test_filters_by_level_task_and_text(self, client: TestClient, database: Database) -> None:
        """level is a set, task selects one task, text is a case-insensitive substring."""
        base = f"/api/executions/{database.success}/logs"
        levels = client.get(base + "?level=warn,error").json()["records"]
        assert {r["level"] for r in levels} == {"WARN", "ERROR"}
        fetch = client.get(base + "?task=fetch").json()["records"]
        assert {r["task_id"] for r in fetch} == {"fetch"}
        text = client.get(base + "?text=ROWS").json()["records"]
        assert [r["message"] for r in text] == ["rows 42"]
        assert client.get(base + "?level=LOUD").status_code == 400

    def test_before_reads_the_newest_page_backwards(
        self, client: TestClient, database: Database
    ) -> None:
        """before= gives the newest matching entries below it, oldest first, and a cursor."""
        base = f"/api/executions/{database.success}/logs"
        newest = client.get(base + "?before=9223372036854775807&limit=2").json()
        assert [r["message"] for r in newest["records"]] == [
            "connection reset, retrying",
            "Execution SUCCESS",
        ]
        older = client.get(base + f"?before={newest['next_before']}&limit=10").json()
        assert len(older["records"]) == 4
        assert older["next_before"] is None
        assert client.get(base + "?before=5&after=1").status_code == 400


class TestStream:
    def test_finished_execution_streams_every_record_then_end(
        self, client: TestClient, database: Database
    ) -> None:
        """id: is the log id, data: the record, then an end event with the final state."""
        text = client.get(f"/api/executions/{database.success}/logs/stream").text
        events = _events(text)
        messages = [e for e in events if e["event"] == "message"]
        assert [int(e["id"]) for e in messages] == [e["data"]["id"] for e in messages]
        assert len(messages) == 6
        assert events[-1]["event"] == "end"
        assert events[-1]["data"] == {
            "type": "end",
            "execution_id": database.success,
            "state": "SUCCESS",
        }

    def test_last_event_id_resumes_after_it(self, client: TestClient, database: Database) -> None:
        """A reconnect with Last-Event-ID gets only the later records."""
        events = _events(client.get(f"/api/executions/{database.success}/logs/stream").text)
        third = events[2]["id"]
        resumed = _events(
            client.get(
                f"/api/executions/{database.success}/logs/stream",
                headers={"Last-Event-ID": third},
            ).text
        )
        assert [e["id"] for e in resumed if e["event"] == "message"] == [
            e["id"] for e in events[3:] if e["event"] == "message"
        ]

    def test_live_execution_lines_arrive_once_in_order(
        self, client: TestClient, database: Database
    ) -> None:
        """Batches committed while the stream is open arrive gap-free, no duplicate, then end."""

        def engine() -> None:
            for batch in range(5):
                time.sleep(0.05)
                database.add_logs(
                    database.running,
                    [("download", "INFO", f"batch {batch} line {n}") for n in range(40)],
                )
            database.set_state(database.running, "SUCCESS", ended=1)

        thread = threading.Thread(target=engine)
        thread.start()
        try:
            text = client.get(f"/api/executions/{database.running}/logs/stream").text
        finally:
            thread.join()
        events = _events(text)
        lines = [e["data"]["message"] for e in events if e["event"] == "message"]
        assert lines == [f"batch {b} line {n}" for b in range(5) for n in range(40)]
        assert events[-1]["data"]["state"] == "SUCCESS"

    def test_stream_filters_apply(self, client: TestClient, database: Database) -> None:
        """The stream takes the same level/task/text filters as the logs endpoint."""
        text = client.get(f"/api/executions/{database.success}/logs/stream?level=ERROR").text
        messages = [e for e in _events(text) if e["event"] == "message"]
        assert [e["data"]["level"] for e in messages] == ["ERROR"]


class TestSearch:
    def test_api_search_returns_hits_as_logs_search_json(
        self, client: TestClient, database: Database
    ) -> None:
        """/api/search: hits newest first, records as logs --json plus workflow_id."""
        hits = client.get("/api/search?q=rows").json()
        assert [h["message"] for h in hits] == ["rows 42"]
        assert hits[0]["workflow_id"] == "etl"
        assert hits[0]["execution_id"] == database.success
        assert client.get("/api/search?q=zzzznomatch").json() == []

    def test_invalid_query_is_400_with_the_message(self, client: TestClient) -> None:
        """An FTS5 syntax error is a 400 naming it (the CLI's Invalid search query)."""
        response = client.get('/api/search?q="unclosed')
        assert response.status_code == 400
        assert response.json()["error"].startswith("Invalid search query: ")

    def test_search_page_highlights_and_escapes(self, client: TestClient) -> None:
        """The page marks matched words and shows hostile text as text."""
        html = client.get("/search?q=onerror").text
        assert "<mark>onerror</mark>" in html
        assert "<script>" not in html and "\x1b" not in html
        assert "&lt;img src=x" in html
        assert "No matching log entries" in client.get("/search?q=zzzz").text
        assert "Every word must match" in client.get("/search").text
