"""Sending: closed batches in, PutRecords calls out within each shard's budget, every entry resent until Kinesis
accepts it, and each batch acknowledged to the checkpoint once all of its entries are in.

Kinesis answers a PutRecords with one result per entry, and no SDK resends the failed entries of a call that returned
HTTP 200, so each answer is read here (:meth:`Dispatcher.collect`) and comes to one of four outcomes: every entry
accepted; some entries to resend (they go back to the head of their queue, see :mod:`~destination_kinesis.outbox`);
the whole call to retry (throttling, 5xx, timeouts, connection errors); or a failure retrying cannot fix, which ends
the sync. Retries wait with exponential backoff and full jitter, per shard for rejected entries and per stream for
failed calls, and end the sync once entries have kept failing for ``retryTimeoutSeconds``.

Everything here runs in the reading thread; the :class:`~destination_kinesis.sender.Sender`'s threads only carry
calls. How many calls may be in flight follows :class:`~destination_kinesis.pressure.Pressure`: halved when a whole
call is throttled (and, on an unpaced stream, when entries are), grown back after.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from destination_kinesis import aws_errors
from destination_kinesis.batcher import Batch
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.errors import system_error, transient_error
from destination_kinesis.limits import PUT_PAYLOAD_UNIT_BYTES, put_payload_units
from destination_kinesis.outbox import Call, Chunk, Item, Outbox, Part
from destination_kinesis.pressure import Pressure
from destination_kinesis.progress import Progress
from destination_kinesis.sender import Results, Sender
from destination_kinesis.shardmap import ShardMap
from destination_kinesis.sigterm import deferred

logger = logging.getLogger("airbyte")

BACKOFF_BASE_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 10.0
#: How often a paced stream's answers are read whole, to compare the shards records landed on with the map.
VERIFY_INTERVAL_SECONDS = 1.0
#: A stream's shard map is loaded again at most this often.
RELOAD_INTERVAL_SECONDS = 5.0

#: Loads a stream's shard map again (None: it cannot be read now; the stream goes on with the map it has).
MapLoader = Callable[[str], "ShardMap | None"]


def backoff(stalled: int) -> float:
    """Seconds to wait after ``stalled`` failed attempts in a row: full jitter over an exponential that starts again
    whenever an attempt got entries through, so a stream that takes half of each call is not kept waiting as long as
    one that takes nothing."""
    return random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (stalled - 1)))


class Dispatcher:
    """Sends the entries of every Kinesis stream's :class:`~destination_kinesis.outbox.Outbox` and settles what came
    of each call; see the module's docstring. ``reload_map`` gives a stream's current shard map when the answers
    show the one in use is stale."""

    def __init__(self, outboxes: Iterable[Outbox], sender: Sender, checkpoint: Checkpoint, progress: Progress,
                 max_in_flight: int, retry_seconds: float, reload_map: MapLoader | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.outboxes = {outbox.stream_name: outbox for outbox in outboxes}
        self.sender = sender
        self.pressure = Pressure(max_in_flight, clock)
        self._checkpoint = checkpoint
        self._progress = progress
        self._retry_seconds = retry_seconds
        self._reload_map = reload_map
        self._clock = clock
        self._verify_at = dict.fromkeys(self.outboxes, 0.0)
        self._reloaded_at = dict.fromkeys(self.outboxes, float("-inf"))
        self._stale: set[str] = set()
        #: Aggregates accepted on another shard than predicted, waiting for the stream's new map (see _check_shards).
        self._held: list[tuple[Outbox, Item, str]] = []
        self.aborted = False

    @property
    def in_flight(self) -> int:
        return self.sender.in_flight

    @property
    def limit(self) -> int:
        """Calls that may be in flight now."""
        return self.pressure.limit

    @property
    def queued_bytes(self) -> int:
        """Bytes of the entries waiting to be sent (not those in flight)."""
        return sum(outbox.queued_bytes for outbox in self.outboxes.values())

    @property
    def idle(self) -> bool:
        """Nothing waits and nothing is in flight: every batch put in was acknowledged."""
        return not self.sender.in_flight and not any(outbox.waiting for outbox in self.outboxes.values())

    def put(self, batch: Batch) -> None:
        """Queue a closed batch and send what may be sent now."""
        outbox = self.outboxes[batch.stream_name]
        outbox.put(batch)
        self._send(outbox, self._clock())

    def pump(self) -> None:
        """Send every call that is worth making now, as long as calls may be in flight."""
        now = self._clock()
        for outbox in self.outboxes.values():
            if not self._send(outbox, now):
                return

    def _send(self, outbox: Outbox, now: float) -> bool:
        """Send this stream's calls worth making now; False once no more calls may be in flight."""
        sender, pressure = self.sender, self.pressure
        while not self.aborted:
            if sender.in_flight >= pressure.limit:
                return False
            call = outbox.compose(now)
            if call is None:
                return True
            if outbox.packer is not None or (outbox.paced and len(outbox.shards) > 1
                                             and now >= self._verify_at[outbox.stream_name]):
                self._verify_at[outbox.stream_name] = now + VERIFY_INTERVAL_SECONDS
                call.verify = True
            sender.submit(call)
        return False

    def next_time(self) -> float | None:
        """When waiting entries may next be sent without anything else happening (None: only completions or new
        batches can change that)."""
        if self.aborted or self.sender.in_flight >= self.pressure.limit:
            return None  # no call may start before one completes: asking every shard (hundreds) would be wasted
        times = [time for outbox in self.outboxes.values() if (time := outbox.next_time(self._clock())) is not None]
        return min(times, default=None)

    def abort(self) -> None:
        """Send nothing more: calls in flight finish; entries waiting are dropped with the sync."""
        self.aborted = True

    def collect(self, raise_errors: bool = True) -> None:
        """Settle every completed call: acknowledge the batches it completed, queue again what it did not get
        written; then raise the first failure that ends the sync, if any.

        A SIGTERM waits for the end (:func:`~destination_kinesis.sigterm.deferred`): completions taken off the
        sender's queue and not settled would leave the states they cover unemitted.
        """
        failure: BaseException | None = None
        with deferred():
            now = self._clock()
            for call, future in self.sender.completions():
                try:
                    self._settle(call, future, now)
                except Exception as exc:
                    if failure is None:
                        failure = exc
            if failure is not None and raise_errors:
                raise failure  # in the block: a SIGTERM meanwhile is raised later, with this failure as its context
        if self.aborted:
            return
        for name in self._stale:  # outside the block: loading a map is a call to Kinesis, bounded by its timeouts
            self._reload(self.outboxes[name], now, force=any(held[0].stream_name == name for held in self._held))
        self._stale.clear()
        if self._held:
            with deferred():
                self._settle_held(now)
        self.pump()

    # ---------------------------------------------------------------- outcomes

    def _settle(self, call: Call, future: Future[Results], now: float) -> None:
        outbox = self.outboxes[call.stream_name]
        self._progress.called(call.stream_name)
        error = future.exception()
        if error is None:
            results = future.result()
            outbox.stalled = 0
            if results is None:
                for part in call.parts:
                    part.queue.stalled = 0
                self._accept(outbox, call.parts)
                self.pressure.succeeded()
            else:
                self._read_results(outbox, call, results, now)
        elif isinstance(error, Exception) and aws_errors.is_retryable(error):
            self._retry_call(outbox, call, error, now)
        else:
            raise aws_errors.traced(error, f"write to Kinesis stream '{call.stream_name}'") from None

    def _accept(self, outbox: Outbox, parts: list[Part]) -> None:
        """Every entry of these parts was accepted."""
        done = []
        records = entries = size = units = 0
        for part in parts:
            chunk = part.chunk
            count = len(chunk.entries)
            entries += count
            size += chunk.size
            units += count if max(chunk.sizes, default=0) <= PUT_PAYLOAD_UNIT_BYTES else sum(
                put_payload_units(entry_size) for entry_size in chunk.sizes)
            if part.items is None:
                part.queue.accepted += count
                records += count
                chunk.batch.pending -= count
                if not chunk.batch.pending:
                    done.append(chunk.batch)
                continue
            for item in part.items:
                part.queue.accepted += item.records
                records += item.records
                item.batch.pending -= 1
                if not item.batch.pending:
                    done.append(item.batch)
                outbox.accepted_item(item)
        self._progress.accepted(outbox.stream_name, records, size, entries, units)
        for batch in done:
            self._checkpoint.ack(batch.runs)

    def _read_results(self, outbox: Outbox, call: Call, results: list[dict[str, Any]], now: float) -> None:
        """Accept the entries with a sequence number and queue the others again (the per-entry results, not
        FailedRecordCount, decide: some endpoints report the count wrong)."""
        if len(results) != call.records:
            raise system_error(
                f"Kinesis answered a PutRecords of {call.records} records with {len(results)} results; "
                "the connector cannot tell which records were written.")
        accepted: list[Part] = []
        codes: Counter[str] = Counter()
        last_message = ""
        throttled_any = False
        position = 0
        for part in call.parts:
            chunk, queue = part.chunk, part.queue
            part_results = results[position:position + len(chunk.entries)]
            position += len(chunk.entries)
            failed = [i for i, result in enumerate(part_results) if not result.get("SequenceNumber")]
            held = self._check_shards(outbox, part, part_results) if call.verify else []
            if not failed:
                queue.stalled = 0
                accepted.append(_pick(part, held, keep=False) if held else part)
                continue
            part_codes = Counter(str(part_results[i].get("ErrorCode") or "NoSequenceNumber") for i in failed)
            codes += part_codes
            last_message = str(part_results[failed[-1]].get("ErrorMessage") or last_message)
            throttled = sum(part_codes[code] for code in aws_errors.THROTTLING_CODES)
            queue.throttled += throttled
            self._progress.resent(outbox.stream_name, len(failed), throttled)
            if throttled:
                throttled_any = True
                outbox.throttled(queue, now, throttled / len(chunk.entries))
            if len(failed) < len(chunk.entries):
                accepted.append(_pick(part, failed + held, keep=False))
                queue.stalled = 1
            else:
                queue.stalled += 1
            queue.not_before = now + backoff(queue.stalled)
            if self._again(outbox, _pick(part, failed, keep=True), now):
                summary = ", ".join(f"{code} x{count}" for code, count in codes.most_common())
                raise transient_error(
                    f"Kinesis stream '{outbox.stream_name}' did not accept {len(failed)} records after "
                    f"{_attempts(part)} attempts over up to {self._retry_seconds:g} s ({summary}; last: "
                    f"{last_message}). If it is throttling, add shards or use on-demand capacity, or lower "
                    "shardWriteShare when other producers write to the stream.",
                    internal=f"{sum(codes.values())} entries failed: {dict(codes)}")
        self._accept(outbox, accepted)
        if throttled_any and not outbox.paced:
            self.pressure.throttled(outbox.stream_name)
        elif not throttled_any:
            self.pressure.succeeded()

    def _retry_call(self, outbox: Outbox, call: Call, error: Exception, now: float) -> None:
        """The whole call failed in a way a later attempt may not: queue every entry again, back off the stream."""
        if aws_errors.error_code(error) in aws_errors.THROTTLING_CODES:
            self.pressure.throttled(call.stream_name)
            for part in call.parts:
                part.queue.throttled += len(part.chunk.entries)
        self._progress.resent(call.stream_name, call.records,
                              call.records if aws_errors.error_code(error) in aws_errors.THROTTLING_CODES else 0)
        outbox.stalled += 1
        outbox.not_before = now + backoff(outbox.stalled)
        for part in reversed(call.parts):  # each goes to the head of its queue: the last first
            if self._again(outbox, part, now):
                raise transient_error(
                    f"Writing to Kinesis stream '{call.stream_name}' kept failing for up to "
                    f"{self._retry_seconds:g} s: {aws_errors.describe(error)}", internal=repr(error)) from None

    def _again(self, outbox: Outbox, part: Part, now: float) -> bool:
        """Queue the entries of ``part``, which Kinesis did not accept, to be sent again; return True instead when
        some of them have been failing for the whole retry time."""
        failing: list[Chunk | Item] = [part.chunk] if part.items is None else list(part.items)
        for failed in failing:
            if failed.failed_since is None:
                failed.failed_since = now
            if now - failed.failed_since >= self._retry_seconds:
                return True
        if part.items is None:
            outbox.requeue(part.chunk, part.free)
        else:
            for item in reversed(part.items):
                outbox.requeue_item(item)
        return False

    # ---------------------------------------------------------------- the shard map

    def _check_shards(self, outbox: Outbox, part: Part, results: list[dict[str, Any]]) -> list[int]:
        """Compare the shards the accepted entries landed on with the shard the map predicted; a mismatch makes the
        stream load its map again. Returns the positions of aggregates whose user records' keys decide their shard
        that landed elsewhere: they are settled once the new map says whether every user record belongs where the
        aggregate landed (:meth:`_settle_held`); the part's other entries are then the accepted ones, the failed
        ones those with a sequence number that are not held."""
        expected = part.queue.shard.id if part.queue.shard is not None else None
        if expected is None:
            return []
        held = []
        for position, result in enumerate(results):
            landed = result.get("ShardId")
            if landed is None or not result.get("SequenceNumber") or landed == expected:
                continue
            self._stale.add(outbox.stream_name)
            item = part.items[position] if part.items is not None else None
            if item is not None and item.packed is not None and item.packed.digests is not None:
                self._held.append((outbox, item, str(landed)))
                held.append(position)
        return held

    def _settle_held(self, now: float) -> None:
        """Aggregates that landed on another shard than predicted, now that the maps are new: accepted when every
        user record belongs to the shard it landed on, else packed again and sent (see :meth:`Outbox.repack`)."""
        held, self._held = self._held, []
        for outbox, item, landed in held:
            shard = next((queue.shard for queue in outbox.all_queues() if queue.shard is not None
                          and queue.shard.id == landed), None)
            assert item.packed is not None
            if shard is not None and item.packed.within(shard):
                chunk = Chunk(item.batch, [item.entry], [item.size], None, item.size)
                self._accept(outbox, [Part(chunk, outbox.shards[0], item.close, False, [item])])
            elif item.failed_since is not None and now - item.failed_since >= self._retry_seconds:
                raise transient_error(
                    f"Kinesis stream '{outbox.stream_name}' kept putting aggregated records on other shards than "
                    f"their records belong to for {self._retry_seconds:g} s (last: {landed}).")
            else:
                item.failed_since = item.failed_since or now  # bounded by the retry time, like any resend
                self._progress.resent(outbox.stream_name, item.records, 0)
                outbox.repack(item)

    def _reload(self, outbox: Outbox, now: float, force: bool = False) -> None:
        """Load the stream's shard map again (at most every :data:`RELOAD_INTERVAL_SECONDS`, unless ``force``)."""
        name = outbox.stream_name
        if self._reload_map is None or (now - self._reloaded_at[name] < RELOAD_INTERVAL_SECONDS and not force):
            return
        self._reloaded_at[name] = now
        before = outbox.map
        shard_map = self._reload_map(name)
        if shard_map is None:
            return
        old = set() if before is None else {shard.id for shard in before.shards}
        new = {shard.id for shard in shard_map.shards}
        if old == new:
            logger.info("Kinesis stream '%s': PutRecords results named other shards than predicted, but its %d open "
                        "shards are as before.", name, len(new))
            return
        logger.info("Kinesis stream '%s' was resharded: %d open shards now (%s new, %s closed).", name, len(new),
                    ", ".join(sorted(new - old)) or "none", ", ".join(sorted(old - new)) or "none")
        outbox.set_map(shard_map, now)


def _pick(part: Part, positions: list[int], keep: bool) -> Part:
    """The entries of ``part`` at ``positions`` (``keep``), or all the others, as a part of their own whose chunk
    remembers when the chunk first failed and how often it was sent."""
    chunk = part.chunk
    chosen = set(positions)
    indexes = [i for i in range(len(chunk.entries)) if (i in chosen) == keep]
    sizes = [chunk.sizes[i] for i in indexes]
    picked = Chunk(chunk.batch, [chunk.entries[i] for i in indexes], sizes,
                   None if chunk.keys is None else [chunk.keys[i] for i in indexes], None, chunk.failed_since,
                   chunk.attempts)
    items = None if part.items is None else [part.items[i] for i in indexes]
    return Part(picked, part.queue, part.close, part.free, items)


def _attempts(part: Part) -> int:
    """How many calls the entries of ``part`` have been in (the most of any of them)."""
    return part.chunk.attempts if part.items is None else max(item.attempts for item in part.items)

