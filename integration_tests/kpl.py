"""What a KCL consumer sees of a stream written with KPL aggregation: the reader side, for tests and benchmarks.

Plain library code: no pytest here, so scripts can import it too. It shares nothing with the connector's encoder
(:mod:`destination_kinesis.aggregation`): the message is parsed with the ``protobuf`` package from the KPL's own
schema and hash keys are computed here, so it can judge what the connector wrote.

The KCL's de-aggregation (``AggregatorUtil.deaggregate`` in amazon-kinesis-client, the same in its 1.x and 2.x
lines), which :func:`kcl_records` follows:

- A record is an aggregate when its data is longer than the 4 magic bytes plus the 16-byte MD5, starts with the
  magic, ends with the MD5 of the bytes between, and those bytes parse as an ``AggregatedRecord`` (its required
  fields present). Any other record is delivered whole, as one plain record: a corrupt aggregate reaches the
  consumer as its raw bytes, so :func:`sub_records` returning None for data that starts with the magic is the sign
  of a broken aggregate.
- Each sub-record's effective hash key is its explicit hash key when it has one, else the 128-bit big-endian MD5 of
  its partition key (UTF-8). When one sub-record's effective hash key is outside the HashKeyRange of the shard the
  record was read from, the KCL drops the sub-records of that aggregate it had taken and every later one: **the
  whole aggregate is lost**, silently. That happens to an aggregate that landed on a shard other than the one its
  sub-records were meant for (the stream was resharded between the shard map and the write).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from .kinesis_emulator import MAX_READ_S, REGION, kinesis_client, read_stream

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_BYTES = 16


def _kpl_messages() -> Any:
    """The ``AggregatedRecord`` class of the KPL's ``messages.proto`` (aws/kinesis/protobuf in
    amazon-kinesis-producer), built with protobuf's runtime in a pool of its own."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="kpl_messages.proto", package="kpl", syntax="proto2")
    tag = proto.message_type.add(name="Tag")
    tag.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_REQUIRED)
    tag.field.add(name="value", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    record = proto.message_type.add(name="Record")
    record.field.add(name="partition_key_index", number=1, type=field.TYPE_UINT64, label=field.LABEL_REQUIRED)
    record.field.add(name="explicit_hash_key_index", number=2, type=field.TYPE_UINT64, label=field.LABEL_OPTIONAL)
    record.field.add(name="data", number=3, type=field.TYPE_BYTES, label=field.LABEL_REQUIRED)
    record.field.add(name="tags", number=4, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED, type_name=".kpl.Tag")
    aggregated = proto.message_type.add(name="AggregatedRecord")
    aggregated.field.add(name="partition_key_table", number=1, type=field.TYPE_STRING, label=field.LABEL_REPEATED)
    aggregated.field.add(name="explicit_hash_key_table", number=2, type=field.TYPE_STRING,
                         label=field.LABEL_REPEATED)
    aggregated.field.add(name="records", number=3, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                         type_name=".kpl.Record")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("kpl.AggregatedRecord"))


#: protobuf's message class for ``AggregatedRecord``: ``AggregatedRecord.FromString(message)``, or build one and
#: ``SerializeToString()`` it.
AggregatedRecord = _kpl_messages()


@dataclass(frozen=True)
class SubRecord:
    """One user record inside an aggregate."""

    partition_key: str
    explicit_hash_key: str | None
    data: bytes


@dataclass(frozen=True)
class UserRecord:
    """A record as a KCL consumer receives it: a sub-record of an aggregate (``sub_sequence_number`` its position
    in it) or a plain Kinesis record (``sub_sequence_number`` None, ``explicit_hash_key`` None)."""

    data: bytes
    partition_key: str
    explicit_hash_key: str | None
    shard_id: str
    sequence_number: str
    sub_sequence_number: int | None


def hash_key(partition_key: str) -> int:
    """The hash key Kinesis and the KCL derive from a partition key: MD5 of its UTF-8, as a big-endian integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def effective_hash_key(sub_record: SubRecord) -> int:
    """The sub-record's explicit hash key if it has one, else the hash key of its partition key."""
    if sub_record.explicit_hash_key is None:
        return hash_key(sub_record.partition_key)
    return int(sub_record.explicit_hash_key)


def sub_records(data: bytes) -> list[SubRecord] | None:
    """The user records of an aggregated record's data, in order; None when the KCL would not take ``data`` for an
    aggregate (too short, other magic, MD5 not matching, not a valid ``AggregatedRecord``).

    Raises IndexError when a record points past the end of a key table (the KCL logs such an aggregate and delivers
    the sub-records before it).
    """
    if len(data) <= len(MAGIC) + DIGEST_BYTES or not data.startswith(MAGIC):
        return None
    message, digest = data[len(MAGIC):-DIGEST_BYTES], data[-DIGEST_BYTES:]
    if hashlib.md5(message).digest() != digest:
        return None
    try:
        aggregate = AggregatedRecord.FromString(message)
    except DecodeError:
        return None
    if not aggregate.IsInitialized():  # Java's parser refuses a message without its required fields; Python's not
        return None
    keys, hash_keys = aggregate.partition_key_table, aggregate.explicit_hash_key_table
    return [SubRecord(keys[record.partition_key_index],
                      hash_keys[record.explicit_hash_key_index] if record.HasField("explicit_hash_key_index") else None,
                      record.data)
            for record in aggregate.records]


def kcl_records(record: dict[str, Any], hash_range: tuple[int, int]) -> list[UserRecord]:
    """What the KCL delivers of one Kinesis record read from a shard whose HashKeyRange is ``hash_range`` (starting
    and ending hash key, both included). ``record`` is a dict of :func:`~integration_tests.kinesis_emulator.read_stream`
    (``data``, ``partition_key``, ``shard_id``, ``sequence_number``). Raises IndexError as :func:`sub_records`."""
    shard_id, sequence_number = record["shard_id"], record["sequence_number"]
    subs = sub_records(record["data"])
    if subs is None:
        return [UserRecord(record["data"], record["partition_key"], None, shard_id, sequence_number, None)]
    start, end = hash_range
    if any(not start <= effective_hash_key(sub) <= end for sub in subs):
        return []
    return [UserRecord(sub.data, sub.partition_key, sub.explicit_hash_key, shard_id, sequence_number, position)
            for position, sub in enumerate(subs)]


def shard_hash_ranges(client: Any, stream_name: str) -> dict[str, tuple[int, int]]:
    """Every shard of the stream (closed ones too) with its HashKeyRange, following ListShards pagination."""
    ranges: dict[str, tuple[int, int]] = {}
    page = client.list_shards(StreamName=stream_name)
    while True:
        for shard in page["Shards"]:
            key_range = shard["HashKeyRange"]
            ranges[shard["ShardId"]] = (int(key_range["StartingHashKey"]), int(key_range["EndingHashKey"]))
        token = page.get("NextToken")
        if not token:
            return ranges
        page = client.list_shards(NextToken=token)


def read_user_records(endpoint: str, stream_name: str, timeout_s: float = MAX_READ_S,
                      region: str = REGION) -> list[UserRecord]:
    """Every record of every shard of ``stream_name`` as a KCL consumer receives it: aggregates de-aggregated and
    filtered by the range of the shard each was read from; shard by shard, in sequence order."""
    ranges = shard_hash_ranges(kinesis_client(endpoint, region), stream_name)
    return [user_record
            for record in read_stream(endpoint, stream_name, timeout_s, region)
            for user_record in kcl_records(record, ranges[record["shard_id"]])]
