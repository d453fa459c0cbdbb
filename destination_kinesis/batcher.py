"""Per Kinesis stream buffers that become PutRecords batches: by record count, by request bytes, and by linger time."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from destination_kinesis.checkpoint import Cell
from destination_kinesis.limits import MAX_REQUEST_BYTES

DEFAULT_LINGER_SECONDS = 1.0


@dataclass(slots=True)
class Batch:
    """Records bound for one Kinesis stream, in input order: at most the buffer size and the request byte limit.

    ``entries`` are PutRecords entries; ``cells[i]`` is the checkpoint cell of ``entries[i]``.
    """

    stream_name: str
    entries: list[dict[str, object]] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    size: int = 0
    born: float = 0.0


class Batcher:
    """Collects encoded records per Kinesis stream and hands out full or lingering batches."""

    def __init__(self, max_records: int, linger_seconds: float = DEFAULT_LINGER_SECONDS,
                 max_bytes: int = MAX_REQUEST_BYTES):
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._linger = linger_seconds
        self._open: dict[str, Batch] = {}

    def add(self, stream_name: str, data: bytes, partition_key: str, size: int, cell: Cell) -> tuple[Batch, ...]:
        """Add one record (``size`` = its data plus partition key bytes); return the batches that became ready.

        A record that would push its stream's buffer past the byte limit closes that buffer first.
        """
        closed: tuple[Batch, ...] = ()
        batch = self._open.get(stream_name)
        if batch is not None and batch.size + size > self._max_bytes:
            closed = (self._open.pop(stream_name),)
            batch = None
        if batch is None:
            batch = self._open[stream_name] = Batch(stream_name, born=time.monotonic())
        batch.entries.append({"Data": data, "PartitionKey": partition_key})
        batch.cells.append(cell)
        batch.size += size
        if len(batch.entries) >= self._max_records:
            return closed + (self._open.pop(stream_name),)
        return closed

    def expired(self, now: float) -> list[Batch]:
        """Remove and return the batches that have waited the linger time."""
        due = [name for name, batch in self._open.items() if now - batch.born >= self._linger]
        return [self._open.pop(name) for name in due]

    def drain(self) -> list[Batch]:
        """Remove and return every open batch (end of input)."""
        batches = list(self._open.values())
        self._open.clear()
        return batches

    def seconds_to_next_linger(self, now: float) -> float | None:
        """Seconds until the oldest open batch is due, or None when nothing is open."""
        if not self._open:
            return None
        oldest = min(batch.born for batch in self._open.values())
        return max(0.0, oldest + self._linger - now)
