"""parser: one input line → a Record, a State (echoed exactly plus destinationStats), None, or an input error."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from destination_kinesis import parser
from destination_kinesis.errors import ConnectorError
from destination_kinesis.messages import ALL_STREAMS, Record, State
from destination_kinesis.parser import parse_line
from unit_tests.inputs import record_line

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


def _bad_line_cases() -> list[Any]:
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
    monkeypatch.setattr(parser, "_ignored_types_logged", set())
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


def state_of(line: str | bytes, line_no: int = 1) -> State:
    """The State that parse_line makes of ``line``."""
    parsed = parse_line(line.encode() if isinstance(line, str) else line, line_no)
    assert isinstance(parsed, State)
    return parsed


#: STATE lines and the scope each has (also the fast reader's test cases).
SCOPE_CASES = [
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
]


@pytest.mark.parametrize(("line", "scope"), SCOPE_CASES)
def test_state_scope(line: str, scope: tuple[str | None, str] | None) -> None:
    """STREAM states wait for their stream; GLOBAL, LEGACY (type missing) and global_ states for every stream."""
    state = state_of(line, 9)
    assert state.scope == scope
    assert state.line_no == 9
