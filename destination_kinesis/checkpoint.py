"""The commit rule: release each state once every earlier record in its scope is accepted by Kinesis.

Each Airbyte stream has a lane. Records go to Kinesis in *runs*: consecutive records of one lane in one batch, opened
with :meth:`Checkpoint.open_run` and counted in later (:meth:`Checkpoint.count`, before any state that follows them).
A run's ``start`` is how many records of all lanes were counted in when it opened, and a state notes how many were
counted in when it arrived: a run opened before the state has counted its first record in by then, so it starts below
that number, and a run opened after it does not. A state is covered once, in each lane of its scope, every run that
starts below its number is accepted. Acknowledgements may come in any order (concurrent requests, resent entries);
states are released in the order they arrived, each with the number of records its scope received since the scope's
previous state, and the number of those that were rejected (not written, see :meth:`Checkpoint.reject`). A run may go
on growing after a state: its later records only delay states that follow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

import msgspec

from destination_kinesis.messages import ALL_STREAMS, State, StreamKey


class Run:
    """Consecutive records of one lane in one batch: how many records were counted in when it opened, and whether
    Kinesis has accepted them all."""

    __slots__ = ("lane", "start", "accepted")

    def __init__(self, lane: Lane, start: int):
        self.lane = lane
        self.start = start
        self.accepted = False


class Lane:
    """One Airbyte stream's records: its runs not yet known to be accepted, and how many were counted in since the
    last state that covered it."""

    __slots__ = ("runs", "since_state", "rejected_since_state")

    def __init__(self) -> None:
        self.runs: deque[Run] = deque()  # in order; accepted ones leave once they reach the front
        self.since_state = 0  # records received since the last state that covered this stream
        self.rejected_since_state = 0  # of those, the records rejected instead of written

    def first_unaccepted(self) -> int | None:
        """The start of the lane's first run not yet accepted (None when all are)."""
        runs = self.runs
        while runs and runs[0].accepted:
            runs.popleft()
        return runs[0].start if runs else None


# gc=False, like State: a waiting state refers to lanes but nothing refers back to it, so it is in no cycle, and
# thousands may wait at once when the source sends a state after each record.
class _Waiting(msgspec.Struct, gc=False):
    """A state not emitted yet: the lanes of its scope, how many records were counted in when it arrived, and its
    counts."""

    state: State
    lanes: tuple[Lane, ...]
    mark: int
    count: int
    rejected: int


class Checkpoint:
    """Counts records in and acknowledgements back, and emits covered states through ``emit``: the lines of the
    states that became covered together, in arrival order, in one call (one write, one flush)."""

    def __init__(self, streams: Iterable[StreamKey], emit: Callable[[list[bytes]], None]):
        self._lanes = {key: Lane() for key in streams}
        # The lanes of each scope; a stream without a lane (no records in this sync) has nothing to wait for.
        self._scopes: dict[StreamKey | None, tuple[Lane, ...]] = {key: (lane,) for key, lane in self._lanes.items()}
        self._scopes[ALL_STREAMS] = tuple(self._lanes.values())
        self._emit = emit
        self._pending: deque[_Waiting] = deque()
        self._counted = 0  # records counted in, of all lanes
        self.emitted = 0

    def lane(self, key: StreamKey) -> Lane:
        """The lane of a stream in the catalog (KeyError for any other)."""
        return self._lanes[key]

    def open_run(self, lane: Lane) -> Run:
        """Start a run of ``lane`` with its next record; :meth:`count` its records in as they are added, and
        :meth:`ack` it once Kinesis has accepted them all. A lane has at most one run open: count the records of one
        run before opening the next."""
        run = Run(lane, self._counted)
        lane.runs.append(run)
        return run

    def count(self, lane: Lane, records: int) -> None:
        """Count ``records`` more records of ``lane``'s open run in."""
        lane.since_state += records
        self._counted += records

    def reject(self, lane: Lane) -> None:
        """Count a record of ``lane`` in that will not be written (skipped): the next state of its scope counts it
        in ``recordCount``, as the source did, and in ``rejectedRecordCount``; nothing waits for it."""
        lane.since_state += 1
        lane.rejected_since_state += 1

    def ack(self, runs: Iterable[Run]) -> None:
        """Kinesis accepted every record of these runs."""
        for run in runs:
            run.accepted = True
        for run in runs:
            run.lane.first_unaccepted()  # drops the accepted runs at the front: memory stays bounded without states
        self._release()

    def state(self, state: State) -> None:
        """A state arrived (every record before it counted in): hold it until it is covered, then emit it (at once
        if it already is)."""
        lanes = self._scopes.get(state.scope, ())
        count = rejected = 0
        for lane in lanes:
            count += lane.since_state
            rejected += lane.rejected_since_state
            lane.since_state = lane.rejected_since_state = 0
        self._pending.append(_Waiting(state, lanes, self._counted, count, rejected))
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
            waiting = pending[0]
            # Covered: in each lane, every run that starts below the number the state noted is accepted.
            mark = waiting.mark
            for lane in waiting.lanes:
                first = lane.first_unaccepted()
                if first is not None and first < mark:
                    break
            else:
                pending.popleft()
                released.append(waiting.state.render(waiting.count, waiting.rejected))
                continue
            break
        if released:
            # Counted first: emit may raise once its lines are out (Interrupted, when a SIGTERM came during the write).
            self.emitted += len(released)
            self._emit(released)

