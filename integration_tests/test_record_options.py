"""Record options through the installed console script on kinesalite, every shard read back: partition keys
(primary key, fields, the append_dedup default, fallback and fail), dataFormat string, gzip and zstd compression,
oversizeRecords skip, and the stream members of a shared Kinesis stream."""

from __future__ import annotations

import gzip
import json
import os
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
import zstandard

from destination_kinesis.limits import MIB

from .connector import Sync, SyncResult, configured_stream, error_traces, unique
from .inputs import EMITTED_AT, loads, record, stream_state, to_lines
from .kinesis_emulator import Emulator, read_stream
from .readback import assert_states_echoed, kinesis_stream_name


def _logs(result: SyncResult) -> str:
    return "\n".join(m["log"]["message"] for m in result.messages if m["type"] == "LOG")


def _envelopes(emulator: Emulator, name: str, decompress: Callable[[bytes], bytes] = lambda d: d) -> list[Any]:
    """(envelope, partition key, shard) of every record of Kinesis stream ``name``."""
    return [(loads(decompress(item["data"])), item["partition_key"], item["shard_id"])
            for item in read_stream(emulator.endpoint, name)]


def test_append_dedup_defaults_to_primary_key_so_every_version_of_a_row_is_on_one_shard(
        kinesalite: Emulator, sync: Sync) -> None:
    """An append_dedup stream with primary key [id, region] gets the documented key `<id>,"<region>"`: the 4
    versions of each of 12 rows land on one shard; an append stream beside it keeps random keys (its ab_id)."""
    dedup, plain = unique("dedup"), unique("plain")
    messages: list[Any] = []
    for version in range(4):
        for row in range(12):
            messages.append(record(dedup, {"id": row, "region": "eu", "v": version}, EMITTED_AT + version * 100 + row))
        messages.append(record(plain, {"id": version}, EMITTED_AT + version))
        messages.append(stream_state(version, dedup, cursor=version))
    streams = [configured_stream(dedup, None, "append_dedup", primary_key=[["id"], ["region"]]),
               configured_stream(plain, None, "append", primary_key=[["id"]])]
    result = sync(streams, to_lines(messages))
    assert result.process.returncode == 0, result.describe()
    assert_states_echoed(messages, result)
    shards: dict[str, set[str]] = defaultdict(set)
    written = _envelopes(kinesalite, kinesis_stream_name(None, dedup))
    assert len(written) == 48
    for envelope, key, shard in written:
        assert key == f'{envelope["_airbyte_data"]["id"]},"eu"'
        shards[key].add(shard)
    assert len(shards) == 12 and all(len(found) == 1 for found in shards.values())
    assert len(set().union(*shards.values())) > 1, "12 keys over 3 shards use more than one"
    for envelope, key, _ in _envelopes(kinesalite, kinesis_stream_name(None, plain)):
        assert key == envelope["_airbyte_ab_id"]
    assert f"'{dedup}' → Kinesis stream '{kinesis_stream_name(None, dedup)}', partition key: primary key id, " \
           f"region, in input order per key." in _logs(result)


def test_fields_key_with_fallback_counted_and_logged_once(kinesalite: Emulator, sync: Sync) -> None:
    """partitionKey fields [customer.id]: records with it get its value as key, one 20-digit id included (exact);
    the 3 without it get their ab_id, are logged once (no content) and counted in the summary."""
    stream = unique("fields")
    big = "12345678901234567890"
    lines = [json.dumps(record(stream, {"customer": {"id": i}, "n": i}, EMITTED_AT + i)) for i in range(5)]
    lines.append(json.dumps(record(stream, {"customer": {"id": 0}}, EMITTED_AT + 5)).replace(": 0}", f": {big}}}"))
    lines += [json.dumps(record(stream, {"customer": "SECRETVALUE"}, EMITTED_AT + 10 + i)) for i in range(3)]
    result = sync([(None, stream)], to_lines(lines), partitionKey="fields", partitionKeyFields=["customer.id"])
    assert result.process.returncode == 0, result.describe()
    keys = {}
    for envelope, key, _ in _envelopes(kinesalite, kinesis_stream_name(None, stream)):
        keys[envelope["_airbyte_emitted_at"] - EMITTED_AT] = (key, envelope["_airbyte_ab_id"])
    assert [keys[i][0] for i in range(5)] == ["0", "1", "2", "3", "4"] and keys[5][0] == big
    assert all(keys[10 + i][0] == keys[10 + i][1] for i in range(3))
    logs = _logs(result)
    assert logs.count("has no partition key field 'customer.id'") == 1 and "SECRETVALUE" not in logs
    assert "3 records without their key fields given a random partition key" in logs


def test_missing_key_field_fails_when_asked_naming_stream_and_line(kinesalite: Emulator, sync: Sync) -> None:
    stream, marker = unique("strict"), unique("MARKER")
    messages = [record(stream, {"id": 1}, EMITTED_AT), stream_state(1, stream),
                record(stream, {"other": marker}, EMITTED_AT + 1), stream_state(2, stream)]
    result = sync([configured_stream(stream, None, "append_dedup", primary_key=[["id"]])], to_lines(messages),
                  partitionKeyMissing="fail", bufferSize=1)
    assert result.process.returncode == 1
    (trace,) = error_traces(result.messages)
    message = trace["error"]["message"]
    assert "line 3" in message and f"'{stream}'" in message and "'id'" in message
    assert marker not in result.process.stdout.decode() + result.process.stderr.decode()
    assert [s["state"]["id"] for s in result.states] == [1]


# Data as raw JSON text: big numbers, 1e400 and a lone surrogate keep their value only if copied exactly.
EXACT_DATA = ['{"id":1,"big":123456789012345678901234567890,"dec":0.1000000000000000000000000001}',
              '{"id":2,"huge":1e400,"s":"\\ud800 lone","e":"caf\\u00e9 \\"q\\""}', '{"id":3,"plain":[1.5,null]}']


def _exact_lines(stream: str, pad: str = "") -> list[str]:
    return [f'{{"type":"RECORD","record":{{"stream":"{stream}","emitted_at":{EMITTED_AT + i},"data":{data[:-1]}'
            f'{pad}}}}}}}' for i, data in enumerate(EXACT_DATA)]


def test_data_format_string_holds_the_exact_data(kinesalite: Emulator, sync: Sync) -> None:
    """dataFormat string: _airbyte_data is a JSON string which, parsed, equals the data sent, every digit kept."""
    stream = unique("string")
    result = sync([(None, stream)], to_lines(_exact_lines(stream)), dataFormat="string")
    assert result.process.returncode == 0, result.describe()
    written = sorted(_envelopes(kinesalite, kinesis_stream_name(None, stream)),
                     key=lambda item: item[0]["_airbyte_emitted_at"])
    assert len(written) == 3
    for (envelope, _, _), sent in zip(written, EXACT_DATA, strict=True):
        assert isinstance(envelope["_airbyte_data"], str)
        assert loads(envelope["_airbyte_data"]) == loads(sent)


@pytest.mark.parametrize(("compression", "decompress"), [
    ("gzip", gzip.decompress), ("zstd", lambda data: zstandard.ZstdDecompressor().decompress(data))])
def test_compressed_records_read_back_and_large_ones_fit(kinesalite: Emulator, sync: Sync, compression: str,
                                                         decompress: Callable[[bytes], bytes]) -> None:
    """Each record is the compressed envelope; decompressed it holds the exact data. A 1.5 MiB record that fits
    only compressed is written."""
    stream = unique(compression)
    lines = _exact_lines(stream)
    lines.append(json.dumps(record(stream, {"id": 4, "blob": "abcdefgh" * (3 * MIB // 16)}, EMITTED_AT + 9)))
    result = sync([(None, stream)], to_lines([*lines, stream_state(1, stream)]), compression=compression)
    assert result.process.returncode == 0, result.describe()
    assert result.states[0]["state"]["destinationStats"] == {"recordCount": 4}
    written = {e["_airbyte_data"]["id"]: e for e, _, _ in
               _envelopes(kinesalite, kinesis_stream_name(None, stream), decompress)}
    assert sorted(written) == [1, 2, 3, 4]
    for data in EXACT_DATA:
        assert written[loads(data)["id"]]["_airbyte_data"] == loads(data)
    assert len(written[4]["_airbyte_data"]["blob"]) == 3 * MIB // 2


def test_oversize_records_skipped_and_counted_on_the_next_state(kinesalite: Emulator, sync: Sync) -> None:
    """oversizeRecords skip: a 1.1 MiB record is left out, logged with stream and line but not its content, and
    the next state says rejectedRecordCount 1 (recordCount 3, as the source sent); later states have none."""
    stream, marker = unique("skip"), unique("MARKER")
    blob = marker + os.urandom(600 * 1024).hex()
    messages = [record(stream, {"id": 1}, EMITTED_AT), record(stream, {"id": 2, "blob": blob}, EMITTED_AT + 1),
                record(stream, {"id": 3}, EMITTED_AT + 2), stream_state(1, stream),
                record(stream, {"id": 4}, EMITTED_AT + 3), stream_state(2, stream)]
    result = sync([(None, stream)], to_lines(messages), oversizeRecords="skip")
    assert result.process.returncode == 0, result.describe()
    assert [s["state"]["destinationStats"] for s in result.states] == [
        {"recordCount": 3, "rejectedRecordCount": 1}, {"recordCount": 1}]
    written = sorted(e["_airbyte_data"]["id"] for e, _, _ in _envelopes(kinesalite, kinesis_stream_name(None, stream)))
    assert written == [1, 3, 4]
    logs = _logs(result)
    assert f"Input line 2 (stream '{stream}')" in logs and "skipped" in logs and marker not in logs
    assert "1 records over the size limit skipped" in logs


def test_shared_stream_envelopes_name_their_airbyte_stream(kinesalite: Emulator, sync: Sync) -> None:
    """A fixed template sends two Airbyte streams to one Kinesis stream: each envelope carries _airbyte_stream and
    _airbyte_namespace (null without one), before _airbyte_data."""
    fixed, name = unique("shared"), unique("orders")
    messages = [record(name, {"id": 1}, EMITTED_AT, "shop"), record(name, {"id": 2}, EMITTED_AT + 1)]
    result = sync([("shop", name), (None, name)], to_lines(messages), streamNameTemplate=fixed)
    assert result.process.returncode == 0, result.describe()
    written = {e["_airbyte_data"]["id"]: e for e, _, _ in _envelopes(kinesalite, fixed)}
    assert [(written[i]["_airbyte_stream"], written[i]["_airbyte_namespace"]) for i in (1, 2)] == [
        (name, "shop"), (name, None)]
    assert list(written[1]) == ["_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_stream", "_airbyte_namespace",
                                "_airbyte_data"]
