"""End to end: `workflow run` exports each execution as one OTLP trace, with its log records.

The real engine runs the example workflows (real plugin processes) with
OTEL_EXPORTER_OTLP_ENDPOINT pointing at a real OTLP/HTTP receiver in the test, which decodes
the requests with opentelemetry-proto. Also: a receiver that never answers and a port nothing
listens on cost the execution nothing, and read-only commands never load the SDK.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import WORKFLOW, rows

from autokestra_obs_telemetry.testing import OtlpReceiver, ReceivedSpan, unused_port

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "workflows"


def run(
    tmp_path: Path, workflow: str, env: dict[str, str], timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], float]:
    """`workflow run` an example with ``env``; (result, wall seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        [WORKFLOW, "--db", str(tmp_path / "ak.db"), "run", str(EXAMPLES / workflow)],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - started


def execution_id(result: subprocess.CompletedProcess[str]) -> str:
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "Execution" and first[2] == "started", result.stdout
    return first[1]


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return sorted(
        (s for s in spans if s.parent_span_id == parent.span_id), key=lambda s: s.start_ns
    )


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/HTTP receiver on 127.0.0.1, stopped after the test."""
    with OtlpReceiver() as r:
        yield r


class TestTraceOfARealExecution:
    def test_fan_out_is_one_trace_with_a_span_per_task_and_attempt(
        self, tmp_path: Path, receiver: OtlpReceiver
    ) -> None:
        """Root span = the execution; a child per task; an attempt under each; times stored."""
        result, _ = run(
            tmp_path, "fan-out-fan-in.yaml", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        )
        assert result.returncode == 0, result.stderr
        eid = execution_id(result)
        # `run` returned: its exit flushed everything (no waiting needed).
        spans = receiver.spans
        assert {s.trace_id for s in spans} == {eid.replace("-", "")}
        (root,) = [s for s in spans if not s.parent_span_id]
        assert root.name == "fan-out-fan-in"
        assert root.attributes["autokestra.execution_id"] == eid
        assert root.attributes["autokestra.state"] == "SUCCESS"
        assert root.status_code == 0
        assert root.resource["service.name"] == "autokestra"
        tasks = children(spans, root)
        assert sorted(t.name for t in tasks) == sorted(
            ["prepare", "extract-north", "extract-south", "extract-east", "extract-west", "merge"]
        )
        for task in tasks:
            (attempt,) = children(spans, task)
            assert attempt.name == f"{task.name} attempt 1"
            assert attempt.attributes["autokestra.attempt"] == 1
            assert attempt.attributes["autokestra.task_id"] == task.name
            assert attempt.attributes["autokestra.workflow_id"] == "fan-out-fan-in"
            assert root.start_ns <= task.start_ns <= attempt.start_ns
            assert attempt.end_ns <= task.end_ns <= root.end_ns
        assert len(spans) == 1 + 6 + 6
        # Times are the stored ones: the root span is the execution row.
        ((started, ended),) = rows(
            tmp_path, "SELECT started_at, ended_at FROM executions WHERE execution_id = ?", (eid,)
        )
        assert (root.start_ns, root.end_ns) == (started * 10**6, ended * 10**6)
        # The extracts ran in parallel (max_concurrent_tasks >= 2): some of their spans overlap.
        extracts = [t for t in tasks if t.name.startswith("extract-")]
        assert any(
            a.start_ns < b.end_ns and b.start_ns < a.end_ns
            for a in extracts
            for b in extracts
            if a is not b
        )

    def test_log_records_match_the_stored_log(self, tmp_path: Path, receiver: OtlpReceiver) -> None:
        """Every stored entry is one record, in the trace, under its attempt's span."""
        result, _ = run(
            tmp_path, "fan-out-fan-in.yaml", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        )
        assert result.returncode == 0, result.stderr
        eid = execution_id(result)
        stored = rows(
            tmp_path,
            "SELECT message, task_id, attempt, level FROM execution_logs"
            " WHERE execution_id = ? ORDER BY id",
            (eid,),
        )
        logs = receiver.logs
        assert Counter(r.body for r in logs) == Counter(m for m, _, _, _ in stored)
        spans = {s.span_id: s for s in receiver.spans}
        (root,) = [s for s in spans.values() if not s.parent_span_id]
        for record in logs:
            assert record.trace_id == eid.replace("-", "")
            span = spans[record.span_id]  # every record names a span of the trace
            task_id = record.attributes.get("autokestra.task_id")
            attempt = record.attributes.get("autokestra.attempt")
            if task_id is None:
                assert span is root
            elif attempt is not None:
                assert span.name == f"{task_id} attempt {attempt}"
            else:
                assert span.name == task_id
        north = [r for r in logs if r.body == "north: batch 1/4 done"]
        assert len(north) == 1
        assert north[0].severity_text == "INFO"
        assert north[0].attributes["autokestra.source"] == "plugin:core/python.run"

    def test_retries_failures_and_cancellations(
        self, tmp_path: Path, receiver: OtlpReceiver
    ) -> None:
        """A retried attempt, its backoff and retry event; a failed task; cancelled dependants."""
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        flaky, _ = run(tmp_path, "flaky-retry.yaml", env)
        assert flaky.returncode == 0, flaky.stderr
        failing, _ = run(tmp_path, "failing-pipeline.yaml", env)
        assert failing.returncode == 1
        by_trace: dict[str, list[ReceivedSpan]] = {}
        for span in receiver.spans:
            by_trace.setdefault(span.trace_id, []).append(span)
        assert set(by_trace) == {
            execution_id(flaky).replace("-", ""),
            execution_id(failing).replace("-", ""),
        }
        flaky_spans = {s.name: s for s in by_trace[execution_id(flaky).replace("-", "")]}
        call = flaky_spans["call-api"]
        first, backoff, second = (
            flaky_spans["call-api attempt 1"],
            flaky_spans["call-api backoff"],
            flaky_spans["call-api attempt 2"],
        )
        assert first.status_code == 2
        assert first.attributes["autokestra.reason_code"] == "PLUGIN_ERROR"
        assert second.status_code == 0
        assert {first.parent_span_id, backoff.parent_span_id, second.parent_span_id} == {
            call.span_id
        }
        assert first.end_ns <= backoff.start_ns <= backoff.end_ns <= second.start_ns
        assert backoff.attributes["autokestra.retry_delay_ms"] == 200
        (retry,) = call.events
        assert retry.name == "retry"
        assert retry.attributes["autokestra.next_attempt"] == 2
        assert call.attributes["autokestra.attempt"] == 2
        failing_spans = {s.name: s for s in by_trace[execution_id(failing).replace("-", "")]}
        root = failing_spans["failing-pipeline"]
        assert (root.status_code, root.attributes["autokestra.reason_code"]) == (
            2,
            "TASK_FAILED",
        )
        assert failing_spans["build"].status_code == 2
        cancelled = [
            s
            for s in failing_spans.values()
            if s.attributes.get("autokestra.reason_code") == "UPSTREAM_FAILED"
        ]
        assert cancelled
        assert all(s.attributes["autokestra.state"] == "CANCELLED" for s in cancelled)
        assert all(s.parent_span_id == root.span_id for s in cancelled)


class TestForEachAndConditions:
    def test_iterations_under_their_task_and_skipped_tasks_say_so(
        self, tmp_path: Path, receiver: OtlpReceiver
    ) -> None:
        """for-each.yaml: each resize[i] span is a child of resize's span with its attempt
        and logs under it; conditions.yaml: the skipped tasks are spans with state SKIPPED,
        their reason and a `skipped` event, status unset."""
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        fanned, _ = run(tmp_path, "for-each.yaml", env)
        assert fanned.returncode == 0, fanned.stderr
        trace = execution_id(fanned).replace("-", "")
        spans = [s for s in receiver.spans if s.trace_id == trace]
        named = {s.name: s for s in spans}
        root, resize = named["for-each"], named["resize"]
        assert resize.parent_span_id == root.span_id
        iterations = children(spans, resize)
        assert sorted(s.name for s in iterations) == ["resize[0]", "resize[1]", "resize[2]"]
        for span in iterations:
            index = int(span.name[len("resize[") : -1])
            assert span.attributes["autokestra.iteration"] == index
            assert span.attributes["autokestra.for_each_task"] == "resize"
            (attempt,) = children(spans, span)
            assert attempt.name == f"{span.name} attempt 1"
            assert resize.start_ns <= span.start_ns <= span.end_ns <= resize.end_ns
            [line] = [
                log
                for log in receiver.logs
                if log.span_id == attempt.span_id and "resizing" in str(log.body)
            ]
            assert str(line.body).startswith(f"[{index}] resizing")

        skipping, _ = run(tmp_path, "conditions.yaml", env)
        assert skipping.returncode == 0, skipping.stderr
        trace = execution_id(skipping).replace("-", "")
        named = {s.name: s for s in receiver.spans if s.trace_id == trace}
        for task_id, reason in (
            ("nothing-to-do", "CONDITION_FALSE"),
            ("archive", "UPSTREAM_SKIPPED"),
        ):
            span = named[task_id]
            assert span.parent_span_id == named["conditions"].span_id
            assert span.attributes["autokestra.state"] == "SKIPPED"
            assert span.attributes["autokestra.reason_code"] == reason
            assert span.status_code == 0 and span.start_ns == span.end_ns
            assert [e.name for e in span.events] == ["skipped"]
        assert named["process"].attributes["autokestra.state"] == "SUCCESS"


class TestServerExports:
    def test_the_server_exports_the_executions_it_runs(
        self, tmp_path: Path, receiver: OtlpReceiver
    ) -> None:
        """A queued execution run by `server start` is exported by the server process."""
        env = {
            **os.environ,
            "NO_COLOR": "1",
            "AUTOKESTRA_SERVER_POLL": "100ms",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": "autokestra-server",
        }
        db = str(tmp_path / "ak.db")
        queued = subprocess.run(
            [WORKFLOW, "--db", db, "run", "--detach", str(EXAMPLES / "hello.yaml")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        eid = queued.stdout.split()[1]
        assert receiver.requests == []  # a queued run exports nothing itself
        with (tmp_path / "server.err").open("w") as err:
            server = subprocess.Popen(
                [WORKFLOW, "--db", db, "server", "start"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            trace = eid.replace("-", "")
            assert receiver.wait_for(
                lambda r: any(s.trace_id == trace and not s.parent_span_id for s in r.spans),
                timeout=60,
            ), (tmp_path / "server.err").read_text()
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
        assert code == 0
        (root,) = [s for s in receiver.spans if not s.parent_span_id]
        assert (root.name, root.resource["service.name"]) == ("hello", "autokestra-server")
        assert root.attributes["autokestra.trigger_type"] == "manual"
        assert {r.trace_id for r in receiver.logs} == {trace}


class TestBadReceivers:
    def test_a_receiver_that_never_answers(self, tmp_path: Path) -> None:
        """The execution succeeds; `run` exits within the 5 s shutdown bound, saying why."""
        with OtlpReceiver(mode="hang") as hung:
            result, wall = run(
                tmp_path, "fan-out-fan-in.yaml", {"OTEL_EXPORTER_OTLP_ENDPOINT": hung.url}
            )
            assert result.returncode == 0, result.stderr
            assert hung.requests  # it was really tried
        eid = execution_id(result)
        assert rows(tmp_path, "SELECT state FROM executions WHERE execution_id = ?", (eid,)) == [
            ("SUCCESS",)
        ]
        assert "OTLP export did not finish within 5s" in result.stderr
        # The workflow itself takes ~1.5 s; waiting for the receiver adds at most 5 s.
        assert wall < 60

    def test_a_port_nothing_listens_on(self, tmp_path: Path) -> None:
        """Nothing listening: the execution succeeds, the failure is reported once."""
        result, _ = run(
            tmp_path,
            "hello.yaml",
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{unused_port()}",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
            },
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("OTLP export failed") <= 1
        assert "Traceback" not in result.stderr


class TestReadOnlyCommandsDoNotLoadTheSdk:
    def test_importing_the_cli_loads_no_opentelemetry_module(self) -> None:
        """`import autokestra_obs_cli` (what every command does first) loads no SDK."""
        code = (
            "import sys, autokestra_obs_cli\n"
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
        ).stdout
        assert out.strip() == "[]"

    def test_execution_logs_loads_no_opentelemetry_module(
        self, tmp_path: Path, receiver: OtlpReceiver
    ) -> None:
        """`workflow execution logs` with OTLP configured reads without loading the SDK."""
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        result, _ = run(tmp_path, "hello.yaml", env)
        eid = execution_id(result)
        # The console script's own entry point, in a process that reports its modules after.
        code = (
            "import json, sys\n"
            "from autokestra_obs_cli import main\n"
            "sys.argv = ['workflow', '--db', sys.argv[1], 'execution', 'logs', sys.argv[2]]\n"
            "code = 0\n"
            "try:\n"
            "    main()\n"
            "except SystemExit as exit:\n"
            "    code = exit.code\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
            "print(json.dumps({'code': code, 'loaded': loaded}), file=sys.stderr)\n"
        )
        probe = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "ak.db"), eid],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **env},
        )
        report = json.loads(probe.stderr.strip().splitlines()[-1])
        assert report == {"code": 0, "loaded": []}
        assert "Hello, world!" in probe.stdout
