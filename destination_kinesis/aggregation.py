"""KPL record aggregation: many user records packed into one Kinesis record, the way the Kinesis Producer Library
writes them and the KCL, ``aws-kinesis-agg`` and Firehose read them.

An aggregated record's data is the 4 magic bytes ``F3 89 9A C2``, then the protobuf message ``AggregatedRecord``
of the KPL's ``messages.proto`` (proto2)::

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;   // never written here
    }

then the 16-byte MD5 of that message. Each key appears once in its table; records point at it by index.

The encoder is written by hand rather than with the ``protobuf`` package: it emits exactly the bytes protobuf's
serializer does for this message (fields in field-number order; both indexes always written, as proto2 does for a
set field even when it is 0), which a unit test checks byte for byte. ``benchmarks/aggregation.py`` measures both:
with protobuf's upb runtime, adding a record to the message costs about twice what adding it here does and its
serializer is no faster than the one ``join`` here, while the exact size accounting that bounds an aggregate has to
be hand-written either way (protobuf's ``ByteSize()`` walks the whole message on each call).
"""

from __future__ import annotations

from hashlib import md5

#: The first bytes of an aggregated record's data.
MAGIC = b"\xf3\x89\x9a\xc2"
#: Bytes of the MD5 that ends an aggregated record's data.
DIGEST_BYTES = 16

_FIXED_BYTES = len(MAGIC) + DIGEST_BYTES


def varint(value: int) -> bytes:
    """``value`` (0 or more) as a protobuf base-128 varint: 7 bits a byte, least significant first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# A field starts with its key byte, field number << 3 | wire type (0 varint, 2 length-delimited), then a varint: the
# value, or the length of what follows. The tables below hold key byte and varint ready-made for the values nearly
# every record has (lengths and indexes below 16384, keys below 1024 bytes), so a record costs lookups rather than
# encoding; other values are encoded when met. Filling them takes tens of milliseconds, so the first Aggregate does.
_SHORT = 1 << 14
_SHORT_KEY = 1 << 10
#: Field 3, length-delimited: an AggregatedRecord's record, and a Record's data.
_FIELD_3: tuple[bytes, ...] = ()
#: Field 1, varint: a Record's partition_key_index.
_KEY_INDEX: tuple[bytes, ...] = ()
#: Field 2, varint: a Record's explicit_hash_key_index.
_HASH_KEY_INDEX: tuple[bytes, ...] = ()
#: Fields 1 and 2 of AggregatedRecord, length-delimited: an entry of the partition key or explicit hash key table.
_KEY_ENTRY: tuple[bytes, ...] = ()
_HASH_KEY_ENTRY: tuple[bytes, ...] = ()


def _fill_tables() -> None:
    global _FIELD_3, _KEY_INDEX, _HASH_KEY_INDEX, _KEY_ENTRY, _HASH_KEY_ENTRY
    _FIELD_3 = tuple(b"\x1a" + varint(value) for value in range(_SHORT))
    _KEY_INDEX = tuple(b"\x08" + varint(value) for value in range(_SHORT))
    _HASH_KEY_INDEX = tuple(b"\x10" + varint(value) for value in range(_SHORT_KEY))
    _KEY_ENTRY = tuple(b"\x0a" + varint(value) for value in range(_SHORT_KEY))
    _HASH_KEY_ENTRY = tuple(b"\x12" + varint(value) for value in range(_SHORT_KEY))


class Aggregate:
    """One aggregated Kinesis record being filled: user records are added while it stays within its bounds, then it
    is encoded once.

    ``max_bytes`` bounds the Kinesis record as Kinesis counts its size (its data plus its partition key, the
    partition key of its first user record) and ``max_records`` its user records; both at least 1. Read, never
    write, these attributes:

    - ``size``: the exact size of the Kinesis record as Kinesis counts it, ``len(encode()) + len(partition_key)``
      (0 while empty);
    - ``records``: the user records added;
    - ``partition_key``: the Kinesis record's own partition key (UTF-8), its first user record's (None while empty).
      Where the record lands is the caller's choice: it sends the record with an ExplicitHashKey inside the target
      shard's range, or without one, in which case Kinesis places it by this key.

    Not thread-safe.
    """

    __slots__ = ("max_bytes", "max_records", "size", "records", "partition_key", "_keys", "_hash_keys",
                 "_key_table", "_hash_key_table", "_parts")

    def __init__(self, max_bytes: int, max_records: int):
        if max_bytes < 1 or max_records < 1:
            raise ValueError(f"an aggregate's bounds must be at least 1 byte and 1 record, not {max_bytes} bytes "
                             f"and {max_records} records")
        if not _FIELD_3:
            _fill_tables()
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.size = 0
        self.records = 0
        self.partition_key: bytes | None = None
        self._keys: dict[bytes, int] = {}  # partition key -> its index in the table
        self._hash_keys: dict[bytes, int] = {}
        self._key_table: list[bytes] = []  # each entry's key byte and length, then the key; in index order
        self._hash_key_table: list[bytes] = []
        self._parts: list[bytes] = []  # each record's fields, its data among them

    def add(self, partition_key: bytes, data: bytes, explicit_hash_key: bytes | None = None) -> bool:
        """Add a user record if the aggregate stays within both bounds with it; else return False and change
        nothing.

        ``partition_key`` and ``explicit_hash_key`` (a decimal integer) are UTF-8, as their table fields are protobuf
        strings; ``data`` is opaque. A key already in its table costs only its index. An empty aggregate takes any
        record that alone fits ``max_bytes``. One that does not is refused by every aggregate, so the caller sends it
        unaggregated or treats it as oversize: a record that fits Kinesis's record size plain may not fit, as an
        aggregate of one record is larger by 20 bytes of magic and MD5, its key a second time and 8 to 12 bytes of
        framing (more with an explicit hash key, which goes into its table too).

        Records with and without an explicit hash key may share an aggregate (the KCL tells them apart), but
        ``aws-kinesis-agg`` for Python (1.2.3) then gives the records without one the table's first explicit hash
        key: keep an aggregate to one kind.
        """
        count = self.records
        if count >= self.max_records:
            return False
        key_index = self._keys.get(partition_key)
        if key_index is None:
            key_index = len(self._keys)
            key_bytes = len(partition_key)
            key_entry = (_KEY_ENTRY[key_bytes] if key_bytes < _SHORT_KEY else b"\x0a" + varint(key_bytes),
                         partition_key)
            grow = len(key_entry[0]) + key_bytes
        else:
            key_entry = None
            grow = 0
        key_field = _KEY_INDEX[key_index] if key_index < _SHORT else b"\x08" + varint(key_index)
        data_bytes = len(data)
        data_head = _FIELD_3[data_bytes] if data_bytes < _SHORT else b"\x1a" + varint(data_bytes)
        hash_key_entry = None
        if explicit_hash_key is None:
            hash_key_field = b""
            inner = len(key_field) + len(data_head) + data_bytes
        else:
            hash_key_index = self._hash_keys.get(explicit_hash_key)
            if hash_key_index is None:
                hash_key_index = len(self._hash_keys)
                hash_key_bytes = len(explicit_hash_key)
                hash_key_entry = (_HASH_KEY_ENTRY[hash_key_bytes] if hash_key_bytes < _SHORT_KEY
                                  else b"\x12" + varint(hash_key_bytes), explicit_hash_key)
                grow += len(hash_key_entry[0]) + hash_key_bytes
            hash_key_field = (_HASH_KEY_INDEX[hash_key_index] if hash_key_index < _SHORT_KEY
                              else b"\x10" + varint(hash_key_index))
            inner = len(key_field) + len(hash_key_field) + len(data_head) + data_bytes
        record_head = _FIELD_3[inner] if inner < _SHORT else b"\x1a" + varint(inner)
        size = self.size + grow + len(record_head) + inner
        if count == 0:
            size += _FIXED_BYTES + len(partition_key)
        if size > self.max_bytes:
            return False

        if key_entry is not None:
            self._keys[partition_key] = len(self._keys)
            self._key_table += key_entry
        if hash_key_entry is not None:
            self._hash_keys[hash_key_entry[1]] = len(self._hash_keys)
            self._hash_key_table += hash_key_entry
        # A Record (partition_key_index, explicit_hash_key_index or nothing, data) as AggregatedRecord's field 3.
        self._parts += (record_head, key_field, hash_key_field, data_head, data)
        if count == 0:
            self.partition_key = partition_key
        self.records = count + 1
        self.size = size
        return True

    def encode(self) -> bytes:
        """The Kinesis record's data: magic, the ``AggregatedRecord`` message, its MD5. Raises ValueError when the
        aggregate is empty (the KCL would not read 20 bytes as an aggregate)."""
        if not self.records:
            raise ValueError("an empty aggregate has no encoding")
        message = b"".join([*self._key_table, *self._hash_key_table, *self._parts])
        return b"".join((MAGIC, message, md5(message).digest()))
