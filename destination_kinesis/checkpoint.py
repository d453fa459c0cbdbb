"""The commit rule: release each state once every earlier record in its scope is accepted by Kinesis.

Records are counted in cells: one cell per Airbyte stream and *epoch*, the number of states that arrived before the
record. A state that arrives as the k-th is covered once no stream in its scope has an unacknowledged record of
epoch ≤ k. Acknowledgements may come in any order (concurrent requests, resent entries); states are released in
the order they arrived, each with the number of records its scope received since the scope's previous state, and
the number of those that were rejected (not written, see :meth:`Checkpoint.reject`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from destination_kinesis.messages import ALL_STREAMS, State
from destination_kinesis.naming import StreamKey


class Cell:
    """Records of one stream and epoch that Kinesis has not acknowledged yet."""

    __slots__ = ("epoch", "unacked")

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.unacked = 0


class Lane:
    """One Airbyte stream's unacknowledged records, oldest epoch first."""

    __slots__ = ("cells", "open", "since_state", "rejected_since_state")

    def __init__(self) -> None:
        self.cells: deque[Cell] = deque()
        self.open: Cell | None = None  # the cell of the current epoch, while it is in ``cells``
        self.since_state = 0  # records received since the last state that covered this stream
        self.rejected_since_state = 0  # of those, the records rejected instead of written

    def oldest_unacked_epoch(self) -> int | None:
        cells = self.cells
        while cells and cells[0].unacked == 0:
            if cells.popleft() is self.open:
                self.open = None
        return cells[0].epoch if cells else None


class Checkpoint:
    """Counts records in and acknowledgements back, and emits covered states through ``emit``: the lines of the
    states that became covered together, in arrival order, in one call (one write, one flush)."""

    def __init__(self, streams: Iterable[StreamKey], emit: Callable[[list[bytes]], None]):
        self._lanes = {key: Lane() for key in streams}
        self._emit = emit
        self._epoch = 0
        self._pending: deque[tuple[int, State, tuple[Lane, ...], int, int]] = deque()
        self.emitted = 0

    def lane(self, key: StreamKey) -> Lane:
        """The lane of a stream in the catalog (KeyError for any other)."""
        return self._lanes[key]

    def count(self, lane: Lane, records: int) -> Cell:
        """Count ``records`` records of ``lane`` in; acknowledge them with their cell (:meth:`ack`) once Kinesis has
        accepted them."""
        cell = lane.open
        if cell is None or cell.epoch != self._epoch:
            cell = lane.open = Cell(self._epoch)
            lane.cells.append(cell)
        cell.unacked += records
        lane.since_state += records
        return cell

    def reject(self, lane: Lane) -> None:
        """Count a record of ``lane`` in that will not be written (skipped): the next state of its scope counts it
        in ``recordCount``, as the source did, and in ``rejectedRecordCount``; nothing waits for it."""
        lane.since_state += 1
        lane.rejected_since_state += 1

    def ack(self, runs: Iterable[tuple[Cell, int]]) -> None:
        """Kinesis accepted these records: each run is a cell from :meth:`count` and how many of its records."""
        for cell, records in runs:
            cell.unacked -= records
        self._release()

    def state(self, state: State) -> None:
        """A state arrived: hold it until it is covered, then emit it (at once if it already is)."""
        if state.scope is ALL_STREAMS:
            lanes = tuple(self._lanes.values())
        else:
            lane = self._lanes.get(state.scope)
            lanes = (lane,) if lane is not None else ()  # a stream without records in this sync: nothing to wait for
        count = rejected = 0
        for lane in lanes:
            count += lane.since_state
            rejected += lane.rejected_since_state
            lane.since_state = lane.rejected_since_state = 0
        self._pending.append((self._epoch, state, lanes, count, rejected))
        self._epoch += 1
        if len(self._pending) == 1:  # behind a state still waiting it waits too: states go out in arrival order
            self._release()

    @property
    def pending_states(self) -> int:
        """States received but not yet emitted."""
        return len(self._pending)

    def _release(self) -> None:
        pending = self._pending
        released = []
        while pending:
            epoch, state, lanes, count, rejected = pending[0]
            if not _covered(epoch, lanes):
                break
            pending.popleft()
            released.append(state.render(count, rejected))
        if released:
            self._emit(released)
            self.emitted += len(released)


def _covered(epoch: int, lanes: tuple[Lane, ...]) -> bool:
    """Whether a state of ``epoch`` is covered: no record of that epoch or earlier is unacknowledged in ``lanes``."""
    for lane in lanes:
        oldest = lane.oldest_unacked_epoch()
        if oldest is not None and oldest <= epoch:
            return False
    return True
