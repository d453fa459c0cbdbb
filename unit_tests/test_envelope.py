"""envelope (with messages and rawjson): the Kinesis payload carries the source's data exactly, under a uuid4 id."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from destination_kinesis.envelope import data_json, new_ids, payload
from destination_kinesis.messages import Record, parse_line
from unit_tests.conftest import EMITTED_AT, assert_same_json, exact_json, record_line

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ENVELOPE_KEYS = ["_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_data"]

_CONTROL_ESCAPED = "".join(f"\\u{code:04x}" for code in range(0x20))
_BIG_STRING = ("abc déf 😀 \\n \\\" " * 60_000)[: 900 * 1024]

# Awkward `data` values, as JSON text exactly as a source could write them.
CORPUS: dict[str, str] = {
    "30-digit int": '{"v":123456789012345678901234567890}',
    "negative big int": '{"v":-123456789012345678901234567890}',
    "int64 max": '{"v":9223372036854775807}',
    "uint64 max + 1": '{"v":18446744073709551616}',
    "40 significant digits": '{"v":1234567890.123456789012345678901234567890}',
    "1e400": '{"v":1e400}',
    "-1E-400": '{"v":-1E-400}',
    "0.1": '{"v":0.1}',
    "1.50": '{"v":1.50}',
    "1.0": '{"v":1.0}',
    "-0": '{"v":-0}',
    "-0.0": '{"v":-0.0}',
    "16 digits around the point": '{"v":0.123456789012345}',
    "15 digits around the point": '{"v":[0.12345678901234,-12345678.9012345]}',
    "15-digit int": '{"v":-123456789012345}',
    "small decimal orjson writes with an exponent": '{"v":[-0.00001,0.000001234]}',
    "0.1 + 0.2": '{"v":0.30000000000000004}',
    "1e22 and 1.0e0": '{"v":[1e22,1.0e0,2E+2]}',
    "integral floats beside big int": '{"a":1.0,"b":99999999999999999999,"c":[2.0]}',
    "literals": '{"t":true,"f":false,"n":null}',
    "lone high surrogate": '{"s":"\\ud800"}',
    "lone low surrogate then text": '{"s":"\\udc00x"}',
    "escaped surrogate pair": '{"s":"\\ud83d\\ude00"}',
    "raw emoji": '{"s":"😀 raw emoji é"}',
    "every control char escaped": '{"c":"' + _CONTROL_ESCAPED + '","short":"\\b\\f\\n\\r\\t\\"\\\\\\/"}',
    "900 KiB string": '{"big":"' + _BIG_STRING + '"}',
    "empty object": "{}",
    "empty array": '{"a":[]}',
    "empty nested object": '{"a":{}}',
    "nested arrays": '{"n":[[[]],[[1,[2.5,[-0.0,[]]]]]]}',
    "duplicate keys": '{"a":1,"b":2,"a":3}',
    "duplicate keys, exact path": '{"a":1,"b":2,"a":1e400}',
    "unicode keys": '{"ключ":"значение","😀":1,"\\u00e9":2,"e\\u0301":3,"":4}',
    "whitespace inside": '{ "a" :\t[ 1 , 2.50 ] ,\r "b" : { } , "c":\t"x" }',
    "whitespace inside, exact path": '{ "a" :\t[ 1e5 , 2.50 ] , "b" : { "d" : [ ] } }',
    "lone surrogate with big number": '{"s":"\\ud800","n":12345678901234567890123}',
}


def encode(record: Record) -> tuple[bytes, str]:
    """The payload and partition key of ``record``, as the writer builds them off its fast path."""
    ab_id = new_ids(1)[0][1:-1]
    return payload(ab_id, record.emitted_at, data_json(record)), ab_id.decode()


def _encode_line(data_text: str, line_no: int = 1) -> tuple[Record, bytes, str]:
    parsed = parse_line(record_line(data_text), line_no)
    assert isinstance(parsed, Record)
    data, partition_key = encode(parsed)
    return parsed, data, partition_key


@pytest.mark.parametrize("data_text", list(CORPUS.values()), ids=list(CORPUS))
def test_data_survives_exactly(data_text: str) -> None:
    """_airbyte_data equals the source's data with every digit and code unit, and a non-integer literal never
    comes back as an integer literal (nor the reverse)."""
    _, data, _ = _encode_line(data_text)
    assert_same_json(exact_json(data)["_airbyte_data"], exact_json(data_text))


def test_corpus_exercises_both_paths() -> None:
    """The corpus sends records down the fast path (orjson) and down the exact path (raw spans)."""
    paths = {"fast": 0, "exact": 0}
    for data_text in CORPUS.values():
        parsed, _, _ = _encode_line(data_text)
        paths["fast" if parsed.data is not None else "exact"] += 1
    assert paths["fast"] >= 5 and paths["exact"] >= 5, paths


@pytest.mark.parametrize("data_text", ['{"a":1}', '{"a":1e400}'], ids=["fast path", "exact path"])
def test_envelope_keys_order_id_and_emitted_at(data_text: str) -> None:
    """The payload has exactly _airbyte_ab_id, _airbyte_emitted_at, _airbyte_data in that order; the id is a
    uuid4 and is the partition key; emitted_at is the record's."""
    _, data, partition_key = _encode_line(data_text)
    pairs = json.loads(data, object_pairs_hook=lambda items: items)
    assert [key for key, _ in pairs] == ENVELOPE_KEYS
    envelope = dict(pairs)
    assert envelope["_airbyte_ab_id"] == partition_key
    assert UUID4.fullmatch(partition_key)
    assert uuid.UUID(partition_key).version == 4
    assert envelope["_airbyte_emitted_at"] == EMITTED_AT and type(envelope["_airbyte_emitted_at"]) is int


@pytest.mark.parametrize("data_text", ['{"a":1}', '{"a":1e400}'], ids=["fast path", "exact path"])
def test_ids_are_unique_over_10k_records(data_text: str) -> None:
    """Every encoding of a record gets a fresh id: 10,000 encodings, 10,000 distinct ids, each its payload's."""
    parsed = parse_line(record_line(data_text), 1)
    assert isinstance(parsed, Record)
    ids = set()
    for _ in range(10_000):
        data, partition_key = encode(parsed)
        assert data.startswith(b'{"_airbyte_ab_id":"' + partition_key.encode() + b'"')
        ids.add(partition_key)
    assert len(ids) == 10_000


@pytest.mark.parametrize("count", [1, 2_000, 4_096])
def test_new_ids_are_canonical_random_uuid4s(count: int) -> None:
    """new_ids gives distinct canonical lowercase RFC 4122 version-4 UUIDs as JSON strings, whose variant digit takes
    all of 8, 9, a, b, and whose other digits take all 16 values at every position."""
    quoted = new_ids(count)
    assert len(quoted) == count and all(value[:1] == value[-1:] == b'"' for value in quoted)
    ids = [value[1:-1].decode("ascii") for value in quoted]
    assert len(set(ids)) == count
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    if count > 1:
        for position in (0, 7, 9, 15, 20, 35):
            assert {value[position] for value in ids} == set("0123456789abcdef")
        assert {value[19] for value in ids} == set("89ab")


def test_exact_path_emitted_at_is_a_plain_integer() -> None:
    """On the exact path an integral-float emitted_at is written as an integer literal."""
    parsed = parse_line(record_line('{"a":1e400}', emitted_at="1.7E12"), 1)
    assert isinstance(parsed, Record)
    data, _ = encode(parsed)
    assert b'"_airbyte_emitted_at":1700000000000,' in data


def test_deeply_nested_data_on_the_fast_path_is_written() -> None:
    """Data nested 300 levels deep is valid JSON that the parser accepts; it must be written unchanged."""
    data_text = '{"d":' + "[" * 300 + "]" * 300 + "}"
    _, data, _ = _encode_line(data_text)
    assert_same_json(exact_json(data)["_airbyte_data"], exact_json(data_text))
