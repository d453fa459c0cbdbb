"""What a user sees while a sync runs: a progress line about every 10 seconds, a warning when a stream keeps
throttling, and the final summary per Kinesis stream. Counts are of records Kinesis accepted."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from destination_kinesis.sender import SendStats

logger = logging.getLogger("airbyte")

PROGRESS_INTERVAL_SECONDS = 10.0
#: A stream throttled in every progress interval for this long gets a warning telling the user what to do.
THROTTLED_WARNING_SECONDS = 60.0


@dataclass(slots=True)
class StreamTotals:
    """One Kinesis stream's accepted records and what it took."""

    records: int = 0
    bytes: int = 0
    calls: int = 0
    resent_entries: int = 0
    throttled: int = 0
    throttled_live: int = 0  # throttled calls seen at the last progress line, retrying batches included
    throttled_since: float | None = None  # start of the current run of throttled intervals
    warned: bool = False


class Progress:
    """Adds up accepted batches per Kinesis stream and logs progress when :meth:`due` says so."""

    def __init__(self, kinesis_names: list[str], started: float, interval: float = PROGRESS_INTERVAL_SECONDS):
        self.streams = {name: StreamTotals() for name in kinesis_names}
        self._interval = interval
        self._next = started + interval
        self._last_time = started
        self._last_records = 0

    def accepted(self, kinesis_name: str, records: int, size: int, stats: SendStats) -> None:
        """A batch of ``records`` (``size`` bytes) was accepted by ``kinesis_name`` after ``stats``."""
        totals = self.streams[kinesis_name]
        totals.records += records
        totals.bytes += size
        totals.calls += stats.calls
        totals.resent_entries += stats.resent_entries
        totals.throttled += stats.throttled

    def seconds_to_next(self, now: float) -> float:
        """Seconds until the next progress line is due."""
        return max(0.0, self._next - now)

    def log_if_due(self, now: float, in_flight: int, limit: int, throttled_calls: Mapping[str, int]) -> None:
        """Log a progress line (and any throttling warning) if the interval has passed. ``throttled_calls`` are
        the throttled calls so far per Kinesis stream, counted as they happen."""
        if now < self._next:
            return
        records = sum(totals.records for totals in self.streams.values())
        megabytes = sum(totals.bytes for totals in self.streams.values()) / 1e6
        rate = (records - self._last_records) / max(now - self._last_time, 1e-9)
        resent = sum(totals.resent_entries for totals in self.streams.values())
        per_stream = ", ".join(f"'{name}' {totals.records:,}" for name, totals in self.streams.items())
        logger.info("Progress: %s records (%.1f MB) written, %s records/s, %d requests in flight (limit %d), "
                    "%s entries resent so far; per Kinesis stream: %s.", f"{records:,}", megabytes, f"{rate:,.0f}",
                    in_flight, limit, f"{resent:,}", per_stream)
        for name, totals in self.streams.items():
            self._watch_throttling(name, totals, now, throttled_calls.get(name, 0))
        self._last_records, self._last_time = records, now
        self._next = now + self._interval

    def _watch_throttling(self, name: str, totals: StreamTotals, now: float, throttled: int) -> None:
        if throttled == totals.throttled_live:
            totals.throttled_since = None
            return
        totals.throttled_live = throttled
        if totals.throttled_since is None:
            totals.throttled_since = self._last_time
        elif not totals.warned and now - totals.throttled_since >= THROTTLED_WARNING_SECONDS:
            totals.warned = True
            logger.warning("Kinesis stream '%s' has been throttling writes for %.0f s (%d throttled so far): add "
                           "shards or use on-demand capacity, or lower maxInFlightRequests.", name,
                           now - totals.throttled_since, throttled)

    def log_summary(self, succeeded: bool) -> None:
        """One line per Kinesis stream: records and bytes accepted, calls, resent entries, throttled requests."""
        verb = "written" if succeeded else "written before the failure"
        for name, totals in self.streams.items():
            logger.info("Kinesis stream '%s': %s records (%s bytes) %s in %s PutRecords calls; %s entries resent, "
                        "%s throttled.", name, f"{totals.records:,}", f"{totals.bytes:,}", verb, f"{totals.calls:,}",
                        f"{totals.resent_entries:,}", f"{totals.throttled:,}")
