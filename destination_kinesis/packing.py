"""Aggregation (``aggregation: kpl``): a batch's records packed into KPL aggregated Kinesis records, each holding
records of one shard only.

The KCL drops a whole aggregated record when one of its user records has a hash key outside the range of the shard
it was read from (amazon-kinesis-client issue 343), so an aggregate holds only records predicted for one shard:

- records with a key from their data (``primary_key``, ``fields``) are grouped by the shard their key hashes to; the
  aggregate's own partition key is its first record's, so Kinesis puts it on that shard;
- records with the random key (the ``_airbyte_ab_id``, all distinct) fill aggregates in input order, each aggregate
  for the next shard in turn: the aggregate and each of its user records carry that shard's first hash key as their
  explicit hash key, which keeps them in range wherever a reshard moves the range.

Each user record keeps its own partition key and its data (the connector's envelope). A record that does not fit an
empty aggregate (a record near the size limit) goes as it is, unaggregated: consumers that de-aggregate read such
records as they are. The encoder is :mod:`destination_kinesis.aggregation`.
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import md5

import orjson

from destination_kinesis.aggregation import Aggregate
from destination_kinesis.putrecords import closing, open_entry
from destination_kinesis.shardmap import HASH_KEY_BYTES, Shard, ShardMap


class Packed:
    """The user records of one aggregate (partition keys and data, in order), kept until Kinesis has it where it
    belongs, to pack them again otherwise; ``digests`` are their hash keys (16 bytes, big-endian) when their keys
    decide their shard, None for random keys (which carry the shard's explicit hash key)."""

    __slots__ = ("keys", "datas", "digests")

    def __init__(self, keys: list[bytes], datas: list[bytes], digests: list[bytes] | None):
        self.keys = keys
        self.datas = datas
        self.digests = digests

    def within(self, shard: Shard) -> bool:
        """Whether every user record's hash key is in ``shard``'s range (random keys: always)."""
        if self.digests is None:
            return True
        low, high = (bound.to_bytes(HASH_KEY_BYTES, "big") for bound in (shard.start, shard.end))
        return all(low <= digest <= high for digest in self.digests)


class Aggregated:
    """One Kinesis record made by :class:`Packer`: the PutRecords entry (closed), its size as Kinesis counts it, its
    user records (``records``, and ``packed``: None for a record sent unaggregated), the hash key that places it
    (``target``) and the shard it was made for."""

    __slots__ = ("entry", "size", "records", "packed", "target", "shard")

    def __init__(self, entry: bytes, size: int, records: int, packed: Packed | None, target: int, shard: Shard):
        self.entry = entry
        self.size = size
        self.records = records
        self.packed = packed
        self.target = target
        self.shard = shard


class Packer:
    """Packs user records into aggregated Kinesis records of at most ``max_bytes`` (data plus partition key) and
    ``max_records`` user records."""

    def __init__(self, max_bytes: int, max_records: int):
        self.max_bytes = max_bytes
        self.max_records = max_records

    def pack(self, keys: list[bytes], datas: list[bytes], random: bool, shard_map: ShardMap,
             next_shard: Callable[[], Shard]) -> list[Aggregated]:
        """The Kinesis records for these user records (partition keys and data, in input order): random keys fill
        aggregates in order, each for the shard ``next_shard`` gives; keyed ones per shard of their key."""
        if random:
            return self._fill(keys, datas, None, next_shard, random=True)
        groups: dict[int, tuple[list[bytes], list[bytes], list[bytes]]] = {}
        index_of = shard_map.index_of_digest
        for key, data in zip(keys, datas, strict=True):
            digest = md5(key).digest()
            group = groups.setdefault(index_of(digest), ([], [], []))
            group[0].append(key)
            group[1].append(data)
            group[2].append(digest)
        made: list[Aggregated] = []
        for index, (group_keys, group_datas, digests) in groups.items():
            made += self._fill(group_keys, group_datas, digests, _always(shard_map.shards[index]), random=False)
        return made

    def _fill(self, keys: list[bytes], datas: list[bytes], digests: list[bytes] | None,
              shard_for: Callable[[], Shard], random: bool) -> list[Aggregated]:
        """Aggregates of these records in order, each for the shard ``shard_for`` gives when it starts; ``random``:
        named by that shard's explicit hash key, on the aggregate and on each of its user records."""
        made: list[Aggregated] = []
        start = 0
        while start < len(keys):
            shard = shard_for()
            hash_key = shard.explicit_hash_key if random else None
            aggregate = Aggregate(self.max_bytes, self.max_records)
            end = start
            while end < len(keys) and aggregate.add(keys[end], datas[end], hash_key):
                end += 1
            if end == start:  # too large to be aggregated: it goes as it is
                made.append(_plain(keys[start], datas[start], shard, hash_key))
                start += 1
                continue
            packed = Packed(keys[start:end], datas[start:end], None if digests is None else digests[start:end])
            made.append(_aggregated(aggregate, packed, shard, hash_key, digests))
            start = end
        return made


def _always(shard: Shard) -> Callable[[], Shard]:
    return lambda: shard


def _aggregated(aggregate: Aggregate, packed: Packed, shard: Shard, hash_key: bytes | None,
                digests: list[bytes] | None) -> Aggregated:
    outer = aggregate.partition_key
    assert outer is not None
    entry = open_entry(aggregate.encode(), orjson.dumps(outer.decode("utf-8"))) + closing(hash_key)
    target = int(hash_key) if hash_key is not None else int.from_bytes(md5(outer).digest(), "big")
    return Aggregated(entry, aggregate.size, aggregate.records, packed, target, shard)


def _plain(key: bytes, data: bytes, shard: Shard, hash_key: bytes | None) -> Aggregated:
    entry = open_entry(data, orjson.dumps(key.decode("utf-8"))) + closing(hash_key)
    target = int(hash_key) if hash_key is not None else int.from_bytes(md5(key).digest(), "big")
    return Aggregated(entry, len(data) + len(key), 1, None, target, shard)
