"""The OTLP/HTTP exporter: an engine observer that never makes the engine wait.

Every callback appends to one bounded queue under a lock and returns; one worker thread
turns the queued events into spans and log records (:class:`TraceBuilder`) and sends them in
batches with OpenTelemetry's OTLP/HTTP protobuf exporters (which read the standard
``OTEL_EXPORTER_OTLP_*`` variables: headers, timeout, compression, certificates). A slow or
dead receiver only stalls that thread: the queue fills, and what does not fit is dropped and
counted (``dropped``, served as ``autokestra_otlp_dropped_total``). At exit
:meth:`OtlpExporter.shutdown` sends what is queued within a bounded time (5 s by default),
then gives up and counts the rest.

    exporter = OtlpExporter(otlp_settings(os.environ))
    engine = Engine(config, ..., observers=[exporter])
    ...
    exporter.shutdown()
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from autokestra_obs_collector import (
    AttemptEnded,
    AttemptStarted,
    ExecutionEnded,
    ExecutionStarted,
    LogEntry,
    TaskEnded,
    TaskStarted,
)

from .._settings import OtlpSettings
from ._builder import ObservedEvent, TraceBuilder

#: Items (engine events and log entries) the queue holds; beyond it they are dropped.
DEFAULT_MAX_QUEUE = 8192
#: Spans or log records per export request.
DEFAULT_BATCH_SIZE = 512
#: How long the worker lets items gather before sending a partial batch.
DEFAULT_DELAY_S = 1.0

# The SDK's exporters log each failed request through `logging`; with no handler configured,
# Python would print every one on stderr. Failures are reported here, once per episode.
logging.getLogger("opentelemetry").addHandler(logging.NullHandler())


@dataclass(frozen=True, slots=True)
class _Logs:
    """A batch of stored log entries, queued as one item of ``len(entries)`` weight."""

    entries: tuple[LogEntry, ...]


_Item = ObservedEvent | _Logs


class ReportStream(Protocol):
    """Where export trouble is reported (``sys.stderr`` or a wrapper of it)."""

    def write(self, text: str, /) -> int:
        """Write ``text``."""
        ...

    def flush(self) -> None:
        """Flush what was written."""
        ...


def build_resource(settings: OtlpSettings) -> Resource:
    """The process's resource: ``OTEL_RESOURCE_ATTRIBUTES`` / ``OTEL_SERVICE_NAME`` first."""
    resource = Resource.create({"process.pid": os.getpid()})
    name = str(resource.attributes.get(SERVICE_NAME, ""))
    if not name or name.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: settings.service_name}))
    return resource


class OtlpExporter:
    """Exports executions as traces and their stored log entries as OTLP log records.

    Implements the engine's ``ExecutionObserver``. Thread-safe; callbacks never block.

    Args:
        settings: endpoints, headers, service name and shutdown deadline.
        max_queue: items held at most while the receiver is slow; the rest is dropped.
        batch_size: spans or log records per request.
        delay_s: longest wait before a partial batch is sent.
        report: where export trouble is reported, once per episode (default stderr).
        span_exporter: the span exporter (default: OTLP/HTTP to ``settings``).
        log_exporter: the log record exporter (default: OTLP/HTTP to ``settings``).
    """

    def __init__(
        self,
        settings: OtlpSettings,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        delay_s: float = DEFAULT_DELAY_S,
        report: ReportStream | None = None,
        span_exporter: SpanExporter | None = None,
        log_exporter: LogRecordExporter | None = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be positive")
        self.settings = settings
        headers = dict(settings.headers) or None
        self._spans: SpanExporter | None = span_exporter or (
            OTLPSpanExporter(endpoint=settings.traces_endpoint, headers=headers)
            if settings.traces_endpoint
            else None
        )
        self._logs: LogRecordExporter | None = log_exporter or (
            OTLPLogExporter(endpoint=settings.logs_endpoint, headers=headers)
            if settings.logs_endpoint
            else None
        )
        self._builder = TraceBuilder(
            build_resource(settings), InstrumentationScope("autokestra", None)
        )
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._delay_s = delay_s
        self._report_stream = report
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[tuple[_Item, int]] = deque()
        self._queued = 0  # items in the queue (a log batch counts its entries)
        self._enqueued = 0  # items ever accepted, for flush()
        self._settled = 0  # items taken and exported or dropped
        self._force = 0  # send everything accepted up to this count without waiting
        self._dropped = 0
        self._exported = 0
        self._closing = False
        self._closed = False
        self._in_flight = 0  # items the worker took and has not settled
        self._abandoned = False  # shutdown gave up on the worker and counted its items
        self._queue_full = False  # an episode of a full queue is in progress
        self._failing = False  # an episode of failed exports is in progress
        self._thread = threading.Thread(
            target=self._run, name="autokestra-otlp-exporter", daemon=True
        )
        self._thread.start()

    # -- statistics ---------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Items lost: refused by a full queue, failed to export, or left at shutdown."""
        with self._lock:
            return self._dropped

    @property
    def exported(self) -> int:
        """Spans and log records the receiver accepted."""
        with self._lock:
            return self._exported

    # -- the observer callbacks (engine threads: enqueue and return) --------------------------

    def _put(self, item: _Item, weight: int) -> None:
        with self._lock:
            if not self._closed and self._queued + weight <= self._max_queue:
                self._queue.append((item, weight))
                self._queued += weight
                self._enqueued += weight
                if self._queued >= self._batch_size:
                    self._changed.notify_all()
                return
            self._dropped += weight
            first = not self._queue_full and not self._closed
            self._queue_full = True
        if first:
            self._report(
                "autokestra: the OTLP export queue is full (receiver slow or down);"
                " dropping telemetry, counted in autokestra_otlp_dropped_total"
            )

    def execution_started(self, event: ExecutionStarted) -> None:
        """Queue the event."""
        self._put(event, 1)

    def execution_ended(self, event: ExecutionEnded) -> None:
        """Queue the event; the execution's spans go out with the next batch."""
        self._put(event, 1)
        with self._lock:
            self._force = self._enqueued
            self._changed.notify_all()

    def task_started(self, event: TaskStarted) -> None:
        """Queue the event."""
        self._put(event, 1)

    def task_ended(self, event: TaskEnded) -> None:
        """Queue the event."""
        self._put(event, 1)

    def attempt_started(self, event: AttemptStarted) -> None:
        """Queue the event."""
        self._put(event, 1)

    def attempt_ended(self, event: AttemptEnded) -> None:
        """Queue the event."""
        self._put(event, 1)

    def logs_stored(self, entries: Sequence[LogEntry]) -> None:
        """Queue the stored entries (one item each)."""
        if entries:
            self._put(_Logs(tuple(entries)), len(entries))

    # -- flushing and shutdown ----------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued before the call; ``False`` if not done within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._enqueued
            self._force = max(self._force, target)
            self._changed.notify_all()
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._changed.wait(remaining)
            return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Send what is queued, within ``timeout`` (default: the settings'), then stop.

        Idempotent. What is still queued at the deadline is counted as dropped; a request in
        flight is abandoned (the worker is a daemon thread: it never holds the process).
        """
        limit = self.settings.shutdown_timeout_s if timeout is None else timeout
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._force = self._enqueued
            self._changed.notify_all()
        self._thread.join(limit)
        with self._lock:
            self._closed = True
            left = self._queued
            if self._thread.is_alive():  # stuck in a request: its items are lost too
                left += self._in_flight
                self._abandoned = True
            self._queue.clear()
            self._queued = 0
            self._dropped += left
            self._changed.notify_all()
        if self._thread.is_alive() or left:
            self._report(
                f"autokestra: OTLP export did not finish within {limit:g}s;"
                f" {left} queued items dropped"
            )
        # Stops retries of a request still in flight and closes the HTTP sessions.
        for exporter in (self._spans, self._logs):
            if exporter is not None:
                try:
                    exporter.shutdown()
                except Exception as exc:  # shutting down must never raise at exit
                    self._report(f"autokestra: OTLP exporter shutdown failed ({exc!r})")

    # -- the worker ---------------------------------------------------------------------------

    def _take(self) -> list[tuple[_Item, int]] | None:
        """Wait until a batch is due and take it; ``None`` means stop."""
        with self._lock:
            deadline = time.monotonic() + self._delay_s
            while True:
                if self._closed:
                    return None
                due = (
                    self._queued >= self._batch_size
                    or self._force > self._settled
                    or self._closing
                    or (self._queue and time.monotonic() >= deadline)
                )
                if due:
                    if not self._queue:
                        if self._closing:
                            return None
                        deadline = time.monotonic() + self._delay_s
                    else:
                        taken: list[tuple[_Item, int]] = []
                        weight = 0
                        while self._queue and weight < self._batch_size:
                            item = self._queue.popleft()
                            taken.append(item)
                            weight += item[1]
                        self._queued -= weight
                        self._in_flight = weight
                        return taken
                remaining = deadline - time.monotonic() if self._queue else self._delay_s
                self._changed.wait(max(remaining, 0.001))

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            weight = sum(w for _, w in taken)
            try:
                self._send(taken)
            except Exception as exc:  # a bug here must not end export for the process
                self._count_failure(weight, f"{type(exc).__name__}: {exc}")
            with self._lock:
                self._settled += weight
                self._in_flight = 0
                self._changed.notify_all()

    def _send(self, taken: list[tuple[_Item, int]]) -> None:
        spans: list[ReadableSpan] = []
        records: list[ReadableLogRecord] = []
        unconvertible = 0
        for item, weight in taken:
            try:
                if isinstance(item, _Logs):
                    if self._logs is not None:
                        records.extend(self._builder.log_records(item.entries))
                elif self._spans is not None:
                    spans.extend(self._builder.apply(item))
            except ValueError:  # not a UUID execution id: it has no trace
                unconvertible += weight
        if unconvertible:
            self._count_failure(unconvertible, "execution ids that are not UUIDs")
        if spans and self._spans is not None:
            self._export_spans(spans)
        if records and self._logs is not None:
            self._export_logs(records)

    def _export_spans(self, spans: list[ReadableSpan]) -> None:
        assert self._spans is not None
        for start in range(0, len(spans), self._batch_size):
            chunk = spans[start : start + self._batch_size]
            ok = self._spans.export(chunk) is SpanExportResult.SUCCESS
            self._settle(len(chunk), ok, self.settings.traces_endpoint)

    def _export_logs(self, records: list[ReadableLogRecord]) -> None:
        assert self._logs is not None
        for start in range(0, len(records), self._batch_size):
            chunk = records[start : start + self._batch_size]
            ok = self._logs.export(chunk) is LogRecordExportResult.SUCCESS
            self._settle(len(chunk), ok, self.settings.logs_endpoint)

    def _settle(self, count: int, ok: bool, endpoint: str | None) -> None:
        if not ok:
            self._count_failure(count, f"the receiver at {endpoint} did not accept them")
            return
        with self._lock:
            if self._abandoned:
                return
            self._exported += count
            recovered, self._failing = self._failing, False
            self._queue_full = False
        if recovered:
            self._report("autokestra: OTLP export works again")

    def _count_failure(self, count: int, why: str) -> None:
        with self._lock:
            if self._abandoned:  # shutdown already counted these
                return
            self._dropped += count
            first, self._failing = not self._failing, True
        if first:
            self._report(
                f"autokestra: OTLP export failed ({why}); dropping telemetry until it works"
                " again, counted in autokestra_otlp_dropped_total"
            )

    def _report(self, text: str) -> None:
        stream = self._report_stream if self._report_stream is not None else sys.stderr
        try:
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # a closed stderr must not take export down
            return
