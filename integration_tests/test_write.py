"""`destination-kinesis write` end to end: Airbyte messages in on stdin, every record read back from every shard of
every Kinesis stream of the emulator, every state checked on stdout."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from .connector import Sync, configured_stream, error_traces, unique
from .inputs import EMITTED_AT, Message, record, stream_state, to_lines
from .kinesis_emulator import Emulator
from .readback import assert_synced


def global_state(state_id: int, streams: list[tuple[str | None, str]], cursor: int) -> Message:
    return {
        "type": "STATE",
        "state": {
            "type": "GLOBAL",
            "global": {
                "shared_state": {"lsn": cursor},
                "stream_states": [
                    {"stream_descriptor": {"name": name, "namespace": namespace}, "stream_state": {"cursor": cursor}}
                    for namespace, name in streams
                ],
            },
            "id": state_id,
            "sourceStats": {"recordCount": 10.0},
        },
    }


def test_interleaved_streams_with_stream_states(kinesalite: Emulator, sync: Sync) -> None:
    """Three streams (no namespace; a namespace with an accent and a space; a name cut to 128 characters),
    records interleaved with STREAM states, and lines to ignore (empty, LOG, TRACE): each record lands once in
    its own Kinesis stream, and every state comes back in order, unchanged, with its stream's recordCount
    (including 0 for a state with no new records)."""
    users = (None, unique("users"))
    orders = ("Café Ops", unique("orders-v2") + " daily")
    events = ("analytics", unique("events") + "_" + "x" * 130)
    streams = [users, orders, events]
    messages: list[Message | str] = [
        "",
        {"type": "LOG", "log": {"level": "INFO", "message": "from the source"}},
    ]
    state_id = 0
    for i in range(300):
        namespace, name = streams[i % 3] if i % 7 else users  # an uneven mix
        messages.append(record(name, {"i": i, "stream": name}, EMITTED_AT + i, namespace))
        if i % 25 == 24:
            state_id += 1
            namespace, name = streams[(i // 25) % 3]
            messages.append(stream_state(state_id, name, namespace, cursor=i))
        if i == 150:
            estimate = {"name": users[1], "type": "STREAM", "row_estimate": 300}
            messages.append({"type": "TRACE", "trace": {"type": "ESTIMATE", "emitted_at": 1.0, "estimate": estimate}})
            messages.append("")
    for namespace, name in [*streams, events]:  # the second `events` state has no new records
        state_id += 1
        messages.append(stream_state(state_id, name, namespace, cursor="end"))

    stdin = to_lines(messages)
    assert_synced(kinesalite.endpoint, stdin, sync(streams, stdin))


def test_global_and_legacy_states(kinesalite: Emulator, sync: Sync) -> None:
    """GLOBAL states and LEGACY states (one without `type`, one with type LEGACY) are each released after the
    records of all streams before them, unchanged, with the count of all records since the previous state."""
    streams = [(None, unique("alpha")), ("ns", unique("beta"))]
    messages: list[Message] = []
    for i in range(120):
        namespace, name = streams[i % 2]
        messages.append(record(name, {"i": i}, EMITTED_AT + i, namespace))
        if i == 40:
            messages.append(global_state(1, streams, cursor=i))
        elif i == 80:
            messages.append({"type": "STATE", "state": {"data": {"cursor": i}, "id": 2}})
        elif i == 100:
            messages.append({"type": "STATE", "state": {"type": "LEGACY", "data": {"cursor": i}, "id": 3}})
    messages.append(global_state(4, streams, cursor=120))

    stdin = to_lines(messages)
    assert_synced(kinesalite.endpoint, stdin, sync(streams, stdin))


def test_state_after_every_record(kinesalite: Emulator, sync: Sync) -> None:
    """A source that checkpoints after every record (2,000 records, 2 streams): all 2,000 states come back in
    order, each with recordCount 1, and no record is lost."""
    streams = [(None, unique("tick")), ("ns", unique("tock"))]
    messages: list[Message] = []
    for i in range(2_000):
        namespace, name = streams[i % 2]
        messages.append(record(name, {"i": i}, EMITTED_AT + i, namespace))
        messages.append(stream_state(i + 1, name, namespace, cursor=i))

    stdin = to_lines(messages)
    assert_synced(kinesalite.endpoint, stdin, sync(streams, stdin, timeout=300))


def test_fifty_thousand_records(kinesalite: Emulator, sync: Sync) -> None:
    """A large sync in one run: 50,000 records across 2 streams with a STREAM state for each stream every 1,000
    records are all written exactly once and all 100 states come back in order with the right counts."""
    streams = [(None, unique("bulk_a")), ("bulk", unique("bulk_b"))]
    messages: list[Message] = []
    state_id = 0
    for i in range(50_000):
        namespace, name = streams[i % 2]
        data = {"id": i, "name": f"customer {i}", "amount": i / 100, "active": i % 3 == 0, "note": "n" * 150}
        messages.append(record(name, data, EMITTED_AT + i, namespace))
        if i % 1_000 == 999:
            for namespace, name in streams:
                state_id += 1
                messages.append(stream_state(state_id, name, namespace, cursor=i))

    stdin = to_lines(messages)
    assert_synced(kinesalite.endpoint, stdin, sync(streams, stdin, timeout=600))


EXACT_VALUES = [
    r'{"big_int": 123456789012345678901234567890, "neg_big_int": -987654321098765432109876543210,'
    r' "two_pow_64": 18446744073709551616}',
    r'{"decimal40": 1.234567890123456789012345678901234567890,'
    r' "tiny40": 0.0000000000000000000000000000000000000001234567890123456789012345678901234567890}',
    r'{"huge": 1e400, "tiny": 1e-400, "neg_huge": -1.5E+400, "avogadro": 6.02214076e23}',
    r'{"lone_high": "\ud800", "lone_low": "\udfff", "reversed_pair": "\udc00\ud800", "in_text": "a\ud800b",'
    r' "escaped_pair": "\ud83d\ude00"}',
    '{"emoji": "😀👍🏽🇫🇷👩\u200d👩\u200d👧", "cjk": "漢字かな", "rtl": "مرحبا", "combining": "e\u0301"}',
    r'{"controls": "\u0000\u0001\u001f\b\f\n\r\t", "del": "\u007f", "quotes": "\"\\\/",'
    r' "escaped_separators": "\u2028\u2029", "bom": "\ufeff", "noncharacter": "\uffff"}',
    '{"raw_separators": "\u2028 \u2029 \u0085"}',
    r'{"nested": {"list": [1, 2.50, -0.0, 1e400, {"deep": [[[null]]]}], "empty_object": {}, "empty_list": []},'
    r' "flags": [true, false, null]}',
    r'{"": "empty key", "ключ": "значение", "\ud800key": 1, "key with spaces": " padded "}',
    r'{"zero": 0, "negative_zero": -0, "int_like_float": 1.0, "exponent_int": 1E2}',
    "{}",
]


def test_values_kept_exactly(kinesalite: Emulator, sync: Sync) -> None:
    """`_airbyte_data` keeps every digit and every code unit: 30-digit integers, 40-digit decimals, 1e400, escaped
    lone surrogates, emoji, control characters, raw U+2028/U+0085 inside a line, odd keys, an empty object."""
    name = unique("exact")
    lines = [
        f'{{"type": "RECORD", "record": {{"stream": "{name}", "emitted_at": {EMITTED_AT + i}, "data": {data}}}}}'
        for i, data in enumerate(EXACT_VALUES)
    ]
    lines.append(json.dumps(stream_state(7, name)))

    stdin = "\n".join(lines).encode() + b"\n"
    assert_synced(kinesalite.endpoint, stdin, sync([(None, name)], stdin))


def pyairbyte_record(name: str, data: dict[str, Any], emitted_at: int) -> Message:
    message: Message = dict.fromkeys(["log", "spec", "connectionStatus", "catalog", "state", "trace", "control"])
    body = {"namespace": None, "stream": name, "data": data, "emitted_at": emitted_at, "meta": None}
    return {"type": "RECORD", **message, "record": body}


def pyairbyte_state(state: dict[str, Any]) -> Message:
    message: Message = dict.fromkeys(["log", "spec", "connectionStatus", "catalog", "record", "trace", "control"])
    nulls = dict.fromkeys(["stream", "global_", "data", "sourceStats", "destinationStats"])
    return {"type": "STATE", **message, "state": {**nulls, **state}}


@pytest.mark.parametrize("state_kind", ["STREAM", "GLOBAL"])
def test_pyairbyte_style_input(kinesalite: Emulator, sync: Sync, state_kind: str) -> None:
    """Input as PyAirbyte writes it is accepted: every optional field present as null, states without `id`,
    GLOBAL payload under `global_`, and a catalog asking for append_dedup and overwrite (written as appends; with
    partitionKey random, as the read-back checks ab_id keys: test_record_options covers the append_dedup default)."""
    names = [unique("py_users"), unique("py_orders")]
    nulls = dict.fromkeys(["generation_id", "minimum_generation_id", "sync_id"])
    catalog_streams = [
        configured_stream(names[0], None, "append_dedup", primary_key=[["id"]], cursor_field=["id"], **nulls),
        configured_stream(names[1], None, "overwrite", primary_key=None, cursor_field=None, **nulls),
    ]
    messages: list[Message] = []
    for i in range(60):
        name = names[i % 2]
        messages.append(pyairbyte_record(name, {"id": i, "label": None}, EMITTED_AT + i))
        if i % 20 != 19:
            continue
        descriptors = [{"name": stream, "namespace": None} for stream in names]
        stream_states = [{"stream_descriptor": d, "stream_state": {"cursor": i}} for d in descriptors]
        if state_kind == "STREAM":
            messages.extend(pyairbyte_state({"type": "STREAM", "stream": s}) for s in stream_states)
        else:
            shared = {"shared_state": None, "stream_states": stream_states}
            messages.append(pyairbyte_state({"type": "GLOBAL", "global_": shared}))

    stdin = to_lines(messages)
    assert_synced(kinesalite.endpoint, stdin, sync(catalog_streams, stdin, partitionKey="random"))


LINE_3 = r"\bline 3\b"


def record_line(name: str, **body: Any) -> str:
    return json.dumps({"type": "RECORD", "record": {"stream": name, **body}})


# case -> (name, marker) -> (the bad line 3, regexes its error message must all match)
BAD_LINES: dict[str, Callable[[str, str], tuple[str, list[str]]]] = {
    "invalid_json": lambda name, marker: (
        f'{{"type": "RECORD", "record": {{"stream": "{name}", "data": {{"m": "{marker}"}}',
        [LINE_3],
    ),
    "record_without_data": lambda name, marker: (record_line(name, emitted_at=EMITTED_AT, note=marker), [LINE_3]),
    "data_not_an_object": lambda name, marker: (record_line(name, data=[marker], emitted_at=EMITTED_AT), [LINE_3]),
    "missing_emitted_at": lambda name, marker: (record_line(name, data={"m": marker}), [LINE_3]),
    "float_emitted_at": lambda name, marker: (record_line(name, data={"m": marker}, emitted_at=1.5), [LINE_3]),
    "unknown_stream": lambda name, marker: (
        record_line(f"ghost_{name}", data={"m": marker}, emitted_at=EMITTED_AT),
        [re.escape(f"ghost_{name}")],
    ),
    "oversize_record": lambda name, marker: (
        record_line(name, data={"m": marker, "blob": "x" * (1_100 * 1024)}, emitted_at=EMITTED_AT),
        [re.escape(name), LINE_3],
    ),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_input_fails_the_sync(kinesalite: Emulator, sync: Sync, case: str) -> None:
    """A bad line 3 (not JSON, not a valid RECORD, an unknown stream, a record over 1 MiB) fails the sync: non-zero
    exit, an ERROR trace naming the line (or the stream) without quoting the record, and no STATE from after it."""
    name, marker = unique("bad"), unique("MARKER")
    bad_line, patterns = BAD_LINES[case](name, marker)
    lines = [
        json.dumps(record(name, {"i": 1}, EMITTED_AT + 1)),
        json.dumps(stream_state(1, name)),
        bad_line,
        json.dumps(record(name, {"i": 2}, EMITTED_AT + 2)),
        json.dumps(stream_state(2, name)),
    ]

    result = sync([(None, name)], "\n".join(lines).encode() + b"\n")

    assert result.process.returncode != 0, result.describe()
    traces = error_traces(result.messages)
    assert traces, result.describe()
    messages = [trace.get("error", {}).get("message") or "" for trace in traces]
    assert any(all(re.search(p, m, re.IGNORECASE) for p in patterns) for m in messages), (patterns, messages)
    assert all(trace.get("error", {}).get("failure_type") for trace in traces), traces
    assert not [trace for trace in traces if marker in json.dumps(trace)], "the error quotes the record's content"
    assert [state["state"]["id"] for state in result.states] in ([], [1]), "a state after the bad line came out"
