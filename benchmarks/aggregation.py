"""The KPL aggregate encoder alone: CPU µs per user record of the hand-written encoder and of protobuf's runtime
doing the same job, beside the plain path (no aggregation) measured in the same run.

usage: .venv/bin/python benchmarks/aggregation.py [--mib 24] [--runs 5] [--max-bytes 1048576] [--max-records 1000000]

Four cases: user records of 400 and of 5,000 bytes (random bytes: neither MD5 nor base64 cares what they hold,
``--mib`` of them per case), with random keys (each a distinct 36-character UUID, all with one explicit hash key,
the target shard's starting hash key, as the connector gives them) or keyed (10 distinct keys, no explicit hash
key). Each figure is the CPU time (``time.thread_time``, user + system, one thread) of one pass over the case's
records, per user record; best and median of ``--runs`` passes, garbage collected before each.

- plain: what each record costs today without aggregation: its PutRecords entry (``ENTRY % (base64 of the data,
  quoted key)``) and the byte count, as the writer's inline path does. The baseline.
- hand-written (:class:`destination_kinesis.aggregation.Aggregate`) and protobuf (:class:`ProtobufAggregate`
  below: the same aggregate, its bound checked with the same exact arithmetic, its records put into protobuf's
  ``AggregatedRecord`` message and serialized by protobuf's upb runtime; the message class comes from the KPL's
  schema in ``integration_tests/kpl.py``), each in three parts:
  ``add`` every record to an aggregate, a new one whenever the last is full (``--max-bytes``, ``--max-records``);
  ``encode`` each aggregate (magic, message, MD5); ``entry`` its PutRecords entry (base64, explicit hash key and
  key). ``total`` is the three.
- md5: the MD5 of the aggregates' messages alone, the floor the format sets on any encoder.

Then the Kinesis records and PUT payload units per million user records, plain and aggregated, and the bytes a user
record takes of the shard's write limit (data plus keys, framing included).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pybase64 import b64encode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from destination_kinesis.aggregation import DIGEST_BYTES, MAGIC, Aggregate  # noqa: E402
from destination_kinesis.limits import MAX_RECORD_BYTES, MAX_RECORDS_PER_REQUEST, put_payload_units  # noqa: E402
from destination_kinesis.putrecords import ENTRY  # noqa: E402
from integration_tests.kpl import AggregatedRecord  # noqa: E402

#: The starting hash key of the second of two shards: the explicit hash key of every random-key user record.
SHARD_START = str(2**127).encode()
KEYED_KEYS = 10
AGGREGATE_ENTRY = b'{"Data":"%b","ExplicitHashKey":"%b","PartitionKey":"%b"}'
AGGREGATE_ENTRY_BY_KEY = b'{"Data":"%b","PartitionKey":"%b"}'

UserRecord = tuple[bytes, bytes, bytes | None]


class Aggregator(Protocol):
    size: int
    records: int
    partition_key: bytes | None

    def add(self, partition_key: bytes, data: bytes, explicit_hash_key: bytes | None = None) -> bool: ...

    def encode(self) -> bytes: ...


def _varint_size(value: int) -> int:
    return 1 if value < 0x80 else 2 if value < 0x4000 else (value.bit_length() + 6) // 7


class ProtobufAggregate:
    """:class:`~destination_kinesis.aggregation.Aggregate`'s job done with protobuf's runtime: same bounds, same
    exact size, protobuf's message and serializer. Its attribute setters are faster than ``records.add(**fields)``
    and bytes go into its string tables as they are, so this is protobuf at its quickest here."""

    def __init__(self, max_bytes: int, max_records: int):
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.size = 0
        self.records = 0
        self.partition_key: bytes | None = None
        self._message = AggregatedRecord()
        self._add_record = self._message.records.add
        self._keys: dict[bytes, int] = {}
        self._hash_keys: dict[bytes, int] = {}

    def add(self, partition_key: bytes, data: bytes, explicit_hash_key: bytes | None = None) -> bool:  # noqa: C901 - a per-record encoder, timed as written
        if self.records >= self.max_records:
            return False
        grow = 0
        known = self._keys.get(partition_key)
        new_key = known is None
        key_index = len(self._keys) if known is None else known
        if new_key:
            grow += 1 + _varint_size(len(partition_key)) + len(partition_key)
        inner = 2 + _varint_size(key_index) + _varint_size(len(data)) + len(data)
        hash_index, new_hash_key = 0, False
        if explicit_hash_key is not None:
            known = self._hash_keys.get(explicit_hash_key)
            new_hash_key = known is None
            hash_index = len(self._hash_keys) if known is None else known
            if new_hash_key:
                grow += 1 + _varint_size(len(explicit_hash_key)) + len(explicit_hash_key)
            inner += 1 + _varint_size(hash_index)
        grow += 1 + _varint_size(inner) + inner
        if not self.records:
            grow += len(MAGIC) + DIGEST_BYTES + len(partition_key)
        if self.size + grow > self.max_bytes:
            return False
        if new_key:
            self._keys[partition_key] = key_index
            self._message.partition_key_table.append(partition_key)
        record = self._add_record()
        record.partition_key_index = key_index
        if explicit_hash_key is not None:
            if new_hash_key:
                self._hash_keys[explicit_hash_key] = hash_index
                self._message.explicit_hash_key_table.append(explicit_hash_key)
            record.explicit_hash_key_index = hash_index
        record.data = data
        if not self.records:
            self.partition_key = partition_key
        self.records += 1
        self.size += grow
        return True

    def encode(self) -> bytes:
        message = self._message.SerializeToString()
        return b"".join((MAGIC, message, hashlib.md5(message).digest()))


def make_records(record_bytes: int, count: int, keyed: bool) -> list[UserRecord]:
    keys = [f"customer-{n:04}".encode() for n in range(KEYED_KEYS)]
    return [(keys[n % KEYED_KEYS], os.urandom(record_bytes), None) if keyed
            else (str(uuid.uuid4()).encode(), os.urandom(record_bytes), SHARD_START)
            for n in range(count)]


def plain_pass(records: list[UserRecord]) -> tuple[float, int]:
    """CPU seconds of making every record's PutRecords entry (dropped by batches of 500, as sent batches are), and
    the bytes the records count as."""
    pairs = [(data, b'"%b"' % key) for key, data, _ in records]  # the writer has each key quoted already
    gc.collect()
    started = time.thread_time()
    batch: list[bytes] = []
    append = batch.append
    size = 0
    for data, key in pairs:
        append(ENTRY % (b64encode(data), key))
        size += len(data) + len(key) - 2
        if len(batch) == MAX_RECORDS_PER_REQUEST:
            batch = []
            append = batch.append
    return time.thread_time() - started, size


@dataclass
class AggregatedPass:
    """CPU seconds of one pass in its parts, and the size of each aggregate made."""

    add: float = 0.0
    encode: float = 0.0
    entry: float = 0.0
    md5: float = 0.0
    sizes: list[int] = field(default_factory=list)


def aggregated_pass(make: Callable[[int, int], Aggregator], records: list[UserRecord], max_bytes: int,
                    max_records: int, time_md5: bool) -> AggregatedPass:
    """Every record added to an aggregate, each full one (and the last) encoded and made into its PutRecords entry,
    then dropped, as a sent batch is; the clock read between the parts, once an aggregate."""
    explicit_hash_key = records[0][2]
    result = AggregatedPass()
    clock = time.thread_time

    def finish(aggregate: Aggregator, started: float) -> float:
        added = clock()
        data = aggregate.encode()
        encoded = clock()
        if explicit_hash_key is None:
            AGGREGATE_ENTRY_BY_KEY % (b64encode(data), aggregate.partition_key)
        else:
            AGGREGATE_ENTRY % (b64encode(data), explicit_hash_key, aggregate.partition_key)
        done = clock()
        result.add += added - started
        result.encode += encoded - added
        result.entry += done - encoded
        result.sizes.append(aggregate.size)
        if time_md5:
            hashlib.md5(memoryview(data)[len(MAGIC):-DIGEST_BYTES]).digest()
            result.md5 += clock() - done
        return clock()

    gc.collect()
    aggregate = make(max_bytes, max_records)
    started = clock()
    for key, data, hash_key in records:
        if not aggregate.add(key, data, hash_key):
            started = finish(aggregate, started)
            aggregate = make(max_bytes, max_records)
            if not aggregate.add(key, data, hash_key):
                raise SystemExit(f"a {len(data)}-byte record does not fit an empty aggregate of {max_bytes} bytes")
    finish(aggregate, started)
    return result


def fill_one(make: Callable[[int, int], Aggregator], records: list[UserRecord], max_bytes: int,
             max_records: int) -> bytes:
    """The first aggregate the records fill, encoded."""
    aggregate = make(max_bytes, max_records)
    for key, data, hash_key in records:
        if not aggregate.add(key, data, hash_key):
            break
    return aggregate.encode()


def measure(name: str, records: list[UserRecord], args: argparse.Namespace) -> list[str]:
    """The case's lines of the report."""
    count = len(records)
    per_record = 1e6 / count
    runs: dict[str, list[float]] = {}

    def keep(label: str, seconds: float) -> None:
        runs.setdefault(label, []).append(seconds * per_record)

    sizes: list[int] = []
    same = [fill_one(make, records, args.max_bytes, args.max_records) for make in (Aggregate, ProtobufAggregate)]
    if same[0] != same[1]:
        raise SystemExit("the protobuf candidate encodes the first aggregate differently")
    for _ in range(args.runs):
        seconds, plain_size = plain_pass(records)
        keep("plain", seconds)
        for label, make in (("hand-written", Aggregate), ("protobuf", ProtobufAggregate)):
            result = aggregated_pass(make, records, args.max_bytes, args.max_records, label == "hand-written")
            for part in ("add", "encode", "entry"):
                keep(f"{label} {part}", getattr(result, part))
            keep(f"{label} total", result.add + result.encode + result.entry)
            if label == "hand-written":
                keep("md5", result.md5)
                sizes = result.sizes

    def figure(label: str) -> str:
        return f"{min(runs[label]):>6.3f}/{statistics.median(runs[label]):<6.3f}"

    blank = " " * 13
    lines = [f"\n{name}: {count:,} user records, {len(records[0][1]):,} bytes each",
             f"  {'CPU µs per user record, best/median':<36} {'add':>13} {'encode':>13} {'entry':>13} {'total':>13}",
             f"  {'plain (baseline)':<36} {blank} {blank} {blank} {figure('plain')}"]
    for label in ("hand-written", "protobuf"):
        lines.append(f"  {label:<36} " + " ".join(figure(f"{label} {part}")
                                                  for part in ("add", "encode", "entry", "total")))
    lines.append(f"  {'  of which the MD5 alone':<36} {blank} {figure('md5')}")
    million = 1e6 / count
    plain_units = sum(put_payload_units(len(data) + len(key)) for key, data, _ in records)
    lines.append(f"  per million user records: plain {million * count:,.0f} Kinesis records and "
                 f"{plain_units * million:,.0f} PUT units; aggregated {len(sizes) * million:,.0f} and "
                 f"{sum(put_payload_units(size) for size in sizes) * million:,.0f}")
    lines.append(f"  bytes per user record counted by the shard's write limit: plain {plain_size / count:.1f}, "
                 f"aggregated {sum(sizes) / count:.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=float, default=24, help="MiB of user record data per case")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-bytes", type=int, default=MAX_RECORD_BYTES, help="bound of an aggregate's size")
    parser.add_argument("--max-records", type=int, default=1_000_000, help="bound of an aggregate's user records")
    args = parser.parse_args(argv)
    if args.mib <= 0 or args.runs < 1 or args.max_bytes < 6_000 or args.max_records < 1:
        parser.error("--mib must be positive, --runs and --max-records at least 1, --max-bytes at least 6000")

    report = [f"{args.runs} passes a case; aggregates of at most {args.max_bytes:,} bytes and {args.max_records:,} "
              f"user records; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"]
    for record_bytes in (400, 5000):
        count = int(args.mib * 1024 * 1024 / record_bytes)
        for keyed in (False, True):
            name = f"{record_bytes:,}-byte records, " + (
                f"keyed ({KEYED_KEYS} keys, no explicit hash key)" if keyed
                else "random keys (distinct UUIDs, one explicit hash key)")
            print(f"measuring {name}", file=sys.stderr)
            report += measure(name, make_records(record_bytes, count, keyed), args)
    report.append(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
