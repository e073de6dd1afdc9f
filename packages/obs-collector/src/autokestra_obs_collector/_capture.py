"""Turning a task attempt's stdout and stderr bytes into log entries, within a budget.

The executor's reader threads call :meth:`AttemptCapture.feed` with whatever each pipe read
returned; the capture splits lines (:mod:`._lines`), picks each line's level, and hands one
entry per stored line to a sink. Past ``max_bytes`` of output (both streams together) it keeps
draining but stores only the head, one WARN entry saying how much was elided, and the last
``tail_lines`` lines (DESIGN.md §5).

    capture = AttemptCapture(lambda level, message, metadata: print(level, message))
    capture.feed("stdout", b"::warn::disk almost full\\nok\\n")
    capture.close()          # WARN disk almost full / INFO ok
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

from autokestra_obs_schema import LogLevel

from ._lines import LineSplitter, Piece

Stream = Literal["stdout", "stderr"]

#: ``::level::`` prefixes a plugin may start a line with; removed from the stored message.
LEVEL_PREFIXES: tuple[tuple[str, LogLevel], ...] = (
    ("::debug::", LogLevel.DEBUG),
    ("::info::", LogLevel.INFO),
    ("::warn::", LogLevel.WARN),
    ("::error::", LogLevel.ERROR),
)
_DEFAULT_LEVEL: dict[str, LogLevel] = {"stdout": LogLevel.INFO, "stderr": LogLevel.WARN}
#: How many stderr lines :meth:`AttemptCapture.stderr_tail` keeps.
STDERR_TAIL_LINES = 20
#: A stderr-tail line is cut to this many characters: the tail goes into the error JSON.
STDERR_TAIL_LINE_CHARS = 4096
MIB = 1024 * 1024


class Sink(Protocol):
    """Receives one stored line: the runtime's closure around ``LogCollector.log``."""

    def __call__(self, level: LogLevel, message: str, metadata: dict[str, Any] | None) -> None:
        """Store one line."""


@dataclass(frozen=True, slots=True)
class CaptureCounts:
    """What a capture has seen and done so far.

    Attributes:
        lines: pieces produced from both streams (a chunk of a long line counts as one).
        bytes: bytes fed, both streams.
        stored_lines: pieces handed to the sink (the elision WARN not included).
        stored_bytes: input bytes those pieces account for.
        elided_lines: pieces dropped between the head and the tail.
        elided_bytes: input bytes those pieces account for.
    """

    lines: int
    bytes: int
    stored_lines: int
    stored_bytes: int
    elided_lines: int
    elided_bytes: int


class _Held(NamedTuple):
    level: LogLevel
    text: str
    metadata: dict[str, Any] | None
    nbytes: int


def level_of(stream: str, text: str) -> tuple[LogLevel, str]:
    """Return the level of a line and the line without its ``::level::`` prefix."""
    if text.startswith("::"):
        for prefix, level in LEVEL_PREFIXES:
            if text.startswith(prefix):
                return level, text[len(prefix) :]
    return _DEFAULT_LEVEL[stream], text


class AttemptCapture:
    """Captures one task attempt's output; thread-safe (one reader thread per stream).

    The sink is called with the capture's lock held, so entries reach it in one order and
    the head, the elision WARN and the tail stay in sequence.
    """

    def __init__(
        self,
        sink: Sink | Callable[[LogLevel, str, dict[str, Any] | None], None],
        *,
        max_bytes: int = 10 * MIB,
        tail_lines: int = 200,
        max_line_bytes: int = 64 * 1024,
    ) -> None:
        """Create a capture.

        Args:
            sink: called once per stored line with ``(level, message, metadata)``.
            max_bytes: output budget of the attempt, stdout and stderr together.
            tail_lines: lines kept from the end once the budget is exceeded.
            max_line_bytes: the largest stored line; longer lines become chunks.
        """
        if max_bytes < 0 or tail_lines < 0:
            raise ValueError("max_bytes and tail_lines must not be negative")
        self._sink = sink
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._splitters = {
            "stdout": LineSplitter(max_line_bytes),
            "stderr": LineSplitter(max_line_bytes),
        }
        self._line_level = {"stdout": LogLevel.INFO, "stderr": LogLevel.WARN}
        self._tail: deque[_Held] = deque()
        self._tail_lines = tail_lines
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._eliding = False
        self._closed = False
        self._lines = 0
        self._bytes = 0
        self._stored_lines = 0
        self._stored_bytes = 0
        self._elided_lines = 0
        self._elided_bytes = 0

    def feed(self, stream: Stream, data: bytes) -> None:
        """Take bytes read from one of the child's pipes.

        Args:
            stream: ``"stdout"`` or ``"stderr"``.
            data: the bytes exactly as read (any size, any boundary).

        Raises:
            ValueError: unknown stream, or the capture is closed.
        """
        splitter = self._splitters.get(stream)
        if splitter is None:
            raise ValueError(f"unknown stream {stream!r}: expected 'stdout' or 'stderr'")
        with self._lock:
            if self._closed:
                raise ValueError("capture is closed")
            self._bytes += len(data)
            for piece in splitter.feed(data):
                self._take(stream, piece)

    def close(self) -> None:
        """End of both streams: store last lines, the elision WARN and the tail. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for stream, splitter in self._splitters.items():
                for piece in splitter.close():
                    self._take(stream, piece)
            if self._elided_lines:
                self._sink(
                    LogLevel.WARN,
                    f"Output exceeded {self._max_bytes / MIB:.1f} MiB: "
                    f"{self._elided_lines} lines ({self._elided_bytes} bytes) elided; "
                    f"the last {len(self._tail)} lines follow",
                    {"elided_lines": self._elided_lines, "elided_bytes": self._elided_bytes},
                )
            while self._tail:
                held = self._tail.popleft()
                self._stored_lines += 1
                self._stored_bytes += held.nbytes
                self._sink(held.level, held.text, held.metadata)

    @property
    def counts(self) -> CaptureCounts:
        """A snapshot of the counters (final once :meth:`close` has returned)."""
        with self._lock:
            return CaptureCounts(
                lines=self._lines,
                bytes=self._bytes,
                stored_lines=self._stored_lines,
                stored_bytes=self._stored_bytes,
                elided_lines=self._elided_lines,
                elided_bytes=self._elided_bytes,
            )

    def stderr_tail(self) -> list[str]:
        """The last 20 stderr lines (elided ones included), oldest first, for error reports.

        Not redacted: pass them through the execution's ``Redactor`` before storing.
        """
        with self._lock:
            return list(self._stderr_tail)

    def _take(self, stream: str, piece: Piece) -> None:
        if piece.continuation:
            level, text = self._line_level[stream], piece.text
            metadata: dict[str, Any] | None = {"continuation": True}
        else:
            level, text = level_of(stream, piece.text)
            self._line_level[stream] = level
            metadata = None
        self._lines += 1
        if stream == "stderr":
            self._stderr_tail.append(text[:STDERR_TAIL_LINE_CHARS])
        if not self._eliding and self._stored_bytes + piece.nbytes <= self._max_bytes:
            self._stored_lines += 1
            self._stored_bytes += piece.nbytes
            self._sink(level, text, metadata)
            return
        # Over budget: from here on only the last lines survive (never a later small line
        # slipped in after the head, which would reorder the story).
        self._eliding = True
        self._tail.append(_Held(level, text, metadata, piece.nbytes))
        if len(self._tail) > self._tail_lines:
            dropped = self._tail.popleft()
            self._elided_lines += 1
            self._elided_bytes += dropped.nbytes


#: The issue's name for the same class: it captures one task attempt's output.
OutputCapture = AttemptCapture
