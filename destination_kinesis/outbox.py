"""The entries of one Kinesis stream waiting to be sent, per shard, and the PutRecords calls made of them within each
shard's budget.

Closed batches come in (:meth:`Outbox.put`); :meth:`Outbox.compose` makes the next call of at most ``max_records``
entries and ``max_bytes`` bytes, taking from each shard no more than its :class:`~destination_kinesis.pacing.Budget`
allows, so a shard out of budget holds back only its own entries. Two kinds of entries wait here:

- *keyed* entries (a partition key from the record: ``primary_key`` or ``fields``) can go only to the shard their key
  hashes to, and wait in that shard's queue, in input order;
- *free* entries (the random ``_airbyte_ab_id`` key) may go to any shard: each call sends them to shards with room,
  naming the shard by the entry's ``ExplicitHashKey`` (the shard's first hash key), so random keys fill every shard
  evenly and no MD5 is computed for them.

Entries are PutRecords entries as JSON text without their closing brace (see
:func:`~destination_kinesis.putrecords.open_entry`): a call closes each with ``}``, or with its explicit hash key and
``}``, when it joins them. Without a shard map (the credentials may not list shards) a stream has one unpaced queue and
every entry is free and sent as it is, as before pacing existed.

A call is made when it is full, when it takes every entry waiting, or when a shard it takes from had a rested budget
(waiting longer would not let it send more); otherwise entries wait for budget, and :meth:`Outbox.next_time` says when
to look again. Entries a call did not get written come back (:meth:`Outbox.requeue`) at the head of their queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING

from destination_kinesis.pacing import Budget, ShardLimits
from destination_kinesis.packing import Aggregated, Packed, Packer
from destination_kinesis.putrecords import closing
from destination_kinesis.shardmap import Shard, ShardMap

if TYPE_CHECKING:
    from destination_kinesis.batcher import Batch

#: The closing of an entry sent as it is: Kinesis hashes its partition key.
PLAIN_CLOSE = closing()


class Chunk:
    """Consecutive entries of one batch waiting in one queue, in input order: the entries, their sizes (data plus
    partition key, as Kinesis counts), their partition keys (keyed entries; None for free ones), and when they first
    failed (None until they do) with how many calls they have been in."""

    __slots__ = ("batch", "entries", "sizes", "keys", "size", "failed_since", "attempts")

    def __init__(self, batch: Batch, entries: list[bytes], sizes: list[int], keys: list[bytes] | None,
                 size: int | None = None, failed_since: float | None = None, attempts: int = 0):
        self.batch = batch
        self.entries = entries
        self.sizes = sizes
        self.keys = keys
        self.size = sum(sizes) if size is None else size
        self.failed_since = failed_since
        self.attempts = attempts

    def split(self, count: int, size: int) -> Chunk:
        """Take the first ``count`` entries (``size`` bytes) off into a chunk of their own; this one keeps the rest."""
        head = Chunk(self.batch, self.entries[:count], self.sizes[:count],
                     None if self.keys is None else self.keys[:count], size, self.failed_since, self.attempts)
        del self.entries[:count], self.sizes[:count]
        if self.keys is not None:
            del self.keys[:count]
        self.size -= size
        return head


class Item:
    """An entry that waits and goes on its own: a record of a key whose records go in input order (``ordering:
    per_key``, then ``ordered``), or a Kinesis record packed by :mod:`~destination_kinesis.packing` (``packed``
    holds its user records when it is an aggregate). Its batch, entry (open, unless ``close`` is empty: packed ones
    come closed), size, key (its partition key; for packed ones in order, the id of the shard it was made for, so
    that a shard has one of them in flight at a time), how many user records it holds, the hash key that places it
    (None: its key's MD5), when it first failed and how many calls it has been in."""

    __slots__ = ("batch", "entry", "size", "key", "records", "target", "packed", "close", "ordered",
                 "failed_since", "attempts")

    def __init__(self, batch: Batch, entry: bytes, size: int, key: bytes, ordered: bool):
        self.batch = batch
        self.entry = entry
        self.size = size
        self.key = key
        self.ordered = ordered
        self.records = 1
        self.target: int | None = None
        self.packed: Packed | None = None
        self.close = PLAIN_CLOSE
        self.failed_since: float | None = None
        self.attempts = 0

    @classmethod
    def of(cls, batch: Batch, aggregated: Aggregated, ordered: bool) -> Item:
        """The item of a Kinesis record :mod:`~destination_kinesis.packing` made (its entry comes closed)."""
        item = cls(batch, aggregated.entry, aggregated.size, aggregated.shard.id.encode() if ordered else b"",
                   ordered)
        item.records, item.target, item.packed, item.close = (aggregated.records, aggregated.target,
                                                              aggregated.packed, b"")
        return item


class ShardQueue:
    """One shard of the stream: its budget, the keyed entries waiting for it (in chunks, and the keys of ordered ones
    that may be sent now), when it may be sent to again after a failure, and what it took."""

    __slots__ = ("shard", "budget", "chunks", "items", "ready", "queued", "close", "not_before", "stalled", "routed",
                 "accepted", "throttled")

    def __init__(self, shard: Shard | None, budget: Budget | None, close: bytes):
        self.shard = shard
        self.budget = budget  # None: unpaced
        self.chunks: deque[Chunk] = deque()
        self.items: deque[Item] = deque()  # packed Kinesis records for this shard, not in order per key
        #: Keys of ordered entries whose next entry may go now (none of theirs in flight), in the order they became so.
        self.ready: dict[bytes, None] = {}
        self.queued = 0  # entries waiting for this shard: in chunks, and ordered ones
        self.close = close  # how a free entry sent to this shard ends
        self.not_before = 0.0  # after a failure, no call to this shard before then
        self.stalled = 0  # failed calls in a row, for the backoff
        self.routed = 0  # entries that came to this shard (resent ones counted once)
        self.accepted = 0
        self.throttled = 0

    @property
    def name(self) -> str:
        return self.shard.id if self.shard is not None else "all shards"


class Part:
    """Entries of one call that go to one shard (or, unpaced, wherever their keys hash to): a chunk of one batch, or
    ordered entries (``items``, one per key, of any batches; then ``chunk`` holds their entries, sizes and keys)."""

    __slots__ = ("chunk", "queue", "close", "free", "items")

    def __init__(self, chunk: Chunk, queue: ShardQueue, close: bytes, free: bool,
                 items: list[Item] | None = None):
        self.chunk = chunk
        self.queue = queue
        self.close = close
        self.free = free
        self.items = items

    def json(self) -> bytes:
        """The entries as the elements of the Records array, closed."""
        close = self.close
        return (close + b",").join(self.chunk.entries) + close


class Call:
    """One PutRecords request in the making or in flight: its parts, entries and bytes; ``verify`` asks for every
    entry's result so the shards it landed on can be compared with the map."""

    __slots__ = ("stream_name", "parts", "records", "size", "verify")

    def __init__(self, stream_name: str, parts: list[Part], records: int, size: int, verify: bool = False):
        self.stream_name = stream_name
        self.parts = parts
        self.records = records
        self.size = size
        self.verify = verify

    def records_json(self) -> bytes:
        """The content of the request's Records array."""
        return b",".join(part.json() for part in self.parts)


class Outbox:
    """The entries of one Kinesis stream not yet accepted and not in flight; see the module's docstring."""

    def __init__(self, stream_name: str, shard_map: ShardMap | None, limits: ShardLimits, max_records: int,
                 max_bytes: int, now: float, packer: Packer | None = None):
        self.stream_name = stream_name
        self.packer = packer  # aggregation kpl (with a shard map only)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._limits = limits
        self.free: deque[Chunk] = deque()
        self.free_count = 0
        self.queued_bytes = 0
        self.not_before = 0.0  # after a whole-call failure, no call before then
        self.stalled = 0
        #: What each shard took, by shard id, across map reloads (for the summary).
        self.retired: list[ShardQueue] = []
        self.map: ShardMap | None = None
        self.shards: list[ShardQueue] = []
        self._backlog: dict[ShardQueue, None] = {}  # shard queues holding keyed entries, in insertion order
        self._ordered: dict[bytes, deque[Item]] = {}  # the waiting ordered entries of each key, in input order
        self.busy: set[bytes] = set()  # keys with an ordered entry in flight
        self.retrying: set[bytes] = set()  # keys whose next ordered entry was sent before and not accepted
        self._rotation: deque[ShardQueue] = deque()
        self._draining: set[bytes] = set()  # keys of packed records in order still in flight to shards now closed
        self.set_map(shard_map, now)

    @property
    def paced(self) -> bool:
        return self.map is not None

    def set_map(self, shard_map: ShardMap | None, now: float) -> None:
        """Use ``shard_map`` (None: unpaced) from now on: shards still open keep their queue and budget, new ones
        get fresh ones, and keyed entries waiting are sorted into the queues of the shards their keys now hash to."""
        old = {queue.shard: queue for queue in self.shards if queue.shard is not None}
        waiting = [chunk for queue in self.shards for chunk in queue.chunks]
        items = [item for queue in self.shards for item in queue.items]
        if shard_map is None:
            queues = [ShardQueue(None, None, PLAIN_CLOSE)]
        else:
            queues = [old.pop(shard) if shard in old else self._new_queue(shard, len(shard_map), now)
                      for shard in shard_map.shards]
        self.retired.extend(old.values())
        self.map = shard_map
        self.shards = queues
        self._rotation = deque(queues)
        self._backlog.clear()
        for queue in queues:
            queue.chunks.clear()
            queue.items.clear()
            queue.ready.clear()
            queue.queued = 0
        for chunk in waiting:
            self._sort(chunk, head=False)
        for item in self._repacked(items):
            self._enqueue(item, head=False, first=False)
        ordered, self._ordered = self._ordered, {}
        if self.packer is not None:
            # Packed records in order are keyed by the id of their shard: those in flight to shards now closed hold
            # back every other packed record until they are settled, so that each key stays in order (see
            # requeue_item, which packs such a record again for the new shards, ahead of the rest).
            open_ids = {queue.shard.id.encode() for queue in queues if queue.shard is not None}
            self._draining |= self.busy - open_ids
        for waiting_items in ordered.values():
            for item in self._repacked(waiting_items):
                self._enqueue(item, head=False, first=False)

    def _new_queue(self, shard: Shard, shards: int, now: float) -> ShardQueue:
        # Free entries sent to the only shard of a stream need no explicit hash key: every key goes there.
        close = PLAIN_CLOSE if shards == 1 else closing(shard.explicit_hash_key)
        return ShardQueue(shard, Budget(self._limits, now), close)

    # ---------------------------------------------------------------- in

    def put(self, batch: Batch) -> None:
        """Queue a closed batch's entries."""
        if self.packer is not None and self.map is not None and batch.packing:
            self._put_packed(batch)
            return
        self.queued_bytes += batch.size
        if batch.ordered and batch.keys is not None:
            for entry, size, key in zip(batch.entries, batch.sizes, batch.keys, strict=True):
                self._enqueue(Item(batch, entry, size, key, ordered=True), head=False)
            return
        chunk = Chunk(batch, batch.entries, batch.sizes, batch.keys, batch.size)
        if batch.keys is None or self.map is None:
            chunk.keys = None
            self.free.append(chunk)
            self.free_count += len(chunk.entries)
        else:
            self._sort(chunk, head=False)

    def requeue(self, chunk: Chunk, free: bool) -> None:
        """Entries sent but not accepted, to be sent again before the entries that came after them."""
        self.queued_bytes += chunk.size
        if free or chunk.keys is None or self.map is None:
            self.free.appendleft(chunk)
            self.free_count += len(chunk.entries)
        else:
            self._sort(chunk, head=True)

    def _put_packed(self, batch: Batch) -> None:
        """Pack an aggregating batch's records (see :mod:`~destination_kinesis.packing`) and queue the Kinesis
        records made; the batch then waits for Kinesis records, not for its user records one by one."""
        assert self.packer is not None and self.map is not None and batch.keys is not None
        made = self.packer.pack(batch.keys, batch.entries, batch.random, self.map, self._next_shard)
        batch.pending = len(made)
        for aggregated in made:
            item = Item.of(batch, aggregated, batch.ordered)
            self.queued_bytes += item.size
            self._enqueue(item, head=False)

    def _next_shard(self) -> Shard:
        """The shard the next aggregate of random keys is for: the shards in turn."""
        queue = self._rotation[0]
        self._rotation.rotate(-1)
        assert queue.shard is not None
        return queue.shard

    def _repacked(self, items: Iterable[Item]) -> list[Item]:
        """These items for the current map: aggregates whose user records no longer all belong to the shard their
        target is in are packed again (an aggregate of random keys always still fits: its records carry its explicit
        hash key); the others as they are."""
        result: list[Item] = []
        for item in items:
            if item.packed is None or self.packer is None or self.map is None:
                result.append(item)
                continue
            queue = self._queue_of(item)
            if not item.ordered and queue.shard is not None and item.packed.within(queue.shard):
                result.append(item)
            else:  # in order, an aggregate keyed by a shard id goes to its new shard's key: packed again
                result += self._pack_again(item)
        return result

    def _pack_again(self, item: Item) -> list[Item]:
        """The user records of an aggregate packed anew for the current map (its batch then waits for those)."""
        assert item.packed is not None and self.packer is not None and self.map is not None
        packed = item.packed
        made = self.packer.pack(packed.keys, packed.datas, packed.digests is None, self.map, self._next_shard)
        item.batch.pending += len(made) - 1
        items = []
        for aggregated in made:
            new = Item.of(item.batch, aggregated, item.ordered)
            new.failed_since, new.attempts = item.failed_since, item.attempts
            items.append(new)
        return items

    def repack(self, item: Item) -> None:
        """An aggregate Kinesis accepted on another shard than it was made for, whose user records do not all belong
        there: the KCL drops it, so its user records are packed again and sent (readers that do not filter see them
        twice)."""
        self.accepted_item(item)
        for new in reversed(self._pack_again(item)):
            self.queued_bytes += new.size
            self._enqueue(new, head=True)

    def requeue_item(self, item: Item) -> None:
        """An item sent but not accepted: it goes again before every later item of its key (or of its shard)."""
        if item.ordered:
            self.busy.discard(item.key)
            self.retrying.add(item.key)
        if item.ordered and item.key in self._draining:
            self._draining.discard(item.key)
            again = self._pack_again(item)
        else:
            again = [item]
        for new in reversed(again):
            self.queued_bytes += new.size
            self._enqueue(new, head=True)

    def accepted_item(self, item: Item) -> None:
        """Kinesis accepted an item: the next entry of its key may go."""
        if not item.ordered:
            return
        key = item.key
        self.busy.discard(key)
        self.retrying.discard(key)
        self._draining.discard(key)
        items = self._ordered.get(key)
        if items:
            self._queue_of(items[0]).ready[key] = None
        elif items is not None:
            del self._ordered[key]

    def _enqueue(self, item: Item, head: bool, first: bool = True) -> None:
        """Queue an item (at the head: it was sent before); ``first``: it has not been counted for its shard."""
        queue = self._queue_of(item)
        if not item.ordered:
            if head:
                queue.items.appendleft(item)
            else:
                queue.items.append(item)
        else:
            items = self._ordered.get(item.key)
            if items is None:
                items = self._ordered[item.key] = deque()
            if head:
                items.appendleft(item)
            else:
                items.append(item)
            if item.key not in self.busy:
                queue.ready[item.key] = None
        if first and not head:
            queue.routed += item.records
        queue.queued += 1
        self._backlog[queue] = None

    def _queue_of(self, item: Item) -> ShardQueue:
        shard_map = self.map
        if shard_map is None or len(shard_map) == 1:
            return self.shards[0]
        if item.target is not None:
            return self.shards[shard_map.index_of_hash_key(item.target)]
        return self.shards[shard_map.index_of_key(item.key)]

    def _sort(self, chunk: Chunk, head: bool) -> None:
        """Put keyed entries into the queues of their shards (at the head: entries sent before, to go first)."""
        assert chunk.keys is not None and self.map is not None
        shard_map = self.map
        if len(shard_map) == 1:
            self._queue(self.shards[0], chunk, head)
            return
        index_of = shard_map.index_of_key
        groups: dict[int, list[int]] = {}
        for position, key in enumerate(chunk.keys):
            groups.setdefault(index_of(key), []).append(position)
        if len(groups) == 1:
            self._queue(self.shards[next(iter(groups))], chunk, head)
            return
        entries, sizes, keys = chunk.entries, chunk.sizes, chunk.keys
        for index, positions in groups.items():
            part_sizes = [sizes[p] for p in positions]
            self._queue(self.shards[index], Chunk(chunk.batch, [entries[p] for p in positions], part_sizes,
                                                  [keys[p] for p in positions], None, chunk.failed_since,
                                                  chunk.attempts), head)

    def _queue(self, queue: ShardQueue, chunk: Chunk, head: bool) -> None:
        if head:
            queue.chunks.appendleft(chunk)
        else:
            queue.chunks.append(chunk)
        queue.queued += len(chunk.entries)
        if not head:
            queue.routed += len(chunk.entries)
        self._backlog[queue] = None

    # ---------------------------------------------------------------- out

    @property
    def waiting(self) -> int:
        """Entries queued, keyed and free."""
        return self.free_count + sum(queue.queued for queue in self._backlog)

    def busiest_key(self) -> tuple[int, int]:
        """Item entries waiting for the key that has the most, and for all keys together."""
        counts = [len(items) for items in self._ordered.values()]
        return max(counts, default=0), sum(counts)

    def backlogged(self) -> Iterator[ShardQueue]:
        """The shard queues holding keyed entries."""
        return iter(self._backlog)

    def compose(self, now: float) -> Call | None:
        """The next call worth making now, its entries taken out of the queues and their budgets spent; None when
        nothing may be sent now or waiting would make a fuller call (see the module's docstring)."""
        if self.not_before > now or not (self.free_count or self._backlog):
            return None
        plan = _Plan(self.max_records, self.max_bytes)
        sendable = self.free_count  # entries that could go now but for budget and room
        for queue in self._backlog:
            sendable += self._plan_queue(plan, queue, now)
            if plan.full:
                break
        if self.free and not plan.full:
            self._plan_free(plan, now)
        if not plan.takes or not (plan.full or plan.rested or plan.records == sendable):
            return None
        return self._commit(plan)

    def _plan_queue(self, plan: _Plan, queue: ShardQueue, now: float) -> int:
        """Plan what the call may take of one shard's queue: its chunks in order, then its items; return how many
        entries could go now but for budget and room."""
        left = plan.budget(queue, now)
        for chunk in queue.chunks:
            if plan.take(queue, chunk, left, free=False) < len(chunk.entries):
                break
        items = [*queue.items, *(self._ordered[key][0] for key in queue.ready)]
        if self._draining:  # packed records in order wait until those sent to closed shards are settled
            items = [item for item in items if not (item.ordered and item.packed is not None)]
        for item in items:
            if plan.full or not plan.take_item(queue, item, left):
                break
        return sum(len(chunk.entries) for chunk in queue.chunks) + len(items)

    def _plan_free(self, plan: _Plan, now: float) -> None:
        """Plan free entries, in order, to the shards with budget, taking the shards in turn: the one unused longest
        comes first, so with equal rates it is also the one with the most budget."""
        rotation = self._rotation
        chunks = iter(self.free)
        chunk: Chunk | None = next(chunks)
        taken = 0  # entries of ``chunk`` planned already (for an earlier shard)
        for _ in range(len(rotation)):
            queue = rotation[0]
            rotation.rotate(-1)
            left = plan.budget(queue, now)
            while chunk is not None:
                count = plan.take(queue, chunk, left, free=True, skip=taken)
                if count < len(chunk.entries) - taken:
                    taken += count
                    break
                chunk, taken = next(chunks, None), 0
            if chunk is None or plan.full:
                return

    def _commit(self, plan: _Plan) -> Call:
        """Take the planned entries out of their queues (each take is a prefix of its queue's head chunk: the plan
        went through the chunks in order) and spend the shards' budgets."""
        parts: list[Part] = []
        for queue, count, size, free, item in plan.takes:
            if queue.budget is not None:
                queue.budget.spend(count, size)
            if item is not None:
                self._take_item(queue, item, parts)
                continue
            source = self.free if free else queue.chunks
            head = source[0]
            taken = source.popleft() if count == len(head.entries) else head.split(count, size)
            taken.attempts += 1
            if free:
                self.free_count -= count
                if taken.attempts == 1:
                    queue.routed += count
            else:
                queue.queued -= count
                if not queue.queued:
                    del self._backlog[queue]
            parts.append(Part(taken, queue, queue.close if free else PLAIN_CLOSE, free))
        self.queued_bytes -= plan.size
        return Call(self.stream_name, parts, plan.records, plan.size)

    def _take_item(self, queue: ShardQueue, item: Item, parts: list[Part]) -> None:
        """Take an item into the call (into the last part when that holds items of this shard closed alike)."""
        key = item.key
        if item.ordered:
            self._ordered[key].popleft()
            del queue.ready[key]
            self.busy.add(key)
        else:
            queue.items.popleft()
        item.attempts += 1
        queue.queued -= 1
        if not queue.queued:
            del self._backlog[queue]
        last = parts[-1] if parts else None
        if last is None or last.queue is not queue or last.items is None or last.close != item.close:
            last = Part(Chunk(item.batch, [], [], [], 0), queue, item.close, False, [])
            parts.append(last)
        assert last.items is not None and last.chunk.keys is not None
        last.items.append(item)
        last.chunk.entries.append(item.entry)
        last.chunk.sizes.append(item.size)
        last.chunk.keys.append(key)
        last.chunk.size += item.size

    def next_time(self, now: float) -> float | None:
        """When :meth:`compose` may make a call that it would not make now (None: only new entries can)."""
        # Shards with entries that may go (ordered entries whose key has one in flight may not).
        candidates = self.shards if self.free_count else [q for q in self._backlog if q.chunks or q.items or q.ready]
        if not candidates:
            return None
        times = []
        for queue in candidates:
            budget = queue.budget
            rest = 0.0 if budget is None else budget.seconds_to_rest()
            times.append(max(queue.not_before, now + rest))
        return max(self.not_before, min(times))

    def throttled(self, queue: ShardQueue, now: float, share: float) -> None:
        """Kinesis throttled ``share`` of the entries a call sent to this shard."""
        if queue.budget is not None:
            queue.budget.throttled(now, share)

    def all_queues(self) -> list[ShardQueue]:
        """Every shard queue the stream has had this sync: the current ones, then those of shards no longer open."""
        return [*self.shards, *self.retired]


class _Plan:
    """The call being planned: what it takes from which queue, with the budget left of each shard."""

    __slots__ = ("room", "byte_room", "records", "size", "takes", "full", "rested", "_left")

    def __init__(self, max_records: int, max_bytes: int):
        self.room = max_records
        self.byte_room = max_bytes
        self.records = 0
        self.size = 0
        #: queue, entries, bytes, free, and the ordered entry when the take is one
        self.takes: list[tuple[ShardQueue, int, int, bool, Item | None]] = []
        self.full = False  # the call can take no more entries
        self.rested = False  # a shard it looked at had a rested budget: waiting would not add to it
        self._left: dict[ShardQueue, list[float]] = {}  # budget left per shard: records, bytes, rested (1 or 0)

    def budget(self, queue: ShardQueue, now: float) -> list[float]:
        """What is left of the shard's budget for this call (looked at once per call, then counted down)."""
        left = self._left.get(queue)
        if left is None:
            budget = queue.budget
            if queue.not_before > now:
                left = [0.0, 0.0, 0.0]
            elif budget is None:
                left = [float("inf"), float("inf"), 0.0]
            else:
                budget.refill(now)
                rested = budget.rested
                self.rested |= rested
                left = [budget.records, budget.bytes, float(rested)]
            self._left[queue] = left
        return left

    def take(self, queue: ShardQueue, chunk: Chunk, left: list[float], free: bool, skip: int = 0) -> int:
        """Plan as many entries of ``chunk``, from position ``skip`` on, as fit the call and what is ``left`` of the
        shard's budget; return how many. An entry larger than a whole budget goes alone once the budget is rested,
        which then goes below zero and refills before the shard takes more."""
        available = len(chunk.entries) - skip
        count_limit = int(min(self.room, available, left[0]))
        byte_limit = min(self.byte_room, left[1])
        if count_limit <= 0:
            self.full = self.room == 0
            return 0
        if skip == 0 and count_limit == available and chunk.size <= byte_limit:
            count, size = available, chunk.size
        else:
            count, size = _fitting(chunk.sizes, skip, count_limit, byte_limit)
            if count == 0 and left[2] and chunk.sizes[skip] <= self.byte_room:
                count, size = 1, chunk.sizes[skip]
        if count < available and (count == self.room or size + chunk.sizes[skip + count] > self.byte_room):
            self.full = True
        if count:
            self.takes.append((queue, count, size, free, None))
            self.room -= count
            self.byte_room -= size
            self.records += count
            self.size += size
            left[0] -= count
            left[1] -= size
            left[2] = 0.0
            self.full |= self.room == 0
        return count


    def take_item(self, queue: ShardQueue, item: Item, left: list[float]) -> bool:
        """Plan one item if it fits the call and the shard's budget (alone, like any entry larger than a
        whole budget, once the budget is rested); return whether it did."""
        if self.room == 0 or left[0] < 1:
            self.full |= self.room == 0
            return False
        size = item.size
        if size > self.byte_room:
            self.full = True
            return False
        if size > left[1] and not left[2]:
            return False
        self.takes.append((queue, 1, size, False, item))
        self.room -= 1
        self.byte_room -= size
        self.records += 1
        self.size += size
        left[0] -= 1
        left[1] -= size
        left[2] = 0.0
        self.full |= self.room == 0
        return True


def _fitting(sizes: list[int], start: int, count_limit: int, byte_limit: float) -> tuple[int, int]:
    """How many sizes from ``start`` fit within both limits, and their sum."""
    count = size = 0
    for total in accumulate(sizes[start:start + count_limit]):
        if total > byte_limit:
            break
        count += 1
        size = total
    return count, size

