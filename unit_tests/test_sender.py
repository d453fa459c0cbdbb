"""sender: calls carried to Kinesis in threads, one attempt each, completions signalled on wake_fd."""

from __future__ import annotations

import select
import signal
import threading
from concurrent.futures import Future
from typing import Any

import pytest

from destination_kinesis.outbox import Call, Chunk, Part, ShardQueue
from destination_kinesis.sender import Results, Sender
from destination_kinesis.sigterm import Interrupted, interrupting
from unit_tests.fakes import FakeKinesisClient, client_error, fail_entries
from unit_tests.test_dispatcher import STREAM, make_batch


def make_call(n: int = 2, tag: str = "r") -> Call:
    batch = make_batch(n, tag=tag)
    part = Part(Chunk(batch, batch.entries, batch.sizes, None), ShardQueue(None, None, b"}"), b"}", True)
    return Call(STREAM, [part], n, batch.size)


def _readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def _collect(s: Sender, n: int) -> list[tuple[Call, Future[Results]]]:
    done: list[tuple[Call, Future[Results]]] = []
    while len(done) < n:
        assert _readable(s.wake_fd, 10), "no completion was signalled"
        done.extend(s.completions())
    return done


def test_a_call_is_made_once_with_its_entries_and_its_completion_signalled_on_wake_fd() -> None:
    client = FakeKinesisClient()
    s = Sender(client, threads=2)
    try:
        assert not _readable(s.wake_fd, 0)
        call = make_call(2)
        s.submit(call)
        assert s.in_flight == 1
        ((done_call, future),) = _collect(s, 1)
        assert done_call is call and future.result() is None  # every entry accepted
        assert [(name, [e["Data"] for e in entries]) for name, entries in client.calls] == [(STREAM, [b"r0", b"r1"])]
        assert s.in_flight == 0
        assert not _readable(s.wake_fd, 0)
        assert s.completions() == []
    finally:
        s.close()


def test_results_come_back_when_entries_failed_or_when_asked_for() -> None:
    s = Sender(FakeKinesisClient([fail_entries({1})]), threads=1)
    try:
        s.submit(make_call(2))
        ((_, failed),) = _collect(s, 1)
        results = failed.result()
        assert results is not None and [bool(r.get("SequenceNumber")) for r in results] == [True, False]
        verified = make_call(2)
        verified.verify = True
        s.submit(verified)
        ((_, future),) = _collect(s, 1)
        assert future.result() is not None and len(future.result() or []) == 2
    finally:
        s.close()


def test_a_failed_call_is_not_retried_here_its_exception_is_in_the_future() -> None:
    client = FakeKinesisClient([client_error("ProvisionedThroughputExceededException")])
    s = Sender(client, threads=1)
    try:
        s.submit(make_call(1))
        ((_, future),) = _collect(s, 1)
        assert "ProvisionedThroughputExceededException" in str(future.exception())
        assert len(client.calls) == 1
    finally:
        s.close()


def test_sigterm_as_the_pool_takes_a_call_is_raised_once_the_call_is_counted_and_watched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM right after the pool took the call waits for submit to end: the call is counted in flight and its
    completion is signalled, so the states it covers can still come out."""
    s = Sender(FakeKinesisClient(), threads=1)
    pool_submit = s._pool.submit

    def submit_then_sigterm(*args: Any, **kwargs: Any) -> Future[Results]:
        future = pool_submit(*args, **kwargs)
        signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns, unless deferred
        return future

    monkeypatch.setattr(s._pool, "submit", submit_then_sigterm)
    call = make_call(2)
    try:
        with pytest.raises(Interrupted), interrupting():
            s.submit(call)
        assert s.in_flight == 1
        ((done_call, _),) = _collect(s, 1)
        assert done_call is call
    finally:
        s.close()


def test_no_more_calls_run_at_once_than_threads() -> None:
    gate = threading.Event()
    client = FakeKinesisClient(gate=gate)
    s = Sender(client, threads=2)
    try:
        calls = [make_call(1, tag=f"c{i}-") for i in range(5)]
        for call in calls:
            s.submit(call)
        assert client.entered.acquire(timeout=5) and client.entered.acquire(timeout=5)
        assert not client.entered.acquire(timeout=0.05), "a third call started while two were running"
        gate.set()
        assert sorted(id(c) for c, _ in _collect(s, 5)) == sorted(id(c) for c in calls)
        assert client.max_concurrent == 2 and s.in_flight == 0
    finally:
        gate.set()
        s.close()
