"""How many PutRecords requests may be in flight: additive increase, multiplicative decrease (AIMD).

Kinesis throttles a shard that takes more than 1,000 records or 1 MiB per second. Retrying a throttled request at
the same concurrency only throttles more, so, like Flink's Kinesis sink, the limit halves when a call is throttled
and grows back by one request per limit's worth of calls that went through without throttling (about one more
request per round trip), up to the configured maximum.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

#: A throttled call halves the limit at most once per this many seconds: the calls in flight when throttling
#: starts all come back throttled, and they are one signal, not one each.
DECREASE_INTERVAL_SECONDS = 0.5


class Pressure:
    """The current in-flight limit, between 1 and ``maximum``; safe to update from any thread."""

    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic):
        self.maximum = maximum
        self._limit = float(maximum)
        self._lock = threading.Lock()
        self._clock = clock
        self._last_decrease = float("-inf")
        self.decreases = 0
        #: Throttled calls so far per Kinesis stream, counted as they happen (their entries maybe not written yet).
        self.throttled_calls: Counter[str] = Counter()

    @property
    def limit(self) -> int:
        """Requests that may be in flight now."""
        return int(self._limit)

    def throttled(self, stream_name: str) -> None:
        """A call to ``stream_name`` was throttled (a whole-call error or throttled entries): halve the limit, at
        most once per :data:`DECREASE_INTERVAL_SECONDS`."""
        with self._lock:
            self.throttled_calls[stream_name] += 1
            now = self._clock()
            if now - self._last_decrease >= DECREASE_INTERVAL_SECONDS:
                self._last_decrease = now
                self._limit = max(1.0, self._limit / 2)
                self.decreases += 1

    def succeeded(self) -> None:
        """A call went through without throttling: grow the limit by 1/limit, up to the maximum."""
        with self._lock:
            if self._limit < self.maximum:
                self._limit = min(float(self.maximum), self._limit + 1 / self._limit)
