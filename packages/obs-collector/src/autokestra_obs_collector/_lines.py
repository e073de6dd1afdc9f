"""Splitting a child process's byte stream into decoded lines of bounded size.

Reads from a pipe end anywhere: in the middle of a line, between ``\\r`` and ``\\n``, or in
the middle of a multi-byte UTF-8 character. :class:`LineSplitter` keeps the state across reads
so the lines come out exactly as if the whole stream had been split at once.

    splitter = LineSplitter(max_line_bytes=65536)
    pieces = splitter.feed(b"hello\\r\\nwor") + splitter.feed(b"ld") + splitter.close()
    [p.text for p in pieces]   # ['hello', 'world']
"""

from __future__ import annotations

import re
from typing import NamedTuple

_TERMINATORS = re.compile(rb"(\r\n|\r|\n)")
#: Bytes of a UTF-8 character after its lead byte have the bit pattern 10xxxxxx.
_CONTINUATION_MASK = 0xC0
_CONTINUATION_BITS = 0x80
#: One invalid input byte decodes to U+FFFD, three bytes in UTF-8.
_MAX_EXPANSION = 3


class Piece(NamedTuple):
    """One stored unit of output: a whole line, or one chunk of a long line.

    Attributes:
        text: the decoded text (invalid UTF-8 replaced by U+FFFD; NUL kept), at most
            ``max_line_bytes`` bytes when encoded as UTF-8.
        nbytes: how many input bytes it accounts for, terminator included (the pieces of
            a stream add up to the stream's length).
        continuation: ``True`` for every chunk of a long line after its first.
    """

    text: str
    nbytes: int
    continuation: bool


def _is_continuation(byte: int) -> bool:
    return byte & _CONTINUATION_MASK == _CONTINUATION_BITS


def char_boundary(data: bytes | bytearray, limit: int) -> int:
    """Return a cut position ``<= limit`` that does not split a valid UTF-8 character.

    A valid character has at most three continuation bytes, so looking back three bytes is
    enough; a longer run of continuation bytes is invalid input and may be cut anywhere.
    """
    if limit >= len(data):
        return len(data)
    for back in range(4):
        cut = limit - back
        if cut <= 0:
            break
        if not _is_continuation(data[cut]):
            return cut
    return limit


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces whose UTF-8 encodings are at most ``limit`` bytes."""
    if len(text) * 4 <= limit:
        return [text]
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return [text]
    pieces: list[str] = []
    start = 0
    while start < len(encoded):
        cut = start + char_boundary(encoded[start:], limit)
        if cut == start:  # cannot happen for valid UTF-8 and limit >= 4; guard anyway
            cut = start + limit
        pieces.append(encoded[start:cut].decode("utf-8", "surrogatepass"))
        start = cut
    return pieces


class LineSplitter:
    """Incremental splitter for one byte stream (not thread-safe; the capture locks it).

    Line terminators are ``\\n``, ``\\r\\n`` and a lone ``\\r`` (progress bars redraw with
    it). A final line without a terminator is returned by :meth:`close`. A line longer than
    ``max_line_bytes`` comes out as several pieces, each after the first marked as a
    continuation; the splitter never holds more than ``max_line_bytes`` of one line.
    """

    def __init__(self, max_line_bytes: int = 64 * 1024) -> None:
        """Create a splitter.

        Args:
            max_line_bytes: the largest piece, in UTF-8 bytes (at least 4).
        """
        if max_line_bytes < 4:
            raise ValueError("max_line_bytes must be at least 4")
        self._limit = max_line_bytes
        self._buf = bytearray()
        self._started = False  # a chunk of the current line was already emitted
        self._cr_pending = False  # the stream so far ended with \r: \n may follow

    def feed(self, data: bytes) -> list[Piece]:
        """Take the next bytes read from the stream and return the pieces they complete."""
        out: list[Piece] = []
        if not data:
            return out
        if self._cr_pending:
            self._cr_pending = False
            if data[:1] == b"\n":
                self._finish(out, 2)
                data = data[1:]
            else:
                self._finish(out, 1)
        if data.endswith(b"\r"):
            # Wait for the next read: "\r" + "\n" across reads is one terminator.
            data = data[:-1]
            self._cr_pending = True
        if b"\r" in data:
            parts = _TERMINATORS.split(data)
            for i in range(0, len(parts) - 1, 2):
                self._append(out, parts[i])
                self._finish(out, len(parts[i + 1]))
            self._append(out, parts[-1])
        else:
            lines = data.split(b"\n")
            last = len(lines) - 1
            index = 0
            if last and (self._buf or self._started):
                # The first line continues what earlier reads left in the buffer.
                self._append(out, lines[0])
                self._finish(out, 1)
                index = 1
            short = self._limit // _MAX_EXPANSION
            new_piece = tuple.__new__
            while index < last:
                line = lines[index]
                index += 1
                if len(line) <= short:
                    # The common case, kept tight: a whole short line, decoded in one call.
                    text = line.decode("utf-8", "replace")
                    out.append(new_piece(Piece, (text, len(line) + 1, False)))
                else:
                    self._append(out, line)
                    self._finish(out, 1)
            self._append(out, lines[last])
        return out

    def close(self) -> list[Piece]:
        """End of stream: return the pieces of a last line that had no terminator."""
        out: list[Piece] = []
        if self._cr_pending:
            self._cr_pending = False
            self._finish(out, 1)
        elif self._buf:
            self._finish(out, 0)
        return out

    def _append(self, out: list[Piece], content: bytes) -> None:
        if not content:
            return
        self._buf += content
        # Strictly more than the limit: keep at least one byte so the line's last piece is
        # never an empty continuation.
        while len(self._buf) > self._limit:
            cut = char_boundary(self._buf, self._limit)
            self._emit(out, bytes(self._buf[:cut]), cut)
            del self._buf[:cut]

    def _finish(self, out: list[Piece], terminator: int) -> None:
        content = bytes(self._buf)
        self._buf.clear()
        self._emit(out, content, len(content) + terminator)
        self._started = False

    def _emit(self, out: list[Piece], raw: bytes, nbytes: int) -> None:
        text = raw.decode("utf-8", "replace")
        if len(raw) * _MAX_EXPANSION <= self._limit:
            texts = [text]
        else:
            texts = split_text(text, self._limit)
        for i, part in enumerate(texts):
            out.append(Piece(part, nbytes if i == 0 else 0, self._started))
            self._started = True
