"""Test helpers for packages that produce logs: in-memory stand-ins, no database.

Like structlog's ``capture_logs``: assert on what would have been stored.

    from autokestra_obs_collector.testing import capture

    with capture() as (cap, sink):
        cap.feed("stdout", b"hello\\n::error::boom\\n")
    assert sink.messages() == ["hello", "boom"]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from autokestra_obs_schema import LogLevel, now_ms

from ._capture import AttemptCapture
from ._entry import LogEntry
from ._redact import Redactor

__all__ = ["CapturedLine", "ManualClock", "MemoryCollector", "MemorySink", "capture"]


class ManualClock:
    """A Unix-milliseconds clock that moves only when told (inject as ``clock=``)."""

    def __init__(self, start_ms: int = 1_764_000_000_000) -> None:
        self._lock = threading.Lock()
        self._now = start_ms

    def __call__(self) -> int:
        """The current fake time."""
        with self._lock:
            return self._now

    def advance(self, ms: int) -> int:
        """Move forward (or, to test monotonic stamping, backward) by ``ms``; return now."""
        with self._lock:
            self._now += ms
            return self._now


@dataclass(frozen=True, slots=True)
class CapturedLine:
    """One call of a capture sink."""

    level: LogLevel
    message: str
    metadata: dict[str, Any] | None


class MemorySink:
    """A thread-safe sink (the ``AttemptCapture`` sink signature) that keeps every line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lines: list[CapturedLine] = []

    def __call__(self, level: LogLevel, message: str, metadata: dict[str, Any] | None) -> None:
        """Record one line."""
        with self._lock:
            self.lines.append(CapturedLine(level, message, metadata))

    def messages(self) -> list[str]:
        """The recorded messages, in order."""
        with self._lock:
            return [line.message for line in self.lines]

    def levels(self) -> list[LogLevel]:
        """The recorded levels, in order."""
        with self._lock:
            return [line.level for line in self.lines]


@contextmanager
def capture(
    *, max_bytes: int = 10 * 1024 * 1024, tail_lines: int = 200, max_line_bytes: int = 64 * 1024
) -> Iterator[tuple[AttemptCapture, MemorySink]]:
    """An ``AttemptCapture`` feeding a ``MemorySink``, closed when the block ends.

    Yields:
        ``(capture, sink)``; read ``sink.lines`` after the block for the complete output.
    """
    sink = MemorySink()
    cap = AttemptCapture(
        sink, max_bytes=max_bytes, tail_lines=tail_lines, max_line_bytes=max_line_bytes
    )
    try:
        yield cap, sink
    finally:
        cap.close()


class MemoryCollector:
    """An in-memory ``LogCollector`` stand-in with the same producer API and redaction.

    For unit tests of code that logs; entries land in ``entries`` at once. Integration tests
    use the real ``LogCollector`` on a database file.
    """

    def __init__(self, clock: Callable[[], int] = now_ms) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._last_ts = 0
        self._redactors: dict[str, Redactor] = {}
        self.entries: list[LogEntry] = []
        self.closed = False

    def set_redactor(self, execution_id: str, redactor: Redactor) -> None:
        """Redact later entries of the execution."""
        self._redactors[execution_id] = redactor

    def clear_redactor(self, execution_id: str) -> None:
        """Forget the execution's redactor."""
        self._redactors.pop(execution_id, None)

    def log(
        self,
        execution_id: str,
        level: LogLevel | str,
        source: str,
        message: str,
        *,
        task_id: str | None = None,
        attempt: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Record one entry, redacted like the real collector does."""
        redactor = self._redactors.get(execution_id, Redactor())
        with self._lock:
            ts = max(self._clock(), self._last_ts)
            self._last_ts = ts
            self.entries.append(
                LogEntry(
                    execution_id=execution_id,
                    task_id=task_id,
                    attempt=attempt,
                    level=LogLevel.parse(level),
                    source=source,
                    message=redactor.redact(message),
                    metadata=redactor.redact_value(metadata),
                    timestamp=ts,
                )
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing is buffered: always ``True``."""
        return True

    def flush_execution(self, execution_id: str, timeout: float = 10.0) -> bool:
        """Nothing is buffered: always ``True``."""
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Mark the collector closed."""
        self.closed = True

    def messages(self, execution_id: str | None = None) -> list[str]:
        """The recorded messages, optionally of one execution."""
        with self._lock:
            return [
                e.message
                for e in self.entries
                if execution_id is None or e.execution_id == execution_id
            ]
