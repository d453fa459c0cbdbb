"""Per Kinesis stream buffers that become PutRecords batches: by record count, by request bytes, by linger time, and
by a cap on the bytes held across all streams, so memory does not grow with the number of streams.

Records reach the checkpoint, and each route's :class:`RouteStats`, by *runs*, not one by one: a run is the
consecutive records of one :class:`~destination_kinesis.route.Route` in one batch (a
:class:`~destination_kinesis.checkpoint.Run`). Its records are counted in when it ends (its batch closes, or a record
of another route joins the batch) and at :meth:`Batcher.count_runs`, which must come before every state the
checkpoint receives.

Only the batcher touches a :class:`Batch` while it is open. Records come in by :meth:`Batcher.add`, or, for a route
whose run is open, by :meth:`Batcher.append` and :meth:`Batcher.append_packed`: the writer's inline path for random
keys, :meth:`~Batcher.add` cut to what such a record needs while it fits the open batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from destination_kinesis.checkpoint import Checkpoint, Run
from destination_kinesis.limits import MAX_REQUEST_BYTES
from destination_kinesis.route import Route

DEFAULT_LINGER_SECONDS = 1.0
#: Bytes held in open buffers across all streams before the fullest is sent early.
DEFAULT_MAX_BUFFERED_BYTES = 2 * MAX_REQUEST_BYTES


@dataclass(slots=True)
class Batch:
    """Records bound for one Kinesis stream, in input order: at most the buffer size and the request byte limit.

    ``entries`` are PutRecords entries as JSON text without their closing brace (see
    :func:`destination_kinesis.putrecords.open_entry`), ``sizes`` their sizes (data plus partition key, as Kinesis
    counts) and ``size`` their sum; ``keys`` the UTF-8 partition keys of a batch of keyed records (None for a batch of
    random keys, which may go to any shard) and ``ordered`` whether each key's records must reach Kinesis in input
    order; ``runs`` the checkpoint runs of the entries, in order; ``pending`` the
    entries not yet accepted by Kinesis once the batch is closed. The ``run_`` fields describe the open run: its
    route, the size of the batch when it started, and the entry count up to which its records are counted in.
    """

    stream_name: str
    entries: list[bytes] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    keys: list[bytes] | None = None
    ordered: bool = False
    #: Records to pack into aggregates (aggregation kpl): ``entries`` then hold each record's data, ``keys`` its
    #: partition key (random keys too, then ``random``).
    packing: bool = False
    random: bool = False
    runs: list[Run] = field(default_factory=list)
    size: int = 0
    pending: int = 0
    born: float = 0.0
    run_route: Route | None = None
    run_size: int = 0
    run_counted: int = 0


@dataclass(slots=True)
class RouteStats:
    """What became of one route's records so far: ``records`` given to batches and their ``bytes`` (data plus
    partition key, as Kinesis counts), both counted as their runs are counted in and end; ``rejected``, records
    skipped instead (see :meth:`Batcher.reject`)."""

    records: int = 0
    bytes: int = 0
    rejected: int = 0


#: What :meth:`Batcher.append` returns when no batch became ready.
_NONE_READY: tuple[Batch, ...] = ()


class Batcher:
    """Collects encoded records per Kinesis stream, counts them into ``checkpoint`` and each route's
    :class:`RouteStats` by runs, and hands out full or lingering batches."""

    def __init__(self, max_records: int, checkpoint: Checkpoint,
                 linger_seconds: float = DEFAULT_LINGER_SECONDS, max_bytes: int = MAX_REQUEST_BYTES,
                 max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES):
        self.max_records = max_records  # of a batch of records sent one Kinesis record each
        self.max_bytes = max_bytes
        self._checkpoint = checkpoint
        self._max_buffered = max_buffered_bytes
        self._linger = linger_seconds
        self._open: dict[str, Batch] = {}
        self._runs: dict[Route, Batch] = {}  # the batch of each route's open run
        self._stats: dict[Route, RouteStats] = {}

    def add(self, route: Route, entry: bytes, size: int, key: bytes | None = None) -> list[Batch]:
        """Add one record of ``route`` (``size`` = its data plus partition key bytes; ``key`` its partition key when
        the record's key decides its shard or the route packs records into aggregates, else None); return the
        batches that became ready. A record that would push its stream's buffer past the byte limit closes that
        buffer first, and so does a record of another kind (random key or not, ordered, packed) than the buffer's.
        A batch of records to pack is bounded by bytes only: the aggregates made of it are what PutRecords counts."""
        closed = []
        batch = self._open.get(route.kinesis_name)
        random = route.partitioner is None
        ordered = route.ordered and not random
        if batch is not None and (batch.size + size > self.max_bytes or (batch.keys is None) != (key is None)
                                  or batch.ordered != ordered or batch.packing != route.packing
                                  or batch.random != random):
            closed.append(self.close(batch))
            batch = None
        if batch is None:
            batch = self._open[route.kinesis_name] = Batch(route.kinesis_name, born=time.monotonic(),
                                                           keys=None if key is None else [], ordered=ordered,
                                                           packing=route.packing, random=random)
        if batch.run_route is not route:
            if batch.run_route is not None:
                self._end_run(batch)
            batch.runs.append(self._checkpoint.open_run(route.lane))
            batch.run_route, batch.run_size, batch.run_counted = route, batch.size, len(batch.entries)
            self._runs[route] = batch
        batch.entries.append(entry)
        batch.sizes.append(size)
        batch.size += size
        if key is not None:
            batch.keys.append(key)  # type: ignore[union-attr]  # a batch of keyed records has keys
        if len(batch.entries) >= self.max_records and not batch.packing:
            closed.append(self.close(batch))
        return closed

    def append(self, route: Route, entry: bytes, size: int) -> Sequence[Batch]:
        """Add one record of a fast route (random key, default envelope) as :meth:`add` does, without a key; return
        the batches that became ready. While the route's run is open and the record fits its batch, this is all
        the record costs: called once per record on the writer's inline path."""
        batch = self._runs.get(route)
        if batch is None or batch.size + size > self.max_bytes:
            return self.add(route, entry, size)
        entries = batch.entries
        entries.append(entry)
        batch.sizes.append(size)
        batch.size += size
        if len(entries) >= self.max_records:
            return (self.close(batch),)
        return _NONE_READY

    def append_packed(self, route: Route, data: bytes, size: int, key: bytes) -> Sequence[Batch]:
        """Add one record of a route that packs random-key records into aggregates (its data and its partition key)
        as :meth:`add` does; return the batches that became ready. The inline path's twin of :meth:`append`."""
        batch = self._runs.get(route)
        if batch is None or batch.size + size > self.max_bytes:
            return self.add(route, data, size, key)
        batch.entries.append(data)
        batch.keys.append(key)  # type: ignore[union-attr]  # a batch of records to pack has keys
        batch.sizes.append(size)
        batch.size += size
        return _NONE_READY

    def reject(self, route: Route) -> None:
        """A record of ``route`` that is not written (over the size limit, skipped): counted into the checkpoint
        (the next state of its scope counts it as rejected) and into the route's stats, not into a batch."""
        self._checkpoint.reject(route.lane)
        self.stats(route).rejected += 1

    def stats(self, route: Route) -> RouteStats:
        """What became of ``route``'s records so far (all zero before its first)."""
        stats = self._stats.get(route)
        if stats is None:
            stats = self._stats[route] = RouteStats()
        return stats

    def close(self, batch: Batch) -> Batch:
        """Take ``batch``, an open one, out of the buffers, its run ended; return it with every entry pending."""
        if batch.run_route is not None:
            self._end_run(batch)
        del self._open[batch.stream_name]
        batch.pending = len(batch.entries)
        return batch

    def count_runs(self) -> None:
        """Count the records of every open run into the checkpoint: call before the checkpoint receives a state."""
        for batch in self._open.values():
            if batch.run_route is not None:
                self._count_run(batch, batch.run_route)

    def _count_run(self, batch: Batch, route: Route) -> None:
        counted = len(batch.entries) - batch.run_counted
        if counted:
            self._checkpoint.count(route.lane, counted)
            self.stats(route).records += counted
            batch.run_counted += counted

    def _end_run(self, batch: Batch) -> None:
        route = batch.run_route
        assert route is not None
        self._count_run(batch, route)
        self.stats(route).bytes += batch.size - batch.run_size
        del self._runs[route]
        batch.run_route = None

    def overflow(self) -> list[Batch]:
        """Close the fullest buffers while the bytes held across streams are over the cap; return them."""
        closed = []
        while sum(batch.size for batch in self._open.values()) > self._max_buffered:
            closed.append(self.close(max(self._open.values(), key=lambda batch: batch.size)))
        return closed

    def expired(self, now: float) -> list[Batch]:
        """Remove and return the batches that have waited the linger time."""
        return [self.close(batch) for batch in list(self._open.values()) if now - batch.born >= self._linger]

    def drain(self) -> list[Batch]:
        """Remove and return every open batch (end of input)."""
        return [self.close(batch) for batch in list(self._open.values())]

    def next_linger(self) -> float | None:
        """When the oldest open batch is due (``time.monotonic`` time), or None when nothing is open."""
        if not self._open:
            return None
        return min(batch.born for batch in self._open.values()) + self._linger
