"""LineSplitter: exact lines across arbitrary read boundaries, bounded pieces."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from autokestra_obs_collector import LineSplitter, Piece

_TERMINATOR = re.compile(rb"\r\n|\r|\n")
# Bytes that stress the splitter: terminators, NUL, multi-byte UTF-8 pieces, invalid bytes.
_ATOMS = [
    b"a",
    b"Z",
    b" ",
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"\x80",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xe0\xa0",
]


def reference_lines(data: bytes) -> list[str]:
    """What splitting the whole stream at once gives."""
    parts = _TERMINATOR.split(data)
    if parts and parts[-1] == b"":
        parts.pop()  # a final terminator ends the last line; it does not start a new one
    return [p.decode("utf-8", "replace") for p in parts]


def run(chunks: list[bytes], limit: int) -> list[Piece]:
    splitter = LineSplitter(limit)
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += splitter.feed(chunk)
    return pieces + splitter.close()


def join_lines(pieces: list[Piece]) -> list[str]:
    lines: list[str] = []
    for piece in pieces:
        if piece.continuation:
            lines[-1] += piece.text
        else:
            lines.append(piece.text)
    return lines


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = b"".join(draw(st.lists(st.sampled_from(_ATOMS), max_size=80)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return data, chunks


class TestLineSplitter:
    @settings(max_examples=400, deadline=None)
    @given(streams())
    def test_any_read_boundaries_give_the_reference_lines(
        self, stream: tuple[bytes, list[bytes]]
    ) -> None:
        """Feeding a stream in any pieces yields the lines of splitting it at once."""
        data, chunks = stream
        pieces = run(chunks, 64 * 1024)
        assert [p.text for p in pieces] == reference_lines(data)
        assert not any(p.continuation for p in pieces)
        assert sum(p.nbytes for p in pieces) == len(data)

    @settings(max_examples=400, deadline=None)
    @given(streams(), st.integers(4, 12))
    def test_long_lines_become_bounded_chunks(
        self, stream: tuple[bytes, list[bytes]], limit: int
    ) -> None:
        """With a small limit every piece fits it, chunks rejoin into the lines, bytes add up."""
        data, chunks = stream
        pieces = run(chunks, limit)
        assert join_lines(pieces) == reference_lines(data)
        assert all(len(p.text.encode("utf-8")) <= limit for p in pieces)
        assert not any(p.continuation and p.text == "" for p in pieces)
        assert sum(p.nbytes for p in pieces) == len(data)

    @settings(max_examples=200, deadline=None)
    @given(streams())
    def test_never_produces_surrogates(self, stream: tuple[bytes, list[bytes]]) -> None:
        """Invalid UTF-8 (encoded surrogates included) decodes to U+FFFD, never to surrogates."""
        _, chunks = stream
        for piece in run(chunks, 16):
            piece.text.encode("utf-8")  # strict: raises on a lone surrogate

    def test_crlf_split_across_reads_is_one_terminator(self) -> None:
        """A read ending in \\r followed by one starting with \\n ends a single line."""
        pieces = run([b"one\r", b"\ntwo\r", b"three\r", b""], 100)
        assert [p.text for p in pieces] == ["one", "two", "three"]
        assert [p.nbytes for p in pieces] == [5, 4, 6]

    def test_lone_cr_ends_a_line(self) -> None:
        """Progress-bar style \\r redraws become separate lines."""
        assert [p.text for p in run([b"10%\r50%\r100%\n"], 100)] == ["10%", "50%", "100%"]

    def test_last_line_without_newline_is_kept(self) -> None:
        """close() returns a final unterminated line."""
        assert [p.text for p in run([b"a\nlast"], 100)] == ["a", "last"]

    def test_empty_lines_are_kept(self) -> None:
        """Blank lines are lines too."""
        assert [p.text for p in run([b"\n\nx\n"], 100)] == ["", "", "x"]

    def test_multibyte_character_across_reads(self) -> None:
        """A character split between two reads is decoded whole."""
        assert [p.text for p in run([b"caf\xc3", b"\xa9\n"], 100)] == ["caf\u00e9"]

    def test_exact_limit_line_is_one_piece(self) -> None:
        """A line of exactly max_line_bytes is not followed by an empty continuation."""
        pieces = run([b"abcdefgh", b"\n"], 8)
        assert pieces == [Piece("abcdefgh", 9, False)]

    def test_chunk_boundary_does_not_split_a_character(self) -> None:
        """Chunks end before a multi-byte character that would straddle the limit."""
        pieces = run(["ab\u20ac\u20ac".encode()], 6)
        assert [p.text for p in pieces] == ["ab\u20ac", "\u20ac"]
        assert [p.continuation for p in pieces] == [False, True]

    def test_invalid_bytes_expanding_past_the_limit_are_split(self) -> None:
        """Eight invalid bytes decode to 24 bytes of U+FFFD: still no piece over the limit."""
        pieces = run([b"\xff" * 8], 8)
        assert all(len(p.text.encode()) <= 8 for p in pieces)
        assert "".join(p.text for p in pieces) == "\ufffd" * 8
