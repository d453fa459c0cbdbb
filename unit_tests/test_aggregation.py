"""aggregation: the KPL aggregated record, checked against aws-kinesis-agg's de-aggregation, protobuf's serializer
and a recomputed MD5, with exact sizes and bounds over many seeded random shapes."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator, Sequence

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from destination_kinesis.aggregation import DIGEST_BYTES, MAGIC, Aggregate, varint
from integration_tests.kpl import AggregatedRecord, SubRecord, sub_records

UserRecord = tuple[bytes, bytes, bytes | None]  # partition key, data, explicit hash key
UNBOUNDED = 1 << 40
SHARD_START = b"170141183460469231731687303715884105728"  # a shard's StartingHashKey: 2**127
# Data lengths at and around the varint boundaries of the data length and of the record's own length.
DATA_LENGTHS = [0, 1, 2, 37, *range(116, 131), 400, 5000, *range(16368, 16390)]
KEY_CHARS = "abcXYZ0189-_:é漢🙂"


def _key(rng: random.Random) -> bytes:
    length = rng.choice([1, 2, 36, 42, 127, 128, 129, 256])
    return "".join(rng.choice(KEY_CHARS) for _ in range(length)).encode("utf-8")[:length] or b"k"


def _valid_utf8_key(rng: random.Random) -> bytes:
    # Cut at a byte length without splitting a character; lengths then land on both sides of 127/128.
    while True:
        key = _key(rng)
        try:
            key.decode("utf-8")
            return key
        except UnicodeDecodeError:
            continue


def _shape(rng: random.Random) -> list[UserRecord]:
    """User records of one aggregate: keys distinct, few or one; explicit hash keys shared, few, none or mixed."""
    count = rng.choice([1, 2, 3, 7, 40, 140, 300])
    keys = [_valid_utf8_key(rng) for _ in range(rng.choice([1, 3, count]))]
    hash_keys = [SHARD_START, b"0", str(2**128 - 1).encode()]
    mode = rng.choice(["none", "shared", "few", "mixed"])
    records = []
    for _ in range(count):
        if mode == "none":
            hash_key = None
        elif mode == "shared":
            hash_key = SHARD_START
        elif mode == "few":
            hash_key = rng.choice(hash_keys)
        else:
            hash_key = rng.choice([None, *hash_keys])
        length = rng.choice(DATA_LENGTHS) if count < 100 else rng.choice(DATA_LENGTHS[:20])
        records.append((rng.choice(keys), rng.randbytes(length), hash_key))
    return records


def _shapes(seed: int, count: int) -> Iterator[list[UserRecord]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield _shape(rng)


def _filled(records: Sequence[UserRecord], max_bytes: int = UNBOUNDED, max_records: int = 1 << 30) -> Aggregate:
    aggregate = Aggregate(max_bytes, max_records)
    for record in records:
        assert aggregate.add(*record)
    return aggregate


def _protobuf_message(records: Sequence[UserRecord]) -> bytes:
    """The same records serialized by protobuf from the KPL's schema, keys deduplicated in first-seen order."""
    keys: dict[bytes, int] = {}
    hash_keys: dict[bytes, int] = {}
    message = AggregatedRecord()
    for key, data, hash_key in records:
        if key not in keys:
            keys[key] = len(keys)
            message.partition_key_table.append(key.decode("utf-8"))
        record = message.records.add(partition_key_index=keys[key], data=data)
        if hash_key is not None:
            if hash_key not in hash_keys:
                hash_keys[hash_key] = len(hash_keys)
                message.explicit_hash_key_table.append(hash_key.decode("utf-8"))
            record.explicit_hash_key_index = hash_keys[hash_key]
    return message.SerializeToString()


def _deaggregated(aggregate: Aggregate) -> list[UserRecord]:
    """The user records aws-kinesis-agg finds in the aggregate, read as boto3's GetRecords gives it; fails when it
    does not take the record for an aggregate (it passes such records through silently)."""
    assert aggregate.partition_key is not None
    got = [found["kinesis"] for found in iter_deaggregate_records(
        [{"Data": aggregate.encode(), "PartitionKey": aggregate.partition_key.decode("utf-8"),
          "SequenceNumber": "49590338271490256608559692538361571095921575989136588898",
          "ApproximateArrivalTimestamp": 0}], data_format="Boto3")]
    assert all(record.get("aggregated") for record in got), "aws-kinesis-agg did not see an aggregate"
    assert [record["subSequenceNumber"] for record in got] == list(range(len(got)))
    return [(record["partitionKey"].encode("utf-8"), base64.b64decode(record["data"]),
             None if record["explicitHashKey"] is None else record["explicitHashKey"].encode("utf-8"))
            for record in got]


def test_varint_matches_protobuf_encoding() -> None:
    """Base-128, least significant group first, continuation bit on every byte but the last."""
    assert varint(0) == b"\x00"
    assert varint(127) == b"\x7f"
    assert varint(128) == b"\x80\x01"
    assert varint(300) == b"\xac\x02"
    assert varint(16383) == b"\xff\x7f"
    assert varint(16384) == b"\x80\x80\x01"
    assert varint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@pytest.mark.parametrize("hash_key", [None, SHARD_START])
def test_aws_kinesis_agg_gets_every_user_record_back(hash_key: bytes | None) -> None:
    """Random keys with the shard's hash key, and few keys without: each record exact, in order, with its keys; the
    Kinesis record's own key is its first user record's."""
    rng = random.Random(16)
    keys = [f"customer-{n}".encode() for n in range(3)]
    records = [(str(rng.getrandbits(128)).encode() if hash_key else rng.choice(keys), rng.randbytes(400), hash_key)
               for _ in range(500)]
    aggregate = _filled(records)
    assert aggregate.records == 500
    assert aggregate.partition_key == records[0][0]
    assert _deaggregated(aggregate) == records


def test_random_shapes_round_trip_exactly_and_match_protobuf_byte_for_byte() -> None:
    """Across seeded shapes: aws-kinesis-agg finds every record (where it can: it misreads a record without explicit
    hash key in an aggregate whose table has one), the reader finds every record, and the message is the bytes
    protobuf serializes for the same content."""
    for records in _shapes(seed=1, count=120):
        aggregate = _filled(records)
        encoded = aggregate.encode()
        assert encoded[len(MAGIC):-DIGEST_BYTES] == _protobuf_message(records)
        assert sub_records(encoded) == [SubRecord(key.decode(), None if hash_key is None else hash_key.decode(), data)
                                        for key, data, hash_key in records]
        mixed = len({hash_key is None for _, _, hash_key in records}) > 1
        if not mixed:
            assert _deaggregated(aggregate) == records


def test_magic_and_md5_of_every_aggregate() -> None:
    """Each encoding starts with the magic and ends with the MD5 of the message between, recomputed here."""
    for records in _shapes(seed=2, count=60):
        encoded = _filled(records).encode()
        assert encoded[:4] == b"\xf3\x89\x9a\xc2"
        assert encoded[-16:] == hashlib.md5(encoded[4:-16]).digest()


def test_size_is_exact_after_every_add() -> None:
    """``size`` is the Kinesis record's data plus its partition key, as Kinesis counts it, at every step."""
    for records in _shapes(seed=3, count=80):
        aggregate = Aggregate(UNBOUNDED, 1 << 30)
        for record in records[:60]:
            assert aggregate.add(*record)
            assert aggregate.size == len(aggregate.encode()) + len(records[0][0])


def test_lengths_past_two_byte_varints() -> None:
    """Over 16,383 keys (a three-byte index) and data of 2 MiB (a four-byte length) are encoded as protobuf does."""
    many_keys = [(f"{n:05}".encode(), b"", SHARD_START) for n in range(16_500)]
    aggregate = _filled(many_keys)
    assert aggregate.encode()[4:-16] == _protobuf_message(many_keys)
    assert aggregate.size == len(aggregate.encode()) + 5
    for length in (2**21 - 8, 2**21 - 7, 2**21):
        big = [(b"k", bytes(length), None)]
        aggregate = _filled(big)
        assert aggregate.encode()[4:-16] == _protobuf_message(big)
        assert aggregate.size == len(aggregate.encode()) + 1


def test_a_record_landing_exactly_on_the_byte_bound_is_taken_one_byte_over_is_refused() -> None:
    """With the bound at the size a record brings the aggregate to, it is taken; one byte lower it is refused, the
    aggregate unchanged (its tables too: the same record a byte shorter then lands as in a fresh aggregate)."""
    rng = random.Random(4)
    for records in _shapes(seed=4, count=40):
        sizes = list(_sizes(records))
        for i in sorted({0, len(records) - 1, rng.randrange(len(records))}):
            exact = _filled(records[: i + 1], max_bytes=sizes[i])
            assert exact.size == sizes[i]

            tight = _filled(records[:i], max_bytes=sizes[i] - 1)
            before = (tight.size, tight.records, tight.partition_key)
            assert not tight.add(*records[i])
            assert (tight.size, tight.records, tight.partition_key) == before
            if i:
                assert tight.encode() == _filled(records[:i]).encode()
            key, data, hash_key = records[i]
            if data:
                shorter = (key, data[:-1], hash_key)
                assert tight.add(*shorter)
                fresh = _filled([*records[:i], shorter])
                assert (tight.encode(), tight.size) == (fresh.encode(), fresh.size)


def _sizes(records: list[UserRecord]) -> Iterator[int]:
    aggregate = Aggregate(UNBOUNDED, 1 << 30)
    for record in records:
        aggregate.add(*record)
        yield aggregate.size


def test_the_record_bound() -> None:
    aggregate = _filled([(b"a", b"1", None), (b"b", b"2", None), (b"a", b"3", None)], max_records=3)
    size = aggregate.size
    assert not aggregate.add(b"c", b"4")
    assert (aggregate.records, aggregate.size) == (3, size)


def test_a_first_record_that_alone_is_over_the_bound_is_refused() -> None:
    """An aggregate of one 400-byte record with a 36-byte key is 20 (magic, MD5) + 38 (key entry: tag, length, key)
    + 408 (record: tag, 2-byte length, then key index 2, data tag and 2-byte length, data) bytes of data plus the
    36-byte key: 502. One byte less and the empty aggregate refuses it and stays empty."""
    key, data = b"0f1e2d3c-4b5a-4968-8776-655443322110", bytes(400)
    assert _filled([(key, data, None)], max_bytes=502).size == 502
    aggregate = Aggregate(501, 10)
    assert not aggregate.add(key, data)
    assert (aggregate.size, aggregate.records, aggregate.partition_key) == (0, 0, None)
    with pytest.raises(ValueError, match="empty aggregate"):
        aggregate.encode()


@pytest.mark.parametrize("bounds", [(0, 1), (1, 0), (-5, 10)])
def test_bounds_below_one_are_refused(bounds: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="at least 1 byte and 1 record"):
        Aggregate(*bounds)
