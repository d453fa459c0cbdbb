"""messages: a State renders as its original line plus destinationStats; streams are named namespace.name."""

from __future__ import annotations

import json
import re

import pytest

from destination_kinesis.messages import display_name
from unit_tests.inputs import record_count
from unit_tests.jsoncheck import assert_same_json, exact_json
from unit_tests.test_parser import state_of


def test_display_name_is_namespace_dot_name() -> None:
    assert display_name(("n", "s")) == "n.s"
    assert display_name((None, "s")) == "s"
    assert display_name(("", "s")) == "s"


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


#: STATE lines as sources write them (also the fast reader's test cases).
RENDER_LINES = [
        BIG_STATE,
        '{ "type" : "STATE" , "state" : { "type" : "GLOBAL" , "global" : { "shared_state" : { "lsn" : 1e400 } } ,'
        ' "id" : 1 }   }',
        '{"state":{"type":"LEGACY","data":{"x":[1,2]},"id":2},"type":"STATE","after":true}',
        '{"type":"STATE","state":{"data":{"x":1}},"state":{"type":"GLOBAL","global":{},"id":3}}',  # last wins
        '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"}},"id":4,'
        '"sourceStats":{"recordCount":2.0}}}\r',
]


@pytest.mark.parametrize("original", RENDER_LINES)
def test_render_keeps_every_original_byte_and_adds_destination_stats(original: str) -> None:
    """The rendered state is the original line, byte for byte, with only destinationStats added inside state;
    parsed, it equals the parsed original plus destinationStats, with big numbers and ids kept textually."""
    rendered = state_of(original).render(3)
    without, stats, count = _split_stats(rendered)
    assert without == original.rstrip().encode()
    _assert_count(count, 3)
    expected = exact_json(original)
    expected["state"]["destinationStats"] = exact_json(stats)
    assert_same_json(exact_json(rendered), expected)
    assert b"\n" not in rendered


def test_render_keeps_big_numbers_textually() -> None:
    """Big integers, long decimals and the id appear in the output exactly as the source wrote them."""
    rendered = state_of(BIG_STATE).render(0)
    for literal in (b"123456789012345678901234567890", b"0.1000000000000000000000000001", b"-1E-400",
                    b'"id":98765432109876543210', b"1.0", b"[[1.50]", b'"\\ud800 caf\xc3\xa9 \\u0000"'):
        assert literal in rendered


@pytest.mark.parametrize("old", ['{"recordCount":99}', "null", '{ "recordCount" : 1.0 , "other" : 1 }', "{}"])
def test_render_replaces_existing_destination_stats(old: str) -> None:
    """An existing destinationStats (even an explicit null, as PyAirbyte writes) is replaced, not duplicated."""
    original = '{"type":"STATE","state":{"type":"GLOBAL","global":{},"destinationStats":' + old + ',"id":5}}'
    rendered = state_of(original).render(2)
    assert rendered.count(b"destinationStats") == 1
    without_new, stats, count = _split_stats(rendered)
    _assert_count(count, 2)
    assert rendered == original.replace(f'"destinationStats":{old}', f'"destinationStats":{stats.decode()}').encode()
    assert exact_json(rendered)["state"]["id"] == 5


@pytest.mark.parametrize("empty", ["{}", "{ }", "{\t\r\n}"])
def test_render_into_an_empty_state_object(empty: str) -> None:
    """An empty state object gets destinationStats as its only member, with no stray comma."""
    original = '{"type":"STATE","state":' + empty + "}"
    rendered = state_of(original).render(0)
    without, _, count = _split_stats(rendered)
    assert without == original.encode()
    _assert_count(count, 0)
    assert json.loads(rendered) == {"type": "STATE", "state": {"destinationStats": {"recordCount": 0}}}


def test_render_can_be_called_again_with_another_count() -> None:
    """Rendering does not change the state: each call renders from the original text."""
    state = state_of(BIG_STATE)
    first, second = state.render(1), state.render(10**6)
    assert record_count(first) == 1 and record_count(second) == 10**6
    assert _split_stats(first)[0] == _split_stats(second)[0]


@pytest.mark.parametrize("count", [1, 1_000_000, 2**53 + 1, 10**16])
def test_render_writes_counts_as_doubles_of_their_value(count: int) -> None:
    """recordCount and rejectedRecordCount are JSON numbers with a fraction (the protocol's doubles) that parse to
    the count's double, however large."""
    state = state_of('{"type":"STATE","state":{"type":"GLOBAL","global":{}}}')
    stats = json.loads(state.render(count, count))["state"]["destinationStats"]
    assert stats == {"recordCount": float(count), "rejectedRecordCount": float(count)}
    assert json.loads(state.render(count - 1))["state"]["destinationStats"] == {"recordCount": float(count - 1)}
    assert all(type(value) is float for value in stats.values())


def test_render_adds_rejected_record_count_only_when_some_were_rejected() -> None:
    """rejectedRecordCount follows recordCount when above 0; with none rejected the output is as before."""
    original = '{"type":"STATE","state":{"type":"GLOBAL","global":{},"id":5}}'
    assert state_of(original).render(4, 0) == state_of(original).render(4)
    assert b"rejectedRecordCount" not in state_of(original).render(4)
    rendered = state_of(original).render(4, 2)
    assert rendered == original.replace(
        ',"id":5}', ',"id":5,"destinationStats":{"recordCount":4.0,"rejectedRecordCount":2.0}}').encode()
