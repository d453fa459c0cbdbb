"""Record → what Kinesis stores of it: its id, its envelope (the record data) and its partition key.

**Ids.** Each record gets a random (version 4) UUID, its ``_airbyte_ab_id`` (:func:`new_ids`), which is also its
partition key unless the stream's :class:`KeyRule` says otherwise.

**The envelope** is one JSON object with these members, in this order:

- ``_airbyte_ab_id``: the record's id;
- ``_airbyte_emitted_at``: the record's ``emitted_at``, integer epoch milliseconds;
- ``_airbyte_stream`` and ``_airbyte_namespace``: only when the Kinesis stream receives the records of more than
  one Airbyte stream; the record's stream name and its namespace (``null`` when it has none);
- ``_airbyte_data``: with ``dataFormat: object`` the data object itself; with ``string`` a JSON string whose
  content is the data's JSON text, as 0.1.5 wrote it (parse the string a second time to get the data). Either way
  the data keeps every digit and every code unit the source sent (see :mod:`destination_kinesis.rawjson`).

The default envelope (object, uncompressed, not shared) is :func:`payload`, as in destination-kinesis 0.1.5; other
streams take an :class:`Encoder`. With ``compression`` the whole envelope is compressed: ``gzip`` (RFC 1952, level
6, no file name, mtime 0) or ``zstd`` (one Zstandard frame, level 3, with the content size). The record size limit
applies to the bytes sent, so compressed ones.

**Partition keys** other than the id (which rule each stream gets is :mod:`destination_kinesis.partition`'s) are
the values at the rule's paths in ``data``, in the order of the paths, each written as compact JSON and joined with
``,`` (the JSON array of the values without its brackets): ``17``, ``"eu",17``, ``{"a":1,"b":[true,null]}``
(:func:`key_text`). Strings are JSON strings with their quotes (non-ASCII characters as they are, ``"``, ``\\``,
control characters and lone surrogates as JSON escapes), object members are sorted by name, and numbers are written
by value: integers with all their digits, other numbers as the shortest text of the double that holds them exactly
(``2.5``, ``100.0``, ``1e+16``), and the rest (``1e400``, 40-digit decimals) with all their significant digits
(``1E+400``). So the same values give the same key in every run, whatever spelling the source used; an integer and a
decimal of equal value (``5`` and ``5.0``) give different keys. A key longer than 256 characters (the Kinesis
limit, in Unicode characters) is replaced by the 64 hex digits of the SHA-256 of its UTF-8 text.

**Missing fields.** A path is missing when a member along it is absent or a value on the way is not an object;
``null`` is a value like any other. A record missing any of its key's fields gets its ``_airbyte_ab_id`` as key
(the fallback, counted per stream and logged once per stream, never with record content), or fails the sync with an
error naming the stream, the line and the field when ``partitionKeyMissing`` is ``fail``.

**The shard.** Kinesis puts a record on the open shard whose HashKeyRange holds the record's hash key: its
ExplicitHashKey when it has one, else :func:`~destination_kinesis.shardmap.hash_key` of its partition key.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from os import urandom
from typing import Any, Literal

import orjson
import zstandard

from destination_kinesis.errors import input_error
from destination_kinesis.limits import MAX_PARTITION_KEY_CHARS
from destination_kinesis.messages import Record, StreamKey, display_name
from destination_kinesis.rawjson import orjson_round_trip_is_exact

logger = logging.getLogger("airbyte")

# ---------------------------------------------------------------- ids

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


# ---------------------------------------------------------------- the envelope

#: ``PAYLOAD % (ab_id as a JSON string, emitted_at, data_json)`` is :func:`payload`, for loops that cannot afford the
#: call (ids from :func:`new_ids` are JSON strings already).
PAYLOAD = b'{"_airbyte_ab_id":%b,"_airbyte_emitted_at":%d,"_airbyte_data":%b}'


def payload(ab_id: bytes, emitted_at: int, data_json: bytes) -> bytes:
    """The Kinesis record data: the envelope around ``data_json``, the record's data as JSON text (``ab_id`` is the
    id's 36 characters, without quotes)."""
    return PAYLOAD % (b'"%b"' % ab_id, emitted_at, data_json)


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
        """True when this encoder writes what :func:`payload` writes."""
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


# ---------------------------------------------------------------- partition keys

Path = tuple[str, ...]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class KeyRule:
    """How one stream's partition keys are made: ``kind`` is random, primary_key or fields, ``paths`` the paths
    into ``data`` (empty for random), ``fail_when_missing`` what a record without them does."""

    kind: str
    paths: tuple[Path, ...] = ()
    fail_when_missing: bool = False

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    def describe(self) -> str:
        """For the start log: ``random (_airbyte_ab_id)``, ``primary key id, region``, ``fields customer.id``."""
        if self.is_random:
            return "random (_airbyte_ab_id)"
        what = "primary key" if self.kind == "primary_key" else "fields"
        return f"{what} {', '.join(dotted(path) for path in self.paths)}"


RANDOM = KeyRule("random")


def dotted(path: Path) -> str:
    """A path as the config writes it: member names joined with '.'."""
    return ".".join(path)


class Partitioner:
    """Makes the partition keys of one stream's records and counts the records that got the fallback key."""

    def __init__(self, stream: StreamKey, rule: KeyRule):
        self.stream = stream
        self.rule = rule
        #: Records that lacked a key field and were given their ``_airbyte_ab_id`` instead.
        self.fallbacks = 0

    def key(self, record: Record, ab_id: bytes) -> bytes:
        """The UTF-8 partition key of ``record``, whose ``_airbyte_ab_id`` is ``ab_id``.

        Raises an input error naming the stream, the line and the missing field when the rule says to fail.
        """
        if self.rule.is_random:
            return ab_id
        data = record.data if record.data is not None else exact_data(record.raw_data or b"{}")
        values = []
        for path in self.rule.paths:
            value = value_at(data, path)
            if value is _MISSING:
                return self._missing(path, record.line_no, ab_id)
            values.append(value)
        return key_text(values).encode("utf-8")

    def _missing(self, path: Path, line_no: int, ab_id: bytes) -> bytes:
        what = "primary key field" if self.rule.kind == "primary_key" else "partition key field"
        if self.rule.fail_when_missing:
            raise input_error(line_no, f"the record has no {what} '{dotted(path)}' in its data, and "
                                       f"partitionKeyMissing is 'fail'", display_name(self.stream))
        if self.fallbacks == 0:
            logger.warning("Stream '%s': the record at input line %d has no %s '%s' in its data, so it is written "
                           "with its _airbyte_ab_id as partition key (a random shard); so are any later records "
                           "missing a key field, counted in the summary. Set partitionKeyMissing to 'fail' to fail "
                           "the sync instead.", display_name(self.stream), line_no, what, dotted(path))
        self.fallbacks += 1
        return ab_id


def value_at(data: Any, path: Path) -> Any:
    """The value at ``path`` in ``data``, or ``_MISSING`` when a member on the way is absent or not in an object."""
    value = data
    for name in path:
        if type(value) is not dict:
            return _MISSING
        value = value.get(name, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def exact_data(raw_data: bytes) -> Any:
    """The record data copied exactly from its line, parsed with every digit: by orjson when its numbers are ones
    a double holds exactly (:func:`~destination_kinesis.rawjson.orjson_round_trip_is_exact`), else with integers
    as int and other numbers as Decimal (the stdlib parser also keeps lone surrogates, which orjson refuses).
    Either way :func:`key_text` writes the same values the same way."""
    if orjson_round_trip_is_exact(raw_data):
        try:
            return orjson.loads(raw_data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw_data, parse_float=Decimal)


def key_text(values: list[Any]) -> str:
    """The partition key of these values (see the module's docstring): joined JSON, hashed beyond 256 characters."""
    text = ",".join(_json(value) for value in values)
    if _has_surrogate(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # each lone surrogate as its JSON escape
    if len(text) > MAX_PARTITION_KEY_CHARS:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return json.dumps(value, ensure_ascii=False)
    if kind is int:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is float:
        return orjson.dumps(value).decode("ascii")
    if kind is Decimal:
        return _decimal(value)
    if kind is dict:
        return "{" + ",".join(f"{_json(name)}:{_json(member)}" for name, member in sorted(value.items())) + "}"
    if kind is list:
        return "[" + ",".join(_json(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {kind.__name__}")


def _decimal(value: Decimal) -> str:
    """A decimal as a float would be written when a double holds it exactly, else with all its significant digits
    (never rounded by a decimal context)."""
    as_float = float(value)
    if as_float not in (float("inf"), float("-inf")) and Decimal(repr(as_float)) == value:
        return orjson.dumps(as_float).decode("ascii")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # JSON has no NaN or infinity
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return str(Decimal((sign, digits, exponent)))
