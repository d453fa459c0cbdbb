"""lines: chunks of input → numbered lines, whatever the chunk boundaries, with a bound on line length."""

from __future__ import annotations

import random
import re

import pytest

from destination_kinesis.errors import ConnectorError
from destination_kinesis.limits import MIB
from destination_kinesis.lines import MAX_LINE_BYTES, LineReader
from destination_kinesis.reader import is_utf8

INPUT = b'{"type":"RECORD"}\n\nsecond \xc3\xa9 line\r\n\n\nlast line without newline'


def _read(chunks: list[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> list[tuple[int, bytes]]:
    reader = LineReader(max_line_bytes)
    out: list[tuple[int, bytes]] = []

    def take(lines: list[bytes]) -> None:
        out.extend((len(out) + 1, line) for line in lines)
        assert reader.line_no == len(out)  # line_no is the number of the last line returned

    for chunk in chunks:
        take(reader.feed(chunk))
    take(reader.finish())
    return out


EXPECTED = list(enumerate(INPUT.split(b"\n"), start=1))


def test_whole_input_in_one_chunk() -> None:
    """Lines come without their newline, numbered from 1; blank lines count; a final line needs no newline."""
    assert _read([INPUT]) == EXPECTED
    assert EXPECTED[-1] == (6, b"last line without newline")


def test_every_split_point_gives_the_same_lines() -> None:
    """Splitting the input at every byte offset (into 2 and into 3 chunks) gives identical lines and numbers."""
    for i in range(len(INPUT) + 1):
        assert _read([INPUT[:i], INPUT[i:]]) == EXPECTED, i
        for j in range(i, len(INPUT) + 1, 7):
            assert _read([INPUT[:i], INPUT[i:j], INPUT[j:]]) == EXPECTED, (i, j)


def test_byte_by_byte_and_random_chunks() -> None:
    """One byte at a time, and random chunk sizes (including empty chunks), give the same lines."""
    assert _read([INPUT[i : i + 1] for i in range(len(INPUT))]) == EXPECTED
    rng = random.Random(7)
    for _ in range(200):
        chunks, pos = [], 0
        while pos < len(INPUT):
            size = rng.randint(0, 9)
            chunks.append(INPUT[pos : pos + size])
            pos += size
        assert _read(chunks) == EXPECTED


def test_input_ending_with_newline_has_no_extra_line() -> None:
    """A trailing newline ends the last line; finish() then yields nothing."""
    assert _read([b"a\nb\n"]) == [(1, b"a"), (2, b"b")]
    assert _read([b""]) == []
    assert _read([b"\n"]) == [(1, b"")]


def test_line_no_is_the_number_of_the_last_line_returned() -> None:
    """After each call, line_no is the number of the last complete line handed out."""
    reader = LineReader()
    assert reader.feed(b"a\nb\nc") == [b"a", b"b"] and reader.line_no == 2
    assert reader.feed(b"c") == [] and reader.line_no == 2
    assert reader.finish() == [b"cc"] and reader.line_no == 3


def test_line_of_exactly_the_limit_is_accepted() -> None:
    """A line of max_line_bytes is fine, in one chunk or spread over many."""
    assert _read([b"x" * 10 + b"\n"], max_line_bytes=10) == [(1, b"x" * 10)]
    assert _read([b"xxx"] * 3 + [b"x\ny"], max_line_bytes=10) == [(1, b"x" * 10), (2, b"y")]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"ok\n" + b"x" * 11 + b"\nnext\n"],  # a complete over-long line in one chunk
        [b"ok\n", b"x" * 6, b"x" * 6],  # an unfinished line growing past the limit over chunks
        [b"ok\nxxxxxx", b"xxxxx\n"],  # completed by the next chunk
        [b"ok\n" + b"x" * 11],  # the last line, without newline
    ],
)
def test_over_long_line_is_an_error_naming_its_number(chunks: list[bytes]) -> None:
    """A line longer than the limit fails as an input error naming that line's number."""
    with pytest.raises(ConnectorError) as caught:
        _read(chunks, max_line_bytes=10)
    assert caught.value.failure_type == "system_error"
    assert re.search(r"\bline 2\b", caught.value.message)


def test_default_limit_is_64_mib() -> None:
    """The default bound is 64 MiB: far above any record Kinesis takes (1 MiB), far below memory trouble."""
    assert MAX_LINE_BYTES == 64 * MIB


@pytest.mark.parametrize("bad_line", [None, 0, 1, 2])
@pytest.mark.parametrize("offset", [0, 3, -1], ids=["at the start", "inside", "at the end"])
def test_utf8_flag_matches_each_line_at_every_split_point(bad_line: int | None, offset: int) -> None:
    """``utf8`` is True exactly when every line returned by the last feed (or finish) is valid UTF-8, wherever the
    chunk boundaries fall: inside a multi-byte character, inside the bad byte's line, or next to a newline."""
    lines = [b"caf\xc3\xa9 \xe2\x82\xac one", b"plain two", b"\xf0\x9f\x98\x80 three"]
    if bad_line is not None:
        at = offset if offset >= 0 else len(lines[bad_line])
        lines[bad_line] = lines[bad_line][:at] + b"\xc3" + lines[bad_line][at:]  # a lead byte without continuation
    text = b"\n".join(lines)
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1, 3):
            reader = LineReader()
            for chunk in (text[:first], text[first:second], text[second:]):
                fed = reader.feed(chunk)
                assert reader.utf8 == all(is_utf8(line) for line in fed), (first, second)
            last = reader.finish()
            assert reader.utf8 == all(is_utf8(line) for line in last)
