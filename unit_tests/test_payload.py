"""payload: the envelope in object and string format, with stream members when shared, and compressed."""

from __future__ import annotations

import gzip
import json

import pytest
import zstandard

from destination_kinesis.envelope import data_json, payload
from destination_kinesis.messages import Record, parse_line
from destination_kinesis.payload import Encoder
from unit_tests.conftest import assert_same_json, exact_json, record_line
from unit_tests.test_envelope import CORPUS

AB_ID = b"0f1e2d3c-4b5a-4968-8776-655443322110"
EMITTED_AT = 1_700_000_000_123


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
    assert out == (b'{"_airbyte_ab_id":"' + AB_ID + b'","_airbyte_emitted_at":1700000000123,'
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
