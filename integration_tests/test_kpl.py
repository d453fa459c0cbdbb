"""kpl: the KCL's view of aggregated records (de-aggregation and its shard range filter), alone and against
kinesalite with aggregates made by the connector's encoder."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from destination_kinesis.aggregation import Aggregate
from destination_kinesis.shardmap import hash_key as connector_hash_key

from .kinesis_emulator import Emulator, kinesis_client
from .kpl import (
    AggregatedRecord,
    SubRecord,
    hash_key,
    kcl_records,
    read_user_records,
    shard_hash_ranges,
    sub_records,
)

LOWER_HALF = (0, 2**127 - 1)
UPPER_HALF = (2**127, 2**128 - 1)


def _aggregate(*records: tuple[bytes, bytes, bytes | None]) -> bytes:
    aggregate = Aggregate(1 << 20, 1000)
    for record in records:
        assert aggregate.add(*record)
    return aggregate.encode()


def _read(data: bytes, partition_key: str = "pk") -> dict[str, Any]:
    """A record as ``read_stream`` gives it."""
    return {"data": data, "partition_key": partition_key, "shard_id": "shardId-000000000001", "sequence_number": "7"}


def _key_in(hash_range: tuple[int, int]) -> str:
    """A partition key whose MD5 falls in ``hash_range``."""
    while True:
        key = uuid.uuid4().hex
        if hash_range[0] <= hash_key(key) <= hash_range[1]:
            return key


def test_a_plain_record_reaches_the_consumer_as_it_is() -> None:
    [user_record] = kcl_records(_read(b'{"a":1}', "k"), LOWER_HALF)
    assert (user_record.data, user_record.partition_key, user_record.explicit_hash_key) == (b'{"a":1}', "k", None)
    assert user_record.sub_sequence_number is None


def test_data_the_kcl_would_not_take_for_an_aggregate() -> None:
    """A wrong MD5 or magic, nothing between magic and MD5, a message without its required fields: each reaches the
    consumer whole, as one plain record."""
    good = _aggregate((b"k", b"data", None))
    no_required_field = AggregatedRecord()
    no_required_field.records.add(data=b"x")  # no partition_key_index
    message = no_required_field.SerializePartialToString()
    for data in (good[:-1] + bytes([good[-1] ^ 1]),
                 b"\xf3\x89\x9a\xc3" + good[4:],
                 good[:4] + hashlib.md5(b"").digest(),
                 good[:4] + message + hashlib.md5(message).digest()):
        assert sub_records(data) is None
        [user_record] = kcl_records(_read(data), LOWER_HALF)
        assert (user_record.data, user_record.sub_sequence_number) == (data, None)


def test_sub_records_inside_the_shard_are_delivered_in_order() -> None:
    """Explicit hash keys decide where they are given; without one, the MD5 of the partition key does."""
    lower_key = _key_in(LOWER_HALF)
    data = _aggregate((b"a", b"1", b"5"), (lower_key.encode(), b"2", None), (b"b", b"", str(2**127 - 1).encode()))
    assert sub_records(data) == [SubRecord("a", "5", b"1"), SubRecord(lower_key, None, b"2"),
                                 SubRecord("b", str(2**127 - 1), b"")]
    delivered = kcl_records(_read(data), LOWER_HALF)
    assert [(r.partition_key, r.data, r.sub_sequence_number) for r in delivered] == [
        ("a", b"1", 0), (lower_key, b"2", 1), ("b", b"", 2)]


def test_one_sub_record_outside_the_shard_loses_the_whole_aggregate() -> None:
    """As the KCL does: the sub-records taken before it are dropped again and none after it is read."""
    upper_key = _key_in(UPPER_HALF)
    for outside in ((b"x", b"", str(2**127).encode()), (upper_key.encode(), b"", None)):
        data = _aggregate((b"a", b"1", b"0"), outside, (b"b", b"2", b"1"))
        assert len(sub_records(data) or []) == 3
        assert kcl_records(_read(data), LOWER_HALF) == []


def _wait_active(client: Any, stream_name: str) -> None:
    deadline = time.monotonic() + 30
    while client.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]["StreamStatus"] \
            != "ACTIVE":
        assert time.monotonic() < deadline, f"{stream_name} did not become ACTIVE"
        time.sleep(0.05)


def test_what_a_kcl_consumer_reads_back_from_kinesalite(kinesalite: Emulator) -> None:
    """Aggregates sent to the shard of their sub-records come back whole (random keys with the shard's starting
    hash key as explicit hash key, and keyed records placed by their first key); one sent to the other shard is in
    the stream but a KCL consumer gets none of it."""
    client = kinesis_client(kinesalite.endpoint)
    stream_name = f"kpl_{uuid.uuid4().hex[:12]}"
    client.create_stream(StreamName=stream_name, ShardCount=2)
    _wait_active(client, stream_name)
    ranges = shard_hash_ranges(client, stream_name)
    [(first, first_range), (second, second_range)] = sorted(ranges.items(), key=lambda item: item[1])
    first_start = str(first_range[0]).encode()

    random_keys = [(str(uuid.uuid4()).encode(), f"random {n}".encode(), first_start) for n in range(50)]
    keys = [_key_in(second_range).encode() for _ in range(3)]
    keyed = [(keys[n % 3], f"keyed {n}".encode(), None) for n in range(50)]
    misrouted = [(str(uuid.uuid4()).encode(), b"misrouted", str(second_range[0]).encode())]
    entries = []
    for records, explicit_hash_key in ((random_keys, first_start), (keyed, None), (misrouted, first_start)):
        aggregate = Aggregate(1 << 20, 500)
        for record in records:
            assert aggregate.add(*record)
        assert aggregate.partition_key is not None
        entry = {"Data": aggregate.encode(), "PartitionKey": aggregate.partition_key.decode()}
        if explicit_hash_key is not None:
            entry["ExplicitHashKey"] = explicit_hash_key.decode()
        entries.append(entry)
    assert connector_hash_key(keys[0]) in range(second_range[0], second_range[1] + 1)  # where the keyed one goes
    response = client.put_records(StreamName=stream_name, Records=entries)
    assert [result["ShardId"] for result in response["Records"]] == [first, second, first]

    delivered = read_user_records(kinesalite.endpoint, stream_name)
    expected = [(key.decode(), data, None if ehk is None else ehk.decode(), shard)
                for records, shard in ((random_keys, first), (keyed, second)) for key, data, ehk in records]
    assert [(r.partition_key, r.data, r.explicit_hash_key, r.shard_id) for r in delivered] == expected
    assert b"misrouted" not in {r.data for r in delivered}
