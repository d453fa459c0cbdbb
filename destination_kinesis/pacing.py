"""A shard's write budget: how many records and bytes may be sent to it now.

Kinesis takes at most 1,000 records and 1 MiB (data plus partition keys) per second per shard, and rejects the entries
beyond that with ProvisionedThroughputExceededException. Sending them anyway only to resend them costs request quota
and throttles every other producer of the stream, so each shard gets a :class:`Budget`: a token bucket for records
and one for bytes, refilled at the shard's limits times the share of the shard the connector may use
(``shardWriteShare``). The buckets hold :data:`BURST_SECONDS` of refill: less than the second AWS allows, so calls
that reach Kinesis a little later or earlier than they were sent still find room.

Throttling that happens anyway (other producers write to the shard, or its real limits are lower) lowers the shard's
rate by the share of the entries that were throttled (a shard that took half of what was sent is paced to half),
at most halving it and at most once per :data:`DECREASE_INTERVAL_SECONDS`, and the rate grows back by
:data:`RECOVERY_PER_SECOND` of the full rate per second without throttling: additive increase, multiplicative
decrease, per shard.
"""

from __future__ import annotations

from dataclasses import dataclass

from destination_kinesis.limits import SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND

BURST_SECONDS = 0.5
DECREASE_INTERVAL_SECONDS = 1.0
RECOVERY_PER_SECOND = 0.1
MIN_FACTOR = 1 / 16
#: A bucket this full has waited long enough: sending now loses nothing, waiting longer might (it stops filling).
RESTED = 0.9


@dataclass(frozen=True, slots=True)
class ShardLimits:
    """The write rate one shard is paced to: AWS's limits times the share of the shard the connector may use."""

    records_per_second: float = SHARD_RECORDS_PER_SECOND
    bytes_per_second: float = SHARD_BYTES_PER_SECOND

    @classmethod
    def share(cls, share: float) -> ShardLimits:
        """``share`` (0 to 1) of AWS's per-shard limits."""
        return cls(SHARD_RECORDS_PER_SECOND * share, SHARD_BYTES_PER_SECOND * share)

    @property
    def max_records(self) -> float:
        """Records a rested budget holds: :data:`BURST_SECONDS` of the rate, and never less than one record."""
        return max(1.0, self.records_per_second * BURST_SECONDS)

    @property
    def max_bytes(self) -> float:
        """Bytes a rested budget holds (a larger record is sent alone once the budget is rested)."""
        return self.bytes_per_second * BURST_SECONDS


class Budget:
    """The records and bytes one shard may take now. Not thread-safe: the sending loop owns it."""

    __slots__ = ("limits", "records", "bytes", "factor", "_last", "_last_decrease", "_calm_since")

    def __init__(self, limits: ShardLimits, now: float):
        self.limits = limits
        self.records = limits.max_records
        self.bytes = limits.max_bytes
        self.factor = 1.0  # of the limits: lowered by throttling, grown back after
        self._last = now
        self._last_decrease = float("-inf")
        self._calm_since = now

    def refill(self, now: float) -> None:
        """Add what the time since the last refill earned, up to :data:`BURST_SECONDS` worth."""
        elapsed = now - self._last
        if elapsed <= 0:
            return
        self._last = now
        if self.factor < 1.0:
            self.factor = min(1.0, self.factor + RECOVERY_PER_SECOND * (now - max(self._calm_since, now - elapsed)))
        limits = self.limits
        self.records = min(limits.max_records, self.records + limits.records_per_second * self.factor * elapsed)
        self.bytes = min(limits.max_bytes, self.bytes + limits.bytes_per_second * self.factor * elapsed)

    def spend(self, records: int, size: int) -> None:
        self.records -= records
        self.bytes -= size

    @property
    def rested(self) -> bool:
        """Whether both buckets are nearly full: the shard has been waiting for entries, not entries for it."""
        limits = self.limits
        return self.records >= limits.max_records * RESTED and self.bytes >= limits.max_bytes * RESTED

    def seconds_to_rest(self) -> float:
        """Seconds until :attr:`rested`, at the current rate (from the last refill)."""
        limits = self.limits
        records = limits.max_records * RESTED - self.records
        size = limits.max_bytes * RESTED - self.bytes
        return max(0.0, records / (limits.records_per_second * self.factor),
                   size / (limits.bytes_per_second * self.factor))

    def throttled(self, now: float, share: float = 1.0) -> bool:
        """Kinesis rejected ``share`` of the entries a call sent this shard for its throughput: lower the rate by that
        share, at most by half (and at most once per :data:`DECREASE_INTERVAL_SECONDS`). Returns whether the rate was
        lowered. (The dispatcher also backs the shard off for a moment, as after any failure.)"""
        self._calm_since = now  # first: the refill below grows no rate back
        self.refill(now)
        if now - self._last_decrease < DECREASE_INTERVAL_SECONDS:
            return False
        self._last_decrease = now
        self.factor = max(MIN_FACTOR, self.factor * max(0.5, 1.0 - share))
        return True
