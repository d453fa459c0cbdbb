"""Record → the bytes Kinesis stores and the partition key.

The payload is ``{"_airbyte_ab_id": <uuid4>, "_airbyte_emitted_at": <emitted_at ms>, "_airbyte_data": <data>}`` and
the partition key is the ``_airbyte_ab_id``, as in destination-kinesis 0.1.5. ``_airbyte_data`` is the source's
JSON value unchanged (see :mod:`destination_kinesis.rawjson`).
"""

from __future__ import annotations

from os import urandom

import orjson

from destination_kinesis.messages import Record, parse_exact

# The variant nibble of a RFC 4122 UUID is 10xx: map any hex digit onto 8, 9, a or b.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_id() -> str:
    """A random (version 4) UUID string, about twice as fast as ``str(uuid.uuid4())``."""
    h = urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def encode(record: Record) -> tuple[bytes, str]:
    """The Kinesis record data and partition key for ``record``."""
    ab_id = new_id()
    if record.raw_data is None:
        try:
            payload = orjson.dumps({"_airbyte_ab_id": ab_id, "_airbyte_emitted_at": record.emitted_at,
                                    "_airbyte_data": record.data})
            return payload, ab_id
        except orjson.JSONEncodeError:
            # orjson reads 1024 levels of nesting but writes fewer (about 255): copy this one from its line instead.
            reread = parse_exact(record.line, record.line_no)
            assert isinstance(reread, Record) and reread.raw_data is not None
            record = reread
    payload = b'{"_airbyte_ab_id":"%s","_airbyte_emitted_at":%d,"_airbyte_data":%s}' % (
        ab_id.encode("ascii"), record.emitted_at, record.raw_data)
    return payload, ab_id
