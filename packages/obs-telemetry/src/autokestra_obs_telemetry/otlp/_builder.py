"""From engine events to finished spans, and from stored log entries to log records.

Spans are built after the fact: an event says when something started or ended (the
timestamps the database holds), the builder remembers starts and emits a span, with explicit
start and end times, when its end arrives. Span ids are derived (``_ids``), so a log record
can name the span of its attempt before that span is exported.

One trace per execution: a root span named after the workflow, a child per task run named
after the task, under it ``<task> attempt <n>`` per attempt and, between two attempts,
``<task> backoff`` (the retry wait), with a ``retry`` event on the task span at the moment
the retry was decided. The iterations of a ``for_each`` task (``resize[0]``...) are task runs
whose spans sit under their task's span. A SKIPPED task is a zero-length span at the moment
of the decision, status unset, with a ``skipped`` event carrying the reason.

    builder = TraceBuilder(resource, scope)
    spans = builder.apply(event)            # [] until something ends
    records = builder.log_records(entries)

Not thread-safe: the exporter's one worker thread owns it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from autokestra_obs_collector import (
    AttemptEnded,
    AttemptStarted,
    ExecutionEnded,
    ExecutionStarted,
    LogEntry,
    TaskEnded,
    TaskStarted,
)
from autokestra_obs_schema import LogLevel, Reason, State
from autokestra_obs_store import split_iteration

from ._ids import (
    attempt_span_id,
    backoff_span_id,
    execution_span_id,
    task_span_id,
    trace_id_of,
)

ObservedEvent = (
    ExecutionStarted | ExecutionEnded | TaskStarted | TaskEnded | AttemptStarted | AttemptEnded
)
_Attributes = dict[str, AttributeValue]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SEVERITY = {
    LogLevel.DEBUG: SeverityNumber.DEBUG,
    LogLevel.INFO: SeverityNumber.INFO,
    LogLevel.WARN: SeverityNumber.WARN,
    LogLevel.ERROR: SeverityNumber.ERROR,
}
_MS = 1_000_000  # nanoseconds per millisecond


def _attributes(**values: AttributeValue | None) -> _Attributes:
    """``autokestra.<name>`` attributes, leaving out the unknown (OTLP has no null)."""
    return {f"autokestra.{name}": value for name, value in values.items() if value is not None}


def _status(state: State, message: str | None) -> Status:
    if state is State.FAILED:
        return Status(StatusCode.ERROR, message or "failed")
    return Status(StatusCode.UNSET)


@dataclass(slots=True)
class _Execution:
    workflow_id: str
    trigger_type: str
    start_ms: int


@dataclass(slots=True)
class _Task:
    type: str
    start_ms: int | None = None
    events: list[Event] = field(default_factory=list)
    #: The retry wait in progress: (failed attempt, its end, planned delay).
    backoff: tuple[int, int, int] | None = None


class TraceBuilder:
    """Remembers what started and emits each span when it ends.

    Args:
        resource: the process's resource (``service.name``...).
        scope: the instrumentation scope the spans and records carry.
    """

    def __init__(self, resource: Resource, scope: InstrumentationScope) -> None:
        self._resource = resource
        self._scope = scope
        self._executions: dict[str, _Execution] = {}
        self._tasks: dict[tuple[str, str], _Task] = {}
        self._attempts: dict[tuple[str, str, int], int] = {}

    @property
    def open_spans(self) -> int:
        """Spans started and not yet ended (executions, tasks, attempts)."""
        return len(self._executions) + len(self._tasks) + len(self._attempts)

    def apply(self, event: ObservedEvent) -> list[ReadableSpan]:
        """Take one event; returns the spans it ended (often none)."""
        if isinstance(event, AttemptStarted):
            return self._attempt_started(event)
        if isinstance(event, AttemptEnded):
            return self._attempt_ended(event)
        if isinstance(event, TaskStarted):
            self._task(event.execution_id, event.task_id, event.type).start_ms = event.at_ms
            return []
        if isinstance(event, TaskEnded):
            return self._task_ended(event)
        if isinstance(event, ExecutionStarted):
            self._executions[event.execution_id] = _Execution(
                event.workflow_id, event.trigger_type, event.at_ms
            )
            return []
        return self._execution_ended(event)

    # -- spans ------------------------------------------------------------------------------

    def _span(
        self,
        name: str,
        *,
        execution_id: str,
        span_id: int,
        parent_id: int | None,
        start_ms: int,
        end_ms: int,
        attributes: _Attributes,
        status: Status | None = None,
        events: Sequence[Event] = (),
    ) -> ReadableSpan:
        # ReadableSpan is built directly: these spans ended before we knew of them, which the
        # SDK's live-span API (ids from a generator, end time = now) cannot express.
        trace_id = trace_id_of(execution_id)
        return ReadableSpan(
            name=name,
            context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED),
            parent=(
                None
                if parent_id is None
                else SpanContext(trace_id, parent_id, is_remote=False, trace_flags=_SAMPLED)
            ),
            resource=self._resource,
            attributes=attributes,
            events=tuple(events),
            kind=SpanKind.INTERNAL,
            status=status or Status(StatusCode.UNSET),
            start_time=start_ms * _MS,
            end_time=max(end_ms, start_ms) * _MS,
            instrumentation_scope=self._scope,
        )

    def _workflow_id(self, execution_id: str) -> str | None:
        execution = self._executions.get(execution_id)
        return execution.workflow_id if execution is not None else None

    def _task(self, execution_id: str, task_id: str, task_type: str) -> _Task:
        key = (execution_id, task_id)
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = _Task(task_type)
        return task

    def _attempt_started(self, event: AttemptStarted) -> list[ReadableSpan]:
        eid, task_id = event.execution_id, event.task_id
        self._attempts[(eid, task_id, event.attempt)] = event.at_ms
        task = self._tasks.get((eid, task_id))
        if task is None or task.backoff is None:
            return []
        return [self._backoff_span(eid, task_id, task, event.at_ms)]

    def _backoff_span(self, eid: str, task_id: str, task: _Task, end_ms: int) -> ReadableSpan:
        assert task.backoff is not None
        attempt, start_ms, delay_ms = task.backoff
        task.backoff = None
        return self._span(
            f"{task_id} backoff",
            execution_id=eid,
            span_id=backoff_span_id(eid, task_id, attempt),
            parent_id=task_span_id(eid, task_id),
            start_ms=start_ms,
            end_ms=end_ms,
            attributes=_attributes(
                execution_id=eid,
                workflow_id=self._workflow_id(eid),
                task_id=task_id,
                attempt=attempt,
                reason_code=Reason.RETRY_BACKOFF.value,
                retry_delay_ms=delay_ms,
            ),
        )

    def _attempt_ended(self, event: AttemptEnded) -> list[ReadableSpan]:
        eid, task_id = event.execution_id, event.task_id
        start_ms = self._attempts.pop((eid, task_id, event.attempt), event.at_ms)
        span = self._span(
            f"{task_id} attempt {event.attempt}",
            execution_id=eid,
            span_id=attempt_span_id(eid, task_id, event.attempt),
            parent_id=task_span_id(eid, task_id),
            start_ms=start_ms,
            end_ms=event.at_ms,
            attributes=_attributes(
                execution_id=eid,
                workflow_id=self._workflow_id(eid),
                task_id=task_id,
                attempt=event.attempt,
                state=event.state.value,
                reason_code=event.reason_code,
                exit_code=event.exit_code,
            ),
            status=_status(event.state, event.error_message),
        )
        if event.retry_delay_ms is not None:
            task = self._tasks.get((eid, task_id))
            if task is not None:
                task.events.append(
                    Event(
                        "retry",
                        _attributes(
                            attempt=event.attempt,
                            next_attempt=event.attempt + 1,
                            reason_code=event.reason_code,
                            retry_delay_ms=event.retry_delay_ms,
                            error=event.error_message,
                        ),
                        timestamp=event.at_ms * _MS,
                    )
                )
                task.backoff = (event.attempt, event.at_ms, event.retry_delay_ms)
        return [span]

    def _task_ended(self, event: TaskEnded) -> list[ReadableSpan]:
        eid, task_id = event.execution_id, event.task_id
        task = self._tasks.pop((eid, task_id), None) or _Task(event.type)
        spans: list[ReadableSpan] = []
        if task.backoff is not None:  # cancelled while waiting to retry
            spans.append(self._backoff_span(eid, task_id, task, event.at_ms))
        start_ms = task.start_ms if task.start_ms is not None else event.at_ms
        iteration = split_iteration(task_id)
        if event.state is State.SKIPPED:
            task.events.append(
                Event(
                    "skipped",
                    _attributes(reason_code=event.reason_code),
                    timestamp=event.at_ms * _MS,
                )
            )
        spans.append(
            self._span(
                task_id,
                execution_id=eid,
                span_id=task_span_id(eid, task_id),
                parent_id=(
                    execution_span_id(eid) if iteration is None else task_span_id(eid, iteration[0])
                ),
                start_ms=start_ms,
                end_ms=event.at_ms,
                attributes=_attributes(
                    execution_id=eid,
                    workflow_id=self._workflow_id(eid),
                    task_id=task_id,
                    task_type=event.type,
                    attempt=event.attempts or None,
                    state=event.state.value,
                    reason_code=event.reason_code,
                    for_each_task=None if iteration is None else iteration[0],
                    iteration=None if iteration is None else iteration[1],
                ),
                status=_status(event.state, event.error_message),
                events=task.events,
            )
        )
        return spans

    def _execution_ended(self, event: ExecutionEnded) -> list[ReadableSpan]:
        eid = event.execution_id
        execution = self._executions.pop(eid, None)
        # Tasks and attempts that never ended (an engine error): nothing sound to emit.
        for task_key in [key for key in self._tasks if key[0] == eid]:
            del self._tasks[task_key]
        for attempt_key in [key for key in self._attempts if key[0] == eid]:
            del self._attempts[attempt_key]
        start_ms = execution.start_ms if execution is not None else event.started_at_ms
        return [
            self._span(
                event.workflow_id,
                execution_id=eid,
                span_id=execution_span_id(eid),
                parent_id=None,
                start_ms=start_ms,
                end_ms=event.at_ms,
                attributes=_attributes(
                    execution_id=eid,
                    workflow_id=event.workflow_id,
                    trigger_type=execution.trigger_type if execution is not None else None,
                    state=event.state.value,
                    reason_code=event.reason_code,
                ),
                status=_status(event.state, event.message),
            )
        ]

    # -- logs -------------------------------------------------------------------------------

    def log_records(self, entries: Sequence[LogEntry]) -> list[ReadableLogRecord]:
        """One OTLP log record per stored entry, in its execution's trace and span."""
        observed = time.time_ns()
        records: list[ReadableLogRecord] = []
        for entry in entries:
            eid = entry.execution_id
            if entry.task_id is None:
                span_id = execution_span_id(eid)
            elif entry.attempt is None:
                span_id = task_span_id(eid, entry.task_id)
            else:
                span_id = attempt_span_id(eid, entry.task_id, entry.attempt)
            context = set_span_in_context(
                NonRecordingSpan(
                    SpanContext(trace_id_of(eid), span_id, is_remote=False, trace_flags=_SAMPLED)
                )
            )
            attributes = _attributes(
                execution_id=eid,
                task_id=entry.task_id,
                attempt=entry.attempt,
                source=entry.source,
                metadata=(
                    None
                    if entry.metadata is None
                    else json.dumps(entry.metadata, ensure_ascii=False, default=str)
                ),
            )
            record = LogRecord(
                timestamp=entry.timestamp * _MS,
                observed_timestamp=observed,
                context=context,
                severity_text=entry.level.value,
                severity_number=_SEVERITY[entry.level],
                body=entry.message,
                attributes=attributes,
            )
            records.append(ReadableLogRecord(record, self._resource, self._scope))
        return records
