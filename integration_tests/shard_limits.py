"""AWS's per-shard write limits, as the fault proxy enforces them: which shard an entry goes to, a token bucket per
shard, and what each shard was sent and took.

Kinesis puts a PutRecords entry on the open shard whose ``HashKeyRange`` holds its hash key: the 128-bit big-endian
integer of MD5(partition key as UTF-8), or its ``ExplicitHashKey`` (a decimal string) when it has one. Each shard
takes at most 1,000 records/s and 1 MiB/s of writes (data plus partition key bytes), with about a second of burst;
an entry over that is refused alone (``ProvisionedThroughputExceededException``) while the others of its call go
through. :class:`ShardLimiter` does the same bookkeeping: it learns each stream's open shards (through a callable the
proxy gives it, ListShards on the backend), routes entries, spends and refills the buckets, and counts.

Plain library code, importable by benchmarks too; every time it reads comes from the clock it is given.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

RECORDS_PER_SECOND = 1000
BYTES_PER_SECOND = 1 << 20  # 1 MiB
MAX_HASH_KEY = 2**128 - 1

#: Lists every shard of a stream (each as ListShards returns it), or None when the backend does not know the stream.
ListShards = Callable[[str], "list[dict[str, Any]] | None"]
Clock = Callable[[], float]


def hash_key(entry: Mapping[str, Any]) -> int:
    """The hash key that places a PutRecords entry (as JSON-decoded from the request) on a shard."""
    explicit = entry.get("ExplicitHashKey")
    if explicit is not None:
        return int(explicit)
    return int.from_bytes(hashlib.md5(str(entry["PartitionKey"]).encode()).digest(), "big")


def entry_bytes(entry: Mapping[str, Any]) -> int:
    """What an entry counts against a shard's bytes: its data (decoded from base64) plus its partition key in UTF-8."""
    data = str(entry.get("Data") or "")
    padding = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    return len(data) * 3 // 4 - padding + len(str(entry["PartitionKey"]).encode())


def is_open(shard: Mapping[str, Any]) -> bool:
    """A shard takes writes until it is closed (split or merged): then its range has an EndingSequenceNumber.
    kinesis-local writes ``"EndingSequenceNumber": null`` for an open shard, kinesalite leaves it out."""
    return (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber") is None


@dataclass(frozen=True)
class ShardLimits:
    """The limits of every shard: ``records_per_second`` and ``bytes_per_second``, each bucket holding
    ``burst_seconds`` of its rate (full when the shard is first seen). A stream's shards are learned again when a
    PutRecords for it comes ``refresh_seconds`` after they were last learned (or sooner: see :class:`ShardLimiter`).

    An entry larger than the bytes bucket (``bytes_per_second * burst_seconds``) is never admitted: keep test limits
    above the largest record.
    """

    records_per_second: float = RECORDS_PER_SECOND
    bytes_per_second: float = BYTES_PER_SECOND
    burst_seconds: float = 1.0
    refresh_seconds: float = 1.0

    def __post_init__(self) -> None:
        if min(self.records_per_second, self.bytes_per_second, self.burst_seconds) <= 0 or self.refresh_seconds < 0:
            raise ValueError(f"bad shard limits: {self}")


class TokenBucket:
    """``rate`` tokens a second up to ``capacity``; starts full at ``now``."""

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self._at = now

    def refill(self, now: float) -> None:
        if now > self._at:
            self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
            self._at = now


@dataclass
class ShardCounts:
    """What one shard was sent through the limits and what it took.

    ``entries`` came to it (``accepted`` + ``throttled`` + those the backend did not write), ``entry_bytes`` and
    ``accepted_bytes`` their sizes as :func:`entry_bytes` counts them. By the limiter's clock, None if never:
    ``exhausted_at``, when its budget first ran out (an entry was refused, or after one was admitted the bucket could
    not have taken another of that size); ``first_throttled_at``, when it first refused an entry; ``burst_taken_at``,
    when it had accepted as many records or bytes as its bucket holds, from when on it can take no more than its
    rate (a writer that paces itself below the bucket's size never exhausts it, but gets there).
    """

    entries: int = 0
    accepted: int = 0
    throttled: int = 0
    entry_bytes: int = 0
    accepted_bytes: int = 0
    exhausted_at: float | None = None
    first_throttled_at: float | None = None
    burst_taken_at: float | None = None


@dataclass
class StreamCounts:
    """A stream's PutRecords ``calls`` that reached the limits, entries the backend wrote on another shard than the
    one predicted (``misrouted``: the shard map was stale), and its shards' counts by shard id (closed ones too)."""

    calls: int = 0
    misrouted: int = 0
    shards: dict[str, ShardCounts] = field(default_factory=dict)

    def total(self, name: str) -> int:
        """A :class:`ShardCounts` number (``"entries"``, ``"accepted"``, ...) summed over the shards."""
        return sum(getattr(counts, name) for counts in self.shards.values())


class _Shard:
    def __init__(self, shard_id: str, start: int, end: int, limits: ShardLimits, now: float):
        self.shard_id = shard_id
        self.start = start
        self.end = end
        self.records = TokenBucket(limits.records_per_second, limits.records_per_second * limits.burst_seconds, now)
        self.bytes = TokenBucket(limits.bytes_per_second, limits.bytes_per_second * limits.burst_seconds, now)


class _ShardMap:
    """A stream's open shards as last learned, by starting hash key."""

    def __init__(self, shards: list[_Shard], learned_at: float):
        self.shards = sorted(shards, key=lambda shard: shard.start)
        self._starts = [shard.start for shard in self.shards]
        self.ids = {shard.shard_id for shard in self.shards}
        self.learned_at = learned_at
        self.stale = False

    def route(self, key: int) -> _Shard | None:
        index = bisect.bisect_right(self._starts, key) - 1
        if index >= 0 and key <= self.shards[index].end:
            return self.shards[index]
        return None


@dataclass(frozen=True)
class Admission:
    """The limits' answer for the entries of one call, in order: the shard each was predicted for (None when the
    stream's shards are unknown: then nothing was limited) and whether it may be forwarded."""

    stream: str
    shard_ids: list[str | None]
    admitted: list[bool]
    sizes: list[int]


class ShardLimiter:
    """Per stream: its shard map, a token bucket pair per open shard, and :class:`StreamCounts`. Thread-safe.

    A stream's shards are learned (``list_shards``; only open ones are kept) at its first PutRecords and again when
    :meth:`settle` sees the backend put an entry on a shard the map does not hold, after :meth:`reshaped` (a
    SplitShard, MergeShards or UpdateShardCount passed through), and otherwise when a PutRecords comes
    ``refresh_seconds`` after the last time, so a reshard made on the backend directly is noticed within about that.
    A shard that stays open keeps its bucket; a new one (a child of a split) starts with a full one; a closed one is
    no longer routed to. While one thread learns a stream's shards again, the others go on with the old map.
    """

    def __init__(self, limits: ShardLimits, list_shards: ListShards, clock: Clock):
        self.limits = limits
        self._list_shards = list_shards
        self._clock = clock
        self._lock = threading.Lock()
        self._learning = threading.Lock()
        self._maps: dict[str, _ShardMap] = {}
        self._buckets: dict[tuple[str, str], _Shard] = {}
        self._counts: dict[str, StreamCounts] = {}

    # ------------------------------------------------------------------ the shard map

    def _shard_map(self, stream: str) -> _ShardMap | None:
        with self._lock:
            current = self._maps.get(stream)
            due = (current is None or current.stale
                   or self._clock() - current.learned_at >= self.limits.refresh_seconds)
        if not due:
            return current
        if not self._learning.acquire(blocking=current is None):
            return current  # another thread is learning; the old map serves meanwhile
        try:
            with self._lock:  # it may have been learned while this thread waited
                latest = self._maps.get(stream)
                if latest is not None and latest is not current:
                    return latest
            listed = self._list_shards(stream)
            if listed is None:
                return current
            return self._install(stream, listed)
        finally:
            self._learning.release()

    def _install(self, stream: str, listed: Iterable[Mapping[str, Any]]) -> _ShardMap:
        with self._lock:
            now = self._clock()
            shards = []
            for shard in listed:
                if not is_open(shard):
                    continue
                shard_id = str(shard["ShardId"])
                known = self._buckets.get((stream, shard_id))
                if known is None:
                    hash_range = shard["HashKeyRange"]
                    known = _Shard(shard_id, int(hash_range["StartingHashKey"]), int(hash_range["EndingHashKey"]),
                                   self.limits, now)
                    self._buckets[(stream, shard_id)] = known
                shards.append(known)
            learned = self._maps[stream] = _ShardMap(shards, now)
            return learned

    def reshaped(self, stream: str) -> None:
        """The stream's shards are being changed: learn them again at its next PutRecords."""
        with self._lock:
            current = self._maps.get(stream)
            if current is not None:
                current.stale = True

    # ------------------------------------------------------------------ one PutRecords call

    def admit(self, stream: str, entries: Sequence[Mapping[str, Any]]) -> Admission:
        """Route ``entries`` (one call's, in order) and spend their shards' budgets on those that fit; count them."""
        shard_map = self._shard_map(stream)
        sizes = [entry_bytes(entry) for entry in entries]
        with self._lock:
            counts = self._counts.setdefault(stream, StreamCounts())
            counts.calls += 1
            if shard_map is None:
                return Admission(stream, [None] * len(entries), [True] * len(entries), sizes)
            now = self._clock()
            shard_ids: list[str | None] = []
            admitted = []
            for entry, size in zip(entries, sizes, strict=True):
                shard = shard_map.route(hash_key(entry))
                if shard is None:  # no open shard holds it: let the backend say what it does with it
                    shard_ids.append(None)
                    admitted.append(True)
                    continue
                shard_counts = counts.shards.setdefault(shard.shard_id, ShardCounts())
                shard_counts.entries += 1
                shard_counts.entry_bytes += size
                shard.records.refill(now)
                shard.bytes.refill(now)
                fits = shard.records.tokens >= 1 and shard.bytes.tokens >= size
                if fits:
                    shard.records.tokens -= 1
                    shard.bytes.tokens -= size
                else:
                    shard_counts.throttled += 1
                    if shard_counts.first_throttled_at is None:
                        shard_counts.first_throttled_at = now
                if shard_counts.exhausted_at is None and (
                        not fits or shard.records.tokens < 1 or shard.bytes.tokens < size):
                    shard_counts.exhausted_at = now
                shard_ids.append(shard.shard_id)
                admitted.append(fits)
            return Admission(stream, shard_ids, admitted, sizes)

    def settle(self, admission: Admission, results: Sequence[Mapping[str, Any]]) -> None:
        """Count what the backend wrote of the admitted entries (``results``: its answer's, in their order); a result
        on a shard the map does not hold makes the map stale."""
        forwarded = [index for index, ok in enumerate(admission.admitted) if ok]
        limits = self.limits
        with self._lock:
            counts = self._counts[admission.stream]
            shard_map = self._maps.get(admission.stream)
            for index, result in zip(forwarded, results, strict=True):
                written_on = result.get("ShardId")
                predicted = admission.shard_ids[index]
                if shard_map is not None and written_on is not None and written_on not in shard_map.ids:
                    shard_map.stale = True
                if predicted is None or not result.get("SequenceNumber"):
                    continue
                if written_on != predicted:
                    counts.misrouted += 1
                shard_counts = counts.shards[predicted]
                shard_counts.accepted += 1
                shard_counts.accepted_bytes += admission.sizes[index]
                if shard_counts.burst_taken_at is None and (
                        shard_counts.accepted >= limits.records_per_second * limits.burst_seconds
                        or shard_counts.accepted_bytes >= limits.bytes_per_second * limits.burst_seconds):
                    shard_counts.burst_taken_at = self._clock()

    def counts(self) -> dict[str, StreamCounts]:
        """A copy of every stream's counts so far."""
        with self._lock:
            return {stream: replace(counts, shards={shard_id: replace(shard) for shard_id, shard in
                                                    counts.shards.items()})
                    for stream, counts in self._counts.items()}

    def open_shards(self, stream: str) -> list[str]:
        """The ids of the stream's open shards as the limiter knows them now (empty before its first PutRecords)."""
        with self._lock:
            current = self._maps.get(stream)
            return [] if current is None else [shard.shard_id for shard in current.shards]
