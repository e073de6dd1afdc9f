"""The engine's one telemetry interface: observers told what happened, after it was stored.

Exporters (OTLP, anything else) implement :class:`ExecutionObserver` and are handed to the
engine; the engine never imports them nor any telemetry SDK. Every event is emitted after
the change it reports was committed, with the timestamp the database holds, so a trace built
from the events matches ``workflow execution inspect``. Log entries arrive in batches as the
collector stores them: already redacted, exactly as stored.

An observer is called from the engine's threads (scheduler, workers, the collector's flush
thread) and must return at once: queue the event and do the work elsewhere. An observer
that raises is reported once on stderr and never called again; the execution goes on.

    class Printer:
        def execution_started(self, event: ExecutionStarted) -> None: print(event)
        ...                                             # the other callbacks alike

    engine = Engine(config, ..., observers=[Printer()])

The recorder (every state change) and the engine (the collector's stored batches) call
them; ``Observers`` is the fan-out both hold.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from autokestra_obs_schema import State

from ._entry import LogEntry


@dataclass(frozen=True, slots=True)
class ExecutionStarted:
    """An execution moved to RUNNING in this engine.

    Attributes:
        execution_id: the execution (a UUID7: its 128 bits are the trace id).
        workflow_id: its workflow.
        trigger_type: ``manual``, ``cron`` or ``webhook``.
        at_ms: ``executions.started_at`` (Unix ms).
    """

    execution_id: str
    workflow_id: str
    trigger_type: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class ExecutionEnded:
    """An execution reached its terminal state.

    Attributes:
        execution_id: the execution.
        workflow_id: its workflow.
        state: SUCCESS, FAILED or CANCELLED.
        reason_code: why (``TASK_FAILED``, ``TIMEOUT``, ``CANCELLED_BY_USER``...), or ``None``.
        message: the stored (redacted) one-line summary of a failure or cancellation.
        started_at_ms: when it started running.
        at_ms: ``executions.ended_at``.
    """

    execution_id: str
    workflow_id: str
    state: State
    reason_code: str | None
    message: str | None
    started_at_ms: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A task run's first attempt started (its ``started_at``).

    Attributes:
        execution_id: the execution.
        task_id: the task.
        type: the task type, ``namespace/plugin.action``.
        at_ms: ``task_runs.started_at``.
    """

    execution_id: str
    task_id: str
    type: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class TaskEnded:
    """A task run reached its terminal state (also one that never started).

    Attributes:
        execution_id: the execution.
        task_id: the task.
        type: the task type.
        state: SUCCESS, FAILED or CANCELLED.
        reason_code: why it ended so (``PLUGIN_ERROR``, ``UPSTREAM_FAILED``...), or ``None``.
        attempts: how many attempts it made (0: never started).
        error_message: the stored (redacted) error message of a failure.
        at_ms: ``task_runs.ended_at``.
    """

    execution_id: str
    task_id: str
    type: str
    state: State
    reason_code: str | None
    attempts: int
    error_message: str | None
    at_ms: int


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """One attempt of a task run started (a plugin process is about to be spawned).

    Attributes:
        execution_id: the execution.
        task_id: the task.
        attempt: the attempt number, from 1.
        at_ms: ``task_attempts.started_at``.
    """

    execution_id: str
    task_id: str
    attempt: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    """One attempt ended; ``retry_delay_ms`` says whether a retry follows and when.

    Attributes:
        execution_id: the execution.
        task_id: the task.
        attempt: the attempt number.
        state: SUCCESS, FAILED or CANCELLED.
        reason_code: why it ended (``PLUGIN_ERROR``, ``TIMEOUT``...), ``None`` on success.
        exit_code: the plugin process's exit code, when it exited.
        error_message: the stored (redacted) error message.
        duration_ms: ``task_attempts.duration_ms``.
        at_ms: ``task_attempts.ended_at``.
        retry_delay_ms: the backoff before the next attempt, or ``None`` when none follows.
    """

    execution_id: str
    task_id: str
    attempt: int
    state: State
    reason_code: str | None
    exit_code: int | None
    error_message: str | None
    duration_ms: int
    at_ms: int
    retry_delay_ms: int | None = None


class ExecutionObserver(Protocol):
    """What an exporter implements to be told about executions (all callbacks required)."""

    def execution_started(self, event: ExecutionStarted) -> None:
        """An execution started running."""

    def execution_ended(self, event: ExecutionEnded) -> None:
        """An execution ended."""

    def task_started(self, event: TaskStarted) -> None:
        """A task run started (its first attempt)."""

    def task_ended(self, event: TaskEnded) -> None:
        """A task run ended."""

    def attempt_started(self, event: AttemptStarted) -> None:
        """An attempt started."""

    def attempt_ended(self, event: AttemptEnded) -> None:
        """An attempt ended (with the backoff before the next one, if any)."""

    def logs_stored(self, entries: Sequence[LogEntry]) -> None:
        """These entries were committed to ``execution_logs`` (redacted, as stored)."""


class Observers:
    """The engine's registered observers, called in order; empty is the cheap common case.

    Callers test ``if observers:`` before building an event, so an engine without
    telemetry pays one truth test per hook point. An observer that raises is reported once
    (on ``report``) and dropped: telemetry never stops an execution.

    Args:
        observers: the observers to call.
        report: where a failing observer is reported (default ``sys.stderr``).
    """

    def __init__(
        self, observers: Sequence[ExecutionObserver] = (), *, report: TextIO | None = None
    ) -> None:
        self._observers: tuple[ExecutionObserver, ...] = tuple(observers)
        self._report = report
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._observers)

    def _failed(self, observer: ExecutionObserver, exc: Exception) -> None:
        with self._lock:
            if observer not in self._observers:
                return
            self._observers = tuple(o for o in self._observers if o is not observer)
        stream = self._report if self._report is not None else sys.stderr
        try:
            stream.write(
                f"autokestra: telemetry observer {type(observer).__name__} failed ({exc!r});"
                " it is disabled for the rest of this process\n"
            )
            stream.flush()
        except Exception:  # a closed stderr must not take the execution down
            return

    def execution_started(self, event: ExecutionStarted) -> None:
        """Tell every observer."""
        for observer in self._observers:
            try:
                observer.execution_started(event)
            except Exception as exc:
                self._failed(observer, exc)

    def execution_ended(self, event: ExecutionEnded) -> None:
        """Tell every observer."""
        for observer in self._observers:
            try:
                observer.execution_ended(event)
            except Exception as exc:
                self._failed(observer, exc)

    def task_started(self, event: TaskStarted) -> None:
        """Tell every observer."""
        for observer in self._observers:
            try:
                observer.task_started(event)
            except Exception as exc:
                self._failed(observer, exc)

    def task_ended(self, event: TaskEnded) -> None:
        """Tell every observer."""
        for observer in self._observers:
            try:
                observer.task_ended(event)
            except Exception as exc:
                self._failed(observer, exc)

    def attempt_started(self, event: AttemptStarted) -> None:
        """Tell every observer."""
        for observer in self._observers:
            try:
                observer.attempt_started(event)
            except Exception as exc:
                self._failed(observer, exc)

    def attempt_ended(self, event: AttemptEnded) -> None:
        """Tell every observer."""
        for observer in self._observers:
            try:
                observer.attempt_ended(event)
            except Exception as exc:
                self._failed(observer, exc)

    def logs_stored(self, entries: Sequence[LogEntry]) -> None:
        """Tell every observer."""
        for observer in self._observers:
            try:
                observer.logs_stored(entries)
            except Exception as exc:
                self._failed(observer, exc)
