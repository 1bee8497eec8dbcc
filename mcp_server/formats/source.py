"""Reading an import file once, front to back: its start for the detector, its lines, or its JSON array's elements
one at a time (a ChatGPT export can be hundreds of megabytes: it is never held whole), and a progress counter.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

HEAD_CHARS = 65_536
CHUNK_CHARS = 1_048_576


class ImportProblem(ValueError):
    """Why an import stopped, and where: `where` is "line 3", "conversation 2 ('Trip')" and the like."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


class Source:
    """An import file or standard input. Its first HEAD_CHARS are read at once, for the detector."""

    def __init__(self, stream: IO[str], size: int | None = None) -> None:
        self._stream = stream
        self.size = size
        self.head = stream.read(HEAD_CHARS)
        self.consumed = 0
        self._started = False

    @classmethod
    def open(cls, file: str) -> Source:
        """`file`, or standard input for "-" (UTF-8, a byte-order mark dropped); OSError when it cannot be read."""
        if file == "-":
            stdin = getattr(sys.stdin, "buffer", None)
            if stdin is None:
                return cls(sys.stdin)
            # The same descriptor, decoded as the files are (a byte-order mark dropped); closing it leaves stdin.
            return cls(open(stdin.fileno(), encoding="utf-8-sig", closefd=False))
        stream = open(file, encoding="utf-8-sig")  # noqa: SIM115 - closed by Source.close
        return cls(stream, os.fstat(stream.fileno()).st_size)

    def close(self) -> None:
        if self._stream is not sys.stdin:
            self._stream.close()

    def first_line(self) -> str:
        """The first line that is not blank (reading past the head when it is longer)."""
        while True:
            text = self.head.lstrip()
            newline = text.find("\n")
            if newline >= 0:
                return text[:newline]
            more = self._stream.read(HEAD_CHARS)
            if not more:
                return text
            self.head += more

    def chunks(self) -> Iterator[str]:
        """The text in pieces, from the start (once)."""
        if self._started:
            raise RuntimeError("an import source is read once")
        self._started = True
        if self.head:
            self.consumed += len(self.head)
            yield self.head
        while chunk := self._stream.read(CHUNK_CHARS):
            self.consumed += len(chunk)
            yield chunk

    def lines(self) -> Iterator[tuple[int, str]]:
        """(line number from 1, text) for every line, blank ones included."""
        number = 0
        pending: list[str] = []  # the pieces of a line that spans chunks (joined once: a long line stays linear)
        for chunk in self.chunks():
            *complete, rest = chunk.split("\n")
            for line in complete:
                if pending:
                    line, pending = "".join([*pending, line]), []
                number += 1
                yield number, line
            if rest:
                pending.append(rest)
        if pending:
            yield number + 1, "".join(pending)


def json_object(where: str, text: str) -> dict[str, Any]:
    """One JSON object (a line of a JSON Lines file), or the reason it is not one."""
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblem(where, f"not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ImportProblem(where, "expected a JSON object")
    return value


def array_elements(chunks: Iterator[str]) -> Iterator[Any]:
    """The elements of one JSON array, decoded one at a time from text arriving in chunks."""
    decoder = json.JSONDecoder()
    buffer, offset, ended = "", 0, False

    def more(at_least: int) -> bool:
        nonlocal buffer, ended
        while not ended and len(buffer) < at_least:
            chunk = next(chunks, None)
            if chunk is None:
                ended = True
            else:
                buffer += chunk
        return len(buffer) >= at_least

    def skip_space(position: int) -> int:
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                position += 1
            if position < len(buffer) or not more(position + 1):
                return position

    def problem(position: int, what: str) -> ImportProblem:
        return ImportProblem(f"character {offset + position + 1}", what)

    position = skip_space(0)
    if buffer[position : position + 1] != "[":
        raise problem(position, "expected a JSON array")
    position = skip_space(position + 1)
    first = True
    while True:
        if buffer[position : position + 1] == "]":
            if skip_space(position + 1) < len(buffer):
                raise problem(position + 1, "text after the end of the JSON array")
            return
        if not first:
            if buffer[position : position + 1] != ",":
                raise problem(position, "expected ',' or ']' between the array's elements (is the file cut short?)")
            position = skip_space(position + 1)
        while True:
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as exc:
                if not ended:
                    # Most likely the element goes on in the next chunks: read as much again as is pending, so a
                    # long element is decoded a logarithmic number of times, not once per chunk.
                    more(len(buffer) + max(CHUNK_CHARS, len(buffer) - position))
                    continue
                raise problem(exc.pos, f"not JSON ({exc.msg})") from None
            if end < len(buffer) or ended:
                break
            more(len(buffer) + 1)  # a number or literal may go on in the next chunk
        yield value
        first = False
        # Drop what is decoded, so memory holds one element at a time.
        offset += end
        buffer = buffer[end:]
        position = skip_space(0)


class Progress:
    """A one-line counter on stderr while an import runs, only when stderr is a terminal (never in a pipe or log).

    (Neither tqdm nor rich is a dependency; this is all a long import needs.)
    """

    def __init__(self, source: Source, what: str) -> None:
        self._source = source
        self._what = what
        self._shown = 0
        self._last = 0.0
        self.enabled = sys.stderr.isatty()

    def update(self, count: int) -> None:
        if not self.enabled or time.monotonic() - self._last < 0.25:
            return
        self._last = time.monotonic()
        share = ""
        if self._source.size:
            share = f" ({min(99, 100 * self._source.consumed // self._source.size)}% read)"
        text = f"\ragent-memory-mcp: importing {count:,} {self._what}{share}"
        self._shown = len(text)
        sys.stderr.write(text)
        sys.stderr.flush()

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * self._shown + "\r")
            sys.stderr.flush()
            self._shown = 0
