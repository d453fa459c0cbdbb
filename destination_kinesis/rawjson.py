"""Exact handling of JSON text: where orjson's round trip is safe, and spans of raw member values where it is not.

orjson parses fast but turns integers beyond 64 bits into floats, rounds decimals beyond double precision, flushes
``1e-400`` to 0.0, and rejects ``1e400`` and escaped lone surrogates, all of which are valid JSON a source may send.
Re-serialising what it parsed keeps every value when no number literal has 16 or more significant digits (a double
keeps any decimal of 15) and none has a negative exponent of three digits (below the normal range of a double).
:func:`orjson_round_trip_is_exact` checks that on the raw line; everything else is copied from the raw text by span,
with the stdlib's C scanner finding the spans.
"""

from __future__ import annotations

import json
import re
from json.scanner import make_scanner
from typing import Any

# The check runs on every record, so it uses only C-speed bytes operations (a regex costs several times orjson's
# parse): digits and '.' become '0', and 'E' becomes 'e'. Sixteen '0's in a row cover 16 digits with or without a
# decimal point; "e-000" covers exponents from -100 down. Either may also fire inside a string: that only sends the
# line down the exact path, never the other way round.
_NUMBER_CHARS = bytes.maketrans(b"0123456789.E", b"00000000000e")
_SIXTEEN_DIGITS = b"0" * 16
_TINY_EXPONENT = b"e-000"
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class JsonError(ValueError):
    """The text is not valid JSON (or nests deeper than the parser allows); the message says where."""


def orjson_round_trip_is_exact(line: bytes) -> bool:
    """True when every number literal in ``line`` survives orjson's parse and re-serialisation with its value."""
    numbers = line.translate(_NUMBER_CHARS)
    return _SIXTEEN_DIGITS not in numbers and _TINY_EXPONENT not in numbers


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_scan_once = make_scanner(json.JSONDecoder(parse_constant=_reject_constant))  # type: ignore[arg-type]


def _skip_whitespace(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _expect(text: str, pos: int, char: str) -> int:
    if text[pos : pos + 1] != char:
        raise JsonError(f"expected '{char}' at character {pos}")
    return pos + 1


def scan_value(text: str, pos: int) -> tuple[Any, int]:
    """Parse the JSON value that starts at ``pos``: return it (stdlib semantics) and the index just after it."""
    try:
        return _scan_once(text, pos)
    except StopIteration:
        raise JsonError(f"expected a JSON value at character {pos}") from None
    except RecursionError:
        raise JsonError("the JSON nests too deeply to parse") from None
    except ValueError as exc:  # json.JSONDecodeError and the constants refused above
        raise JsonError(str(exc)) from None


class Member:
    """One ``"key": value`` of an object: the parsed value and where its text starts and ends."""

    __slots__ = ("key", "value", "start", "value_start", "end")

    def __init__(self, key: str, value: Any, start: int, value_start: int, end: int):
        self.key, self.value, self.start, self.value_start, self.end = key, value, start, value_start, end


def object_members(text: str, pos: int) -> tuple[dict[str, Member], int]:
    """Parse the object at ``pos`` member by member.

    Returns its members by key (a repeated key keeps the last, as orjson and json do) and the index just after the
    closing brace. Raises :class:`JsonError` if the text there is not a JSON object.
    """
    pos = _expect(text, _skip_whitespace(text, pos), "{")
    members: dict[str, Member] = {}
    pos = _skip_whitespace(text, pos)
    if text[pos : pos + 1] == "}":
        return members, pos + 1
    while True:
        start = pos
        if text[pos : pos + 1] != '"':
            raise JsonError(f"expected a member name at character {pos}")
        key, pos = scan_value(text, pos)
        pos = _skip_whitespace(text, _expect(text, _skip_whitespace(text, pos), ":"))
        value, end = scan_value(text, pos)
        members[key] = Member(key, value, start, pos, end)
        pos = _skip_whitespace(text, end)
        if text[pos : pos + 1] == "}":
            return members, pos + 1
        pos = _skip_whitespace(text, _expect(text, pos, ","))


def parse_document(text: str) -> dict[str, Member]:
    """Parse a whole line that must hold one JSON object (and nothing after it but whitespace); return its members."""
    members, end = object_members(text, 0)
    if _skip_whitespace(text, end) != len(text):
        raise JsonError(f"unexpected text after the JSON object at character {end}")
    return members
