"""The fast reader: an input line's RECORD fields or STATE, found by msgspec without building the record's data.

:data:`decode_line` and :func:`fast_state` are the writer's fast path. They take the common lines only and step aside
(a decode error, or None) for everything else, which :func:`destination_kinesis.parser.parse_line` handles exactly
and explains when it is wrong.
"""

from __future__ import annotations

import msgspec

from destination_kinesis.messages import ALL_STREAMS, State, StreamKey


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
:func:`~destination_kinesis.parser.parse_line`, which accepts what JSON allows and explains the rest.
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
    exact parser; or None for :func:`~destination_kinesis.parser.parse_line` to handle the line.

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
