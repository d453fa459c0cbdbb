"""checkpoint: each state is released once every earlier record in its scope is acknowledged, in arrival order."""

from __future__ import annotations

import json
import random

import pytest

from destination_kinesis.checkpoint import Checkpoint, Run
from destination_kinesis.messages import State, StreamKey
from destination_kinesis.parser import parse_line
from unit_tests.inputs import global_state_line, legacy_state_line, record_count, state_id, stream_state_line

A: StreamKey = (None, "a")
B: StreamKey = ("ns", "b")
C: StreamKey = (None, "c")
NOT_IN_CATALOG: StreamKey = (None, "not_in_catalog")


def _parse_state(line: bytes) -> State:
    parsed = parse_line(line, 1)
    assert isinstance(parsed, State)
    return parsed


def stream_state(key: StreamKey, sid: int) -> State:
    return _parse_state(stream_state_line(key[1], key[0], state_id=sid))


def global_state(sid: int) -> State:
    return _parse_state(global_state_line(state_id=sid))


class Harness:
    """A Checkpoint over streams A, B, C whose emitted states are collected."""

    def __init__(self, streams: tuple[StreamKey, ...] = (A, B, C)):
        self.emitted: list[bytes] = []
        self.checkpoint = Checkpoint(streams, self.emitted.extend)

    def record(self, key: StreamKey) -> Run:
        """One record of ``key`` counted in, in a run of its own."""
        lane = self.checkpoint.lane(key)
        run = self.checkpoint.open_run(lane)
        self.checkpoint.count(lane, 1)
        return run

    def records(self, key: StreamKey, n: int) -> list[Run]:
        return [self.record(key) for _ in range(n)]

    @property
    def ids(self) -> list[int]:
        return [state_id(line) for line in self.emitted]

    @property
    def counts(self) -> list[object]:
        return [record_count(line) for line in self.emitted]


def test_state_is_released_only_after_its_records_are_acked() -> None:
    """A STREAM state waits until each earlier record of its stream is acknowledged, then is emitted once."""
    h = Harness()
    cells = h.records(A, 2)
    h.checkpoint.state(stream_state(A, 1))
    assert h.emitted == [] and h.checkpoint.pending_states == 1
    h.checkpoint.ack(cells[:1])
    assert h.emitted == []
    h.checkpoint.ack(cells[1:])
    assert h.ids == [1] and h.counts == [2]
    assert h.checkpoint.pending_states == 0 and h.checkpoint.emitted == 1


def test_out_of_order_acks_do_not_release_early() -> None:
    """Acknowledging a later batch first releases nothing; the earlier batch's ack then releases both states."""
    h = Harness()
    first = h.records(A, 3)
    h.checkpoint.state(stream_state(A, 1))
    second = h.records(A, 2)
    h.checkpoint.state(stream_state(A, 2))
    h.checkpoint.ack(second)
    assert h.emitted == []
    h.checkpoint.ack(first[1:])
    assert h.emitted == []
    h.checkpoint.ack(first[:1])
    assert h.ids == [1, 2] and h.counts == [3, 2]


def test_records_after_a_state_do_not_hold_it() -> None:
    """Records that arrive after a state are not waited for by it."""
    h = Harness()
    before = h.record(A)
    h.checkpoint.state(stream_state(A, 1))
    h.records(A, 5)  # never acknowledged
    h.checkpoint.ack([before])
    assert h.ids == [1]


def test_stream_state_does_not_wait_for_other_streams() -> None:
    """A STREAM state of B is released while A still has unacknowledged records."""
    h = Harness()
    h.record(A)  # never acknowledged
    b = h.record(B)
    h.checkpoint.state(stream_state(B, 1))
    assert h.emitted == []
    h.checkpoint.ack([b])
    assert h.ids == [1]


def test_release_order_is_arrival_order() -> None:
    """A ready later state waits for an earlier state that is not ready yet, then both go out in arrival order."""
    h = Harness()
    a = h.record(A)
    h.checkpoint.state(stream_state(A, 1))
    b = h.record(B)
    h.checkpoint.state(stream_state(B, 2))
    h.checkpoint.state(stream_state(C, 3))  # no records at all: ready at once
    h.checkpoint.ack([b])
    assert h.emitted == []
    h.checkpoint.ack([a])
    assert h.ids == [1, 2, 3]


@pytest.mark.parametrize("make_state", [global_state, lambda sid: _parse_state(legacy_state_line(state_id=sid))],
                         ids=["GLOBAL", "LEGACY"])
def test_global_and_legacy_states_wait_for_every_stream(make_state) -> None:  # type: ignore[no-untyped-def]
    """GLOBAL and LEGACY states wait for every earlier record of every stream."""
    h = Harness()
    a, b = h.record(A), h.record(B)
    h.checkpoint.state(make_state(1))
    h.checkpoint.ack([b])
    assert h.emitted == []
    h.checkpoint.ack([a])
    assert h.ids == [1] and h.counts == [2]


def test_record_count_per_scope_since_its_previous_state() -> None:
    """recordCount is what the scope received since the scope's previous state; a GLOBAL state resets all streams."""
    h = Harness()

    def send(key: StreamKey, n: int) -> None:
        h.checkpoint.ack(h.records(key, n))

    send(A, 3)
    send(B, 2)
    h.checkpoint.state(stream_state(A, 1))  # A: 3
    send(A, 1)
    send(B, 1)
    h.checkpoint.state(stream_state(B, 2))  # B: 2 + 1
    h.checkpoint.state(global_state(3))  # A: 1 since state 1, B: 0 since state 2
    send(A, 2)
    h.checkpoint.state(stream_state(A, 4))  # A: 2
    send(B, 1)
    send(C, 4)
    h.checkpoint.state(global_state(5))  # A 0 + B 1 + C 4
    h.checkpoint.state(stream_state(A, 6))  # reset by the GLOBAL state
    h.checkpoint.state(stream_state(C, 7))
    assert h.ids == [1, 2, 3, 4, 5, 6, 7]
    assert h.counts == [3, 3, 1, 2, 5, 0, 0]


def test_state_of_a_stream_not_in_the_catalog() -> None:
    """A STREAM state of a stream not in the catalog has nothing to wait for (count 0), but keeps its place in
    the arrival order."""
    h = Harness()
    h.checkpoint.state(stream_state(NOT_IN_CATALOG, 1))
    assert h.ids == [1] and h.counts == [0]
    a = h.record(A)
    h.checkpoint.state(global_state(2))
    h.checkpoint.state(stream_state(NOT_IN_CATALOG, 3))
    assert h.ids == [1]
    h.checkpoint.ack([a])
    assert h.ids == [1, 2, 3] and h.counts == [0, 1, 0]


def test_state_before_any_record_is_released_at_once() -> None:
    """A state with no earlier records is emitted as soon as it arrives, with recordCount 0."""
    h = Harness()
    h.checkpoint.state(global_state(1))
    h.checkpoint.state(stream_state(B, 2))
    assert h.ids == [1, 2] and h.counts == [0, 0]


def test_lane_of_unknown_stream_is_a_key_error() -> None:
    """Only streams of the catalog have lanes."""
    with pytest.raises(KeyError):
        Harness().checkpoint.lane(NOT_IN_CATALOG)


def test_acked_cells_of_a_reopened_epoch() -> None:
    """Acknowledging every record of the current epoch, then receiving more in that epoch, still holds the next
    state for the new records."""
    h = Harness()
    h.checkpoint.ack([h.record(A)])
    late = h.record(A)
    h.checkpoint.state(stream_state(A, 1))
    assert h.emitted == []
    h.checkpoint.ack([late])
    assert h.ids == [1] and h.counts == [2]


# --------------------------------------------------------------------------------------------------------------------
# Property: random inputs and random ack order, checked against a model of the commit rule
# --------------------------------------------------------------------------------------------------------------------

STREAMS = (A, B, C)


class Model:
    """What must have been emitted: the longest prefix of states whose earlier in-scope records are all acked."""

    def __init__(self) -> None:
        self.records: list[tuple[int, StreamKey]] = []  # (arrival position, stream)
        self.acked: set[int] = set()
        self.states: list[tuple[int, StreamKey | None, int]] = []  # (arrival position, scope, expected count)
        self.position = 0
        self.since: dict[StreamKey, int] = dict.fromkeys(STREAMS, 0)

    def record(self, key: StreamKey) -> int:
        self.position += 1
        self.records.append((self.position, key))
        self.since[key] += 1
        return self.position

    def state(self, scope: StreamKey | None) -> None:
        self.position += 1
        covered = STREAMS if scope is None else [k for k in STREAMS if k == scope]
        count = sum(self.since[k] for k in covered)
        for k in covered:
            self.since[k] = 0
        self.states.append((self.position, scope, count))

    def covered(self, position: int, scope: StreamKey | None) -> bool:
        return all(p in self.acked for p, key in self.records if p < position and (scope is None or key == scope))

    def expected_emitted(self) -> int:
        n = 0
        while n < len(self.states) and self.covered(self.states[n][0], self.states[n][1]):
            n += 1
        return n


class Batching:
    """Feeds a checkpoint as the batcher does, and the model beside it: a lane's run grows over several records and
    past states, its records are counted in only before a state or when it ends (so runs of other lanes open while
    they are not), and only ended runs are acknowledged, in random order and groups."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.h, self.model = Harness(STREAMS), Model()
        self.open_runs: dict[StreamKey, tuple[Run, list[int]]] = {}  # each lane's open run and its records' positions
        self.counted: dict[StreamKey, int] = {}  # of those, how many are counted in
        self.outstanding: list[tuple[list[int], Run]] = []  # ended runs, not acknowledged yet
        self.states_sent = 0

    def count_in(self, key: StreamKey) -> None:
        positions = self.open_runs[key][1]
        if self.counted[key] < len(positions):
            self.h.checkpoint.count(self.h.checkpoint.lane(key), len(positions) - self.counted[key])
            self.counted[key] = len(positions)

    def end_run(self, key: StreamKey) -> None:
        self.count_in(key)
        run, positions = self.open_runs.pop(key)
        self.outstanding.append((positions, run))

    def add_record(self, key: StreamKey) -> None:
        position = self.model.record(key)
        if key in self.open_runs and self.rng.random() < 0.7:
            self.open_runs[key][1].append(position)
            return
        if key in self.open_runs:
            self.end_run(key)
        self.open_runs[key] = (self.h.checkpoint.open_run(self.h.checkpoint.lane(key)), [position])
        self.counted[key] = 0

    def add_state(self, scope: StreamKey | None) -> None:
        self.states_sent += 1
        for key in self.open_runs:
            self.count_in(key)
        self.model.state(None if scope is None else scope if scope in STREAMS else ("outside", "catalog"))
        state_id = self.states_sent
        self.h.checkpoint.state(global_state(state_id) if scope is None else stream_state(scope, state_id))

    def ack_some(self) -> None:
        self.rng.shuffle(self.outstanding)
        k = self.rng.randint(1, 4)
        group, self.outstanding[:] = self.outstanding[:k], self.outstanding[k:]
        for positions, _ in group:
            self.model.acked.update(positions)
        self.h.checkpoint.ack([run for _, run in group])

    def check(self) -> None:
        n = self.model.expected_emitted()
        assert self.h.ids == list(range(1, n + 1))
        assert self.h.counts == [count for _, _, count in self.model.states[:n]]

    def step(self, state_after_every_record: bool) -> None:
        """One random step: a record (and a state after it, if asked), a state, the end of a run, or acks."""
        roll = self.rng.random()
        if roll < 0.45:
            key = self.rng.choice(STREAMS)
            self.add_record(key)
            if state_after_every_record:
                self.add_state(self.rng.choice([key, key, None]))
        elif roll < 0.6:
            self.add_state(self.rng.choice([*STREAMS, None, NOT_IN_CATALOG]))
        elif roll < 0.7 and self.open_runs:
            self.end_run(self.rng.choice(list(self.open_runs)))
        elif self.outstanding:
            self.ack_some()


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("state_after_every_record", [False, True])
def test_random_inputs_and_ack_orders_follow_the_commit_rule(seed: int, state_after_every_record: bool) -> None:
    """With random records, states (STREAM, GLOBAL, not in catalog) and acks in random order and groups, the
    emitted states are always exactly the longest covered prefix (never early, never held back), with the model's
    recordCount, and everything is released once all records are acked. Records go in runs as the batcher makes
    them (see :class:`Batching`)."""
    rng = random.Random(seed)
    batching = Batching(rng)
    for _ in range(rng.randint(20, 120)):
        batching.step(state_after_every_record)
        batching.check()
    for key in list(batching.open_runs):
        batching.end_run(key)
    while batching.outstanding:
        batching.ack_some()
        batching.check()
    assert batching.h.checkpoint.pending_states == 0
    assert len(batching.h.emitted) == len(batching.model.states) == batching.states_sent


def test_rejected_records_count_in_their_scopes_next_state_and_hold_nothing() -> None:
    """A rejected record is counted in (recordCount) and as rejected by the next state of its scope, needs no ack,
    and is not counted again by later states; a GLOBAL state sums its streams' rejects."""
    h = Harness()
    cells = h.records(A, 2)
    h.checkpoint.reject(h.checkpoint.lane(A))
    h.checkpoint.reject(h.checkpoint.lane(B))
    h.checkpoint.state(stream_state(A, 1))
    h.checkpoint.ack(cells)
    h.checkpoint.state(stream_state(A, 2))
    h.checkpoint.state(global_state(3))
    stats = [json.loads(line)["state"]["destinationStats"] for line in h.emitted]
    assert h.ids == [1, 2, 3]
    assert stats == [{"recordCount": 3.0, "rejectedRecordCount": 1.0}, {"recordCount": 0.0},
                     {"recordCount": 1.0, "rejectedRecordCount": 1.0}]


def test_a_run_that_grows_past_states_holds_them_until_it_is_accepted() -> None:
    """Records counted into one run before and after a state: the state waits for the run, counts only the records
    before it, and the next state counts the rest; a later run accepted first releases nothing."""
    h = Harness()
    lane = h.checkpoint.lane(A)
    run = h.checkpoint.open_run(lane)
    h.checkpoint.count(lane, 2)
    h.checkpoint.state(stream_state(A, 1))
    h.checkpoint.count(lane, 3)
    h.checkpoint.state(stream_state(A, 2))
    later = h.record(A)
    h.checkpoint.state(stream_state(A, 3))
    h.checkpoint.ack([later])
    assert h.emitted == []
    h.checkpoint.ack([run])
    assert h.ids == [1, 2, 3] and h.counts == [2, 3, 1]


def test_accepted_runs_are_dropped_without_any_state() -> None:
    """A sync without states keeps no record of its accepted runs: memory does not grow with the input."""
    h = Harness()
    lane = h.checkpoint.lane(A)
    for _ in range(1_000):
        h.checkpoint.ack([h.record(A)])
    assert len(lane.runs) == 0
    waiting = h.record(A)
    for _ in range(10):
        h.checkpoint.ack([h.record(A)])
    assert len(lane.runs) == 11  # accepted runs behind one not yet accepted wait for it
    h.checkpoint.ack([waiting])
    assert len(lane.runs) == 0
