"""The Kinesis record data of streams that use other than the default envelope: ``dataFormat``, ``compression``,
and the stream members of Kinesis streams shared by several Airbyte streams.

The envelope is one JSON object with these members, in this order:

- ``_airbyte_ab_id``: the record's id, a random UUID;
- ``_airbyte_emitted_at``: the record's ``emitted_at``, integer epoch milliseconds;
- ``_airbyte_stream`` and ``_airbyte_namespace``: only when the Kinesis stream receives the records of more than
  one Airbyte stream; the record's stream name and its namespace (``null`` when it has none);
- ``_airbyte_data``: with ``dataFormat: object`` the data object itself; with ``string`` a JSON string whose
  content is the data's JSON text, as 0.1.5 wrote it (parse the string a second time to get the data). Either way
  the data keeps every digit and every code unit the source sent (see :mod:`destination_kinesis.rawjson`).

With ``compression`` the whole envelope is compressed: ``gzip`` (RFC 1952, level 6, no file name, mtime 0) or
``zstd`` (one Zstandard frame, level 3, with the content size). The record size limit applies to the bytes sent, so
compressed ones.
"""

from __future__ import annotations

import gzip
from typing import Any, Literal

import orjson
import zstandard

from destination_kinesis.naming import StreamKey

GZIP_LEVEL = 6
ZSTD_LEVEL = 3

DataFormat = Literal["object", "string"]
Compression = Literal["none", "gzip", "zstd"]


class Encoder:
    """Builds one Airbyte stream's Kinesis record data.

    ``stream`` is the Airbyte stream to name in the envelope when its Kinesis stream is shared, else None. Not
    thread-safe (the zstd compressor keeps state between calls): use it from the reading thread only.
    """

    def __init__(self, data_format: DataFormat = "object", compression: Compression = "none",
                 stream: StreamKey | None = None):
        self.data_format = data_format
        self.compression = compression
        self.stream = stream
        self._head = b'{"_airbyte_ab_id":"%b","_airbyte_emitted_at":%d,'
        if stream is not None:
            namespace, name = stream
            self._head += b'"_airbyte_stream":%b,"_airbyte_namespace":%b,' % (
                orjson.dumps(name).replace(b"%", b"%%"), orjson.dumps(namespace).replace(b"%", b"%%"))
        self._head += b'"_airbyte_data":%b}'
        self._zstd: Any = zstandard.ZstdCompressor(level=ZSTD_LEVEL) if compression == "zstd" else None

    @property
    def is_default(self) -> bool:
        """True when this encoder writes what :func:`destination_kinesis.envelope.payload` writes."""
        return self.data_format == "object" and self.compression == "none" and self.stream is None

    def __call__(self, ab_id: bytes, emitted_at: int, data_json: bytes) -> bytes:
        """The record data for a record whose data is the JSON text ``data_json`` (exact, valid UTF-8)."""
        if self.data_format == "string":
            data_json = orjson.dumps(data_json.decode("utf-8"))
        envelope = self._head % (ab_id, emitted_at, data_json)
        if self.compression == "gzip":
            return gzip.compress(envelope, compresslevel=GZIP_LEVEL, mtime=0)
        if self._zstd is not None:
            return self._zstd.compress(envelope)  # type: ignore[no-any-return]
        return envelope

