"""reader: decode_line and fast_state, the writer's fast path, agree with the exact parser or step aside."""

from __future__ import annotations

import msgspec
import pytest

from destination_kinesis.errors import ConnectorError
from destination_kinesis.messages import State
from destination_kinesis.parser import parse_line
from destination_kinesis.reader import decode_line, fast_state, is_utf8
from unit_tests.inputs import record_line
from unit_tests.test_messages import BIG_STATE, RENDER_LINES
from unit_tests.test_parser import SCOPE_CASES

_SCOPE_LINES = [line for line, _ in SCOPE_CASES]
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
_FAST_STATES += [line for line in RENDER_LINES if line not in _FAST_STATES]


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
