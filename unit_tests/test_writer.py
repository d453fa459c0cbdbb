"""writer: input fd → records to Kinesis and states out once covered, with real Batcher, Checkpoint, Dispatcher and
Sender over a fake Kinesis client."""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from destination_kinesis import writer
from destination_kinesis.batcher import DEFAULT_MAX_BUFFERED_BYTES, Batcher
from destination_kinesis.checkpoint import Checkpoint, Run
from destination_kinesis.dispatcher import Dispatcher
from destination_kinesis.encoder import Encoder, KeyRule, Partitioner
from destination_kinesis.errors import ConnectorError
from destination_kinesis.limits import MAX_RECORD_BYTES, MAX_REQUEST_BYTES
from destination_kinesis.messages import StreamKey
from destination_kinesis.naming import kinesis_stream_names
from destination_kinesis.outbox import Call, Outbox
from destination_kinesis.pacing import ShardLimits
from destination_kinesis.parser import parse_line
from destination_kinesis.progress import Progress
from destination_kinesis.rawjson import orjson_round_trip_is_exact
from destination_kinesis.route import Route
from destination_kinesis.sender import Results, Sender
from destination_kinesis.sigterm import Interrupted, interrupting
from destination_kinesis.writer import CHUNK_BYTES, Writer
from unit_tests.fakes import FakeKinesisClient, accept_all, client_error, decode_entry, fail_entries
from unit_tests.inputs import (
    EMITTED_AT,
    Feed,
    global_state_line,
    lines,
    record_count,
    record_line,
    run_on_pipe,
    state_id,
    stream_state_line,
    write_all,
)
from unit_tests.jsoncheck import assert_same_json, exact_json
from unit_tests.test_encoder import CORPUS

pytestmark = pytest.mark.usefixtures("fast_backoff")

A: StreamKey = (None, "a")
B: StreamKey = ("ns", "b")
KINESIS = {A: "_a", B: "ns_b"}


def rec(key: StreamKey, tag: str, pad: int = 0) -> bytes:
    """A RECORD of ``key`` whose data carries ``tag`` (and ``pad`` bytes of filler)."""
    return record_line({"tag": tag, "pad": "x" * pad}, stream=key[1], namespace=key[0])


def sstate(key: StreamKey, sid: int) -> bytes:
    return stream_state_line(key[1], key[0], state_id=sid)


def tag_of(data: bytes) -> str:
    return json.loads(data)["_airbyte_data"]["tag"]


class Harness:
    """A Writer built from the real parts, a fake client, and the emitted states collected (into ``log`` too)."""

    def __init__(self, client: FakeKinesisClient, buffer_size: int = 100, max_in_flight: int = 2,
                 linger_seconds: float = 1.0, keys: tuple[StreamKey, ...] = (A, B),
                 on_emit: Callable[[bytes], None] | None = None,
                 max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
                 max_queued_bytes: int = writer.DEFAULT_MAX_QUEUED_BYTES):
        self.client = client
        self.emitted: list[bytes] = []
        self.on_emit = on_emit
        names = kinesis_stream_names(keys)
        assert all(names[k] == KINESIS[k] for k in keys if k in KINESIS)
        self.checkpoint = Checkpoint(keys, self._emit)
        self.routes = {key: Route(key, names[key], self.checkpoint.lane(key)) for key in keys}
        kinesis_names = list(dict.fromkeys(names.values()))
        now = time.monotonic()
        outboxes = [Outbox(name, None, ShardLimits(), buffer_size, MAX_REQUEST_BYTES, now) for name in kinesis_names]
        self.progress = Progress(kinesis_names, now)
        self.dispatcher = Dispatcher(outboxes, Sender(client, max_in_flight), self.checkpoint, self.progress,
                                     max_in_flight, retry_seconds=0.3)
        self.batcher = Batcher(buffer_size, self.checkpoint, linger_seconds=linger_seconds,
                               max_buffered_bytes=max_buffered_bytes)
        self.writer = Writer(self.routes, self.batcher, self.dispatcher, self.checkpoint, self.progress,
                             max_queued_bytes=max_queued_bytes)

    def _emit(self, lines: list[bytes]) -> None:
        for line in lines:
            self.emitted.append(line)
            if self.client.log is not None:
                self.client.log.append(("emitted", line))
            if self.on_emit is not None:
                self.on_emit(line)

    @property
    def ids(self) -> list[int]:
        return [state_id(line) for line in self.emitted]

    def run(self, feed: Feed) -> None:
        """Run the writer on a pipe fed by a thread."""
        run_on_pipe(self.writer.run, feed)


def _fails(h: Harness, feed: bytes, failure_type: str) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        h.run(feed)
    assert caught.value.failure_type == failure_type, caught.value.message
    return caught.value


def deny(tags: set[str], code: str = "AccessDeniedException") -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """A step refusing (whole call) any call that carries one of ``tags``, accepting all other calls."""

    def respond(entries: list[dict[str, Any]]) -> dict[str, Any]:
        if any(tag_of(entry["Data"]) in tags for entry in entries):
            raise client_error(code)
        return accept_all(entries)

    return respond


# --------------------------------------------------------------------------------------------------------------------
# The commit rule end to end
# --------------------------------------------------------------------------------------------------------------------

INPUT = [
    rec(A, "a1"), rec(A, "a2"), rec(A, "a3"), sstate(A, 1),
    rec(B, "b1"), global_state_line(state_id=2),
    rec(A, "a4"), rec(B, "b2"), rec(B, "b3"), rec(B, "b4"), sstate(B, 3),
    b'{"type":"LOG","log":{"level":"INFO","message":"ignored"}}', b"",
    rec(A, "a5"), sstate(A, 4), rec(B, "b5"), global_state_line(state_id=5),
]
EXPECTED_COUNTS = {1: 3, 2: 1, 3: 3, 4: 2, 5: 1}  # a1-a3; b1 (a4 came after); b2-b4; a4, a5; b5


def _records_before(position: int, scope: StreamKey | None, items: list[bytes] = INPUT) -> set[str]:
    tags = set()
    for line in items[:position]:
        message = json.loads(line) if line else {}
        if message.get("type") == "RECORD":
            key = (message["record"].get("namespace"), message["record"]["stream"])
            if scope is None or key == scope:
                tags.add(message["record"]["data"]["tag"])
    return tags


def _state_positions(items: list[bytes] = INPUT) -> dict[int, tuple[int, StreamKey | None]]:
    positions = {}
    for i, line in enumerate(items):
        message = json.loads(line) if line else {}
        if message.get("type") == "STATE":
            state = message["state"]
            scope = None
            if state.get("type") == "STREAM":
                descriptor = state["stream"]["stream_descriptor"]
                scope = (descriptor.get("namespace"), descriptor["name"])
            positions[state["id"]] = (i, scope)
    return positions


def _assert_each_state_follows_its_records(log: list[tuple[str, Any]], items: list[bytes]) -> None:
    """In ``log`` (the client's "accepted" and the harness's "emitted" events), every state of ``items`` comes after
    Kinesis accepted every record before it in its scope, and in the end every record was accepted."""
    positions = _state_positions(items)
    accepted_so_far: set[str] = set()
    for event, value in log:
        if event == "accepted":
            accepted_so_far.add(tag_of(value))
        else:
            position, scope = positions[state_id(value)]
            missing = _records_before(position, scope, items) - accepted_so_far
            assert not missing, f"state {state_id(value)} emitted before {missing} were accepted"
    assert accepted_so_far == _records_before(len(items), None, items)


@pytest.mark.parametrize("buffer_size", [1, 2, 100])
@pytest.mark.parametrize("resends", [False, True], ids=["all accepted", "partial failures"])
def test_states_are_emitted_only_after_their_records_are_accepted(buffer_size: int, resends: bool) -> None:
    """Every emitted state comes after Kinesis accepted every earlier record of its scope (even when entries had
    to be resent); all states come out, in order, with their ids and recordCounts; every record reaches its own
    Kinesis stream."""
    log: list[tuple[str, Any]] = []
    script = [fail_entries({0}), fail_entries({0, 1}, code="InternalFailure"), fail_entries({0})] if resends else []
    h = Harness(FakeKinesisClient(script, log=log), buffer_size=buffer_size)
    h.run(lines(*INPUT))
    assert h.ids == [1, 2, 3, 4, 5]
    assert {state_id(line): record_count(line) for line in h.emitted} == EXPECTED_COUNTS
    _assert_each_state_follows_its_records(log, INPUT)
    for stream_name, entries in h.client.calls:
        for entry in entries:
            assert stream_name == (KINESIS[A] if tag_of(entry["Data"]).startswith("a") else KINESIS[B])
    if resends:
        assert sum(t.resent_entries for t in h.progress.streams.values()) >= 3
    stats_a, stats_b = h.batcher.stats(h.routes[A]), h.batcher.stats(h.routes[B])
    assert stats_a.records == 5 and stats_b.records == 5
    accepted_a = {e["PartitionKey"]: len(e["Data"]) + len(e["PartitionKey"])
                  for name, entries in h.client.calls if name == KINESIS[A] for e in entries}
    assert stats_a.bytes == sum(accepted_a.values())


def test_input_in_small_chunks_and_final_line_without_newline() -> None:
    """Lines split across many small reads, and a last line without a newline, are all handled."""
    data = lines(*INPUT)[:-1]  # no final newline: the last GLOBAL state ends the input
    h = Harness(FakeKinesisClient(), buffer_size=3)
    h.run([data[i : i + 7] for i in range(0, len(data), 7)])
    assert h.ids == [1, 2, 3, 4, 5]
    assert sorted(tag_of(d) for d in h.client.sent_data) == sorted(_records_before(len(INPUT), None))


def test_state_is_released_while_the_source_is_quiet() -> None:
    """A partly filled batch is sent after the linger time, so its state comes out before any more input."""
    released = threading.Event()
    waited: list[bool] = []

    def feed(fd: int) -> None:
        write_all(fd, lines(rec(A, "a1"), sstate(A, 1)))
        waited.append(released.wait(10))  # the input stays open and quiet until the state is out
        write_all(fd, lines(rec(A, "a2"), sstate(A, 2)))

    h = Harness(FakeKinesisClient(), buffer_size=100, linger_seconds=0.01, on_emit=lambda _: released.set())
    h.run(feed)
    assert waited == [True]
    assert h.ids == [1, 2]


def test_requests_stay_within_5_mib_including_partition_keys() -> None:
    """Big records are batched so that no PutRecords carries more than 5 MiB of data plus partition keys, and a
    batch closes only when the next record would not fit (the linger time is long, so that no batch goes out
    early on a slow machine, and one call is in flight at a time, so that the calls arrive in order)."""
    h = Harness(FakeKinesisClient(), buffer_size=500, linger_seconds=60.0, max_in_flight=1)
    h.run(lines(*(rec(A, f"a{i}", pad=700_000) for i in range(20)), sstate(A, 1)))
    sizes = [[len(e["Data"]) + len(e["PartitionKey"]) for e in entries] for _, entries in h.client.calls]
    assert sum(len(batch) for batch in sizes) == 20
    for batch, following in zip(sizes, sizes[1:], strict=False):
        assert sum(batch) <= MAX_REQUEST_BYTES
        assert sum(batch) + following[0] > MAX_REQUEST_BYTES
    assert sum(sizes[-1]) <= MAX_REQUEST_BYTES
    assert h.ids == [1] and record_count(h.emitted[0]) == 20


def test_empty_input() -> None:
    """An empty input writes nothing and emits nothing."""
    h = Harness(FakeKinesisClient())
    h.run(b"")
    assert h.client.calls == [] and h.emitted == []


def test_states_without_records_are_all_emitted() -> None:
    """States alone (including the platform's empty STREAM state at the end) are echoed in order."""
    h = Harness(FakeKinesisClient())
    h.run(lines(global_state_line(state_id=1), sstate(B, 2), b'{"type":"STATE","state":{"type":"STREAM",'
                b'"stream":{"stream_descriptor":{"name":"a"},"stream_state":null},"id":3}}'))
    assert h.ids == [1, 2, 3] and [record_count(line) for line in h.emitted] == [0, 0, 0]


# --------------------------------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------------------------------


def test_record_of_a_stream_not_in_the_catalog_fails_naming_line_and_stream() -> None:
    """A record of an unknown stream fails as an input error naming its line and stream; the states covered by
    records already accepted still come out, nothing after that line does."""
    h = Harness(FakeKinesisClient(), buffer_size=1)
    error = _fails(h, lines(rec(A, "a1"), sstate(A, 1), rec(("x", "unknown"), "u1"), sstate(A, 2), rec(A, "a2")),
                   "system_error")
    assert re.search(r"\bline 3\b", error.message) and "'x.unknown'" in error.message
    assert "catalog" in error.message
    assert h.ids == [1]
    assert [tag_of(d) for d in h.client.sent_data] == ["a1"]


def test_a_failed_sync_still_counts_every_record_read_per_stream() -> None:
    """The records read before a failure are counted per stream (the summary logs these counts)."""
    h = Harness(FakeKinesisClient(default=deny({"a1"})), buffer_size=100)
    _fails(h, lines(rec(A, "a1"), rec(B, "b1"), rec(A, "a2"), rec(("x", "unknown"), "u1")), "system_error")
    stats_a, stats_b = h.batcher.stats(h.routes[A]), h.batcher.stats(h.routes[B])
    assert (stats_a.records, stats_b.records) == (2, 1)
    assert stats_a.bytes > 0 and sorted(tag_of(d) for d in h.client.sent_data) == ["a1", "a2", "b1"]


@pytest.mark.parametrize("buffer_size", [1, 100])
def test_oversize_record_fails_naming_stream_and_line_and_nothing_after_it_is_acknowledged(buffer_size: int) -> None:
    """A record over 1 MiB as a Kinesis record fails naming its stream and line; records after it are never sent
    and states after it never emitted, while the record before it and its state still go out."""
    h = Harness(FakeKinesisClient(), buffer_size=buffer_size)
    big = rec(B, "big", pad=MAX_RECORD_BYTES)
    error = _fails(h, lines(rec(B, "b1"), sstate(B, 1), big, sstate(B, 2), rec(B, "b2"), sstate(B, 3)),
                   "system_error")
    assert re.search(r"\bline 3\b", error.message) and "'ns.b'" in error.message
    assert str(MAX_RECORD_BYTES) in error.message
    assert [tag_of(d) for d in h.client.sent_data] == ["b1"] and h.ids == [1]


def test_record_of_exactly_the_size_limit_is_written() -> None:
    """A record of exactly 1 MiB (data plus partition key) is within the limit."""
    probe = Harness(FakeKinesisClient())
    probe.run(lines(rec(A, "max")))
    (entry,) = probe.client.calls[0][1]
    overhead = len(entry["Data"]) + len(entry["PartitionKey"])
    h = Harness(FakeKinesisClient())
    h.run(lines(rec(A, "max", pad=MAX_RECORD_BYTES - overhead), sstate(A, 1)))
    (entry,) = h.client.calls[0][1]
    assert len(entry["Data"]) + len(entry["PartitionKey"]) == MAX_RECORD_BYTES
    assert h.ids == [1]


@pytest.mark.parametrize("max_in_flight", [1, 2, 4])
def test_fatal_send_error_still_emits_states_covered_by_earlier_batches(max_in_flight: int) -> None:
    """When a batch fails fatally, the states covered by batches that did succeed are emitted before the error is
    raised; later states are not."""
    h = Harness(FakeKinesisClient(default=deny({"a3"})), buffer_size=1, max_in_flight=max_in_flight)
    error = _fails(h, lines(rec(A, "a1"), sstate(A, 1), rec(A, "a2"), sstate(A, 2), rec(A, "a3"), sstate(A, 3),
                            rec(A, "a4"), sstate(A, 4)), "config_error")
    assert "AccessDeniedException" in error.message and "'_a'" in error.message
    assert h.ids == [1, 2]


def test_fatal_send_error_on_one_stream_keeps_other_streams_states() -> None:
    """A stream whose batch fails does not hold back states of another stream already covered."""
    h = Harness(FakeKinesisClient(default=deny({"a1"}, code="ResourceNotFoundException")), buffer_size=1,
                max_in_flight=1)
    _fails(h, lines(rec(B, "b1"), sstate(B, 1), rec(A, "a1"), sstate(A, 2), sstate(B, 3)), "config_error")
    assert h.ids == [1]


def test_retries_exhausted_fail_as_transient_with_earlier_states_out() -> None:
    """A stream that throttles for the whole retry time fails the sync as transient_error; earlier covered states
    are out."""
    def throttle_a2(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return fail_entries(lambda _, entry: tag_of(entry["Data"]) == "a2")(entries)

    h = Harness(FakeKinesisClient(default=throttle_a2), buffer_size=1, max_in_flight=1)
    error = _fails(h, lines(rec(A, "a1"), sstate(A, 1), rec(A, "a2"), sstate(A, 2)), "transient_error")
    assert "'_a'" in error.message and "ProvisionedThroughputExceededException" in error.message
    assert h.ids == [1]


def test_invalid_line_fails_without_echoing_content_and_keeps_earlier_states() -> None:
    """An invalid line stops the sync with its line number; what was accepted before is still checkpointed."""
    h = Harness(FakeKinesisClient(), buffer_size=1)
    error = _fails(h, lines(rec(A, "a1"), sstate(A, 1), b'{"type":"RECORD","record":{"stream":"a","data":'
                                                        b'{"secret":"CONTENT-MARKER"'), "system_error")
    assert re.search(r"\bline 3\b", error.message) and "CONTENT-MARKER" not in error.message
    assert h.ids == [1]


def test_sigterm_while_completions_are_acknowledged_still_emits_the_states_they_cover(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM arrives as the writer acknowledges a completed batch it took off the sender's queue: the
    acknowledgement is finished and the states it covers come out (with those the failure path collects) before
    the sync ends with Interrupted."""
    h = Harness(FakeKinesisClient())
    ack = h.checkpoint.ack

    def ack_after_sigterm(runs: list[Run]) -> None:
        signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns, unless deferred
        ack(runs)

    monkeypatch.setattr(h.checkpoint, "ack", ack_after_sigterm)
    with pytest.raises(Interrupted), interrupting():
        h.run(lines(rec(A, "a1"), sstate(A, 1), rec(B, "b1"), sstate(B, 2)))
    assert h.ids == [1, 2]


# --------------------------------------------------------------------------------------------------------------------
# Requests in flight: bounded, with backpressure on the input, completing in any order
# --------------------------------------------------------------------------------------------------------------------


def _run_in_thread(h: Harness, feed: Feed) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``h.run(feed)`` on a thread; its failure, if any, lands in the returned list."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            h.run(feed)
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def _steady(read: Callable[[], int]) -> int:
    """Wait until ``read()`` stops changing (the same over three reads 0.1 s apart, within 10 s); return it."""
    values = [read()]
    for _ in range(100):
        time.sleep(0.1)
        values.append(read())
        if len(values) >= 3 and values[-1] == values[-2] == values[-3]:
            return values[-1]
    raise AssertionError(f"still changing after 10 s: {values[-3:]}")


def test_in_flight_calls_are_bounded_and_reading_pauses_while_they_are_held() -> None:
    """With 3 calls held open, no fourth starts, and the writer stops reading: the feeding thread stays blocked
    having written at most what the pipe, one read and a few batches hold, far less than the input. Once the calls
    go through, everything is written and every state comes out, in order, with its count."""
    gate = threading.Event()
    client = FakeKinesisClient(gate=gate)
    h = Harness(client, buffer_size=10, max_in_flight=3, max_queued_bytes=20_000)
    items = []
    for i in range(8000):
        items.append(rec(A, f"a{i}", pad=1000))
        if (i + 1) % 100 == 0:
            items.append(sstate(A, (i + 1) // 100))
    data = lines(*items)
    progress = {"written": 0, "pipe": 0}

    def feed(fd: int) -> None:
        progress["pipe"] = fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
        view = memoryview(data)
        while view:
            written = os.write(fd, view[:8192])
            view = view[written:]
            progress["written"] += written

    thread, errors = _run_in_thread(h, feed)
    try:
        for _ in range(3):
            assert client.entered.acquire(timeout=10), "fewer than 3 calls started"
        written = _steady(lambda: progress["written"])
        held = (client.concurrent, len(client.calls), list(h.emitted))
    finally:
        gate.set()
    thread.join(30)
    assert not thread.is_alive() and errors == []
    line_bytes = len(items[0]) + 1
    # The pipe, the reads the writer made until the queued entries passed their cap (one read past it at most),
    # and its batches: 3 in flight, 1 open.
    bound = progress["pipe"] + CHUNK_BYTES + 20_000 + 4 * 10 * line_bytes
    assert written < len(data) // 3 and written <= bound, (written, bound, len(data))
    assert held == (3, 3, [])
    assert client.max_concurrent == 3
    assert sorted(tag_of(d) for d in client.sent_data) == sorted(f"a{i}" for i in range(8000))
    assert h.ids == list(range(1, 81))
    assert {record_count(line) for line in h.emitted} == {100}


OUT_OF_ORDER_INPUT = [
    rec(A, "a1"), rec(A, "a2"), sstate(A, 1),
    rec(B, "b1"), rec(B, "b2"), rec(B, "b3"), sstate(B, 2),
    rec(A, "a3"), rec(A, "a4"), global_state_line(state_id=3),
    rec(B, "b4"), rec(B, "b5"), rec(A, "a5"), sstate(B, 4),
    global_state_line(state_id=5),
]
OUT_OF_ORDER_COUNTS = {1: 2, 2: 3, 3: 2, 4: 2, 5: 1}  # a1-a2; b1-b3; a3-a4 (B none since 2); b4-b5; a5


def test_out_of_order_completions_release_states_in_input_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first batch (a1, a2) completes only after the writer has collected every later batch: no state comes
    out before it, not even the B states whose records were all accepted earlier; then all come out in input
    order, each after the records of its scope, each with its own count."""
    held_tags = {"a1", "a2"}
    later_tags = _records_before(len(OUT_OF_ORDER_INPUT), None, OUT_OF_ORDER_INPUT) - held_tags
    later_collected = threading.Event()
    completed: list[list[str]] = []

    def respond(entries: list[dict[str, Any]]) -> dict[str, Any]:
        if any(tag_of(entry["Data"]) in held_tags for entry in entries):
            assert later_collected.wait(10), "the later batches were never collected"
        return accept_all(entries)

    log: list[tuple[str, Any]] = []
    h = Harness(FakeKinesisClient(default=respond, log=log), buffer_size=2, max_in_flight=4)
    collect = h.dispatcher.sender.completions

    def recording_completions() -> list[tuple[Call, Future[Results]]]:
        done = collect()
        completed.extend(sorted(tag_of(decode_entry(entry)["Data"]) for part in call.parts
                                for entry in part.chunk.entries) for call, _ in done)
        if {tag for tags in completed for tag in tags} >= later_tags:
            later_collected.set()
        return done

    monkeypatch.setattr(h.dispatcher.sender, "completions", recording_completions)
    h.run(lines(*OUT_OF_ORDER_INPUT))
    assert completed[-1] == ["a1", "a2"] and len(completed) >= 4, completed
    assert h.ids == [1, 2, 3, 4, 5]
    assert {state_id(line): record_count(line) for line in h.emitted} == OUT_OF_ORDER_COUNTS
    events = [event if event == "emitted" else tag_of(value) for event, value in log]
    assert events.index("emitted") > events.index("a1") > events.index("b3")
    _assert_each_state_follows_its_records(log, OUT_OF_ORDER_INPUT)


# --------------------------------------------------------------------------------------------------------------------
# Exactness on both the fast path and the exact path
# --------------------------------------------------------------------------------------------------------------------


def test_every_corpus_value_arrives_exactly_through_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each awkward data value of the envelope corpus, written through the Writer, arrives as `_airbyte_data`
    equal to the source's with every digit, code unit and number kind, in an envelope whose id is the partition
    key. The corpus takes both the inline fast path and the exact path (parse_line)."""
    texts = list(CORPUS.values())
    exact_path_lines: list[int] = []

    def counting_parse_line(line: bytes, line_no: int) -> Any:
        exact_path_lines.append(line_no)
        return parse_line(line, line_no)

    monkeypatch.setattr(writer, "parse_line", counting_parse_line)
    record_lines = [record_line(text, stream=A[1]) for text in texts]
    h = Harness(FakeKinesisClient(), buffer_size=100, max_in_flight=1)
    h.routes[A].max_record_bytes = 2 * MAX_RECORD_BYTES  # the 900 KiB string is over 1 MiB in UTF-8
    h.run(lines(*record_lines, sstate(A, 1)))
    entries = [entry for _, call in h.client.calls for entry in call]
    assert len(entries) == len(texts)
    wrong = []
    for name, text, sent in zip(CORPUS, texts, entries, strict=True):
        envelope = exact_json(sent["Data"])
        try:
            assert list(envelope) == ["_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_data"]
            assert envelope["_airbyte_ab_id"] == sent["PartitionKey"]
            assert envelope["_airbyte_emitted_at"] == EMITTED_AT
            assert_same_json(envelope["_airbyte_data"], exact_json(text))
        except AssertionError as exc:
            wrong.append(f"{name}: {exc}")
    assert wrong == []
    assert h.ids == [1] and record_count(h.emitted[0]) == len(texts)
    exact_records = sum(1 for line_no in exact_path_lines if line_no <= len(texts))
    # msgspec refuses escaped lone surrogates; the parse_line path takes those.
    assert exact_records >= 3 and len(texts) - exact_records >= 5, exact_records
    round_trip_exact = sum(orjson_round_trip_is_exact(line) for line in record_lines)
    assert round_trip_exact >= 5 and len(texts) - round_trip_exact >= 5, round_trip_exact


# --------------------------------------------------------------------------------------------------------------------
# Adaptive pressure in a sync
# --------------------------------------------------------------------------------------------------------------------

THROTTLED_CALLS = 6


@pytest.mark.parametrize("throttle", [client_error("ProvisionedThroughputExceededException"),
                                      fail_entries(lambda _i, _entry: True)], ids=["whole calls", "every entry"])
def test_sync_completes_through_throttling_with_the_limit_lowered(throttle: Any) -> None:
    """The first calls are all throttled, then Kinesis accepts: the in-flight limit was halved at least once, and
    every record arrives with every state after its records."""
    items = [line for i in range(6) for line in (rec(A, f"a{i}"), rec(B, f"b{i}"), sstate(A if i % 2 else B, i + 1))]
    log: list[tuple[str, Any]] = []
    h = Harness(FakeKinesisClient([throttle] * THROTTLED_CALLS, log=log), buffer_size=1, max_in_flight=4)
    h.run(lines(*items))
    assert h.dispatcher.pressure.decreases >= 1
    assert sum(t.throttled for t in h.progress.streams.values()) == THROTTLED_CALLS
    assert h.ids == [1, 2, 3, 4, 5, 6]
    _assert_each_state_follows_its_records(log, items)


def test_writer_keeps_within_the_lowered_limit() -> None:
    """After throttling halved the limit from 4 to 2, the writer keeps at most 2 calls in flight (the sender's pool
    could run 4), and continues once they complete."""
    gate = threading.Event()
    client = FakeKinesisClient(gate=gate)
    h = Harness(client, buffer_size=1, max_in_flight=4)
    h.dispatcher.pressure.throttled("s")
    assert h.dispatcher.limit == 2
    thread, errors = _run_in_thread(h, lines(*(rec(A, f"a{i}") for i in range(10)), sstate(A, 1)))
    try:
        assert client.entered.acquire(timeout=10) and client.entered.acquire(timeout=10)
        assert not client.entered.acquire(timeout=0.2), "a third call started while the limit was 2"
        held = client.concurrent
    finally:
        gate.set()
    thread.join(30)
    assert not thread.is_alive() and errors == []
    assert held == 2
    assert sorted(tag_of(d) for d in client.sent_data) == sorted(f"a{i}" for i in range(10))
    assert h.ids == [1] and record_count(h.emitted[0]) == 10


# --------------------------------------------------------------------------------------------------------------------
# The cap on bytes buffered across streams
# --------------------------------------------------------------------------------------------------------------------


def test_many_streams_send_early_once_the_buffered_bytes_pass_the_cap() -> None:
    """20 streams of small records, none near a batch limit and a 60 s linger: once the bytes buffered across them
    pass the cap, the fullest stream's batch goes out while the input is still open; all records arrive."""
    keys = tuple((None, f"s{i}") for i in range(20))
    fullest = keys[7]
    first_call = threading.Event()

    def respond(entries: list[dict[str, Any]]) -> dict[str, Any]:
        first_call.set()
        return accept_all(entries)

    tags = {f"{key[1]}-{n}": key for n in range(3) for key in keys}
    items = [rec(key, tag, pad=400 if key == fullest else 20) for tag, key in tags.items()]
    waited: list[bool] = []

    def feed(fd: int) -> None:
        write_all(fd, lines(*items))
        waited.append(first_call.wait(10))  # the input stays open: only the cap can send a batch now
        write_all(fd, lines(global_state_line(state_id=1)))

    h = Harness(FakeKinesisClient(default=respond), buffer_size=500, linger_seconds=60.0, keys=keys,
                max_buffered_bytes=4000)
    h.run(feed)
    assert waited == [True]
    assert h.client.calls[0][0] == "_s7"
    assert sorted(tag_of(d) for d in h.client.sent_data) == sorted(tags)
    assert h.ids == [1] and record_count(h.emitted[0]) == len(items)


# ---------------------------------------------------------------- routes with options (partition, payload, oversize)


def _optioned(h: Harness, key: StreamKey, **options: Any) -> Route:
    """Replace ``key``'s route in ``h`` with one that has ``options`` (partitioner, encoder, skip_oversize)."""
    route = Route(key, KINESIS[key], h.checkpoint.lane(key), **options)
    h.routes[key] = route
    return route


def test_routes_with_options_are_found_fast_and_written_by_their_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records of a route with options skip parse_line as plain ones do, get their options' key, and keep their
    data as written (a number's spelling too), like the records of a plain route."""
    h = Harness(FakeKinesisClient())
    route = _optioned(h, B, partitioner=Partitioner(B, KeyRule("fields", (("tag",),))))
    assert h.routes[A].fast and not route.fast
    parsed: list[int] = []

    def counting_parse_line(line: bytes, line_no: int) -> Any:
        parsed.append(line_no)
        return parse_line(line, line_no)

    monkeypatch.setattr(writer, "parse_line", counting_parse_line)
    spelled = record_line('{"tag":"b3","n":2.50,"e":1E2}', stream=B[1], namespace=B[0])
    h.run(lines(rec(A, "a1"), rec(B, "b1"), rec(A, "a2"), rec(B, "b2"), spelled))
    assert parsed == []
    keys = {tag_of(e["Data"]): e["PartitionKey"] for _, entries in h.client.calls for e in entries}
    assert keys["b1"] == '"b1"' and keys["b2"] == '"b2"' and keys["b3"] == '"b3"'
    assert len(keys["a1"]) == 36 and keys["a1"] == json.loads(
        next(e["Data"] for _, es in h.client.calls for e in es if tag_of(e["Data"]) == "a1"))["_airbyte_ab_id"]
    assert any(data.endswith(b'"_airbyte_data":{"tag":"b3","n":2.50,"e":1E2}}') for data in h.client.sent_data)


def test_a_record_that_fits_only_compressed_is_written() -> None:
    """The size limit applies to the compressed bytes: 1.5 MiB of repetitive data goes through gzip."""
    h = Harness(FakeKinesisClient())
    _optioned(h, A, encoder=Encoder(compression="gzip"))
    h.run(lines(rec(A, "big", pad=3 * MAX_RECORD_BYTES // 2), sstate(A, 1)))
    (data,) = h.client.sent_data
    assert len(data) < MAX_RECORD_BYTES
    assert tag_of(gzip.decompress(data)) == "big" and h.ids == [1]


def test_oversize_records_skipped_are_counted_in_the_next_state_and_never_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    """With skip, an oversize record is logged (stream and line, not content), not sent, and the next state of its
    scope says recordCount 3 (as the source sent) with rejectedRecordCount 1; states without rejects are as before."""
    h = Harness(FakeKinesisClient())
    route = _optioned(h, B, skip_oversize=True)
    big = record_line({"tag": "big", "secret": "SECRETVALUE" * (MAX_RECORD_BYTES // 10)}, stream="b", namespace="ns")
    with caplog.at_level(logging.INFO, logger="airbyte"):
        h.run(lines(rec(B, "b1"), big, rec(B, "b2"), sstate(B, 1), rec(B, "b3"), sstate(B, 2)))
    assert sorted(tag_of(d) for d in h.client.sent_data) == ["b1", "b2", "b3"]
    stats = [json.loads(line)["state"]["destinationStats"] for line in h.emitted]
    assert stats == [{"recordCount": 3.0, "rejectedRecordCount": 1.0}, {"recordCount": 1.0}]
    assert (h.batcher.stats(route).rejected, h.batcher.stats(route).records) == (1, 3)
    (message,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "line 2" in message and "'ns.b'" in message and "SECRETVALUE" not in message


def test_only_record_messages_are_written() -> None:
    """A message of another type is not written even when it carries a well-formed 'record' member."""
    line = record_line('{"tag":"log"}', stream=A[1]).replace(b'"type":"RECORD"', b'"type":"LOG"')
    h = Harness(FakeKinesisClient())
    h.run(lines(line, record_line('{"tag":"r"}', stream=A[1]), sstate(A, 1)))
    assert [tag_of(d) for d in h.client.sent_data] == ["r"]
    assert h.ids == [1] and record_count(h.emitted[0]) == 1


def test_fast_and_exact_states_render_the_same() -> None:
    """A state the fast path cuts and the same state sent down the exact path (by an extra member) are echoed
    alike, each with its own scope's record count."""
    plain = sstate(A, 1)
    extra = plain[:-1] + b',"x":0}'
    h = Harness(FakeKinesisClient())
    h.run(lines(record_line("{}", stream=A[1]), plain, record_line("{}", stream=A[1]), extra))
    rendered = plain[:-2] + b',"destinationStats":{"recordCount":1.0}}}'
    assert h.emitted == [rendered, rendered[:-1] + b',"x":0}']
