"""AttemptCapture: levels, prefixes, the 10 MiB budget, chunking and the stderr tail."""

from __future__ import annotations

import threading
import tracemalloc
from collections import deque
from typing import Any

import pytest

from autokestra_obs_collector import AttemptCapture
from autokestra_obs_collector.testing import capture
from autokestra_obs_schema import LogLevel

MIB = 1024 * 1024
READ = 64 * 1024  # what a pipe read typically returns


def feed_in_reads(cap: AttemptCapture, stream: Any, data: bytes, size: int = READ) -> None:
    view = memoryview(data)
    for start in range(0, len(data), size):
        cap.feed(stream, bytes(view[start : start + size]))


class CountingSink:
    """Keeps levels, sizes and metadata, not the text: memory stays the capture's own."""

    def __init__(self) -> None:
        self.entries: list[tuple[LogLevel, int, dict[str, Any] | None]] = []
        self.first: list[str] = []

    def __call__(self, level: LogLevel, message: str, metadata: dict[str, Any] | None) -> None:
        self.entries.append((level, len(message.encode()), metadata))
        if len(self.first) < 3:
            self.first.append(message[:20])


class TestLevels:
    def test_stdout_info_stderr_warn(self) -> None:
        """Plain stdout lines are INFO, plain stderr lines WARN."""
        with capture() as (cap, sink):
            cap.feed("stdout", b"out\n")
            cap.feed("stderr", b"err\n")
        assert [(x.level, x.message) for x in sink.lines] == [
            (LogLevel.INFO, "out"),
            (LogLevel.WARN, "err"),
        ]

    @pytest.mark.parametrize(
        ("line", "level", "message"),
        [
            (b"::debug::d", LogLevel.DEBUG, "d"),
            (b"::info::i", LogLevel.INFO, "i"),
            (b"::warn::w", LogLevel.WARN, "w"),
            (b"::error::e", LogLevel.ERROR, "e"),
            (b"::bogus::b", LogLevel.WARN, "::bogus::b"),
            (b" ::error::e", LogLevel.WARN, " ::error::e"),
        ],
    )
    def test_prefix_sets_the_level_and_is_stripped(
        self, line: bytes, level: LogLevel, message: str
    ) -> None:
        """A known ::level:: prefix at the start of a line sets the level and is removed."""
        with capture() as (cap, sink):
            cap.feed("stderr", line + b"\n")
        assert [(x.level, x.message) for x in sink.lines] == [(level, message)]

    def test_chunks_of_a_prefixed_line_keep_its_level(self) -> None:
        """Continuation chunks of an ::error:: line are ERROR and marked as continuations."""
        with capture(max_line_bytes=16) as (cap, sink):
            cap.feed("stdout", b"::error::" + b"e" * 39 + b"\nnext\n")
        assert [x.level for x in sink.lines] == [LogLevel.ERROR] * 3 + [LogLevel.INFO]
        assert [x.metadata for x in sink.lines] == [
            None,
            {"continuation": True},
            {"continuation": True},
            None,
        ]
        assert "".join(x.message for x in sink.lines[:3]) == "e" * 39


class TestCorpus:
    def test_invalid_utf8_nul_cr_and_missing_final_newline(self) -> None:
        """The awkward bytes produce exactly the expected messages."""
        with capture() as (cap, sink):
            cap.feed("stdout", b"bad \xff\xfe byte\n")
            cap.feed("stdout", b"surrogate \xed\xa0\x80\n")
            cap.feed("stdout", b"nul\x00inside\r\n")
            cap.feed("stdout", b"progress 1\rprogress 2\r")
            cap.feed("stdout", b"\nno newline at end")
        assert sink.messages() == [
            "bad \ufffd\ufffd byte",
            "surrogate \ufffd\ufffd\ufffd",
            "nul\x00inside",
            "progress 1",
            "progress 2",
            "no newline at end",
        ]
        counts = cap.counts
        assert counts.lines == 6 and counts.elided_lines == 0
        assert counts.bytes == counts.stored_bytes

    def test_fifty_megabyte_line(self) -> None:
        """A 50 MiB line: 64 KiB chunks, head to 10 MiB, one WARN, the last 200 chunks."""
        data = b"y" * (50 * MIB) + b"\n"
        sink = CountingSink()
        cap = AttemptCapture(sink)
        tracemalloc.start()
        try:
            feed_in_reads(cap, "stdout", data)
            cap.close()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        chunks = 50 * MIB // READ  # 800
        head = 10 * MIB // READ  # 160
        assert len(sink.entries) == head + 1 + 200
        assert all(size == READ for _, size, _ in sink.entries[:head])
        assert sink.entries[0][2] is None
        assert all(meta == {"continuation": True} for _, _, meta in sink.entries[1:head])
        warn = sink.entries[head]
        assert warn[0] == LogLevel.WARN
        assert warn[2] == {"elided_lines": chunks - head - 200, "elided_bytes": 440 * READ}
        assert all(meta == {"continuation": True} for _, _, meta in sink.entries[head + 1 :])
        counts = cap.counts
        assert counts.lines == chunks and counts.bytes == len(data)
        assert counts.stored_bytes + counts.elided_bytes == len(data)
        assert peak < 16 * MIB  # the capture holds the tail (12.5 MiB), never the line

    def test_a_million_short_lines(self) -> None:
        """1,000,000 short lines under the budget arrive exactly, in order."""
        data = b"".join(b"%d\n" % i for i in range(1_000_000))
        got: list[str] = []
        cap = AttemptCapture(lambda level, message, metadata: got.append(message))
        feed_in_reads(cap, "stdout", data)
        cap.close()
        assert len(got) == 1_000_000
        assert got[0] == "0" and got[-1] == "999999"
        assert got == [str(i) for i in range(1_000_000)]
        assert cap.counts.elided_lines == 0

    def test_fifteen_megabytes_both_streams(self) -> None:
        """15 MiB over stdout and stderr: the first 10 MiB, one WARN, the last 200 lines."""
        line = b"%07d " + b"z" * 91 + b"\n"  # 100 bytes
        total = 15 * MIB // 100
        head = 10 * MIB // 100
        # The sink checks as it goes and keeps O(1) state, so the peak is the capture's own.
        state: dict[str, Any] = {"n": 0, "warn": None, "bad": [], "tail": deque(maxlen=201)}

        def record(level: LogLevel, message: str, metadata: dict[str, Any] | None) -> None:
            n = state["n"]
            state["n"] = n + 1
            if n < head:
                if message[:7] != f"{n:07d}":
                    state["bad"].append(n)
            elif n == head:
                state["warn"] = (level, metadata)
            else:
                state["tail"].append(message[:7])

        cap = AttemptCapture(record)
        batch_out: list[bytes] = []
        tracemalloc.start()
        try:
            for i in range(total):
                batch_out.append(line % i)
                if len(batch_out) == 600:  # alternate streams every 600 lines
                    stream = "stdout" if (i // 600) % 2 == 0 else "stderr"
                    feed_in_reads(cap, stream, b"".join(batch_out))
                    batch_out = []
            cap.feed("stderr", b"".join(batch_out))
            cap.close()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert state["bad"] == []
        assert state["n"] == head + 1 + 200
        assert state["warn"] == (
            LogLevel.WARN,
            {"elided_lines": total - head - 200, "elided_bytes": (total - head - 200) * 100},
        )
        assert list(state["tail"]) == [f"{i:07d}" for i in range(total - 200, total)]
        counts = cap.counts
        assert counts.bytes == total * 100
        assert counts.stored_lines == head + 200
        assert peak < 2 * MIB  # one read, one partial line per stream, the 200-line tail


class TestBudget:
    def test_small_budget_keeps_head_warn_and_tail(self) -> None:
        """With a 10-byte budget and a 2-line tail: head lines, the WARN, then the tail."""
        with capture(max_bytes=10, tail_lines=2) as (cap, sink):
            cap.feed("stdout", b"".join(b"l%d\n" % i for i in range(10)))
        assert sink.messages()[:3] == ["l0", "l1", "l2"]
        warn = sink.lines[3]
        assert warn.level == LogLevel.WARN
        assert warn.metadata == {"elided_lines": 5, "elided_bytes": 15}
        assert sink.messages()[4:] == ["l8", "l9"]

    def test_no_warn_when_nothing_is_elided(self) -> None:
        """Going over budget by fewer lines than the tail keeps every line and adds no WARN."""
        with capture(max_bytes=6, tail_lines=5) as (cap, sink):
            cap.feed("stdout", b"a\nb\nc\nd\ne\n")
        assert sink.messages() == ["a", "b", "c", "d", "e"]
        assert cap.counts.elided_lines == 0


class TestStderrTail:
    def test_keeps_the_last_twenty_stderr_lines(self) -> None:
        """stderr_tail returns the last 20 stderr lines, elided ones included."""
        with capture(max_bytes=5) as (cap, _):
            cap.feed("stdout", b"not stderr\n")
            cap.feed("stderr", b"".join(b"e%d\n" % i for i in range(50)))
        assert cap.stderr_tail() == [f"e{i}" for i in range(30, 50)]


class TestThreads:
    def test_two_reader_threads(self) -> None:
        """Concurrent stdout and stderr readers: every line once, each stream in order."""
        with capture() as (cap, sink):

            def reader(stream: Any, tag: str) -> None:
                data = b"".join(f"{tag}{i}\n".encode() for i in range(20_000))
                feed_in_reads(cap, stream, data, size=777)

            threads = [
                threading.Thread(target=reader, args=("stdout", "o")),
                threading.Thread(target=reader, args=("stderr", "e")),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        out = [m for m in sink.messages() if m.startswith("o")]
        err = [m for m in sink.messages() if m.startswith("e")]
        assert out == [f"o{i}" for i in range(20_000)]
        assert err == [f"e{i}" for i in range(20_000)]

    def test_feed_after_close_is_refused(self) -> None:
        """A closed capture raises on feed; close is idempotent."""
        with capture() as (cap, _):
            pass
        cap.close()
        with pytest.raises(ValueError, match="closed"):
            cap.feed("stdout", b"x\n")
        with pytest.raises(ValueError, match="unknown stream"):
            cap.feed("stdin", b"x")  # type: ignore[arg-type]  # the check under test
