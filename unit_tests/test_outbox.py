"""outbox: a stream's waiting entries per shard, and calls made of them within each shard's budget."""

from __future__ import annotations

import json

import pytest

from destination_kinesis.batcher import Batch
from destination_kinesis.outbox import PLAIN_CLOSE, Call, Outbox
from destination_kinesis.pacing import BURST_SECONDS, ShardLimits
from destination_kinesis.putrecords import open_entry
from destination_kinesis.shardmap import ShardMap
from unit_tests.test_shardmap import even_shards

STREAM = "orders"
LIMITS = ShardLimits()  # 1,000 records and 1 MiB per second: a rested budget holds 500 records, 512 KiB


def entry(tag: str, key: str) -> bytes:
    return open_entry(tag.encode(), json.dumps(key).encode())


def batch(count: int, size: int = 100, keys: list[str] | None = None, tag: str = "r") -> Batch:
    """A closed batch of ``count`` entries of ``size`` bytes; keyed when ``keys`` (one per entry) are given."""
    keys_used = keys or [f"{tag}{i}" for i in range(count)]
    closed = Batch(STREAM, entries=[entry(f"{tag}{i}", keys_used[i]) for i in range(count)], sizes=[size] * count,
                   keys=None if keys is None else [key.encode() for key in keys], size=size * count)
    closed.pending = count
    return closed


def sent(call: Call) -> list[dict[str, object]]:
    """The entries of a call as Kinesis reads them."""
    return json.loads(b"[" + call.records_json() + b"]")


def outbox(shards: int | None, max_records: int = 500, max_bytes: int = 5 * 1024 * 1024,
           limits: ShardLimits = LIMITS) -> Outbox:
    shard_map = None if shards is None else ShardMap(even_shards(shards))
    return Outbox(STREAM, shard_map, limits, max_records, max_bytes, now=0.0)


def keys_for(shard_map: ShardMap, shard: int, count: int, prefix: str = "k") -> list[str]:
    """``count`` distinct partition keys that hash to ``shard``."""
    found: list[str] = []
    i = 0
    while len(found) < count:
        key = f"{prefix}{i}"
        if shard_map.index_of_key(key.encode()) == shard:
            found.append(key)
        i += 1
    return found


def test_unpaced_a_batch_goes_out_whole_as_it_is() -> None:
    box = outbox(None)
    box.put(batch(3))
    call = box.compose(0.0)
    assert call is not None and call.records == 3 and call.size == 300
    assert [e["Data"] for e in sent(call)] == ["cjA=", "cjE=", "cjI="]  # base64 of r0, r1, r2
    assert all("ExplicitHashKey" not in e for e in sent(call))
    assert box.compose(0.0) is None and box.waiting == 0 and box.queued_bytes == 0


def test_free_entries_go_to_a_shard_with_room_named_by_its_explicit_hash_key() -> None:
    box = outbox(4)
    box.put(batch(100))
    call = box.compose(0.0)
    assert call is not None and call.records == 100
    (part,) = call.parts
    assert part.queue.shard is not None
    assert {e["ExplicitHashKey"] for e in sent(call)} == {str(part.queue.shard.start)}
    box.put(batch(100, tag="s"))
    other = box.compose(0.0)
    assert other is not None and other.parts[0].queue is not part.queue, "the next call goes to the next shard"


def test_a_single_shard_needs_no_explicit_hash_key() -> None:
    box = outbox(1)
    box.put(batch(10))
    call = box.compose(0.0)
    assert call is not None and all("ExplicitHashKey" not in e for e in sent(call))
    assert call.parts[0].close == PLAIN_CLOSE


def test_free_entries_are_paced_to_the_shards_budgets_and_calls_wait_until_worth_making() -> None:
    """Two shards hold 500 records each; 2,000 entries waiting: the first calls take 1,000, then nothing until the
    budgets refill enough for a full call (or rest), and never more than the rate."""
    box = outbox(2)
    for i in range(4):
        box.put(batch(500, tag=f"b{i}-"))
    first, second = box.compose(0.0), box.compose(0.0)
    assert first is not None and second is not None and first.records == second.records == 500
    assert {first.parts[0].queue.name, second.parts[0].queue.name} == {"shardId-000000000000", "shardId-000000000001"}
    assert box.compose(0.0) is None
    assert box.compose(0.1) is None, "200 records of budget: waiting makes a fuller call"
    call = box.compose(0.25)  # 250 + 250 records of budget: a full call of 500
    assert call is not None and call.records == 500 and len(call.parts) == 2
    assert box.waiting == 500


def test_free_entries_keep_their_input_order_across_shards() -> None:
    box = outbox(3)
    box.put(batch(400, tag="a"))
    box.put(batch(400, tag="b"))
    order = []
    now = 0.0
    while box.waiting:
        call = box.compose(now)
        if call is not None:
            order += [e["PartitionKey"] for e in sent(call)]
        now += 0.05
    assert order == [f"a{i}" for i in range(400)] + [f"b{i}" for i in range(400)]


def test_bytes_are_paced_too() -> None:
    """5,000-byte entries: a rested budget takes 104 of them (512 KiB)."""
    box = outbox(1)
    box.put(batch(500, size=5000))
    call = box.compose(0.0)
    assert call is not None and call.records == 104 and call.size == 520_000
    assert box.compose(0.2) is None
    later = box.compose(BURST_SECONDS * 0.9 + 0.01)  # rested again
    assert later is not None and later.records >= 94


def test_a_shard_out_of_budget_holds_back_only_its_own_keyed_entries() -> None:
    box = outbox(2)
    assert box.map is not None
    hot, cold = keys_for(box.map, 0, 800, "hot"), keys_for(box.map, 1, 10, "cold")
    box.put(batch(800, keys=hot, tag="h"))
    call = box.compose(0.0)
    assert call is not None and call.records == 500 and {p.queue.name for p in call.parts} == {"shardId-000000000000"}
    box.put(batch(10, keys=cold, tag="c"))
    call = box.compose(0.0)
    assert call is not None and [e["PartitionKey"] for e in sent(call)] == cold
    assert all("ExplicitHashKey" not in e for e in sent(call)), "keyed entries go where their keys hash"
    assert box.waiting == 300


def test_calls_stay_within_the_request_limits() -> None:
    box = outbox(None, max_records=100, max_bytes=25_000)
    box.put(batch(500, size=1000))
    calls = [box.compose(0.0) for _ in range(21)]
    assert [c.records for c in calls if c] == [25] * 20
    assert all(c.size <= 25_000 for c in calls if c)


def test_entries_sent_again_go_before_later_ones() -> None:
    box = outbox(None)
    box.put(batch(5))
    call = box.compose(0.0)
    assert call is not None
    box.put(batch(2, tag="later"))
    box.requeue(call.parts[0].chunk, call.parts[0].free)
    again = box.compose(0.0)
    assert again is not None and [e["PartitionKey"] for e in sent(again)] == [*(f"r{i}" for i in range(5)),
                                                                              "later0", "later1"]


def test_a_new_map_sorts_waiting_keyed_entries_into_the_new_shards() -> None:
    box = outbox(2, limits=ShardLimits(1, 1_000_000))  # one record a second: entries wait
    assert box.map is not None
    keys = [f"k{i}" for i in range(50)]
    box.put(batch(50, keys=keys))
    box.set_map(ShardMap(even_shards(5)), now=0.0)
    for queue in box.shards:
        for chunk in queue.chunks:
            assert chunk.keys is not None
            for key in chunk.keys:
                assert queue.shard is not None and box.map.shards[box.map.index_of_key(key)] == queue.shard
    assert box.waiting == 50


def test_an_entry_larger_than_a_whole_budget_goes_alone_once_the_budget_is_rested() -> None:
    box = outbox(1, limits=ShardLimits(1000, 100_000))  # 50 KB of budget
    box.put(batch(2, size=80_000))
    call = box.compose(0.0)
    assert call is not None and call.records == 1
    assert box.compose(0.1) is None
    # 50,000 - 80,000 bytes left: rested (45,000) after 75,000 bytes of refill
    assert box.next_time(0.1) == pytest.approx(0.75, abs=0.01)


def test_next_time_is_when_a_waiting_shard_has_rested() -> None:
    box = outbox(2)
    assert box.next_time(0.0) is None
    for i in range(3):
        box.put(batch(500, tag=f"b{i}"))
    while box.compose(0.0) is not None:
        pass
    assert box.next_time(0.0) == pytest.approx(0.45)


# --------------------------------------------------------------------------------------------------------------------
# ordering: per_key
# --------------------------------------------------------------------------------------------------------------------


def ordered_batch(keys: list[str], tag: str = "o") -> Batch:
    closed = batch(len(keys), keys=keys, tag=tag)
    closed.ordered = True
    return closed


def _keys_of(call: Call | None) -> list[str]:
    assert call is not None
    return [str(e["PartitionKey"]) for e in sent(call)]


@pytest.mark.parametrize("shards", [None, 1, 3])
def test_a_key_has_at_most_one_entry_in_flight_and_other_keys_go_on(shards: int | None) -> None:
    box = outbox(shards)
    box.put(ordered_batch(["a", "a", "b", "c", "b", "a"]))
    first = box.compose(0.0)
    assert sorted(_keys_of(first)) == ["a", "b", "c"]
    assert box.compose(0.0) is None, "every key has an entry in flight"
    assert first is not None
    items = {item.key: item for part in first.parts for item in part.items or ()}
    box.accepted_item(items[b"b"])
    second = box.compose(0.0)
    assert second is not None and _keys_of(second) == ["b"]
    assert [e["Data"] for e in sent(second)] == ["bzQ="]  # o4, b's second entry
    box.accepted_item(items[b"a"])
    third = box.compose(0.0)
    assert third is not None and _keys_of(third) == ["a"]
    assert [e["Data"] for e in sent(third)] == ["bzE="]  # o1, a's second entry


def test_an_ordered_entry_sent_again_goes_before_its_keys_later_entries() -> None:
    box = outbox(2)
    box.put(ordered_batch(["k", "k", "k"]))
    call = box.compose(0.0)
    assert call is not None and [e["Data"] for e in sent(call)] == ["bzA="]
    (item,) = call.parts[0].items or []
    box.requeue_item(item)
    assert box.retrying == {b"k"}
    again = box.compose(0.0)
    assert again is not None and [e["Data"] for e in sent(again)] == ["bzA="]
    (item,) = again.parts[0].items or []
    box.accepted_item(item)
    assert box.retrying == set()
    assert [e["Data"] for e in sent(box.compose(0.0))] == ["bzE="]  # type: ignore[arg-type]


def test_a_waiting_key_does_not_make_the_loop_spin() -> None:
    """Only entries of keys with one in flight wait: nothing to look at again until a completion comes."""
    box = outbox(2)
    box.put(ordered_batch(["k", "k"]))
    assert box.compose(0.0) is not None
    assert box.compose(0.0) is None and box.next_time(0.0) is None and box.waiting == 1


def test_ordered_entries_follow_their_keys_into_new_shards() -> None:
    box = outbox(2)
    keys = [f"k{i % 7}" for i in range(40)]
    box.put(ordered_batch(keys))
    first = box.compose(0.0)
    assert first is not None and len(_keys_of(first)) == 7
    box.set_map(ShardMap(even_shards(5)), now=0.0)
    assert box.compose(0.0) is None, "keys still in flight stay blocked after the reshard"
    for part in first.parts:
        for item in part.items or ():
            box.accepted_item(item)
    second = box.compose(0.0)
    assert second is not None and sorted(_keys_of(second)) == sorted({f"k{i}" for i in range(7)})
    assert box.map is not None
    for part in second.parts:
        assert all(box.map.shards[box.map.index_of_key(k)] == part.queue.shard for k in part.chunk.keys or [])
