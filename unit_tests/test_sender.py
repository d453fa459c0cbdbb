"""sender: PutRecords with every failed entry resent, retryable errors retried, others failing at once; in flight."""

from __future__ import annotations

import select
import signal
import threading
from concurrent.futures import Future
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from destination_kinesis import aws_errors, sender
from destination_kinesis.batcher import Batch
from destination_kinesis.checkpoint import Lane, Run
from destination_kinesis.errors import ConnectorError
from destination_kinesis.pressure import Pressure
from destination_kinesis.sender import Sender, SendStats, put_batch
from destination_kinesis.sigterm import Interrupted, interrupting
from unit_tests.conftest import FakeKinesisClient, accept_all, client_error, decode_entry, encode_entry, fail_entries

pytestmark = pytest.mark.usefixtures("fast_backoff")

#: The production backoff, read before any test shrinks it.
PRODUCTION_BACKOFF = (sender.BACKOFF_BASE_SECONDS, sender.BACKOFF_MAX_SECONDS, sender.DEFAULT_RETRY_TIMEOUT_SECONDS)
RETRY_SECONDS = 0.3
STREAM = "orders_kinesis"


def make_batch(n: int = 5, stream: str = STREAM, tag: str = "r") -> Batch:
    batch = Batch(stream)
    for i in range(n):
        batch.entries.append(encode_entry(f"{tag}{i}".encode(), f"key-{tag}{i}"))
    batch.runs.append(Run(Lane(), 0))
    return batch


def _put(client: FakeKinesisClient, batch: Batch, abort: threading.Event | None = None,
         retry_seconds: float = RETRY_SECONDS) -> SendStats:
    return put_batch(client, batch, retry_seconds, abort or threading.Event())


def _decoded(batch: Batch) -> list[dict[str, Any]]:
    return [decode_entry(entry) for entry in batch.entries]


def _data(entries: list[dict[str, Any]]) -> list[bytes]:
    return [entry["Data"] for entry in entries]


def _fails(client: FakeKinesisClient, batch: Batch, failure_type: str, **kwargs: Any) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        _put(client, batch, **kwargs)
    assert caught.value.failure_type == failure_type, caught.value.message
    return caught.value


def test_production_backoff_is_bounded() -> None:
    """Backoff starts at 0.1 s and is capped at 10 s; a batch is retried for at most 5 minutes, well within the
    platform's 15 minutes between states."""
    assert PRODUCTION_BACKOFF == (0.1, 10.0, 300.0)


def test_all_accepted_in_one_call() -> None:
    """A fully accepted batch takes one call with every entry, in order, to its stream."""
    client = FakeKinesisClient()
    batch = make_batch(5)
    stats = _put(client, batch)
    assert client.calls == [(STREAM, _decoded(batch))]
    assert (stats.calls, stats.resent_entries, stats.throttled) == (1, 0, 0)


def test_partial_failure_resends_exactly_the_failed_entries() -> None:
    """Each retry sends exactly the entries that failed in the call before, until all are accepted."""
    client = FakeKinesisClient([fail_entries({1, 3}), fail_entries({0})])
    stats = _put(client, make_batch(5))
    assert [_data(entries) for _, entries in client.calls] == [
        [b"r0", b"r1", b"r2", b"r3", b"r4"],
        [b"r1", b"r3"],
        [b"r1"],
    ]
    assert [name for name, _ in client.calls] == [STREAM] * 3
    assert (stats.calls, stats.resent_entries, stats.throttled) == (3, 3, 3)


def test_resent_entries_keep_their_partition_keys() -> None:
    """A resent entry is the same entry: same data, same partition key."""
    client = FakeKinesisClient([fail_entries({2}, code="InternalFailure")])
    batch = make_batch(3)
    _put(client, batch)
    assert client.calls[1][1] == [_decoded(batch)[2]]


@pytest.mark.parametrize(("failed", "reported", "expected_calls"), [({2}, 0, 2), (set(), 5, 1)],
                         ids=["failure reported as 0", "success reported as 5 failures"])
def test_per_entry_results_are_trusted_over_failed_record_count(failed: set[int], reported: int,
                                                                 expected_calls: int) -> None:
    """A wrong FailedRecordCount changes nothing: the per-entry results decide what is resent."""
    client = FakeKinesisClient([fail_entries(failed, failed_record_count=reported)])
    _put(client, make_batch(3))
    assert len(client.calls) == expected_calls
    if failed:
        assert _data(client.calls[1][1]) == [b"r2"]


def test_entry_without_sequence_number_or_error_code_is_resent() -> None:
    """An entry result with neither SequenceNumber nor ErrorCode was not written: it is resent."""
    client = FakeKinesisClient([lambda entries: {"FailedRecordCount": 0, "Records": [{}, *accept_all(entries[1:])
                                                                                       ["Records"]]}])
    _put(client, make_batch(2))
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
    """A retryable whole-call error repeats the whole call, with the same entries, until it passes."""
    client = FakeKinesisClient([error, error])
    batch = make_batch(3)
    stats = _put(client, batch)
    assert [entries for _, entries in client.calls] == [_decoded(batch)] * 3
    assert stats.calls == 3


def test_throttled_calls_are_counted() -> None:
    """Throttled whole calls and throttled entries both count in the stats."""
    client = FakeKinesisClient([client_error("ProvisionedThroughputExceededException"), fail_entries({0, 1})])
    stats = _put(client, make_batch(3))
    assert (stats.calls, stats.throttled, stats.resent_entries) == (3, 3, 2)


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
    """Errors that retrying cannot fix fail at once with the right failure type, naming the stream and the code."""
    client = FakeKinesisClient([client_error(code)])
    error = _fails(client, make_batch(3), failure_type)
    assert len(client.calls) == 1
    assert f"'{STREAM}'" in error.message and code in error.message


def test_retries_exhausted_on_whole_call_errors_is_transient() -> None:
    """A stream that throttles every call for the whole retry time fails as transient_error naming the stream and
    the error code, after several attempts."""
    client = FakeKinesisClient(default=client_error("ProvisionedThroughputExceededException"))
    error = _fails(client, make_batch(3), "transient_error")
    assert f"'{STREAM}'" in error.message and "ProvisionedThroughputExceededException" in error.message
    assert len(client.calls) > 2


def test_retries_exhausted_on_failing_entries_is_transient() -> None:
    """Entries that keep failing for the whole retry time fail as transient_error naming the stream, how many
    records were not accepted and their error code."""
    client = FakeKinesisClient(default=fail_entries(lambda _, entry: entry["Data"] in (b"r0", b"r2"),
                                                    message="Rate exceeded for shard shardId-1"))
    error = _fails(client, make_batch(3), "transient_error")
    assert f"'{STREAM}'" in error.message
    assert "did not accept 2 records" in error.message
    assert "ProvisionedThroughputExceededException x2" in error.message
    assert "Rate exceeded for shard shardId-1" in error.message
    assert all(_data(entries) == [b"r0", b"r2"] for _, entries in client.calls[1:])


def test_connection_errors_exhausted_are_transient() -> None:
    """An endpoint that stays unreachable fails as transient_error saying it could not connect."""
    client = FakeKinesisClient(default=EndpointConnectionError(endpoint_url="https://kinesis.invalid"))
    error = _fails(client, make_batch(1), "transient_error")
    assert "Could not connect" in error.message and f"'{STREAM}'" in error.message


def test_result_length_mismatch_is_a_system_error_without_retry() -> None:
    """A response with fewer results than entries cannot be trusted: system_error, no retry."""
    client = FakeKinesisClient([lambda entries: accept_all(entries[:-1])])
    error = _fails(client, make_batch(3), "system_error")
    assert len(client.calls) == 1
    assert "3 records with 2 results" in error.message


def test_abort_set_before_stops_after_the_first_attempt() -> None:
    """With abort already set, a failing batch is tried once and fails as transient_error, with no retry."""
    abort = threading.Event()
    abort.set()
    client = FakeKinesisClient(default=fail_entries({0}))
    _fails(client, make_batch(2), "transient_error", abort=abort, retry_seconds=60.0)
    assert len(client.calls) == 1


def test_abort_set_while_retrying_stops_promptly() -> None:
    """Setting abort during the retries (even with a long retry time) stops them after the current attempt."""
    abort = threading.Event()

    def failing_and_aborting(entries: list[dict[str, Any]]) -> dict[str, Any]:
        if len(client.calls) == 3:
            abort.set()
        return fail_entries({0})(entries)

    client = FakeKinesisClient(default=failing_and_aborting)
    _fails(client, make_batch(2), "transient_error", abort=abort, retry_seconds=600.0)
    assert len(client.calls) == 3


def test_abort_interrupts_a_long_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait between attempts returns as soon as abort is set (here the backoff would be 60 s); at most the
    attempt that was due runs, then the batch fails as transient_error."""
    monkeypatch.setattr(sender, "BACKOFF_BASE_SECONDS", 60.0)
    monkeypatch.setattr(sender, "BACKOFF_MAX_SECONDS", 60.0)
    monkeypatch.setattr(sender.random, "uniform", lambda low, high: high)
    abort = threading.Event()
    client = FakeKinesisClient(default=fail_entries({0}))
    done = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _put(client, make_batch(1), abort=abort, retry_seconds=600.0)
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert client.entered.acquire(timeout=5)  # the first attempt happened; now it waits 60 s
    abort.set()
    assert done.wait(10), "put_batch kept waiting after abort was set"
    thread.join()
    assert 1 <= len(client.calls) <= 2
    assert isinstance(errors[0], ConnectorError)
    assert errors[0].failure_type == "transient_error"


# --------------------------------------------------------------------------------------------------------------------
# Sender: batches in flight, completions signalled on wake_fd
# --------------------------------------------------------------------------------------------------------------------


def _readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def _collect(s: Sender, n: int) -> list[tuple[Batch, Future[SendStats]]]:
    done: list[tuple[Batch, Future[SendStats]]] = []
    while len(done) < n:
        assert _readable(s.wake_fd, 10), "no completion was signalled"
        done.extend(s.completions())
    return done


def test_completions_are_signalled_on_wake_fd() -> None:
    """wake_fd becomes readable when a batch completes; completions() returns it with its stats and drains the
    signal; in_flight counts the batch until then."""
    s = Sender(FakeKinesisClient(), max_in_flight=2, retry_seconds=RETRY_SECONDS)
    try:
        assert not _readable(s.wake_fd, 0)
        batch = make_batch(2)
        s.submit(batch)
        assert s.in_flight == 1
        assert _readable(s.wake_fd, 10)
        ((done_batch, future),) = _collect(s, 1)
        assert done_batch is batch and future.result().calls == 1
        assert s.in_flight == 0
        assert not _readable(s.wake_fd, 0)
        assert s.completions() == []
    finally:
        s.close()


def test_sigterm_as_the_pool_takes_a_batch_is_raised_once_the_batch_is_counted_and_watched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM right after the pool took the batch waits for submit to end: the batch is counted in flight and
    its completion is signalled, so the states it covers can still come out."""
    s = Sender(FakeKinesisClient(), max_in_flight=1, retry_seconds=RETRY_SECONDS)
    pool_submit = s._pool.submit

    def submit_then_sigterm(*args: Any, **kwargs: Any) -> Future[SendStats]:
        future = pool_submit(*args, **kwargs)
        signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns, unless deferred
        return future

    monkeypatch.setattr(s._pool, "submit", submit_then_sigterm)
    batch = make_batch(2)
    try:
        with pytest.raises(Interrupted), interrupting():
            s.submit(batch)
        assert s.in_flight == 1
        ((done_batch, _),) = _collect(s, 1)
        assert done_batch is batch
    finally:
        s.close()


def test_failures_are_delivered_in_the_future() -> None:
    """A batch that fails completes too; its future holds the traced error."""
    s = Sender(FakeKinesisClient([client_error("AccessDeniedException")]), max_in_flight=1,
               retry_seconds=RETRY_SECONDS)
    try:
        s.submit(make_batch(1))
        ((_, future),) = _collect(s, 1)
        error = future.exception()
        assert isinstance(error, ConnectorError) and error.failure_type == "config_error"
    finally:
        s.close()


def test_max_in_flight_is_respected() -> None:
    """With calls held open, no more than max_in_flight PutRecords run at once; all batches complete afterwards."""
    gate = threading.Event()
    client = FakeKinesisClient(gate=gate)
    s = Sender(client, max_in_flight=2, retry_seconds=RETRY_SECONDS)
    try:
        batches = [make_batch(1, tag=f"b{i}-") for i in range(5)]
        for batch in batches:
            s.submit(batch)
        assert client.entered.acquire(timeout=5) and client.entered.acquire(timeout=5)
        assert not client.entered.acquire(timeout=0.05), "a third call started while two were in flight"
        assert s.in_flight == 5
        gate.set()
        done = _collect(s, 5)
        assert sorted(id(b) for b, _ in done) == sorted(id(b) for b in batches)
        assert all(future.result().calls == 1 for _, future in done)
        assert client.max_concurrent == 2
        assert s.in_flight == 0
    finally:
        gate.set()
        s.close()


def test_shutdown_after_abort_cuts_retries_short() -> None:
    """Setting abort then shutting down returns once the running batches stop retrying; they fail as transient."""
    client = FakeKinesisClient(default=fail_entries({0}))
    s = Sender(client, max_in_flight=2, retry_seconds=600.0)
    try:
        s.submit(make_batch(1))
        assert client.entered.acquire(timeout=5)
        s.abort.set()
        s.shutdown()
        ((_, future),) = _collect(s, 1)
        error = future.exception()
        assert isinstance(error, ConnectorError) and error.failure_type == "transient_error"
    finally:
        s.close()


# --------------------------------------------------------------------------------------------------------------------
# Pressure: every call's outcome is reported
# --------------------------------------------------------------------------------------------------------------------


class RecordingPressure(Pressure):
    """A real Pressure (its clock standing still, so only the first throttle halves) that records each report."""

    def __init__(self, maximum: int = 8):
        super().__init__(maximum, clock=lambda: 1000.0)
        self.reports: list[str] = []

    def throttled(self, stream_name: str) -> None:
        self.reports.append("throttled")
        super().throttled(stream_name)

    def succeeded(self) -> None:
        self.reports.append("succeeded")
        super().succeeded()


def _put_reporting(client: FakeKinesisClient, batch: Batch, pressure: Pressure) -> SendStats:
    return put_batch(client, batch, RETRY_SECONDS, threading.Event(), pressure)


def test_fully_accepted_call_reports_success() -> None:
    """A call whose entries were all accepted is one success; the limit grows by 1/limit when below the maximum."""
    p = RecordingPressure(8)
    _put_reporting(FakeKinesisClient(), make_batch(3), p)
    assert p.reports == ["succeeded"] and p.limit == 8
    p.throttled("s")
    assert p.limit == 4
    for _ in range(4):
        _put_reporting(FakeKinesisClient(), make_batch(1), p)
    assert p.limit == 4  # 4 → 4.25 → 4.49 → 4.71 → 4.92: below 5 until the fifth success
    _put_reporting(FakeKinesisClient(), make_batch(1), p)
    assert p.limit == 5 and p.decreases == 1


def test_throttled_entries_report_throttling_then_success() -> None:
    """A call with ProvisionedThroughputExceeded entries is a throttle (the limit halves); the resend that
    goes through is a success."""
    p = RecordingPressure(8)
    _put_reporting(FakeKinesisClient([fail_entries({1})]), make_batch(3), p)
    assert p.reports == ["throttled", "succeeded"]
    assert p.limit == 4 and p.decreases == 1


@pytest.mark.parametrize("code", sorted(aws_errors.THROTTLING_CODES))
def test_throttling_whole_call_errors_report_throttling(code: str) -> None:
    """A whole call refused for its rate (ProvisionedThroughputExceeded, Throttling, KMS throttling, …) is a
    throttle; the retry that goes through is a success."""
    p = RecordingPressure(8)
    stats = _put_reporting(FakeKinesisClient([client_error(code)]), make_batch(2), p)
    assert p.reports == ["throttled", "succeeded"]
    assert p.limit == 4 and stats.throttled == 1


def test_throttling_in_entries_and_calls_mixed() -> None:
    """Each throttled attempt is reported, entries or whole call alike (the clock here stands still, so only the
    first one halves)."""
    p = RecordingPressure(8)
    _put_reporting(FakeKinesisClient([client_error("ThrottlingException"), fail_entries({0, 2}),
                                      client_error("ProvisionedThroughputExceededException")]), make_batch(3), p)
    assert p.reports == ["throttled", "throttled", "throttled", "succeeded"]
    assert p.decreases == 1


def test_internal_failure_entries_are_not_throttling() -> None:
    """Entries failed with InternalFailure are resent, but the call was not refused for its rate: it counts as a
    success, and the limit does not drop."""
    p = RecordingPressure(8)
    _put_reporting(FakeKinesisClient([fail_entries({0}, code="InternalFailure", message="Internal service failure")]),
                   make_batch(2), p)
    assert p.reports == ["succeeded", "succeeded"]
    assert p.limit == 8 and p.decreases == 0


def test_server_errors_are_not_throttling() -> None:
    """A whole-call 500 or 503 is retried without touching the limit; only the call that went through reports."""
    p = RecordingPressure(8)
    _put_reporting(FakeKinesisClient([client_error("InternalFailure", status=500),
                                      client_error("ServiceUnavailable", status=503)]), make_batch(2), p)
    assert p.reports == ["succeeded"] and p.decreases == 0


def test_fatal_errors_report_nothing() -> None:
    """A call refused for a reason retrying cannot fix says nothing about the rate."""
    p = RecordingPressure(8)
    with pytest.raises(ConnectorError):
        _put_reporting(FakeKinesisClient([client_error("AccessDeniedException")]), make_batch(2), p)
    assert p.reports == []


def test_sender_limit_follows_pressure_after_throttling() -> None:
    """Sender.limit starts at max_in_flight; a throttled batch halves it, so fewer batches may be in flight."""
    client = FakeKinesisClient([client_error("ProvisionedThroughputExceededException")])
    s = Sender(client, max_in_flight=8, retry_seconds=RETRY_SECONDS)
    try:
        assert s.limit == 8
        s.submit(make_batch(2))
        ((_, future),) = _collect(s, 1)
        assert future.result().throttled == 1
        assert s.limit == 4 < 8  # halved to 4, then the successful retry grew it by 1/4
        assert s.pressure.decreases == 1
    finally:
        s.close()


def test_backoff_grows_while_nothing_gets_through_and_starts_again_on_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-call errors wait longer each time (full jitter over 0.1, 0.2, 0.4 s...); a call that gets some entries
    accepted brings the wait back to the base, so a stream taking half of each call is not slowed down for it."""
    waits: list[float] = []
    monkeypatch.setattr(sender.random, "uniform", lambda low, high: high)
    monkeypatch.setattr(sender, "_interruptible_sleep", lambda abort, seconds: waits.append(seconds))
    throttle = client_error("ProvisionedThroughputExceededException")
    client = FakeKinesisClient([throttle, throttle, throttle, fail_entries({0, 1, 2}), fail_entries({0}),
                                fail_entries({0})])
    _put(client, make_batch(4), retry_seconds=600.0)
    base = sender.BACKOFF_BASE_SECONDS
    assert waits == [base, 2 * base, 4 * base, base, base, 2 * base]
