"""rawjson: when orjson's round trip is exact, and exact spans of object members when it is not."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import orjson
import pytest

from destination_kinesis.rawjson import (
    JsonError,
    object_members,
    orjson_round_trip_is_exact,
    parse_document,
    scan_value,
)


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1}',
        b'{"a":-123456789012345}',  # 15 digits
        b'{"a":0.1,"b":1.50,"c":-0,"d":-0.0,"e":[1.0, 2]}',
        b'{"a":123456789012.34}',  # 14 digits and the point
        b'{"a":"1e400 in a string is still text"}',
        b'{"a":[]}',
        b'{"a":1e5,"b":-1.5E3,"c":2.5e-99,"d":1e+300}',  # exponents within a double's normal range
    ],
)
def test_round_trip_is_exact_without_risky_numbers(line: bytes) -> None:
    """Up to 15 digits and no tiny exponent: a double keeps the value, so orjson may parse and re-serialise."""
    assert orjson_round_trip_is_exact(line)


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1E-400}',
        b'{"a":1.234567e-320}',  # a subnormal keeps fewer digits
        b'{"a":25e-0310}',
        b'{"a":1234567890123456}',  # 16 digits
        b'{"a":-9223372036854775807}',
        b'{"a":123456789012345678901234567890}',
        b'{"a":0.1234567890123456}',
        b'{"a":123456789012345.6}',
        b'{"a": [ \t\n\r 1e-100]}',
        b'{"a":[1,\t99999999999999999]}',
        b'{"a":"x","b":"1E-500"}',  # looks like a number inside a string: the safe side is the exact path
    ],
)
def test_round_trip_is_not_exact_with_tiny_exponents_or_16_digits(line: bytes) -> None:
    """16+ digits or an exponent below -99 may not survive a double: such lines go down the exact path."""
    assert not orjson_round_trip_is_exact(line)


def test_scan_value_returns_value_and_end() -> None:
    """scan_value parses one value at a position and says where it ends."""
    text = '  [1, {"a": "b"}] tail'
    value, end = scan_value(text, 2)
    assert value == [1, {"a": "b"}]
    assert text[end:] == " tail"


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
def test_scan_value_rejects_non_json_constants(text: str) -> None:
    """NaN and the infinities are not JSON and are refused."""
    with pytest.raises(JsonError):
        scan_value(text, 0)


def test_scan_value_reports_missing_value() -> None:
    """No value at the position is a JsonError, not a StopIteration."""
    with pytest.raises(JsonError, match="character 3"):
        scan_value("[1,", 3)


def test_scan_value_reports_deep_nesting_as_json_error() -> None:
    """Nesting deeper than the parser's recursion limit is a JsonError, not a RecursionError."""
    with pytest.raises(JsonError, match="nests too deeply"):
        scan_value("[" * 10_000 + "]" * 10_000, 0)


def test_object_members_gives_exact_spans() -> None:
    """Each member's value span is the raw text of the value, digits and whitespace kept."""
    text = '{ "n" : 1.50 , "big":123456789012345678901234567890,"s":"\\ud800","o":{ "x" : [ ] } }'
    members, end = object_members(text, 0)
    assert end == len(text)
    assert list(members) == ["n", "big", "s", "o"]
    assert text[members["n"].value_start : members["n"].end] == "1.50"
    assert text[members["big"].value_start : members["big"].end] == "123456789012345678901234567890"
    assert members["big"].value == 123456789012345678901234567890
    assert text[members["s"].value_start : members["s"].end] == '"\\ud800"'
    assert members["s"].value == "\ud800"
    assert text[members["o"].value_start : members["o"].end] == '{ "x" : [ ] }'
    assert text[members["o"].start :].startswith('"o"')


def test_object_members_repeated_key_keeps_the_last() -> None:
    """A repeated key keeps the last value, as json and orjson do."""
    members, _ = object_members('{"a":1,"b":2,"a":3}', 0)
    assert members["a"].value == 3
    assert json.loads('{"a":1,"b":2,"a":3}')["a"] == 3


def test_object_members_of_empty_object() -> None:
    """An empty object (with whitespace) has no members."""
    assert object_members("{ \t }", 0) == ({}, 5)


@pytest.mark.parametrize(
    "text",
    ["[1]", '{"a" 1}', '{"a":1,}', '{"a":1', "{a:1}", '{"a":1 "b":2}', "", '"x"'],
)
def test_parse_document_refuses_what_is_not_one_object(text: str) -> None:
    """Anything but a JSON object is a JsonError."""
    with pytest.raises(JsonError):
        parse_document(text)


def test_parse_document_refuses_trailing_text_but_allows_whitespace() -> None:
    """Only whitespace may follow the object."""
    assert parse_document('{"a":1} \r\t ')["a"].value == 1
    with pytest.raises(JsonError, match="after the JSON object"):
        parse_document('{"a":1} {"b":2}')


def test_every_literal_judged_exact_survives_orjson() -> None:
    """Over thousands of random number literals (ints, decimals, exponents of every size), each one the check lets
    through comes back from orjson's parse and re-serialisation with the same decimal value."""
    rng = random.Random(7)
    passed = 0
    for _ in range(20000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 22)))
        literal = rng.choice(["", "-"]) + (digits.lstrip("0") or "0")
        if rng.random() < 0.6:
            literal += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20)))
        if rng.random() < 0.5:
            literal += rng.choice("eE") + rng.choice(["", "+", "-"]) + str(rng.randint(0, 400)).zfill(rng.randint(1, 4))
        line = b'{"n":%s}' % literal.encode()
        if not orjson_round_trip_is_exact(line):
            continue
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # orjson refuses it (1e400): the exact path takes it
        passed += 1
        assert Decimal(orjson.dumps(parsed["n"]).decode()) == Decimal(literal), literal
    assert passed > 5000
