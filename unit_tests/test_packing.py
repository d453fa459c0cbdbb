"""packing: a batch's records into KPL aggregates of one shard each, and what happens to them across a reshard."""

from __future__ import annotations

import base64
import json
from itertools import cycle

from destination_kinesis.batcher import Batch
from destination_kinesis.outbox import Outbox
from destination_kinesis.pacing import ShardLimits
from destination_kinesis.packing import Aggregated, Packer
from destination_kinesis.shardmap import ShardMap
from integration_tests.kpl import sub_records
from unit_tests.test_shardmap import even_shards

MAP = ShardMap(even_shards(3))


def user_records(entry: bytes) -> list[tuple[str, bytes, str | None]]:
    """(partition key, data, explicit hash key) of each user record of a closed PutRecords entry, as the reader side
    of the tests de-aggregates it (protobuf, from the KPL's schema)."""
    subs = sub_records(base64.b64decode(json.loads(entry)["Data"]))
    assert subs is not None, "not a valid aggregate"
    return [(sub.partition_key, sub.data, sub.explicit_hash_key) for sub in subs]


def records(count: int, size: int = 400, prefix: str = "id") -> tuple[list[bytes], list[bytes]]:
    keys = [f"{prefix}-{i:05d}".encode() for i in range(count)]
    return keys, [b"x" * (size - 12) + f"{i:012d}".encode() for i in range(count)]


def test_random_keys_fill_aggregates_in_order_each_for_the_next_shard() -> None:
    keys, datas = records(1000)
    shards = cycle(MAP.shards)
    made = Packer(20_000, 1000).pack(keys, datas, True, MAP, lambda: next(shards))
    assert [a.shard for a in made[:3]] == list(MAP.shards)
    seen = []
    for aggregated in made:
        assert aggregated.size <= 20_000 and aggregated.packed is not None
        assert aggregated.target == aggregated.shard.start
        subs = user_records(aggregated.entry)
        assert {ehk for _, _, ehk in subs} == {str(aggregated.shard.start)}, "each user record names the shard"
        assert json.loads(aggregated.entry)["ExplicitHashKey"] == str(aggregated.shard.start)
        seen += [(key.encode(), data) for key, data, _ in subs]
    assert seen == list(zip(keys, datas, strict=True))


def test_keyed_records_are_grouped_by_the_shard_of_their_key_in_input_order() -> None:
    keys, datas = records(600, size=300)
    made = Packer(51_200, 50).pack(keys, datas, False, MAP, lambda: MAP.shards[0])
    by_shard: dict[str, list[bytes]] = {}
    for aggregated in made:
        subs = user_records(aggregated.entry)
        assert len(subs) <= 50 and all(ehk is None for _, _, ehk in subs)
        assert "ExplicitHashKey" not in json.loads(aggregated.entry)
        assert all(MAP.shards[MAP.index_of_key(key.encode())] == aggregated.shard for key, _, _ in subs)
        assert aggregated.packed is not None and aggregated.packed.within(aggregated.shard)
        by_shard.setdefault(aggregated.shard.id, []).extend(key.encode() for key, _, _ in subs)
    for shard_keys in by_shard.values():
        assert shard_keys == sorted(shard_keys)
    assert sum(len(k) for k in by_shard.values()) == 600


def test_a_record_too_large_for_an_aggregate_goes_as_it_is() -> None:
    keys, datas = records(3, size=5000)
    made = Packer(4000, 10).pack(keys, datas, False, MAP, lambda: MAP.shards[0])
    assert all(a.packed is None and a.records == 1 for a in made)
    assert [base64.b64decode(json.loads(a.entry)["Data"]) for a in made] == datas


def test_packed_records_know_whether_they_belong_to_a_shard() -> None:
    keys, datas = records(200)
    (first, *_) = Packer(1_000_000, 1000).pack(keys, datas, False, MAP, lambda: MAP.shards[0])
    assert first.packed is not None and first.packed.within(first.shard)
    halves = ShardMap(even_shards(6))  # each shard split in two: half of the records fall outside either half
    assert not any(first.packed.within(shard) for shard in halves.shards)


def _packing_batch(keys: list[bytes], datas: list[bytes], random: bool) -> Batch:
    batch = Batch("s", entries=list(datas), sizes=[len(d) + len(k) for k, d in zip(keys, datas, strict=True)],
                  keys=list(keys), packing=True, random=random)
    batch.size = sum(batch.sizes)
    batch.pending = len(datas)
    return batch


def test_an_outbox_waits_for_its_batches_aggregates_and_packs_keyed_ones_again_after_a_reshard() -> None:
    box = Outbox("s", MAP, ShardLimits(), 500, 5 << 20, 0.0, Packer(51_200, 1000))
    keys, datas = records(900)
    batch = _packing_batch(keys, datas, random=False)
    box.put(batch)
    before = batch.pending
    assert before == sum(len(q.items) for q in box.shards) and before < 900
    box.set_map(ShardMap(even_shards(6)), now=0.0)
    assert batch.pending > before, "aggregates whose records now span two shards are packed again"
    for queue in box.shards:
        for item in queue.items:
            assert item.packed is not None and queue.shard is not None and item.packed.within(queue.shard)
    assert sum(item.records for q in box.shards for item in q.items) == 900


def test_aggregates_of_random_keys_stay_whole_through_a_reshard() -> None:
    box = Outbox("s", MAP, ShardLimits(), 500, 5 << 20, 0.0, Packer(51_200, 1000))
    keys, datas = records(900)
    batch = _packing_batch(keys, datas, random=True)
    box.put(batch)
    before = [item.entry for q in box.shards for item in q.items]
    box.set_map(ShardMap(even_shards(6)), now=0.0)
    after = [item.entry for q in box.shards for item in q.items]
    assert sorted(before) == sorted(after) and batch.pending == len(before)


def test_aggregated_reads_its_parts() -> None:
    keys, datas = records(2)
    (aggregated,) = Packer(51_200, 10).pack(keys, datas, True, MAP, lambda: MAP.shards[1])
    assert isinstance(aggregated, Aggregated) and aggregated.records == 2
    assert aggregated.size == len(base64.b64decode(json.loads(aggregated.entry)["Data"])) + len(keys[0])
