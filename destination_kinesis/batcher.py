"""Per Kinesis stream buffers that become PutRecords batches: by record count, by request bytes, by linger time, and
by a cap on the bytes held across all streams, so memory does not grow with the number of streams."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from destination_kinesis.checkpoint import Cell
from destination_kinesis.limits import MAX_REQUEST_BYTES

DEFAULT_LINGER_SECONDS = 1.0
#: Bytes held in open buffers across all streams before the fullest is sent early.
DEFAULT_MAX_BUFFERED_BYTES = 2 * MAX_REQUEST_BYTES


@dataclass(slots=True)
class Batch:
    """Records bound for one Kinesis stream, in input order: at most the buffer size and the request byte limit.

    ``entries`` are PutRecords entries as JSON text (see :func:`destination_kinesis.putrecords.entry`); ``cells[i]``
    is the checkpoint cell of ``entries[i]``; ``size`` counts data plus partition keys, as Kinesis does.
    """

    stream_name: str
    entries: list[bytes] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    size: int = 0
    born: float = 0.0


class Batcher:
    """Collects encoded records per Kinesis stream and hands out full or lingering batches."""

    def __init__(self, max_records: int, linger_seconds: float = DEFAULT_LINGER_SECONDS,
                 max_bytes: int = MAX_REQUEST_BYTES, max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES):
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._max_buffered = max_buffered_bytes
        self._linger = linger_seconds
        self._open: dict[str, Batch] = {}
        self._buffered = 0  # sizes of the open batches, summed

    def add(self, stream_name: str, entry: bytes, size: int, cell: Cell) -> tuple[Batch, ...]:
        """Add one record (``size`` = its data plus partition key bytes); return the batches that became ready.

        A record that would push its stream's buffer past the byte limit closes that buffer first; a record that
        takes the bytes held across streams past their cap closes the fullest buffer.
        """
        closed: tuple[Batch, ...] = ()
        batch = self._open.get(stream_name)
        if batch is not None and batch.size + size > self._max_bytes:
            closed = (self._close(stream_name),)
            batch = None
        if batch is None:
            batch = self._open[stream_name] = Batch(stream_name, born=time.monotonic())
        batch.entries.append(entry)
        batch.cells.append(cell)
        batch.size += size
        self._buffered += size
        if len(batch.entries) >= self._max_records:
            closed += (self._close(stream_name),)
        if self._buffered > self._max_buffered:
            closed += (self._close(max(self._open, key=lambda name: self._open[name].size)),)
        return closed

    def _close(self, stream_name: str) -> Batch:
        batch = self._open.pop(stream_name)
        self._buffered -= batch.size
        return batch

    def expired(self, now: float) -> list[Batch]:
        """Remove and return the batches that have waited the linger time."""
        due = [name for name, batch in self._open.items() if now - batch.born >= self._linger]
        return [self._close(name) for name in due]

    def drain(self) -> list[Batch]:
        """Remove and return every open batch (end of input)."""
        batches = list(self._open.values())
        self._open.clear()
        self._buffered = 0
        return batches

    def seconds_to_next_linger(self, now: float) -> float | None:
        """Seconds until the oldest open batch is due, or None when nothing is open."""
        if not self._open:
            return None
        oldest = min(batch.born for batch in self._open.values())
        return max(0.0, oldest + self._linger - now)
