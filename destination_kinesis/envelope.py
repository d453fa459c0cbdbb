"""Record → the bytes Kinesis stores, and the ids that are also its partition keys.

The payload is ``{"_airbyte_ab_id": <uuid4>, "_airbyte_emitted_at": <emitted_at ms>, "_airbyte_data": <data>}`` and
the partition key is the ``_airbyte_ab_id``, as in destination-kinesis 0.1.5. ``_airbyte_data`` is the source's
JSON value unchanged (see :mod:`destination_kinesis.rawjson`).
"""

from __future__ import annotations

from functools import lru_cache
from os import urandom

import orjson

from destination_kinesis.messages import Record, parse_exact

#: The text of one id from :func:`new_ids`: a UUID in quotes (38 bytes), then a newline that separates it from the next.
_ID_TEXT = 39
_QUOTES, _DASHES, _VERSION, _VARIANT, _END = (0, 37), (9, 14, 19, 24), 15, 20, 38


def _id_layout() -> tuple[bytes, bytes]:
    """Per byte of an id's text: the mask that keeps the random nibble (0 for fixed bytes), and the fixed value.

    Values 0-15 are hex digits, 16 a dash, 17 a quote and 18 the newline: :data:`_TO_TEXT` maps them to text.
    """
    keep, fixed = bytearray([0x0F] * _ID_TEXT), bytearray(_ID_TEXT)
    for position in _QUOTES + _DASHES + (_VERSION, _END):
        keep[position] = 0
    for position in _QUOTES:
        fixed[position] = 17
    for position in _DASHES:
        fixed[position] = 16
    fixed[_VERSION] = 4
    keep[_VARIANT], fixed[_VARIANT] = 0x03, 0x08  # RFC 4122 variant: 10xx in binary, so 8, 9, a or b
    fixed[_END] = 18
    return bytes(keep), bytes(fixed)


_KEEP, _FIXED = _id_layout()
_TO_TEXT = b'0123456789abcdef-"\n' + bytes(256 - 19)


@lru_cache(maxsize=4)
def _masks(count: int) -> tuple[int, int]:
    return int.from_bytes(_KEEP * count, "little"), int.from_bytes(_FIXED * count, "little")


def new_ids(count: int) -> list[bytes]:
    """``count`` random (version 4) UUIDs, each as a JSON string: its 36 characters in quotes.

    They are built together, in about 0.2 µs each instead of the 4 µs of ``str(uuid.uuid4())``: random bytes masked
    to one nibble each (the fixed digits and separators set) by integer arithmetic over the whole block, mapped to
    text by one ``translate``, cut apart by one ``split``.
    """
    size = _ID_TEXT * count
    keep, fixed = _masks(count)
    digits = (int.from_bytes(urandom(size), "little") & keep | fixed).to_bytes(size, "little")
    ids = digits.translate(_TO_TEXT).split(b"\n")
    ids.pop()  # the empty text after the last newline
    return ids


#: ``PAYLOAD % (ab_id as a JSON string, emitted_at, data_json)`` is :func:`payload`, for loops that cannot afford the
#: call (ids from :func:`new_ids` are JSON strings already).
PAYLOAD = b'{"_airbyte_ab_id":%b,"_airbyte_emitted_at":%d,"_airbyte_data":%b}'


def payload(ab_id: bytes, emitted_at: int, data_json: bytes) -> bytes:
    """The Kinesis record data: the envelope around ``data_json``, the record's data as JSON text (``ab_id`` is the
    id's 36 characters, without quotes)."""
    return PAYLOAD % (b'"%b"' % ab_id, emitted_at, data_json)


def data_json(record: Record) -> bytes:
    """The record's data as JSON text equal in value to the source's: copied from the line when orjson cannot say
    it exactly (see :mod:`destination_kinesis.messages`)."""
    if record.raw_data is not None:
        return record.raw_data
    try:
        return orjson.dumps(record.data)
    except orjson.JSONEncodeError:
        # orjson reads 1024 levels of nesting but writes fewer (about 255): copy this one from its line instead.
        reread = parse_exact(record.line, record.line_no)
        assert isinstance(reread, Record) and reread.raw_data is not None
        return reread.raw_data
