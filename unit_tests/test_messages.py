"""messages: one input line → a Record, a State (echoed exactly plus destinationStats), None, or an input error."""

from __future__ import annotations

import json
import logging
import re

import msgspec
import pytest

from destination_kinesis import messages
from destination_kinesis.errors import ConnectorError
from destination_kinesis.messages import (
    ALL_STREAMS,
    Record,
    State,
    decode_line,
    fast_state,
    is_utf8,
    parse_line,
)
from unit_tests.conftest import assert_same_json, exact_json, record_count, record_line

MARKER = "MARKER-4f1c-never-echo"
# Put in front of a message's members, this sends an otherwise fast line down the exact path.
EXPONENT_PAD = '"pad":1E5,'

# --------------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------------


def test_plain_record_takes_the_fast_path() -> None:
    """A record without risky numbers is parsed by orjson: data is the dict, no raw text kept."""
    parsed = parse_line(record_line('{"a":1,"b":[true,null,"x"]}', stream="users", namespace="crm"), 12)
    assert parsed == Record(("crm", "users"), 1700000000000, {"a": 1, "b": [True, None, "x"]}, None, 12)


def test_risky_record_takes_the_exact_path_keeping_the_raw_text() -> None:
    """A record with an exponent or long number keeps the data's raw text, byte for byte."""
    data = '{ "big" : 123456789012345678901234567890 , "e": 1e400 }'
    parsed = parse_line(record_line(data), 3)
    assert isinstance(parsed, Record)
    assert parsed.data is None and parsed.raw_data == data.encode()
    assert (parsed.key, parsed.emitted_at, parsed.line_no) == ((None, "users"), 1700000000000, 3)


@pytest.mark.parametrize("pad", ["", EXPONENT_PAD])
def test_explicit_null_namespace_and_extra_fields(pad: str) -> None:
    """namespace null is no namespace; meta, file_reference and unknown fields are ignored on both paths."""
    line = ('{' + pad + '"type":"RECORD","record":{"namespace":null,"stream":"s","emitted_at":5,"data":{"k":1},'
            '"meta":{"changes":[]},"file_reference":null,"extra":1}}').encode()
    parsed = parse_line(line, 1)
    assert isinstance(parsed, Record)
    assert parsed.key == (None, "s") and parsed.emitted_at == 5


@pytest.mark.parametrize("emitted_at", ["1700000000000.0", "1.7E12", "17000000000000e-1"])
def test_integral_float_emitted_at_is_accepted(emitted_at: str) -> None:
    """An emitted_at written as an integral float (fast or exact path) is read as that integer."""
    parsed = parse_line(record_line('{"a":1}', emitted_at=emitted_at), 1)
    assert isinstance(parsed, Record)
    assert parsed.emitted_at == 1700000000000 and type(parsed.emitted_at) is int


# --------------------------------------------------------------------------------------------------------------------
# Lines that are not to be written: errors that name the line and never its content
# --------------------------------------------------------------------------------------------------------------------

_REC = '"type":"RECORD","record":{"stream":"s","emitted_at":1,'
BAD_LINES: dict[str, tuple[str, bool]] = {
    # name: (template, names the stream 's'); <P> is where EXPONENT_PAD may go, <FF> an invalid UTF-8 byte.
    "invalid JSON": ('{<P>' + _REC + '"data":{"m":"MARKER"}},}', False),
    "truncated line": ('{<P>' + _REC + '"data":{"m":"MARKER', False),
    "non-object line (array)": ('["MARKER"]', False),
    "non-object line (string)": ('"MARKER"', False),
    "non-object line (number)": ("42", False),
    "missing type": ('{<P>"record":{"stream":"s","emitted_at":1,"data":{"m":"MARKER"}}}', False),
    "type not a string": ('{<P>"type":7,"m":"MARKER"}', False),
    "RECORD without record": ('{<P>"type":"RECORD","m":"MARKER"}', False),
    "record not an object": ('{<P>"type":"RECORD","record":"MARKER"}', False),
    "RECORD without data": ('{<P>' + _REC + '"m":"MARKER"}}', True),
    "data an array": ('{<P>' + _REC + '"data":["MARKER"]}}', True),
    "data a string": ('{<P>' + _REC + '"data":"MARKER"}}', True),
    "data null": ('{<P>' + _REC + '"data":null,"m":"MARKER"}}', True),
    "stream missing": ('{<P>"type":"RECORD","record":{"emitted_at":1,"data":{"m":"MARKER"}}}', False),
    "stream not a string": ('{<P>"type":"RECORD","record":{"stream":5,"emitted_at":1,"data":{"m":"MARKER"}}}', False),
    "stream empty": ('{<P>"type":"RECORD","record":{"stream":"","emitted_at":1,"data":{"m":"MARKER"}}}', False),
    "namespace not a string":
        ('{<P>"type":"RECORD","record":{"namespace":1,"stream":"s","emitted_at":1,"data":{"m":"MARKER"}}}', True),
    "emitted_at missing": ('{<P>"type":"RECORD","record":{"stream":"s","data":{"m":"MARKER"}}}', True),
    "emitted_at fractional": ('{<P>"type":"RECORD","record":{"stream":"s","emitted_at":1.5,"data":{"m":"MARKER"}}}',
                              True),
    "emitted_at a string":
        ('{<P>"type":"RECORD","record":{"stream":"s","emitted_at":"MARKER","data":{"m":"MARKER"}}}', True),
    "emitted_at a boolean":
        ('{<P>"type":"RECORD","record":{"stream":"s","emitted_at":true,"data":{"m":"MARKER"}}}', True),
    "emitted_at 1e400": ('{<P>"type":"RECORD","record":{"stream":"s","emitted_at":1e400,"data":{"m":"MARKER"}}}',
                         True),
    "NaN": ('{<P>' + _REC + '"data":{"m":"MARKER","v":NaN}}}', False),
    "Infinity": ('{<P>' + _REC + '"data":{"m":"MARKER","v":Infinity}}}', False),
    "-Infinity": ('{<P>' + _REC + '"data":{"m":"MARKER","v":-Infinity}}}', False),
    "invalid UTF-8": ('{<P>' + _REC + '"data":{"m":"MARKER<FF>"}}}', False),
    "raw control character in a string": ('{<P>' + _REC + '"data":{"m":"MARKER\x01"}}}', False),
    "10,000-level nesting": ('{<P>' + _REC + '"data":{"m":"MARKER","d":' + "[" * 10_000 + "]" * 10_000 + "}}}",
                             False),
    "STATE without state": ('{<P>"type":"STATE","m":"MARKER"}', False),
    "state not an object": ('{<P>"type":"STATE","state":["MARKER"]}', False),
    "STREAM state without descriptor":
        ('{<P>"type":"STATE","state":{"type":"STREAM","stream":{"stream_state":{"m":"MARKER"}}}}', False),
    "STREAM state without stream": ('{<P>"type":"STATE","state":{"type":"STREAM","data":{"m":"MARKER"}}}', False),
    "STREAM state descriptor without name":
        ('{<P>"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"namespace":"n"},'
         '"stream_state":{"m":"MARKER"}}}}', False),
    "unknown state type": ('{<P>"type":"STATE","state":{"type":"PER_SHARD","data":{"m":"MARKER"}}}', False),
}


def _bad_line_cases() -> list[object]:
    cases = []
    for name, (template, names_stream) in BAD_LINES.items():
        pads = ["", EXPONENT_PAD] if "<P>" in template else [""]
        for pad in pads:
            line = template.replace("<P>", pad).replace("MARKER", MARKER).encode().replace(b"<FF>", b"\xff")
            case_id = name + (" (exact path)" if pad else "")
            cases.append(pytest.param(line, names_stream, id=case_id))
    return cases


@pytest.mark.parametrize(("line", "names_stream"), _bad_line_cases())
def test_bad_line_is_an_input_error_naming_the_line_never_the_content(line: bytes, names_stream: bool) -> None:
    """Every kind of bad line fails with a system_error that names the line (and stream once known) and never
    quotes what the line holds."""
    with pytest.raises(ConnectorError) as caught:
        parse_line(line, 7)
    error = caught.value
    assert error.failure_type == "system_error"
    assert re.search(r"\bline 7\b", error.message)
    for text in (error.message, str(error), error.internal_message or ""):
        assert MARKER not in text
    if names_stream:
        assert "stream 's'" in error.message


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"   ",
        b"\t\r",
        b'{"type":"LOG","log":{"level":"INFO","message":"hello"}}',
        b'{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1.0,"error":{"message":"x"}}}',
        b'{"type":"CONTROL","control":{}}',
        b'{"type":"LOG","log":{"level":"INFO","message":"n=1e400","n":1e400}}',  # exact path
        b'{"type":"SOMETHING_NEW"}',
    ],
)
def test_blank_lines_and_other_message_types_give_none(line: bytes) -> None:
    """Blank lines and messages other than RECORD and STATE are accepted and ignored."""
    assert parse_line(line, 1) is None


def test_ignored_types_are_logged_once_per_type(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The first message of each ignored type is logged with its line number; later ones are not."""
    monkeypatch.setattr(messages, "_ignored_types_logged", set())
    with caplog.at_level(logging.INFO, logger="airbyte"):
        for n in (4, 5):
            parse_line(b'{"type":"LOG","log":{"level":"INFO","message":"m"}}', n)
        parse_line(b'{"type":"TRACE","trace":{}}', 6)
    logged = [r.getMessage() for r in caplog.records if r.name == "airbyte"]
    assert len(logged) == 2
    assert "LOG" in logged[0] and "line 4" in logged[0]
    assert "TRACE" in logged[1] and "line 6" in logged[1]


# --------------------------------------------------------------------------------------------------------------------
# States: scope
# --------------------------------------------------------------------------------------------------------------------


def _state(line: str | bytes, line_no: int = 1) -> State:
    parsed = parse_line(line.encode() if isinstance(line, str) else line, line_no)
    assert isinstance(parsed, State)
    return parsed


@pytest.mark.parametrize(
    ("line", "scope"),
    [
        ('{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s","namespace":"n"}}}}',
         ("n", "s")),
        ('{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"}}}}', (None, "s")),
        ('{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s","namespace":null},'
         '"stream_state":null}}}', (None, "s")),
        ('{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{},"stream_states":[]}}}', ALL_STREAMS),
        ('{"type":"STATE","state":{"type":"GLOBAL","global_":{"shared_state":{},"stream_states":[]}}}', ALL_STREAMS),
        ('{"type":"STATE","state":{"global_":{"shared_state":{}}}}', ALL_STREAMS),
        ('{"type":"STATE","state":{"type":"LEGACY","data":{"c":1}}}', ALL_STREAMS),
        ('{"type":"STATE","state":{"data":{"c":1}}}', ALL_STREAMS),
        ('{"type":"STATE","state":{"type":null,"data":{"c":1}}}', ALL_STREAMS),
        ('{"type":"STATE","state":{}}', ALL_STREAMS),
    ],
)
def test_state_scope(line: str, scope: tuple[str | None, str] | None) -> None:
    """STREAM states wait for their stream; GLOBAL, LEGACY (type missing) and global_ states for every stream."""
    state = _state(line, 9)
    assert state.scope == scope
    assert state.line_no == 9


# --------------------------------------------------------------------------------------------------------------------
# States: rendering keeps every byte and adds destinationStats
# --------------------------------------------------------------------------------------------------------------------

_STATS = re.compile(rb'(,?)"destinationStats":(\{"recordCount":([^{}]*)\})')


def _split_stats(rendered: bytes) -> tuple[bytes, bytes, bytes]:
    """(rendered without the added stats member, the stats object's text, the recordCount text)."""
    matches = list(_STATS.finditer(rendered))
    assert len(matches) == 1, rendered
    match = matches[0]
    return rendered[: match.start()] + rendered[match.end():], match[2], match[3]


def _assert_count(count_text: bytes, expected: int) -> None:
    value = json.loads(count_text)
    assert isinstance(value, (int, float)) and not isinstance(value, bool)
    assert value == expected


BIG_STATE = (
    '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s","namespace":"n"},'
    '"stream_state":{"cursor":123456789012345678901234567890,"d":0.1000000000000000000000000001,"e":-1E-400,'
    '"one":1.0,"s":"\\ud800 caf\u00e9 \\u0000","empty":{},"nested":[[1.50],{"k":null}]}},'
    '"id":98765432109876543210,"sourceStats":{"recordCount":3.0}}}'
)


@pytest.mark.parametrize(
    "original",
    [
        BIG_STATE,
        '{ "type" : "STATE" , "state" : { "type" : "GLOBAL" , "global" : { "shared_state" : { "lsn" : 1e400 } } ,'
        ' "id" : 1 }   }',
        '{"state":{"type":"LEGACY","data":{"x":[1,2]},"id":2},"type":"STATE","after":true}',
        '{"type":"STATE","state":{"data":{"x":1}},"state":{"type":"GLOBAL","global":{},"id":3}}',  # last wins
        '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"}},"id":4,'
        '"sourceStats":{"recordCount":2.0}}}\r',
    ],
)
def test_render_keeps_every_original_byte_and_adds_destination_stats(original: str) -> None:
    """The rendered state is the original line, byte for byte, with only destinationStats added inside state;
    parsed, it equals the parsed original plus destinationStats, with big numbers and ids kept textually."""
    rendered = _state(original).render(3)
    without, stats, count = _split_stats(rendered)
    assert without == original.rstrip().encode()
    _assert_count(count, 3)
    expected = exact_json(original)
    expected["state"]["destinationStats"] = exact_json(stats)
    assert_same_json(exact_json(rendered), expected)
    assert b"\n" not in rendered


def test_render_keeps_big_numbers_textually() -> None:
    """Big integers, long decimals and the id appear in the output exactly as the source wrote them."""
    rendered = _state(BIG_STATE).render(0)
    for literal in (b"123456789012345678901234567890", b"0.1000000000000000000000000001", b"-1E-400",
                    b'"id":98765432109876543210', b"1.0", b"[[1.50]", b'"\\ud800 caf\xc3\xa9 \\u0000"'):
        assert literal in rendered


@pytest.mark.parametrize("old", ['{"recordCount":99}', "null", '{ "recordCount" : 1.0 , "other" : 1 }', "{}"])
def test_render_replaces_existing_destination_stats(old: str) -> None:
    """An existing destinationStats (even an explicit null, as PyAirbyte writes) is replaced, not duplicated."""
    original = '{"type":"STATE","state":{"type":"GLOBAL","global":{},"destinationStats":' + old + ',"id":5}}'
    rendered = _state(original).render(2)
    assert rendered.count(b"destinationStats") == 1
    without_new, stats, count = _split_stats(rendered)
    _assert_count(count, 2)
    assert rendered == original.replace(f'"destinationStats":{old}', f'"destinationStats":{stats.decode()}').encode()
    assert exact_json(rendered)["state"]["id"] == 5


@pytest.mark.parametrize("empty", ["{}", "{ }", "{\t\r\n}"])
def test_render_into_an_empty_state_object(empty: str) -> None:
    """An empty state object gets destinationStats as its only member, with no stray comma."""
    original = '{"type":"STATE","state":' + empty + "}"
    rendered = _state(original).render(0)
    without, _, count = _split_stats(rendered)
    assert without == original.encode()
    _assert_count(count, 0)
    assert json.loads(rendered) == {"type": "STATE", "state": {"destinationStats": {"recordCount": 0}}}


def test_render_can_be_called_again_with_another_count() -> None:
    """Rendering does not change the state: each call renders from the original text."""
    state = _state(BIG_STATE)
    first, second = state.render(1), state.render(10**6)
    assert record_count(first) == 1 and record_count(second) == 10**6
    assert _split_stats(first)[0] == _split_stats(second)[0]


@pytest.mark.parametrize("count", [1, 1_000_000, 2**53 + 1, 10**16])
def test_render_writes_counts_as_doubles_of_their_value(count: int) -> None:
    """recordCount and rejectedRecordCount are JSON numbers with a fraction (the protocol's doubles) that parse to
    the count's double, however large."""
    state = _state('{"type":"STATE","state":{"type":"GLOBAL","global":{}}}')
    stats = json.loads(state.render(count, count))["state"]["destinationStats"]
    assert stats == {"recordCount": float(count), "rejectedRecordCount": float(count)}
    assert json.loads(state.render(count - 1))["state"]["destinationStats"] == {"recordCount": float(count - 1)}
    assert all(type(value) is float for value in stats.values())


def test_render_adds_rejected_record_count_only_when_some_were_rejected() -> None:
    """rejectedRecordCount follows recordCount when above 0; with none rejected the output is as before."""
    original = '{"type":"STATE","state":{"type":"GLOBAL","global":{},"id":5}}'
    assert _state(original).render(4, 0) == _state(original).render(4)
    assert b"rejectedRecordCount" not in _state(original).render(4)
    rendered = _state(original).render(4, 2)
    assert rendered == original.replace(
        ',"id":5}', ',"id":5,"destinationStats":{"recordCount":4.0,"rejectedRecordCount":2.0}}').encode()


# --------------------------------------------------------------------------------------------------------------------
# The writer's fast path: decode_line and fast_state agree with parse_line, or step aside
# --------------------------------------------------------------------------------------------------------------------

_SCOPE_LINES = [line for line, _ in test_state_scope.pytestmark[0].args[1]]  # type: ignore[attr-defined]
_RENDER_LINES = test_render_keeps_every_original_byte_and_adds_destination_stats.pytestmark[0].args[1]  # type: ignore[attr-defined]
_FAST_STATES = [
    *_SCOPE_LINES,
    BIG_STATE,
    '{"type":"STATE","state":{ }}',
    '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s","namespace":"n"}},'
    '"destinationStats":null}}',
    '{"type":"STATE","state":{"data":{"destinationStats":1}}}',
    '{"type":"STATE","state":{"type":"GLOBAL","global":{},"destination\\u0053tats":{"recordCount":1.0}}}',
    '{"type":"STATE","extra":{},"state":{"type":"GLOBAL","global":{}}}',
    '{"type":"STATE","copy":{"data":{}},"state":{"data":{}}}',
    '{"state":{"type":"GLOBAL","global":{}},"type":"STATE","after":[1,{"x":"{}"}]}',
    '{"type":"STATE","state":{"data":{}},"state":{"data":{}}}',
    '{"type":"STATE","state":{"data":{}},"copy":{"data":{}}}',
    '{"type":"STATE","state":{"data":{"a":1}},"state":{"data":{}}}',
    '{"type":"STATE","x\\",\\"state":{"data":{}},"state":{"data":{}}}',
    '{"type":"STATE","state":{"data":{}},"x\\",\\"state":{"data":{}}}',
    '{ "type": "STATE", "state": {"data": {}} } ',
    '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":""}}}}',
    '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s","namespace":7}}}}',
    '{"type":"STATE","state":{"type":"PER_STREAM","data":{}}}',
]
_FAST_STATES += [line for line in _RENDER_LINES if line not in _FAST_STATES]


def _fast(line: bytes, line_no: int) -> State | None:
    """fast_state as the writer calls it: on a valid UTF-8 STATE line that decode_line reads, with the state's text."""
    try:
        message = decode_line(line)
    except msgspec.DecodeError:
        return None
    if message.type != "STATE" or not message.state or not is_utf8(line):
        return None
    return fast_state(line, message.state, line_no)


@pytest.mark.parametrize("line", _FAST_STATES)
def test_fast_state_equals_the_exact_parse_or_steps_aside(line: str) -> None:
    """fast_state gives the state parse_line gives (same scope, same rendered bytes), or None, and then
    parse_line decides (or explains the error). Lines it must leave alone: destinationStats in the state, the
    state's text twice in the line, an empty stream name, unknown state types."""
    raw = line.encode()
    fast = _fast(raw, 5)
    try:
        exact = parse_line(raw, 5)
    except ConnectorError:
        assert fast is None
        return
    assert isinstance(exact, State)
    if fast is not None:
        assert (fast.scope, fast.line_no) == (exact.scope, exact.line_no)
        assert fast.render(7) == exact.render(7) and fast.render(1, 2) == exact.render(1, 2)


def test_fast_state_takes_the_common_states_and_leaves_the_rest() -> None:
    taken = [line for line in _FAST_STATES if _fast(line.encode(), 1) is not None]
    assert _SCOPE_LINES[0] in taken and '{"type":"STATE","state":{ }}' in taken
    assert BIG_STATE not in taken  # msgspec refuses its escaped lone surrogate
    assert len(taken) >= 12
    assert '{"type":"STATE","extra":{},"state":{"type":"GLOBAL","global":{}}}' in taken  # other members are fine
    for left in ('"destinationStats":null', '"state":{"data":{}},"copy"', '"state":{"data":{}},"x', '"name":""}',
                 '"PER_STREAM"', '"destination\\u0053tats"'):
        assert not any(left in line for line in taken), left
    # The state's text twice is fine when the state is the last member, as written: msgspec takes the last of
    # duplicate members, as the platform does, and that is where the line is cut.
    assert '{"type":"STATE","copy":{"data":{}},"state":{"data":{}}}' in taken
    assert '{"type":"STATE","state":{"data":{}},"state":{"data":{}}}' in taken
    assert '{"type":"STATE","state":{"data":{"a":1}},"state":{"data":{}}}' in taken
    assert '{ "type": "STATE", "state": {"data": {}} } ' in taken  # the text once
    # A destinationStats below the state's top level is data like any other: it needs no replacing.
    assert '{"type":"STATE","state":{"data":{"destinationStats":1}}}' in taken


@pytest.mark.parametrize("line", [b'{"type":"STATE","state":{"data":{"s":"\xff"}}}',
                                  b'{"type":"STATE","state":{"data":{"s":"\xed\xa0\x80"}}}'])
def test_fast_state_leaves_invalid_utf8_to_parse_line(line: bytes) -> None:
    assert _fast(line, 1) is None
    with pytest.raises(ConnectorError, match="UTF-8"):
        parse_line(line, 1)


def test_decode_line_keeps_record_data_as_written() -> None:
    """The record's data comes back as its exact text (spacing, number spelling and all), not parsed."""
    data = b'{ "n" : 2.50, "big": 123456789012345678901234567890, "e": 1E2, "z": -0 }'
    message = decode_line(record_line(data.decode(), stream="users", namespace="crm"))
    assert message.type == "RECORD" and message.record is not None
    assert (message.record.namespace, message.record.stream) == ("crm", "users")
    assert bytes(message.record.data) == data
