"""writer: input fd → records to Kinesis and states out once covered, with real Batcher, Checkpoint and Sender
over a fake Kinesis client."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from destination_kinesis.batcher import Batcher
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.errors import ConnectorError
from destination_kinesis.limits import MAX_RECORD_BYTES, MAX_REQUEST_BYTES
from destination_kinesis.naming import StreamKey, kinesis_stream_names
from destination_kinesis.sender import Sender
from destination_kinesis.writer import Route, Writer
from unit_tests.conftest import (
    FakeKinesisClient,
    Feed,
    accept_all,
    client_error,
    fail_entries,
    global_state_line,
    lines,
    record_count,
    record_line,
    run_on_pipe,
    state_id,
    stream_state_line,
    write_all,
)

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
                 on_emit: Callable[[bytes], None] | None = None):
        self.client = client
        self.emitted: list[bytes] = []
        self.on_emit = on_emit
        names = kinesis_stream_names(keys)
        assert all(names[k] == KINESIS[k] for k in keys if k in KINESIS)
        self.checkpoint = Checkpoint(keys, self._emit)
        self.routes = {key: Route(key, names[key], self.checkpoint.lane(key)) for key in keys}
        self.writer = Writer(self.routes, Batcher(buffer_size, linger_seconds=linger_seconds),
                             Sender(client, max_in_flight=max_in_flight, retry_seconds=0.3), self.checkpoint)

    def _emit(self, line: bytes) -> None:
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


def _records_before(position: int, scope: StreamKey | None) -> set[str]:
    tags = set()
    for line in INPUT[:position]:
        message = json.loads(line) if line else {}
        if message.get("type") == "RECORD":
            key = (message["record"].get("namespace"), message["record"]["stream"])
            if scope is None or key == scope:
                tags.add(message["record"]["data"]["tag"])
    return tags


def _state_positions() -> dict[int, tuple[int, StreamKey | None]]:
    positions = {}
    for i, line in enumerate(INPUT):
        message = json.loads(line) if line else {}
        if message.get("type") == "STATE":
            state = message["state"]
            scope = None
            if state.get("type") == "STREAM":
                descriptor = state["stream"]["stream_descriptor"]
                scope = (descriptor.get("namespace"), descriptor["name"])
            positions[state["id"]] = (i, scope)
    return positions


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
    positions = _state_positions()
    accepted_so_far: set[str] = set()
    for event, value in log:
        if event == "accepted":
            accepted_so_far.add(tag_of(value))
        else:
            position, scope = positions[state_id(value)]
            missing = _records_before(position, scope) - accepted_so_far
            assert not missing, f"state {state_id(value)} emitted before {missing} were accepted"
    assert accepted_so_far == _records_before(len(INPUT), None)
    for stream_name, entries in h.client.calls:
        for entry in entries:
            assert stream_name == (KINESIS[A] if tag_of(entry["Data"]).startswith("a") else KINESIS[B])
    if resends:
        assert sum(t.resent_entries for t in h.writer.progress.streams.values()) >= 3
    assert h.routes[A].records == 5 and h.routes[B].records == 5
    accepted_a = {e["PartitionKey"]: len(e["Data"]) + len(e["PartitionKey"])
                  for name, entries in h.client.calls if name == KINESIS[A] for e in entries}
    assert h.routes[A].bytes == sum(accepted_a.values())


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
    batch closes only when the next record would not fit."""
    h = Harness(FakeKinesisClient(), buffer_size=500)
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


@pytest.mark.parametrize("buffer_size", [1, 100])
def test_oversize_record_fails_naming_stream_and_line_and_nothing_after_it_is_acknowledged(buffer_size: int) -> None:
    """A record over 1 MiB as a Kinesis record fails naming its stream and line; records after it are never sent
    and states after it never emitted (with bufferSize 1 the earlier record and its state still go out)."""
    h = Harness(FakeKinesisClient(), buffer_size=buffer_size)
    big = rec(B, "big", pad=MAX_RECORD_BYTES)
    error = _fails(h, lines(rec(B, "b1"), sstate(B, 1), big, sstate(B, 2), rec(B, "b2"), sstate(B, 3)),
                   "system_error")
    assert re.search(r"\bline 3\b", error.message) and "'ns.b'" in error.message
    assert str(MAX_RECORD_BYTES) in error.message
    sent = [tag_of(d) for d in h.client.sent_data]
    assert "big" not in sent and "b2" not in sent
    if buffer_size == 1:
        assert sent == ["b1"] and h.ids == [1]
    else:
        assert sent == [] and h.ids == []


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
