"""encoder (with parser and rawjson): the Kinesis record data carries the source's data exactly under a uuid4 id, in
object or string format, with stream members when shared, compressed when asked; partition keys are deterministic
JSON of the key fields' values."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest
import zstandard

from destination_kinesis.encoder import (
    RANDOM,
    Encoder,
    KeyRule,
    Partitioner,
    key_text,
    new_ids,
    payload,
)
from destination_kinesis.errors import ConnectorError
from destination_kinesis.messages import Record
from destination_kinesis.parser import data_json, parse_line
from unit_tests.inputs import EMITTED_AT, record_line
from unit_tests.jsoncheck import assert_same_json, exact_json

AB_ID = b"0f1e2d3c-4b5a-4968-8776-655443322110"
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


# ---------------------------------------------------------------- ids and the default envelope


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


# ---------------------------------------------------------------- formats, shared streams, compression


def _data_json(text: str) -> bytes:
    parsed = parse_line(record_line(text), 1)
    assert isinstance(parsed, Record)
    return data_json(parsed)


def test_default_encoder_writes_the_default_envelope() -> None:
    encoder = Encoder()
    assert encoder.is_default
    assert encoder(AB_ID, EMITTED_AT, b'{"a":1}') == payload(AB_ID, EMITTED_AT, b'{"a":1}')


@pytest.mark.parametrize("case", list(CORPUS))
def test_string_format_holds_the_exact_data_text(case: str) -> None:
    """``_airbyte_data`` is a JSON string; parsed once more it is the source's data, every digit and code unit
    (big numbers, 1e400, lone surrogate escapes, control characters)."""
    text = CORPUS[case]
    envelope = exact_json(Encoder("string")(AB_ID, EMITTED_AT, _data_json(text)))
    assert list(envelope) == ["_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_data"]
    assert envelope["_airbyte_ab_id"] == AB_ID.decode() and envelope["_airbyte_emitted_at"] == EMITTED_AT
    assert isinstance(envelope["_airbyte_data"], str)
    assert_same_json(exact_json(envelope["_airbyte_data"]), exact_json(text))


def test_string_format_is_what_0_1_5_consumers_parse() -> None:
    """0.1.5 wrote the data serialised as a JSON string member; consumers json.loads it a second time."""
    out = Encoder("string")(AB_ID, EMITTED_AT, b'{"id":1,"name":"caf\xc3\xa9 \\"q\\""}')
    assert out == (b'{"_airbyte_ab_id":"' + AB_ID + b'","_airbyte_emitted_at":1700000000000,'
                   b'"_airbyte_data":"{\\"id\\":1,\\"name\\":\\"caf\xc3\xa9 \\\\\\"q\\\\\\"\\"}"}')
    assert json.loads(json.loads(out)["_airbyte_data"]) == {"id": 1, "name": 'café "q"'}


@pytest.mark.parametrize(("stream", "members"), [
    (("shop", "or%ders"), b'"_airbyte_stream":"or%ders","_airbyte_namespace":"shop",'),
    ((None, "users"), b'"_airbyte_stream":"users","_airbyte_namespace":null,'),
])
def test_shared_stream_members_come_before_the_data(stream: tuple[str | None, str], members: bytes) -> None:
    encoder = Encoder(stream=stream)
    assert not encoder.is_default
    out = encoder(AB_ID, EMITTED_AT, b'{"a":1}')
    assert out == b'{"_airbyte_ab_id":"%b","_airbyte_emitted_at":%d,%b"_airbyte_data":{"a":1}}' % (
        AB_ID, EMITTED_AT, members)


@pytest.mark.parametrize(("compression", "decompress"), [
    ("gzip", gzip.decompress),
    ("zstd", lambda data: zstandard.ZstdDecompressor().decompress(data)),
])
@pytest.mark.parametrize("data_format", ["object", "string"])
def test_compression_round_trips_and_is_deterministic(compression: str, decompress, data_format: str) -> None:  # type: ignore[no-untyped-def]
    text = CORPUS["900 KiB string"]
    plain = Encoder(data_format)(AB_ID, EMITTED_AT, _data_json(text))  # type: ignore[arg-type]
    encoder = Encoder(data_format, compression)  # type: ignore[arg-type]
    compressed = encoder(AB_ID, EMITTED_AT, _data_json(text))
    assert decompress(compressed) == plain
    assert encoder(AB_ID, EMITTED_AT, _data_json(text)) == compressed  # no timestamp or state between calls
    assert len(compressed) < len(plain) // 4



def _record(data: str) -> Record:
    parsed = parse_line(record_line(data), 7)
    assert isinstance(parsed, Record)
    return parsed


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(("values", "key"), [
    ([17], "17"),
    (["eu", 17], '"eu",17'),
    ([{"b": [True, None], "a": 1}], '{"a":1,"b":[true,null]}'),
    ([2.5, 100.0, -0.0], "2.5,100.0,-0.0"),
    (["a,b", "c"], '"a,b","c"'),  # the separator inside a value stays unambiguous: it is inside a JSON string
    (["é\"\n"], '"é\\"\\n"'),
    ([None], "null"),
])
def test_key_text_joins_json_values(values: list[Any], key: str) -> None:
    assert key_text(values) == key


def test_same_value_different_spelling_same_key_on_both_paths() -> None:
    """The fast path (orjson) and the exact path (big numbers elsewhere on the line) give equal keys for equal
    values, whatever the source's spelling."""
    rule = Partitioner((None, "s"), KeyRule("fields", (("v",),)))
    big = ',"big":123456789012345678901234567890'
    for spelling in ("2.50", "2.5", "25e-1"):
        fast, exact = _record(f'{{"v":{spelling}}}'), _record(f'{{"v":{spelling}{big}}}')
        assert fast.data is not None and exact.raw_data is not None
        assert rule.key(fast, AB_ID) == rule.key(exact, AB_ID) == b"2.5"
    assert rule.key(_record('{"v":1E2}'), AB_ID) == rule.key(_record('{"v":1E2' + big + "}"), AB_ID) == b"100.0"


@pytest.mark.parametrize("spelling", ["2.50", "0.1", "-0.0", "5", "5.0", "-0", "1E2", "25e-1", "123456789012345",
                                      "1234567890123456789", "0.30000000000000004", "[1.5,{\"a\":-2.0}]"])
def test_raw_data_gives_the_key_of_the_exact_parse(spelling: str) -> None:
    """Data copied as written (the writer's fast path for routes with options) is parsed by orjson when that is
    exact, else by the stdlib with Decimals: either way the key is the one the exact parse gives."""
    rule = Partitioner((None, "s"), KeyRule("fields", (("v",),)))
    raw = f'{{"v":{spelling}}}'.encode()
    record = Record((None, "s"), 1, None, raw, 1)
    assert rule.key(record, AB_ID) == key_text([json.loads(raw, parse_float=Decimal)["v"]]).encode()


@pytest.mark.parametrize(("data", "key"), [
    ('{"v":123456789012345678901234567890}', b"123456789012345678901234567890"),
    ('{"v":1e400}', b"1E+400"),
    ('{"v":1234567890.123456789012345678901234567890}', b"1234567890.12345678901234567890123456789"),
    ('{"v":"\\ud800x"}', b'"\\ud800x"'),
])
def test_exact_values_keep_every_digit_and_lone_surrogates_become_escapes(data: str, key: bytes) -> None:
    rule = Partitioner((None, "s"), KeyRule("fields", (("v",),)))
    assert rule.key(_record(data), AB_ID) == key


def test_key_over_256_characters_is_its_sha256() -> None:
    short, long = "x" * 254, "é" * 255  # 256 and 257 characters with the quotes
    assert key_text([short]) == f'"{short}"'
    assert key_text([long]) == hashlib.sha256(f'"{long}"'.encode()).hexdigest()


def test_keys_are_the_same_in_another_process() -> None:
    """No per-process state (hash seeds, dict order) enters a key."""
    data = '{"b":{"y":[1,{"q":2,"p":"z"}],"x":"é"},"a":1e400}'
    script = ("import sys; from unit_tests.test_encoder import _record, AB_ID; "
              "from destination_kinesis.encoder import Partitioner, KeyRule; "
              "r = Partitioner((None, 's'), KeyRule('fields', (('b',), ('a',)))); "
              f"sys.stdout.write(r.key(_record({data!r}), AB_ID).decode())")
    keys = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert keys == {'{"x":"é","y":[1,{"p":"z","q":2}]},1E+400'}


def test_missing_field_falls_back_to_the_ab_id_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    partitioner = Partitioner((None, "s"), KeyRule("primary_key", (("customer", "id"),)))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        keys = [partitioner.key(_record(data), AB_ID) for data in
                ('{"customer":{"id":5}}', '{"customer":{}}', '{"customer":"SECRETVALUE"}', '{"customer":{"id":null}}')]
    assert keys == [b"5", AB_ID, AB_ID, b"null"]
    assert partitioner.fallbacks == 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert "'s'" in message and "line 7" in message and "customer.id" in message and "SECRETVALUE" not in message


def test_missing_field_fails_when_asked_naming_stream_line_and_field() -> None:
    partitioner = Partitioner((None, "s"), KeyRule("fields", (("id",),), fail_when_missing=True))
    with pytest.raises(ConnectorError) as caught:
        partitioner.key(_record('{"other":"SECRETVALUE"}'), AB_ID)
    message = caught.value.message
    assert "line 7" in message and "'s'" in message and "'id'" in message and "SECRETVALUE" not in message


def test_random_rule_keeps_the_ab_id() -> None:
    assert Partitioner((None, "s"), RANDOM).key(_record('{"id":1}'), AB_ID) == AB_ID


def test_exact_path_key_ignores_json_whitespace() -> None:
    rule = Partitioner((None, "s"), KeyRule("fields", (("a",), ("b",))))
    spaced = _record('{ "b" : [ 1 , 2 ] , "a" : 123456789012345678901234567890 }')
    assert spaced.raw_data is not None
    assert rule.key(spaced, AB_ID) == b"123456789012345678901234567890,[1,2]"
