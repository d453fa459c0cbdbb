"""The fault proxy's per-shard limit mode, against kinesalite (and kinesis-local for an ON_DEMAND stream).

PutRecords calls go through the proxy with a boto3 client; what the proxy answers is compared with what AWS would
answer, and what the emulator holds afterwards with what was accepted. Limits are small and the proxy's clock is a
:class:`FakeClock` the tests move, so nothing depends on timing.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from . import fault_proxy
from .connector import unique
from .fault_proxy import FaultPlan, FaultProxy
from .kinesis_emulator import Emulator, kinesis_client, read_stream
from .shard_limits import MAX_HASH_KEY, ShardLimits

THROTTLED = "ProvisionedThroughputExceededException"


class FakeClock:
    """A clock that stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def md5_key(partition_key: str) -> int:
    return int(hashlib.md5(partition_key.encode("utf-8")).hexdigest(), 16)


def create_stream(client: Any, shards: int, prefix: str = "limits", **options: Any) -> str:
    name = unique(prefix)
    if shards:
        client.create_stream(StreamName=name, ShardCount=shards, **options)
    else:
        client.create_stream(StreamName=name, **options)
    wait_active(client, name)
    return name


def wait_active(client: Any, name: str) -> None:
    deadline = time.monotonic() + 30
    while client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, f"{name} did not become ACTIVE"
        time.sleep(0.05)


def open_shards(client: Any, name: str) -> list[dict[str, Any]]:
    shards = client.list_shards(StreamName=name)["Shards"]
    return [shard for shard in shards if "EndingSequenceNumber" not in shard["SequenceNumberRange"]]


def shard_of(key: int, shards: list[dict[str, Any]]) -> str:
    """The open shard whose hash key range holds ``key``, computed here independently of the proxy."""
    (shard_id,) = [shard["ShardId"] for shard in shards if int(shard["HashKeyRange"]["StartingHashKey"]) <= key
                   <= int(shard["HashKeyRange"]["EndingHashKey"])]
    return shard_id


def keys_on(shard_id: str, shards: list[dict[str, Any]], count: int, prefix: str = "key") -> list[str]:
    """``count`` partition keys whose MD5 puts them on ``shard_id``."""
    found: list[str] = []
    candidate = 0
    while len(found) < count:
        key = f"{prefix}-{candidate}"
        if shard_of(md5_key(key), shards) == shard_id:
            found.append(key)
        candidate += 1
    return found


def entry(key: str, data: bytes | None = None, **extra: Any) -> dict[str, Any]:
    return {"Data": data if data is not None else key.encode(), "PartitionKey": key, **extra}


def rate_exceeded(shard_id: str, stream: str) -> dict[str, str]:
    return {"ErrorCode": THROTTLED,
            "ErrorMessage": f"Rate exceeded for shard {shard_id} in stream {stream} under account 000000000000."}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def direct(kinesalite: Emulator) -> Any:
    """A client of kinesalite itself, not through the proxy."""
    return kinesis_client(kinesalite.endpoint)


@contextmanager
def limited_proxy(backend: Emulator, clock: FakeClock, plan: FaultPlan | None = None,
                  **limits: Any) -> Iterator[tuple[FaultProxy, Any]]:
    plan = plan or FaultPlan(seed=1, shard_limits=ShardLimits(**limits))
    with FaultProxy(backend.endpoint, plan, clock=clock).start() as proxy:
        yield proxy, kinesis_client(proxy.endpoint, retries={"max_attempts": 1, "mode": "standard"})


def written(endpoint: str, stream: str) -> Counter[bytes]:
    return Counter(item["data"] for item in read_stream(endpoint, stream, timeout_s=30))


# ---------------------------------------------------------------- routing


def test_entries_are_routed_to_the_shard_kinesalite_writes_them_to(kinesalite: Emulator, direct: Any,
                                                                    clock: FakeClock) -> None:
    """MD5 of the partition key in UTF-8 (ASCII and non-ASCII keys), or the ExplicitHashKey when given (each shard's
    first and last hash key, 0 and 2^128-1): the proxy's predicted shard is the one kinesalite reports."""
    stream = create_stream(direct, 4)
    shards = open_shards(direct, stream)
    bounds = [int(shard["HashKeyRange"][edge]) for shard in shards for edge in ("StartingHashKey", "EndingHashKey")]
    explicit = [entry(f"e{key}", ExplicitHashKey=str(key)) for key in sorted({0, MAX_HASH_KEY, *bounds})]
    by_md5 = [entry(key) for key in [f"k{i}" for i in range(60)] + ["café", "日本語のキー", "emoji 🎉", "a" * 256]]
    with limited_proxy(kinesalite, clock) as (proxy, client):
        records = by_md5 + explicit
        answer = client.put_records(StreamName=stream, Records=records)
        assert answer["FailedRecordCount"] == 0
        expected = [shard_of(md5_key(r["PartitionKey"]) if "ExplicitHashKey" not in r else int(r["ExplicitHashKey"]),
                             shards) for r in records]
        assert [result["ShardId"] for result in answer["Records"]] == expected, "the test's own routing is off"
        assert proxy.limiter is not None
        counts = proxy.limiter.counts()[stream]
        assert counts.misrouted == 0
        assert {shard_id: c.entries for shard_id, c in counts.shards.items()} == Counter(expected)
        assert len(counts.shards) == 4
        assert counts.calls == 1 and counts.total("accepted") == len(records) and counts.total("throttled") == 0


# ---------------------------------------------------------------- the buckets


def test_a_burst_beyond_the_bucket_is_refused_exactly_as_aws_does(kinesalite: Emulator, direct: Any,
                                                                   clock: FakeClock) -> None:
    """5 records/s per shard with 1 s of burst, one call of 16 entries over 2 shards (9 and 7, interleaved): on each
    shard the first 5 in request order are written, the rest refused with AWS's error and message, in order, with a
    right FailedRecordCount; the refused entries are not in the stream, the accepted ones are, once."""
    stream = create_stream(direct, 2)
    shards = open_shards(direct, stream)
    first, second = (shard["ShardId"] for shard in shards)
    keys_first, keys_second = keys_on(first, shards, 9, "a"), keys_on(second, shards, 7, "b")
    pattern = [first, first, second, first, second, second, first, first, second, first, second, first, second,
               first, second, first]
    pools = {first: iter(keys_first), second: iter(keys_second)}
    order = [(shard_id, next(pools[shard_id])) for shard_id in pattern]
    with limited_proxy(kinesalite, clock, records_per_second=5) as (proxy, client):
        answer = client.put_records(StreamName=stream, Records=[entry(key) for _, key in order])
        seen: Counter[str] = Counter()
        accepted: list[bytes] = []
        for (shard_id, key), result in zip(order, answer["Records"], strict=True):
            seen[shard_id] += 1
            if seen[shard_id] <= 5:
                assert result["ShardId"] == shard_id and result["SequenceNumber"], (key, result)
                accepted.append(key.encode())
            else:
                assert result == rate_exceeded(shard_id, stream), (key, result)
        assert answer["FailedRecordCount"] == 16 - 10
        assert proxy.limiter is not None
        counts = proxy.limiter.counts()[stream]
        assert [(c.entries, c.accepted, c.throttled) for c in (counts.shards[first], counts.shards[second])] == \
            [(9, 5, 4), (7, 5, 2)]
        assert counts.shards[first].first_throttled_at == counts.shards[first].exhausted_at == clock.now
        assert counts.shards[first].burst_taken_at == clock.now
    assert written(kinesalite.endpoint, stream) == Counter(accepted)


def test_the_bucket_refills_at_its_rate_up_to_one_second_of_burst(kinesalite: Emulator, direct: Any,
                                                                  clock: FakeClock) -> None:
    """10 records/s, 1 s of burst, on one shard: 10 of 12 go at once (9, then 1 of 3), and the shard has taken a
    full burst only then; half a second later 5 more of 7; after 10 idle seconds the bucket holds 10 again, not
    100."""
    stream = create_stream(direct, 1)
    with limited_proxy(kinesalite, clock, records_per_second=10) as (proxy, client):

        def put(count: int) -> int:
            answer = client.put_records(StreamName=stream, Records=[entry(unique("r")) for _ in range(count)])
            return count - answer["FailedRecordCount"]

        assert proxy.limiter is not None
        assert put(9) == 9
        (counts,) = proxy.limiter.counts()[stream].shards.values()
        assert counts.exhausted_at is counts.burst_taken_at is None
        assert put(3) == 1
        assert put(1) == 0
        clock.advance(0.5)
        assert put(7) == 5
        clock.advance(10)
        assert put(12) == 10
        (counts,) = proxy.limiter.counts()[stream].shards.values()
        assert (counts.entries, counts.accepted, counts.throttled) == (32, 25, 7)


def test_the_bytes_limit_counts_data_and_partition_key_in_utf8(kinesalite: Emulator, direct: Any,
                                                               clock: FakeClock) -> None:
    """A bytes bucket of 1,050 (525 bytes/s, 2 s of burst) and entries of 90 data bytes plus a key of 5 characters
    that are 10 bytes in UTF-8: 10 entries fit (11 would if the key counted 5); the bytes sent and accepted are
    counted the same way."""
    stream = create_stream(direct, 1)
    with limited_proxy(kinesalite, clock, bytes_per_second=525, burst_seconds=2) as (proxy, client):
        answer = client.put_records(StreamName=stream,
                                    Records=[entry("ééééé", bytes(90)) for _ in range(12)])
        assert [bool(result.get("SequenceNumber")) for result in answer["Records"]] == [True] * 10 + [False] * 2
        assert answer["FailedRecordCount"] == 2
        assert proxy.limiter is not None
        (counts,) = proxy.limiter.counts()[stream].shards.values()
        assert (counts.entry_bytes, counts.accepted_bytes) == (12 * 100, 10 * 100)


# ---------------------------------------------------------------- reshards


@pytest.mark.parametrize("noticed_by", ["split through the proxy", "a result on an unknown shard", "refresh"])
def test_a_split_shard_is_followed(kinesalite: Emulator, direct: Any, clock: FakeClock, noticed_by: str) -> None:
    """A SplitShard while the proxy writes: through the proxy (it learns the shards again at the next PutRecords),
    or made on kinesalite directly, noticed either when kinesalite puts an entry on a shard the proxy does not know
    or by the refresh a second later. Afterwards each child has its own full bucket (5 of 8 entries go to each),
    the closed parent takes nothing, and every prediction matches kinesalite."""
    stream = create_stream(direct, 1)
    with limited_proxy(kinesalite, clock, records_per_second=5) as (proxy, client):
        assert proxy.limiter is not None
        assert client.put_records(StreamName=stream, Records=[entry("before")])["FailedRecordCount"] == 0
        (parent,) = open_shards(direct, stream)
        splitter = client if noticed_by == "split through the proxy" else direct
        splitter.split_shard(StreamName=stream, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(2**127))
        wait_active(direct, stream)
        children = open_shards(direct, stream)
        assert len(children) == 2
        misrouted = 0
        if noticed_by == "a result on an unknown shard":
            answer = client.put_records(StreamName=stream, Records=[entry("noticed")])
            assert answer["Records"][0]["ShardId"] in {child["ShardId"] for child in children}
            misrouted = 1  # predicted for the parent, written on a child: the map is stale from here
        elif noticed_by == "refresh":
            clock.advance(1.0)

        batch = [entry(key) for child in children for key in keys_on(child["ShardId"], children, 8, "after")]
        answer = client.put_records(StreamName=stream, Records=batch)
        assert answer["FailedRecordCount"] == 6
        counts = proxy.limiter.counts()[stream]
        assert counts.misrouted == misrouted
        assert sorted(proxy.limiter.open_shards(stream)) == sorted(child["ShardId"] for child in children)
        for child in children:
            assert (counts.shards[child["ShardId"]].accepted, counts.shards[child["ShardId"]].throttled) == (5, 3)
        assert counts.shards[parent["ShardId"]].accepted == 1 + misrouted


# ---------------------------------------------------------------- kinesis-local, and the other faults


def test_an_on_demand_stream_on_kinesis_local(kinesis_local: Emulator, clock: FakeClock,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """kinesis-local's ON_DEMAND stream (4 shards whose ranges are not 2^128 split evenly) behind the proxy, its
    shards listed a page of one at a time: every entry routed where kinesis-local writes it, 3 per shard taken."""
    monkeypatch.setattr(fault_proxy, "LIST_SHARDS_PAGE", 1)
    local = kinesis_client(kinesis_local.endpoint)
    stream = create_stream(local, 0, "on_demand", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    shards = open_shards(local, stream)
    assert len(shards) == 4
    records = [entry(key) for shard in shards for key in keys_on(shard["ShardId"], shards, 4, "od")]
    records += [entry(f"x{shard['ShardId']}", ExplicitHashKey=shard["HashKeyRange"]["EndingHashKey"])
                for shard in shards]
    with limited_proxy(kinesis_local, clock, records_per_second=3) as (proxy, client):
        answer = client.put_records(StreamName=stream, Records=records)
        assert answer["FailedRecordCount"] == 4 * 2
        assert proxy.limiter is not None
        counts = proxy.limiter.counts()[stream]
        assert counts.misrouted == 0
        assert {shard_id: (c.entries, c.accepted) for shard_id, c in counts.shards.items()} == \
            {shard["ShardId"]: (5, 3) for shard in shards}


def test_limits_apply_to_the_entries_a_partial_fault_forwards(kinesalite: Emulator, direct: Any,
                                                              clock: FakeClock) -> None:
    """With the plan failing about half of each call's entries (``partial``) and 10 records/s on one shard: the
    limits see only the entries the plan forwards, 10 of them are written, and the answer counts every failure."""
    stream = create_stream(direct, 1)
    plan = FaultPlan(seed=7, calls={"partial": 1.0}, entry_failure=0.5, shard_limits=ShardLimits(records_per_second=10))
    with limited_proxy(kinesalite, clock, plan) as (proxy, client):
        answer = client.put_records(StreamName=stream, Records=[entry(unique("p")) for _ in range(60)])
        assert proxy.limiter is not None
        (counts,) = proxy.limiter.counts()[stream].shards.values()
        assert counts.entries == 60 - proxy.injected["failed_entries"]
        assert (counts.accepted, counts.throttled) == (10, counts.entries - 10)
        assert answer["FailedRecordCount"] == 50
        assert sum(1 for result in answer["Records"] if result.get("SequenceNumber")) == 10
    assert sum(written(kinesalite.endpoint, stream).values()) == 10
