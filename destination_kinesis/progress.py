"""What a user sees while a sync runs: a progress line about every 10 seconds, warnings when a shard or a stream is at
its write limit for long, and the final summary per Kinesis stream and shard. Counts are of records Kinesis accepted.

A shard that keeps its records waiting for its budget, or keeps being throttled, while another shard of its stream has
room, receives more than its share: the partition key puts many records on it (a hot key), and more shards would not
help. Every shard at its limit for a minute is the opposite case: the stream needs more shards.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from destination_kinesis.outbox import Outbox, ShardQueue

logger = logging.getLogger("airbyte")

PROGRESS_INTERVAL_SECONDS = 10.0
#: How often the shards are looked at for hot shards and streams at their limit.
WATCH_INTERVAL_SECONDS = 1.0
#: A shard pressed (entries waiting for its budget, or throttled) while another has room, this long: a warning.
HOT_SHARD_SECONDS = 10.0
#: Ordered entries of one key waiting, at least this many and at least half of all, for HOT_SHARD_SECONDS: a warning.
HOT_KEY_ENTRIES = 100
#: A stream whose every shard is pressed (or, unpaced, that throttles) this long: a warning.
THROTTLED_WARNING_SECONDS = 60.0


class Sending(Protocol):
    """What progress reads of the sending side (the dispatcher)."""

    @property
    def outboxes(self) -> Mapping[str, Outbox]: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def limit(self) -> int: ...


@dataclass(slots=True)
class Sustained:
    """A condition looked at now and then, to be told once when it has held without a break for long enough."""

    since: float | None = None  # holding since then (None: not holding at the last look)
    told: bool = False

    def held(self, holds: bool, now: float, seconds: float) -> float | None:
        """Note whether the condition ``holds`` now; return for how long it has held, once, the first time that is
        at least ``seconds`` (None otherwise)."""
        if not holds:
            self.since = None
            return None
        if self.since is None:
            self.since = now
        if self.told or now - self.since < seconds:
            return None
        self.told = True
        return now - self.since


@dataclass(slots=True)
class StreamTotals:
    """One Kinesis stream's accepted records and what it took: user records, and the Kinesis records they went in
    (fewer with aggregation) with their bytes and PUT payload units."""

    records: int = 0
    kinesis_records: int = 0
    bytes: int = 0
    put_units: int = 0
    calls: int = 0
    resent_entries: int = 0
    throttled: int = 0  # entries throttled (a throttled whole call counts each of its entries)
    throttled_seen: int = 0  # ``throttled`` at the last look
    pressed: Sustained = field(default_factory=Sustained)  # every shard pressed (or throttling, unpaced)
    hot_key: Sustained = field(default_factory=Sustained)  # most ordered entries waiting have had one key


class Progress:
    """Adds up what the calls of each Kinesis stream came to, and logs progress and warnings when due.

    ``key_settings`` says, per Kinesis stream, which ``partitionKey`` setting makes its keys (for hot shard warnings).
    """

    def __init__(self, kinesis_names: list[str], started: float, key_settings: Mapping[str, str] | None = None,
                 interval: float = PROGRESS_INTERVAL_SECONDS):
        self.streams = {name: StreamTotals() for name in kinesis_names}
        self._key_settings = dict(key_settings or {})
        self._interval = interval
        self._next = started + interval
        self._next_watch = started + WATCH_INTERVAL_SECONDS
        self._last_time = started
        self._last_records = 0
        self._hot: dict[str, Sustained] = {}  # shard → pressed while another had room
        self._throttled_seen: dict[ShardQueue, int] = {}

    def called(self, kinesis_name: str) -> None:
        self.streams[kinesis_name].calls += 1

    def accepted(self, kinesis_name: str, records: int, size: int, kinesis_records: int | None = None,
                 put_units: int | None = None) -> None:
        """Kinesis accepted ``records`` user records of ``kinesis_name``, in ``kinesis_records`` Kinesis records (the
        same number unless aggregated) of ``size`` bytes and ``put_units`` PUT payload units (one each unless said)."""
        totals = self.streams[kinesis_name]
        totals.records += records
        totals.bytes += size
        totals.kinesis_records += records if kinesis_records is None else kinesis_records
        totals.put_units += (records if kinesis_records is None else kinesis_records) if put_units is None \
            else put_units

    def resent(self, kinesis_name: str, entries: int, throttled: int) -> None:
        """``entries`` were not accepted (``throttled`` of them for throughput) and will be sent again."""
        totals = self.streams[kinesis_name]
        totals.resent_entries += entries
        totals.throttled += throttled

    def seconds_to_next(self, now: float) -> float:
        """Seconds until the next line or look at the shards is due."""
        return max(0.0, min(self._next, self._next_watch) - now)

    def log_if_due(self, now: float, dispatcher: Sending) -> None:
        """Look at the shards once a second (warnings) and log a progress line every interval."""
        if now >= self._next_watch:
            self._next_watch = now + WATCH_INTERVAL_SECONDS
            for outbox in dispatcher.outboxes.values():
                self._watch(outbox, now)
        if now < self._next:
            return
        records = sum(totals.records for totals in self.streams.values())
        megabytes = sum(totals.bytes for totals in self.streams.values()) / 1e6
        rate = (records - self._last_records) / max(now - self._last_time, 1e-9)
        resent = sum(totals.resent_entries for totals in self.streams.values())
        throttled = sum(totals.throttled for totals in self.streams.values())
        per_stream = ", ".join(
            f"'{name}' {totals.records:,}{_packed(totals)}{_waiting(dispatcher.outboxes.get(name), now)}"
            for name, totals in self.streams.items())
        logger.info("Progress: %s records (%.1f MB) written, %s records/s, %d requests in flight (limit %d), "
                    "%s entries resent so far (%s throttled); per Kinesis stream: %s.", f"{records:,}", megabytes,
                    f"{rate:,.0f}", dispatcher.in_flight, dispatcher.limit, f"{resent:,}", f"{throttled:,}",
                    per_stream)
        self._last_records, self._last_time = records, now
        self._next = now + self._interval

    def _watch(self, outbox: Outbox, now: float) -> None:
        """Note which shards are pressed; warn about a hot shard, or a stream at its limit, once each."""
        totals = self.streams[outbox.stream_name]
        shards = outbox.shards
        pressed = [queue for queue in shards if self._pressed(queue, outbox.free_count > 0)]
        if outbox.paced and len(shards) > 1:
            for queue in shards:
                hot = queue in pressed and len(pressed) < len(shards)
                seconds = self._hot.setdefault(queue.name, Sustained()).held(hot, now, HOT_SHARD_SECONDS)
                if seconds is not None:
                    self._warn_hot(outbox, queue, seconds)
        self._watch_ordered(outbox, totals, now)
        throttling = totals.throttled > totals.throttled_seen
        totals.throttled_seen = totals.throttled
        at_limit = (bool(pressed) and len(pressed) == len(shards)) or (throttling and not outbox.paced)
        seconds = totals.pressed.held(at_limit, now, THROTTLED_WARNING_SECONDS)
        if seconds is not None:
            what = ("every shard has been at its write limit" if outbox.paced
                    else "Kinesis has been throttling writes")
            logger.warning("Kinesis stream '%s': %s for %.0f s (%s entries throttled so far): the sync goes as fast "
                           "as the stream's %s take. Add shards or use on-demand capacity to write faster.",
                           outbox.stream_name, what, seconds, f"{totals.throttled:,}",
                           _shards(len(shards)) if outbox.paced else "shards")

    def _watch_ordered(self, outbox: Outbox, totals: StreamTotals, now: float) -> None:
        """With ordering per_key a key has one record in flight at a time: a key that holds most of the records
        waiting goes at one record per round trip and sets the pace of the sync."""
        top, waiting = outbox.busiest_key()
        seconds = totals.hot_key.held(top >= HOT_KEY_ENTRIES and 2 * top >= waiting, now, HOT_SHARD_SECONDS)
        if seconds is not None:
            setting = self._key_settings.get(outbox.stream_name, "the partition key")
            logger.warning(
                "Kinesis stream '%s': for %.0f s most records waiting (%s of %s) have had one partition key value "
                "(%s). With ordering per_key each key has one record in flight at a time, so that key goes at about "
                "one record per round trip. If the order of a key's records does not matter, set ordering to 'none'; "
                "else choose a partition key with more distinct values.", outbox.stream_name, seconds,
                f"{top:,}", f"{waiting:,}", setting)

    def _pressed(self, queue: ShardQueue, free_waiting: bool) -> bool:
        """Entries wait for this shard's budget (its own, or random-key entries that could go to any shard), or it
        was throttled since the last look."""
        throttled = queue.throttled > self._throttled_seen.get(queue, 0)
        self._throttled_seen[queue] = queue.throttled
        waiting = queue.queued > 0 or free_waiting
        return throttled or (waiting and queue.budget is not None and not queue.budget.rested)

    def _warn_hot(self, outbox: Outbox, queue: ShardQueue, seconds: float) -> None:
        share = queue.routed / max(1, sum(q.routed for q in outbox.shards))
        keys: Counter[bytes] = Counter(key for chunk in queue.chunks for key in chunk.keys or ())
        top = keys.most_common(1)[0][1] / sum(keys.values()) if keys else 0.0
        concentration = (f"; one partition key value makes up {top:.0%} of the records waiting for it"
                         if top >= 0.5 else "")
        setting = self._key_settings.get(outbox.stream_name, "the partition key")
        others = len(outbox.shards) - 1
        logger.warning(
            "Kinesis stream '%s': shard %s has been at its write limit (or throttled) for %.0f s while %s had room. "
            "It receives %.0f%% of the stream's records: the partition key (%s) concentrates records on it%s. More "
            "shards do not spread one key: choose a partition key with more distinct values (partitionKey 'random' "
            "when a key's records need not stay on one shard).",
            outbox.stream_name, queue.name, seconds,
            "the other shard" if others == 1 else f"some of the other {others} shards", share * 100, setting,
            concentration)

    def log_summary(self, dispatcher: Sending | None, succeeded: bool) -> None:
        """One line per Kinesis stream (records and bytes accepted, calls, resent and throttled entries) and one with
        each shard's records and throttled entries."""
        verb = "written" if succeeded else "written before the failure"
        for name, totals in self.streams.items():
            logger.info("Kinesis stream '%s': %s records %s as %s Kinesis records (%s bytes, %s PUT payload units) in "
                        "%s PutRecords calls; %s entries resent, %s throttled.", name, f"{totals.records:,}", verb,
                        f"{totals.kinesis_records:,}", f"{totals.bytes:,}", f"{totals.put_units:,}",
                        f"{totals.calls:,}", f"{totals.resent_entries:,}", f"{totals.throttled:,}")
            outbox = dispatcher.outboxes.get(name) if dispatcher is not None else None
            if outbox is not None and outbox.paced:
                shards = ", ".join(f"{queue.name} {queue.accepted:,} ({queue.throttled:,} throttled)"
                                   for queue in outbox.all_queues() if queue.accepted or queue.throttled)
                logger.info("Kinesis stream '%s' per shard, records written (entries throttled): %s.", name,
                            shards or "none")


def _packed(totals: StreamTotals) -> str:
    """How many Kinesis records a stream's user records went in, when that is another number (aggregation)."""
    if totals.kinesis_records == totals.records:
        return ""
    return f" in {totals.kinesis_records:,} Kinesis records ({totals.put_units:,} PUT payload units)"


def _waiting(outbox: Outbox | None, now: float) -> str:
    """What holds a stream back: shards at their write limit, keys (in order) and shards waiting to send again."""
    if outbox is None:
        return ""
    notes = []
    if outbox.paced:
        limited = sum(1 for queue in outbox.shards if (queue.queued or outbox.free_count) and queue.budget is not None
                      and not queue.budget.rested)
        if limited:
            notes.append(f"{limited} of {_shards(len(outbox.shards))} at the write limit")
    if outbox.retrying:
        notes.append(f"{len(outbox.retrying):,} keys waiting to send a record again")
    backing_off = sum(1 for queue in outbox.shards if queue.not_before > now)
    if backing_off:
        notes.append(f"{_shards(backing_off)} backing off after a failure")
    return f" ({'; '.join(notes)})" if notes else ""


def _shards(count: int) -> str:
    return f"{count} shard" + ("" if count == 1 else "s")
