"""stdin bytes → numbered lines, with a bound on line length so memory stays bounded."""

from __future__ import annotations

from destination_kinesis.errors import input_error
from destination_kinesis.limits import MIB
from destination_kinesis.reader import is_utf8

MAX_LINE_BYTES = 64 * MIB


class LineReader:
    """Splits chunks of input into lines (without the newline) and counts them from 1.

    :attr:`line_no` is the number of the last line returned, and :attr:`utf8` tells whether all the lines last
    returned are valid UTF-8 (checked once per chunk, so the lines need not be one by one). A line longer than
    ``max_line_bytes`` is an input error: no record or state that large can be written or echoed.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES):
        self._max = max_line_bytes
        self._partial: list[bytes] = []
        self._partial_size = 0
        self.line_no = 0
        self.utf8 = True

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines that ``chunk`` completes; its unfinished tail waits for the next chunk.

        :attr:`line_no` counts them all at once. Only the first line can be longer than ``chunk``, so the others are
        measured against the limit only when the chunk itself is longer than it.
        """
        lines = chunk.split(b"\n")
        tail = lines.pop()
        first_end = len(lines[0]) if lines else 0
        if lines and self._partial:
            self._partial.append(lines[0])
            lines[0] = b"".join(self._partial)
            self._partial, self._partial_size = [], 0
        # The lines after the first lie in this chunk between its first and its last newline: one check for them all.
        others = memoryview(chunk)[first_end + 1 : len(chunk) - len(tail) - 1]
        self.utf8 = not lines or (is_utf8(lines[0]) and (chunk.isascii() or is_utf8(others)))
        for offset, line in enumerate(lines if len(chunk) > self._max else lines[:1]):
            if len(line) > self._max:
                raise input_error(self.line_no + 1 + offset, f"the line is longer than {self._max // MIB} MiB")
        self.line_no += len(lines)
        if tail:
            self._partial.append(tail)
            self._partial_size += len(tail)
            if self._partial_size > self._max:
                raise input_error(self.line_no + 1, f"the line is longer than {self._max // MIB} MiB")
        return lines

    def finish(self) -> list[bytes]:
        """The last line, when the input does not end with a newline."""
        if not self._partial:
            return []
        self.line_no += 1
        line = b"".join(self._partial)
        self._partial, self._partial_size = [], 0
        self.utf8 = is_utf8(line)
        return [line]
