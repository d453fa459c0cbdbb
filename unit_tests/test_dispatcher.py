"""dispatcher: every entry resent until accepted, retryable errors retried, others failing at once, batches
acknowledged once all their entries are in, throttling fed back to the in-flight limit and the shard budgets."""

from __future__ import annotations

import select
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from destination_kinesis import aws_errors, dispatcher
from destination_kinesis.batcher import Batch
from destination_kinesis.checkpoint import Lane, Run
from destination_kinesis.dispatcher import Dispatcher, backoff
from destination_kinesis.errors import ConnectorError
from destination_kinesis.outbox import Outbox
from destination_kinesis.pacing import ShardLimits
from destination_kinesis.packing import Packer
from destination_kinesis.progress import Progress
from destination_kinesis.sender import Sender
from destination_kinesis.shardmap import MAX_HASH_KEY, Shard, ShardMap
from unit_tests.fakes import FakeKinesisClient, accept_all, client_error, encode_entry, fail_entries
from unit_tests.test_shardmap import even_shards

pytestmark = pytest.mark.usefixtures("fast_backoff")

#: The production backoff, read before any test shrinks it.
PRODUCTION_BACKOFF = (dispatcher.BACKOFF_BASE_SECONDS, dispatcher.BACKOFF_MAX_SECONDS)
RETRY_SECONDS = 0.3
STREAM = "orders_kinesis"
LIMITS = ShardLimits()


def make_batch(n: int = 5, stream: str = STREAM, tag: str = "r") -> Batch:
    batch = Batch(stream)
    for i in range(n):
        batch.entries.append(encode_entry(f"{tag}{i}".encode(), f"key-{tag}{i}"))
        batch.sizes.append(10)
    batch.size = 10 * n
    batch.pending = n
    batch.runs.append(Run(Lane(), 0))
    return batch


class Acks:
    """Stands in for the checkpoint: records the runs acknowledged."""

    def __init__(self) -> None:
        self.runs: list[Run] = []

    def ack(self, runs: list[Run]) -> None:
        self.runs.extend(runs)


class Setup:
    """A dispatcher over a fake client, with one outbox (unpaced unless a shard map is given)."""

    def __init__(self, client: FakeKinesisClient, max_in_flight: int = 2, retry_seconds: float = RETRY_SECONDS,
                 shard_map: ShardMap | None = None, limits: ShardLimits = LIMITS,
                 reload: dispatcher.MapLoader | None = None, packer: Packer | None = None):
        self.client = client
        self.acks = Acks()
        self.progress = Progress([STREAM], time.monotonic())
        self.outbox = Outbox(STREAM, shard_map, limits, 500, 5 * 1024 * 1024, time.monotonic(), packer)
        self.dispatcher = Dispatcher([self.outbox], Sender(client, max_in_flight), self.acks,  # type: ignore[arg-type]
                                     self.progress, max_in_flight, retry_seconds, reload)

    def run(self, *batches: Batch, timeout: float = 20.0) -> None:
        """Send the batches and settle completions until every entry is accepted (or a failure is raised)."""
        d = self.dispatcher
        try:
            for batch in batches:
                d.put(batch)
            deadline = time.monotonic() + timeout
            while not d.idle:
                assert time.monotonic() < deadline, "the dispatcher never finished"
                select.select([d.sender.wake_fd], [], [], 0.01)
                d.collect()
        except BaseException:
            d.abort()
            d.sender.shutdown()
            d.collect(raise_errors=False)
            raise
        finally:
            d.sender.close()

    def fails(self, batch: Batch, failure_type: str) -> ConnectorError:
        with pytest.raises(ConnectorError) as caught:
            self.run(batch)
        assert caught.value.failure_type == failure_type, caught.value.message
        return caught.value


def _data(entries: list[dict[str, Any]]) -> list[bytes]:
    return [entry["Data"] for entry in entries]


def test_production_backoff_is_bounded() -> None:
    """Backoff starts at 0.1 s and is capped at 10 s."""
    assert PRODUCTION_BACKOFF == (0.1, 10.0)


def test_backoff_is_full_jitter_over_a_doubling_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatcher, "BACKOFF_BASE_SECONDS", 0.1)
    monkeypatch.setattr(dispatcher, "BACKOFF_MAX_SECONDS", 10.0)
    monkeypatch.setattr(dispatcher.random, "uniform", lambda low, high: (low, high))
    assert [backoff(n) for n in (1, 2, 3, 8, 9)] == [(0, 0.1), (0, 0.2), (0, 0.4), (0, 10.0), (0, 10.0)]


def test_all_accepted_in_one_call_and_acknowledged() -> None:
    client = FakeKinesisClient()
    batch = make_batch(5)
    setup = Setup(client)
    setup.run(batch)
    assert [(name, _data(entries)) for name, entries in client.calls] == [
        (STREAM, [b"r0", b"r1", b"r2", b"r3", b"r4"])]
    assert setup.acks.runs == batch.runs and batch.pending == 0
    totals = setup.progress.streams[STREAM]
    assert (totals.records, totals.calls, totals.resent_entries, totals.throttled) == (5, 1, 0, 0)


def test_partial_failure_resends_exactly_the_failed_entries() -> None:
    client = FakeKinesisClient([fail_entries({1, 3}), fail_entries({0})])
    setup = Setup(client)
    batch = make_batch(5)
    setup.run(batch)
    assert [_data(entries) for _, entries in client.calls] == [
        [b"r0", b"r1", b"r2", b"r3", b"r4"],
        [b"r1", b"r3"],
        [b"r1"],
    ]
    assert setup.acks.runs == batch.runs
    totals = setup.progress.streams[STREAM]
    assert (totals.records, totals.calls, totals.resent_entries, totals.throttled) == (5, 3, 3, 3)


def test_resent_entries_keep_their_partition_keys() -> None:
    client = FakeKinesisClient([fail_entries({2}, code="InternalFailure")])
    Setup(client).run(make_batch(3))
    assert client.calls[1][1] == [client.calls[0][1][2]]


@pytest.mark.parametrize(("failed", "reported", "expected_calls"), [({2}, 0, 2), (set(), 5, 1)],
                         ids=["failure reported as 0", "success reported as 5 failures"])
def test_per_entry_results_are_trusted_over_failed_record_count(failed: set[int], reported: int,
                                                                 expected_calls: int) -> None:
    client = FakeKinesisClient([fail_entries(failed, failed_record_count=reported)])
    Setup(client).run(make_batch(3))
    assert len(client.calls) == expected_calls
    if failed:
        assert _data(client.calls[1][1]) == [b"r2"]


def test_entry_without_sequence_number_or_error_code_is_resent() -> None:
    client = FakeKinesisClient([lambda entries: {"FailedRecordCount": 0, "Records": [{}, *accept_all(entries[1:])
                                                                                       ["Records"]]}])
    Setup(client).run(make_batch(2))
    assert _data(client.calls[1][1]) == [b"r0"]


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException"),
        client_error("InternalFailure", status=500),
        client_error("ServiceUnavailable", status=503),
        client_error("KMSThrottlingException"),
        EndpointConnectionError(endpoint_url="https://kinesis.invalid"),
        ReadTimeoutError(endpoint_url="https://kinesis.invalid"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(aws_errors.error_code(e)),
)
def test_retryable_whole_call_errors_are_retried(error: Exception) -> None:
    client = FakeKinesisClient([error, error])
    batch = make_batch(3)
    setup = Setup(client)
    setup.run(batch)
    assert [_data(entries) for _, entries in client.calls] == [[b"r0", b"r1", b"r2"]] * 3
    assert setup.acks.runs == batch.runs


@pytest.mark.parametrize(
    ("code", "failure_type"),
    [
        ("AccessDeniedException", "config_error"),
        ("ResourceNotFoundException", "config_error"),
        ("KMSDisabledException", "config_error"),
        ("UnrecognizedClientException", "config_error"),
        ("InvalidArgumentException", "system_error"),
        ("ValidationException", "system_error"),
    ],
)
def test_non_retryable_errors_fail_after_exactly_one_call(code: str, failure_type: str) -> None:
    client = FakeKinesisClient([client_error(code)])
    setup = Setup(client)
    error = setup.fails(make_batch(3), failure_type)
    assert len(client.calls) == 1 and setup.acks.runs == []
    assert f"'{STREAM}'" in error.message and code in error.message


def test_retries_exhausted_on_whole_call_errors_is_transient() -> None:
    client = FakeKinesisClient(default=client_error("ProvisionedThroughputExceededException"))
    error = Setup(client).fails(make_batch(3), "transient_error")
    assert f"'{STREAM}'" in error.message and "ProvisionedThroughputExceededException" in error.message
    assert len(client.calls) > 2


def test_retries_exhausted_on_failing_entries_is_transient() -> None:
    client = FakeKinesisClient(default=fail_entries(lambda _, entry: entry["Data"] in (b"r0", b"r2"),
                                                    message="Rate exceeded for shard shardId-1"))
    error = Setup(client).fails(make_batch(3), "transient_error")
    assert f"'{STREAM}'" in error.message
    assert "did not accept 2 records" in error.message
    assert "ProvisionedThroughputExceededException x2" in error.message
    assert "Rate exceeded for shard shardId-1" in error.message
    assert all(_data(entries) == [b"r0", b"r2"] for _, entries in client.calls[1:])


def test_connection_errors_exhausted_are_transient() -> None:
    client = FakeKinesisClient(default=EndpointConnectionError(endpoint_url="https://kinesis.invalid"))
    error = Setup(client).fails(make_batch(1), "transient_error")
    assert "Could not connect" in error.message and f"'{STREAM}'" in error.message


def test_result_length_mismatch_is_a_system_error_without_retry() -> None:
    client = FakeKinesisClient([lambda entries: accept_all(entries[:-1])])
    error = Setup(client).fails(make_batch(3), "system_error")
    assert len(client.calls) == 1
    assert "3 records with 2 results" in error.message


def test_nothing_more_is_sent_once_aborted() -> None:
    client = FakeKinesisClient(default=fail_entries({0}))
    setup = Setup(client, retry_seconds=600.0)
    d = setup.dispatcher
    d.put(make_batch(2))
    assert client.entered.acquire(timeout=5)
    d.abort()
    d.sender.shutdown()
    d.collect(raise_errors=False)
    d.put(make_batch(2, tag="late"))
    d.pump()
    d.sender.close()
    assert len(client.calls) == 1 and d.next_time() is None


def test_calls_in_flight_stay_within_the_limit() -> None:
    gate = threading.Event()
    client = FakeKinesisClient(gate=gate)
    setup = Setup(client, max_in_flight=2)
    d = setup.dispatcher
    try:
        for i in range(5):
            d.put(make_batch(1, tag=f"b{i}-"))
        assert client.entered.acquire(timeout=5) and client.entered.acquire(timeout=5)
        assert not client.entered.acquire(timeout=0.05), "a third call started while two were in flight"
        assert d.in_flight == 2
        assert d.next_time() is None  # entries wait, but none may go before a call completes: no deadline to keep
        gate.set()
        setup.run()
    finally:
        gate.set()
    assert client.max_concurrent == 2 and len(setup.acks.runs) == 5


# --------------------------------------------------------------------------------------------------------------------
# Throttling fed back: the in-flight limit, or the shard's budget
# --------------------------------------------------------------------------------------------------------------------


def test_throttled_entries_of_an_unpaced_stream_halve_the_calls_in_flight() -> None:
    setup = Setup(FakeKinesisClient([fail_entries({1})]), max_in_flight=8)
    setup.run(make_batch(3))
    assert setup.dispatcher.pressure.decreases == 1


@pytest.mark.parametrize("code", sorted(aws_errors.THROTTLING_CODES))
def test_throttling_whole_call_errors_halve_the_calls_in_flight(code: str) -> None:
    setup = Setup(FakeKinesisClient([client_error(code)]), max_in_flight=8,
                  shard_map=ShardMap(even_shards(2)))
    setup.run(make_batch(2))
    assert setup.dispatcher.pressure.decreases == 1
    assert setup.progress.streams[STREAM].throttled == 2


def test_internal_failures_and_server_errors_are_not_throttling() -> None:
    client = FakeKinesisClient([fail_entries({0}, code="InternalFailure", message="Internal service failure"),
                                client_error("InternalFailure", status=500),
                                client_error("ServiceUnavailable", status=503)])
    setup = Setup(client, max_in_flight=8)
    setup.run(make_batch(2))
    assert setup.dispatcher.pressure.decreases == 0 and setup.dispatcher.limit == 8


def test_throttled_entries_of_a_paced_stream_lower_that_shards_rate_not_the_calls_in_flight() -> None:
    """Free entries throttled on one shard: its rate is lowered, the in-flight limit stays, and the
    entries go again (to any shard with room)."""
    client = FakeKinesisClient([fail_entries({0, 1})])
    setup = Setup(client, max_in_flight=8, shard_map=ShardMap(even_shards(2)))
    setup.run(make_batch(4))
    (first, *rest) = client.calls
    throttled_shard = first[1][0]["ExplicitHashKey"]
    queue = next(q for q in setup.outbox.shards if q.shard is not None and str(q.shard.start) == throttled_shard)
    assert queue.budget is not None and queue.budget.factor < 1.0 and queue.throttled == 2
    assert setup.dispatcher.pressure.decreases == 0
    assert sorted(_data(rest[0][1])) == [b"r0", b"r1"]
    assert setup.progress.streams[STREAM].throttled == 2


def test_the_backoff_grows_while_nothing_gets_through_and_starts_again_on_progress(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Per shard for rejected entries, per stream for failed calls."""
    stalls: list[int] = []

    def no_wait(stalled: int) -> float:
        stalls.append(stalled)
        return 0.0

    monkeypatch.setattr(dispatcher, "backoff", no_wait)
    throttle = client_error("ProvisionedThroughputExceededException")
    client = FakeKinesisClient([throttle, throttle, fail_entries({0, 1, 2, 3}), fail_entries({0}),
                                fail_entries({0})])
    Setup(client, retry_seconds=600.0).run(make_batch(4))
    assert stalls == [1, 2, 1, 1, 2]


# --------------------------------------------------------------------------------------------------------------------
# The shard map checked against the shards records land on
# --------------------------------------------------------------------------------------------------------------------


def test_results_naming_other_shards_than_predicted_load_the_map_again() -> None:
    """Answers are read whole now and then; entries that landed elsewhere than the map says make the stream load its
    map again (a reshard), and the new shards are used from then on."""
    old, new = ShardMap(even_shards(2)), ShardMap(even_shards(3))
    loads: list[str] = []

    def reload(name: str) -> ShardMap:
        loads.append(name)
        return new

    def landed_elsewhere(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"FailedRecordCount": 0, "Records": [{"SequenceNumber": f"{i}", "ShardId": "shardId-000000000009"}
                                                    for i in range(len(entries))]}

    setup = Setup(FakeKinesisClient(default=landed_elsewhere), shard_map=old, reload=reload)
    setup.run(*(make_batch(2, tag=f"b{i}-") for i in range(4)))
    assert loads == [STREAM]
    assert setup.outbox.map is new
    assert [q.shard for q in setup.outbox.shards] == list(new.shards)


def test_each_keys_entries_are_accepted_in_input_order_through_rejections_and_failed_calls() -> None:
    """ordering per_key: rejected entries and whole failed calls are resent before any later entry of their key;
    Kinesis accepts each key's entries in input order, other keys going on meanwhile."""
    log: list[tuple[str, Any]] = []
    client = FakeKinesisClient([fail_entries({0, 2}), client_error("InternalFailure", status=500), fail_entries({1}),
                                fail_entries({0})], log=log)
    batch = make_batch(30)
    keys = [f"k{i % 4}".encode() for i in range(30)]
    batch.keys = keys
    batch.ordered = True
    setup = Setup(client, max_in_flight=4, shard_map=ShardMap(even_shards(2)))
    setup.run(batch)
    accepted = [int(data[1:]) for event, data in log if event == "accepted"]
    assert sorted(accepted) == list(range(30))
    for k in range(4):
        of_key = [i for i in accepted if i % 4 == k]
        assert of_key == sorted(of_key), f"key k{k} out of order: {of_key}"
    assert all(len({e["PartitionKey"] for e in entries}) == len(entries) for _, entries in client.calls), \
        "a call carried two entries of one key"
    assert setup.acks.runs == batch.runs


@pytest.mark.parametrize("landed_range", ["whole", "half"])
def test_an_aggregate_that_landed_on_another_shard_is_sent_again_unless_its_records_belong_there(
        landed_range: str) -> None:
    """Kinesis accepted aggregates of keyed records on a shard the map did not know (a reshard): once the new map
    says whether all their user records belong to that shard, they are accepted (whole range), or packed again
    for the new shards and sent (half: a KCL consumer would drop them)."""
    end = MAX_HASH_KEY if landed_range == "whole" else MAX_HASH_KEY // 2
    landed = Shard("shardId-000000000009", 0, end)
    new_map = ShardMap([landed] if landed_range == "whole" else [landed, Shard("shardId-000000000010", end + 1,
                                                                               MAX_HASH_KEY)])

    def elsewhere(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [{"SequenceNumber": str(i), "ShardId": landed.id} for i in range(len(entries))]}

    def by_new_map(entries: list[dict[str, Any]]) -> dict[str, Any]:
        shards = [new_map.shards[new_map.index_of_key(e["PartitionKey"].encode())].id for e in entries]
        return {"Records": [{"SequenceNumber": str(i), "ShardId": shard} for i, shard in enumerate(shards)]}

    client = FakeKinesisClient([elsewhere], default=by_new_map)
    setup = Setup(client, shard_map=ShardMap(even_shards(2)), reload=lambda name: new_map,
                  packer=Packer(51_200, 1000))
    batch = make_batch(100)
    batch.entries = [f"r{i}".encode() for i in range(100)]
    batch.keys = [f"k{i}".encode() for i in range(100)]
    batch.packing = True
    setup.run(batch)
    assert setup.acks.runs == batch.runs
    resent = len(client.calls) - 1
    assert (resent == 0) == (landed_range == "whole"), client.calls
    assert setup.progress.streams[STREAM].records == 100
