"""batcher: per Kinesis stream buffers that close on record count, on request bytes, on linger time and on the cap
across streams, and count their records into the checkpoint and each route's stats by runs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from destination_kinesis import batcher as batcher_module
from destination_kinesis.batcher import DEFAULT_LINGER_SECONDS, Batch, RouteStats
from destination_kinesis.batcher import Batcher as RealBatcher
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.limits import MAX_REQUEST_BYTES, MIB
from destination_kinesis.messages import State
from destination_kinesis.parser import parse_line
from destination_kinesis.route import Route
from unit_tests.fakes import FakeClock, decode_entry, encode_entry
from unit_tests.inputs import record_count, stream_state_line

NAMES = ("a", "b", "c", "d", "s", "old", "young")


class Batcher(RealBatcher):
    """A batcher over a checkpoint of one Airbyte stream per name in :data:`NAMES`, each routed to the Kinesis stream
    of the same name, and of ``x`` and ``y``, both routed to Kinesis stream ``s``."""

    def __init__(self, max_records: int, **options: Any):
        keys = [(None, name) for name in (*NAMES, "x", "y")]
        self.emitted: list[bytes] = []
        self.checkpoint = Checkpoint(keys, self.emitted.extend)
        super().__init__(max_records, self.checkpoint, **options)
        self.routes = {key[1]: Route(key, key[1], self.checkpoint.lane(key)) for key in keys}
        for name in ("x", "y"):
            self.routes[name].kinesis_name = "s"

    def state(self, name: str) -> None:
        """A STREAM state of ``name``, given to the checkpoint the way the writer does."""
        parsed = parse_line(stream_state_line(name), 1)
        assert isinstance(parsed, State)
        self.count_runs()
        self.checkpoint.state(parsed)


def _add(batcher: Batcher, stream: str, i: int, size: int = 10) -> list[Batch]:
    return batcher.add(batcher.routes[stream], encode_entry(f"data-{i}".encode(), f"key-{i}"), size)


def _keys(batch: Batch) -> list[str]:
    return [str(decode_entry(entry)["PartitionKey"]) for entry in batch.entries]


def test_closes_on_record_count() -> None:
    """The buffer size-th record closes the batch, with the records in input order."""
    batcher = Batcher(max_records=3)
    assert _add(batcher, "s", 0) == [] and _add(batcher, "s", 1) == []
    (batch,) = _add(batcher, "s", 2)
    assert batch.stream_name == "s"
    assert _keys(batch) == ["key-0", "key-1", "key-2"]
    assert decode_entry(batch.entries[0]) == {"Data": b"data-0", "PartitionKey": "key-0"}
    assert len(batch.runs) == 1 and batch.size == 30
    assert batcher.drain() == []


def test_buffer_size_one_sends_every_record_alone() -> None:
    """bufferSize 1: each record is its own batch at once."""
    batcher = Batcher(max_records=1)
    for i in range(3):
        (batch,) = _add(batcher, "s", i)
        assert _keys(batch) == [f"key-{i}"]
    assert batcher.drain() == []


def test_closes_before_exceeding_request_bytes() -> None:
    """A record that would push the batch past 5 MiB (data plus partition keys) starts a new batch; the closed one
    is returned, and exactly 5 MiB still fits."""
    batcher = Batcher(max_records=500)
    assert MAX_REQUEST_BYTES == 5 * MIB
    for i in range(4):
        assert _add(batcher, "s", i, size=MIB) == []
    assert _add(batcher, "s", 4, size=MIB) == []  # exactly 5 MiB: still one request
    (full,) = _add(batcher, "s", 5, size=1)
    assert full.size == 5 * MIB and len(full.entries) == 5
    (rest,) = batcher.drain()
    assert _keys(rest) == ["key-5"] and rest.size == 1


def test_byte_overflow_and_count_can_close_two_batches_at_once() -> None:
    """A record that overflows the bytes of a batch and then fills a new one (bufferSize 1) returns both."""
    batcher = Batcher(max_records=2, max_bytes=100)
    assert _add(batcher, "s", 0, size=60) == []
    closed = _add(batcher, "s", 1, size=60)
    assert [_keys(b) for b in closed] == [["key-0"]]
    batcher = Batcher(max_records=1, max_bytes=100)
    assert [_keys(b) for b in _add(batcher, "s", 0, size=60)] == [["key-0"]]


def test_streams_are_batched_separately() -> None:
    """Records of different Kinesis streams never share a batch; each stream fills on its own."""
    batcher = Batcher(max_records=2)
    assert _add(batcher, "a", 0) == []
    assert _add(batcher, "b", 1) == []
    (a,) = _add(batcher, "a", 2)
    assert (a.stream_name, _keys(a)) == ("a", ["key-0", "key-2"])
    (b,) = batcher.drain()
    assert (b.stream_name, _keys(b)) == ("b", ["key-1"])


def test_runs_are_consecutive_records_of_a_route_and_states_count_them_in() -> None:
    """A batch's runs are its records grouped by route, in order: a record of another route in the same Kinesis
    stream ends a run; a state does not, but counts its records in first, so the state waits for exactly the records
    before it. Each route's stats count its records as they are counted in, and their bytes as its runs end."""
    batcher = Batcher(max_records=10)
    x, y = batcher.routes["x"], batcher.routes["y"]
    stats_x, stats_y = batcher.stats(x), batcher.stats(y)
    for i, name in enumerate(["x", "x", "y", "x"]):
        _add(batcher, name, i, size=5)
    assert (stats_x.records, stats_y.records) == (2, 1)  # y's run has ended; x's open run is not counted in yet
    batcher.state("x")
    assert stats_x.records == 3  # counted in, and the run goes on (see its runs below)
    _add(batcher, "x", 4, size=5)
    (batch,) = batcher.drain()
    assert _keys(batch) == [f"key-{i}" for i in range(5)]
    assert [run.start for run in batch.runs] == [0, 2, 3]  # records counted in (of all lanes) as each run opened
    assert (stats_x.records, stats_x.bytes, stats_y.records, stats_y.bytes) == (4, 20, 1, 5)
    assert batcher.emitted == []  # x's state waits for x's first three records
    batcher.checkpoint.ack(batch.runs[2:])
    assert batcher.emitted == []  # x's first run is not accepted yet
    batcher.checkpoint.ack(batch.runs[:2])
    assert [record_count(line) for line in batcher.emitted] == [3]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(batcher_module, "time", fake)
    return fake


def test_linger_expiry_with_explicit_now(clock: FakeClock) -> None:
    """A partly filled batch is handed out once it has waited the linger time, and not before."""
    batcher = Batcher(max_records=10, linger_seconds=0.5)
    assert batcher.next_linger() is None
    _add(batcher, "a", 0)
    _add(batcher, "b", 1)
    assert batcher.expired(clock.now + 0.49) == []
    assert batcher.next_linger() == pytest.approx(clock.now + 0.5)
    expired = batcher.expired(clock.now + 0.5)
    assert sorted(b.stream_name for b in expired) == ["a", "b"]
    assert batcher.expired(clock.now + 20.0) == [] and batcher.drain() == []
    assert batcher.next_linger() is None


def test_linger_is_per_batch(clock: FakeClock) -> None:
    """Only the batches that have lingered long enough expire; a younger one stays open, and the wait until the
    next expiry is counted from the oldest batch."""
    batcher = Batcher(max_records=10, linger_seconds=1.0)
    _add(batcher, "old", 0)
    clock.now += 0.75
    _add(batcher, "young", 1)
    _add(batcher, "old", 2)  # adding to an open batch does not make it younger
    assert batcher.next_linger() == pytest.approx(clock.now + 0.25)
    clock.now += 0.25
    (old,) = batcher.expired(clock.now)
    assert (old.stream_name, _keys(old)) == ("old", ["key-0", "key-2"])
    assert batcher.next_linger() == pytest.approx(clock.now + 0.75)
    assert [b.stream_name for b in batcher.expired(clock.now + 0.75)] == ["young"]


def test_drain_returns_every_open_batch_once() -> None:
    """drain empties every buffer; a second drain has nothing."""
    batcher = Batcher(max_records=10)
    for i, stream in enumerate(["a", "b", "a", "c"]):
        _add(batcher, stream, i)
    drained = {b.stream_name: _keys(b) for b in batcher.drain()}
    assert drained == {"a": ["key-0", "key-2"], "b": ["key-1"], "c": ["key-3"]}
    assert batcher.drain() == []


def test_default_linger_is_short() -> None:
    """Partly filled batches wait at most a second by default."""
    assert 0 < DEFAULT_LINGER_SECONDS <= 1.0


def test_bytes_held_across_streams_are_capped() -> None:
    """Many streams each holding a little: once their total passes the cap, the fullest buffers go out early, so
    memory does not grow with the number of streams."""
    batcher = Batcher(max_records=500, max_bytes=100, max_buffered_bytes=250)
    assert _add(batcher, "a", 0, size=90) == []
    assert _add(batcher, "b", 1, size=60) == []
    assert _add(batcher, "c", 2, size=50) == []
    assert batcher.overflow() == []  # 200 held
    assert _add(batcher, "d", 3, size=60) == []
    (closed,) = batcher.overflow()  # 260 held: "a" is the fullest
    assert closed.stream_name == "a" and closed.size == 90 and len(closed.runs) == 1
    assert sorted(b.stream_name for b in batcher.drain()) == ["b", "c", "d"]


def test_append_takes_the_open_run_until_the_batch_is_full_as_add_does() -> None:
    """append is add for a fast route: it opens a run when its route has none, appends to the open run's batch,
    closes the batch at the buffer size and before the request bytes would be passed, and ends the run when a record
    of another route came in between."""
    batcher = Batcher(max_records=3, max_bytes=100)
    x, y = batcher.routes["x"], batcher.routes["y"]

    def append(route: Route, i: int, size: int = 10) -> list[Batch]:
        return list(batcher.append(route, encode_entry(f"data-{i}".encode(), f"key-{i}"), size))

    assert append(x, 0) == [] and append(x, 1) == []
    (full,) = append(x, 2)
    assert _keys(full) == ["key-0", "key-1", "key-2"] and full.size == 30 and len(full.runs) == 1
    assert append(x, 3, size=60) == [] and append(y, 4) == []
    (by_bytes,) = append(x, 5, size=40)  # 60 + 10 + 40 is over 100: the batch closes first
    assert _keys(by_bytes) == ["key-3", "key-4"] and len(by_bytes.runs) == 2
    (rest,) = batcher.drain()
    assert _keys(rest) == ["key-5"] and rest.size == 40
    assert (batcher.stats(x), batcher.stats(y)) == (RouteStats(5, 130), RouteStats(1, 10))


def test_append_packed_keeps_each_records_key_and_closes_on_bytes_only() -> None:
    """A route that packs records: append_packed keeps its data and key; the buffer size does not close such a
    batch (the aggregates made of it are what PutRecords counts), the request bytes do."""
    batcher = Batcher(max_records=2, max_bytes=100)
    route = batcher.routes["s"]
    route.packing = True
    for i in range(4):
        assert list(batcher.append_packed(route, f"data-{i}".encode(), 20, f"key-{i}".encode())) == []
    (closed,) = batcher.append_packed(route, b"data-4", 30, b"key-4")
    assert closed.packing and closed.entries == [f"data-{i}".encode() for i in range(4)] and closed.size == 80
    assert closed.keys == [f"key-{i}".encode() for i in range(4)]
    (rest,) = batcher.drain()
    assert rest.entries == [b"data-4"] and rest.keys == [b"key-4"]


def test_a_rejected_record_is_counted_into_the_next_state_and_the_stats_but_no_batch() -> None:
    """reject: the record is in the next state's recordCount and rejectedRecordCount, in the route's stats as
    rejected, and in no batch."""
    batcher = Batcher(max_records=10)
    route = batcher.routes["a"]
    _add(batcher, "a", 0)
    batcher.reject(route)
    batcher.state("a")
    (batch,) = batcher.drain()
    assert _keys(batch) == ["key-0"]
    assert batcher.stats(route) == RouteStats(records=1, bytes=10, rejected=1)
    batcher.checkpoint.ack(batch.runs)
    (state,) = batcher.emitted
    assert json.loads(state)["state"]["destinationStats"] == {"recordCount": 2.0, "rejectedRecordCount": 1.0}
