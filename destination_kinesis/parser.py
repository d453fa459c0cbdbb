"""The exact parser: one input line → a record to write, a state to release, or nothing; anything else is an input
error.

:func:`parse_line` handles every line, valid or not, and explains what is wrong: records take orjson when its round
trip is exact, and the exact path (raw spans) otherwise. States always take the exact path: they are echoed with
every original field and digit, plus ``destinationStats``. The common lines take the writer's fast path first
(:mod:`destination_kinesis.reader`); this module is for the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from destination_kinesis.errors import input_error
from destination_kinesis.messages import ALL_STREAMS, Record, State, StreamKey, display_name
from destination_kinesis.rawjson import JsonError, Member, object_members, orjson_round_trip_is_exact, parse_document

logger = logging.getLogger("airbyte")

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


def data_json(record: Record) -> bytes:
    """The record's data as JSON text equal in value to the source's: copied from the line when orjson cannot say
    it exactly (see :mod:`destination_kinesis.rawjson`)."""
    if record.raw_data is not None:
        return record.raw_data
    try:
        return orjson.dumps(record.data)
    except orjson.JSONEncodeError:
        # orjson reads 1024 levels of nesting but writes fewer (about 255): copy this one from its line instead.
        reread = parse_exact(record.line, record.line_no)
        assert isinstance(reread, Record) and reread.raw_data is not None
        return reread.raw_data
