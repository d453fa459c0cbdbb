"""One input line → a record to write, a state to release, or nothing; anything else is an input error.

:data:`decode_line` and :func:`fast_state` are the writer's fast path: they find a RECORD's fields without building
its data, and a STATE's scope and where its ``destinationStats`` goes without the exact parser.
:func:`parse_line` handles every line, valid or not, and explains what is wrong: records take orjson when its round
trip is exact, and the exact path (raw spans) otherwise. States always take the exact path: they are echoed with
every original field and digit, plus ``destinationStats``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from destination_kinesis.errors import input_error
from destination_kinesis.naming import StreamKey, display_name
from destination_kinesis.rawjson import JsonError, Member, object_members, orjson_round_trip_is_exact, parse_document

logger = logging.getLogger("airbyte")

ALL_STREAMS = None
"""The scope of a GLOBAL or LEGACY state: every stream."""


@dataclass(slots=True)
class Record:
    """A RECORD to write. Exactly one of ``data`` (orjson re-serialises it exactly) and ``raw_data`` is set.

    ``line`` is the input line it came from, for :func:`parse_exact` to read again when orjson cannot write ``data``.
    """

    key: StreamKey
    emitted_at: int
    data: dict[str, Any] | None
    raw_data: bytes | None
    line_no: int
    line: bytes = field(default=b"", compare=False, repr=False)


# gc=False: a state holds only bytes, strings and numbers, so it cannot be in a cycle. A sync with a state after each
# record holds thousands waiting for their records; tracked, they cost a garbage collection every few hundred states,
# and each full collection scanned them all again.
class State(msgspec.Struct, gc=False):
    """A STATE to echo once every earlier record in its scope is written.

    ``scope`` is the stream of a STREAM state, or :data:`ALL_STREAMS`. ``text`` is the original message (trailing
    whitespace removed, and any old ``destinationStats`` value left out), echoed as ``text[:cut] + insert``, then
    the value of ``state.destinationStats``, then ``text[cut:]``: ``text[:cut] + insert`` ends with the member's name
    (and the comma it needs). The text is cut only when rendered: a state waiting for its records costs no copy of it.
    """

    scope: StreamKey | None
    line_no: int
    text: bytes
    cut: int
    insert: bytes = b""

    def render(self, record_count: int, rejected_count: int = 0) -> bytes:
        """The original message with ``state.destinationStats = {"recordCount": record_count}`` set, plus
        ``"rejectedRecordCount": rejected_count`` when that is above 0 (records counted in but not written)."""
        # Counts are written as the protocol's doubles, N.0 (what repr(float(N)) gives below 10**16, and the same
        # number above).
        text, cut = self.text, self.cut
        if rejected_count:
            return b'%b%b{"recordCount":%d.0,"rejectedRecordCount":%d.0}%b' % (
                text[:cut], self.insert, record_count, rejected_count, text[cut:])
        return b'%b%b{"recordCount":%d.0}%b' % (text[:cut], self.insert, record_count, text[cut:])


class RecordFields(msgspec.Struct, gc=False):
    """What the writer needs of a RECORD's ``record`` object; ``data`` is the JSON text of the value, as written."""

    stream: str
    data: msgspec.Raw
    emitted_at: int
    namespace: str | None = None


class MessageFields(msgspec.Struct, gc=False):
    """An Airbyte message's ``type`` and its ``record`` (fields) or ``state`` (the object's text, empty when there is
    no ``state``); other members are validated, then skipped."""

    type: str
    record: RecordFields | None = None
    state: msgspec.Raw = msgspec.Raw()


decode_line = msgspec.json.Decoder(MessageFields).decode
"""``decode_line(line)`` → :class:`MessageFields`; msgspec.DecodeError when the line is not JSON of that shape,
RecursionError when it nests deeper than msgspec goes.

msgspec validates the JSON syntax of every member, ``data``'s included, but not the UTF-8 of the line, nor
escaped surrogates' pairing (it refuses lone ones): callers check the UTF-8, and lines it refuses go to
:func:`parse_line`, which accepts what JSON allows and explains the rest.
"""


def is_utf8(line: bytes | memoryview) -> bool:
    """Whether ``line`` is valid UTF-8 (which msgspec does not check)."""
    try:
        str(line, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


# gc=False: these hold only strings and each other, so they cannot be in a cycle; tracked by the garbage collector,
# the hundreds of thousands a sync with many states decodes cost a collection every few hundred states.
class _Descriptor(msgspec.Struct, gc=False):
    name: str
    namespace: str | None = None


class _StreamPart(msgspec.Struct, gc=False):
    stream_descriptor: _Descriptor


class _StateFields(msgspec.Struct, gc=False):
    type: str | None = None
    stream: _StreamPart | None = None
    destinationStats: msgspec.Raw = msgspec.Raw()  # noqa: N815  (the protocol's name; however its key is spelled)


_decode_state_fields = msgspec.json.Decoder(_StateFields).decode


def fast_state(line: bytes, state: msgspec.Raw, line_no: int) -> State | None:
    """The STATE of ``line``, a valid UTF-8 line whose ``state`` member :data:`decode_line` found, read without the
    exact parser; or None for :func:`parse_line` to handle the line.

    Only a state object without ``destinationStats`` is taken, and only where the line can be cut for certain: the
    object's text is the line's last member, named ``"state"`` as written (msgspec takes the last of duplicate
    members, as the platform's parser does), or its text occurs once in the line.
    """
    try:
        fields = _decode_state_fields(state)
    except (msgspec.DecodeError, RecursionError):
        return None
    if fields.destinationStats:
        return None
    if fields.type == "STREAM":
        if fields.stream is None or not fields.stream.stream_descriptor.name:
            return None
        descriptor = fields.stream.stream_descriptor
        scope: StreamKey | None = (descriptor.namespace, descriptor.name)
    elif fields.type in ("GLOBAL", "LEGACY", None):
        scope = ALL_STREAMS
    else:
        return None
    line = line.rstrip()
    start = line.rfind(state)  # msgspec's Raw is searched for in place, without a copy
    close = start + len(state) - 1  # the state object's closing brace
    # Just before the message's closing brace, the state is the message's last member if the name before it is
    # '"state"': a '"' after ',' or '{' opens a string (inside one it would be escaped), so that is a member name.
    if close != len(line) - 2 or line[start - 9 : start] not in _LAST_MEMBER:
        if line.find(state) != start:
            return None
    # No comma after an empty state object.
    insert = _NEXT_MEMBER if fields.type is not None or bytes(state)[1:-1].strip() else _FIRST_MEMBER
    return State(scope, line_no, line, close, insert)


_LAST_MEMBER = (b',"state":', b'{"state":')
_NEXT_MEMBER = b',"destinationStats":'
_FIRST_MEMBER = b'"destinationStats":'


_JSON_TYPE_NAMES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
                    list: "an array"}
_ignored_types_logged: set[str] = set()


def parse_line(line: bytes, line_no: int) -> Record | State | None:
    """Classify one input line (without its newline). Blank lines and other message types give None.

    Raises an input error naming the line (and the stream, once known) for anything that is not valid JSON, not a
    valid Airbyte message, or not valid UTF-8; the error never quotes the line's content.
    """
    if orjson_round_trip_is_exact(line):
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            pass  # blank, invalid, or valid JSON orjson refuses (lone surrogates, 1e400): the exact path decides
        else:
            kind = message.get("type") if type(message) is dict else None
            if kind == "RECORD":
                return _fast_record(message, line, line_no)
            if kind != "STATE":
                _other(message, line_no)
                return None
    return parse_exact(line, line_no)


def _fast_record(message: dict[str, Any], line: bytes, line_no: int) -> Record:
    key, emitted_at, data = _checked_record(message.get("record"), line_no)
    return Record(key, emitted_at, data, None, line_no, line)


def _checked_record(record: Any, line_no: int) -> tuple[StreamKey, int, dict[str, Any]]:
    """Validate a parsed ``record`` object (stream, namespace, data, emitted_at); return stream, emitted_at, data."""
    if type(record) is not dict:
        raise input_error(line_no, "a RECORD message needs a 'record' object")
    key = _stream_key(record.get("namespace"), record.get("stream"), line_no)
    data = record.get("data")
    if type(data) is not dict:
        raise input_error(line_no, _data_problem(data, "data" in record), display_name(key))
    return key, _emitted_at(record, key, line_no), data


def parse_exact(line: bytes, line_no: int) -> Record | State | None:
    """:func:`parse_line` without the fast path: record data is copied from the line's text."""
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise input_error(line_no, f"the line is not valid UTF-8 (byte {exc.start})") from None
    try:
        members = parse_document(text)
        kind = _value(members, "type")
        if kind == "RECORD":
            return _exact_record(text, members, line, line_no)
        if kind == "STATE":
            return _exact_state(text, members, line_no)
    except JsonError as exc:
        raise input_error(line_no, f"not valid JSON: {exc}") from None
    _other({key: member.value for key, member in members.items()}, line_no)
    return None


def _exact_record(text: str, members: dict[str, Member], line: bytes, line_no: int) -> Record:
    record = members.get("record")
    key, emitted_at, _ = _checked_record(None if record is None else record.value, line_no)
    data = object_members(text, record.value_start)[0]["data"]  # type: ignore[union-attr]  # checked above
    return Record(key, emitted_at, None, text[data.value_start : data.end].encode("utf-8"), line_no, line)


def _exact_state(text: str, members: dict[str, Member], line_no: int) -> State:
    state = members.get("state")
    if state is None or type(state.value) is not dict:
        raise input_error(line_no, "a STATE message needs a 'state' object")
    fields, _ = object_members(text, state.value_start)
    kind = _value(fields, "type")
    if kind == "STREAM":
        stream = _value(fields, "stream")
        descriptor = stream.get("stream_descriptor") if type(stream) is dict else None
        if type(descriptor) is not dict:
            raise input_error(line_no, "a STREAM state needs 'stream.stream_descriptor'")
        scope: StreamKey | None = _stream_key(descriptor.get("namespace"), descriptor.get("name"), line_no)
    elif kind in ("GLOBAL", "LEGACY", None):
        scope = ALL_STREAMS
    else:
        raise input_error(line_no, f"unknown state type {kind!r}; expected STREAM, GLOBAL or LEGACY")
    stats = fields.get("destinationStats")
    if stats is not None:
        head, tail = text[: stats.value_start], text[stats.end :]
    else:
        close = state.end - 1  # the state object's closing brace
        comma = "" if text[state.value_start + 1 : close].strip() == "" else ","
        head, tail = f'{text[:close]}{comma}"destinationStats":', text[close:]
    head_text = head.encode("utf-8")
    return State(scope, line_no, head_text + tail.rstrip().encode("utf-8"), len(head_text))


def _other(message: Any, line_no: int) -> None:
    """Accept a message that is neither RECORD nor STATE (logging its type once), or fail if it has no type."""
    kind = message.get("type") if type(message) is dict else None
    if type(kind) is not str:
        raise input_error(line_no, "not an Airbyte message: expected a JSON object with a string 'type'")
    if kind not in _ignored_types_logged:
        _ignored_types_logged.add(kind)
        logger.info("Ignoring %s messages in the input (first at line %d): a destination writes RECORDs and "
                    "echoes STATEs.", kind, line_no)


def _value(members: dict[str, Member], key: str) -> Any:
    member = members.get(key)
    return None if member is None else member.value


def _stream_key(namespace: Any, name: Any, line_no: int) -> StreamKey:
    if type(name) is not str or not name:
        raise input_error(line_no, "the stream name is missing or not a string")
    if namespace is not None and type(namespace) is not str:
        raise input_error(line_no, "the namespace is not a string", name)
    return (namespace, name)


def _data_problem(data: Any, present: bool) -> str:
    if not present:
        return "the record has no 'data'"
    return f"the record's 'data' is {_JSON_TYPE_NAMES.get(type(data), 'not valid')}, not a JSON object"


def _emitted_at(record: dict[str, Any], key: StreamKey, line_no: int) -> int:
    value = record.get("emitted_at")
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    problem = "missing" if value is None else "not an integer number of milliseconds"
    raise input_error(line_no, f"the record's 'emitted_at' is {problem}", display_name(key))
