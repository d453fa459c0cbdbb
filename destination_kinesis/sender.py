"""The only place that writes data to Kinesis: PutRecords calls in flight, with every failed entry resent.

Kinesis answers a PutRecords with one result per entry, and no SDK resends the failed entries of a call that
returned HTTP 200, so each batch is retried here: exactly the entries without a SequenceNumber are resent, and
retryable whole-call errors repeat the call, with exponential backoff and full jitter, until every entry is accepted
or the retry time runs out. How many calls may be in flight follows :class:`~destination_kinesis.pressure.Pressure`.
"""

from __future__ import annotations

import os
import queue
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    stop_any,
    stop_when_event_set,
)

from destination_kinesis import aws_errors
from destination_kinesis.batcher import Batch
from destination_kinesis.config import DEFAULT_MAX_IN_FLIGHT, DEFAULT_RETRY_TIMEOUT_SECONDS
from destination_kinesis.errors import ConnectorError, system_error, transient_error
from destination_kinesis.pressure import Pressure
from destination_kinesis.sigterm import deferred

#: Sends one PutRecords call: (stream name, entries as JSON text) → one result per entry. See
#: :class:`destination_kinesis.putrecords.PutRecords`.
Put = Callable[[str, Sequence[bytes]], list[dict[str, Any]] | None]
"""One PutRecords call: None when every entry was accepted, else one result per entry (see :mod:`putrecords`)."""

BACKOFF_BASE_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 10.0


class EntriesFailed(Exception):
    """Some entries of a PutRecords call were not accepted; they are to be resent."""

    def __init__(self, codes: Counter[str], last_message: str):
        super().__init__(f"{sum(codes.values())} entries failed: {dict(codes)}")
        self.codes = codes
        self.last_message = last_message


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, EntriesFailed) or aws_errors.is_retryable(exc)


@dataclass(slots=True)
class SendStats:
    """What it took to get one batch accepted."""

    calls: int = 0
    resent_entries: int = 0
    throttled: int = 0


def put_batch(put: Put, batch: Batch, retry_seconds: float, abort: threading.Event,
              pressure: Pressure | None = None) -> SendStats:
    """Write every entry of ``batch``; return once all are accepted. Each call's outcome is reported to
    ``pressure``: throttled (a throttling error or throttled entries) or not.

    Raises a transient error when the retry time runs out (or ``abort`` is set) with entries still failing, and a
    config or system error at once for a whole-call error that retrying cannot fix.
    """
    stats = SendStats()
    pending: list[bytes] = batch.entries
    stalled = 0  # calls in a row that got no entry accepted

    def backoff(_: object) -> float:
        # Full jitter over an exponential that starts again whenever a call got entries through: a stream that
        # takes half of each call is making progress and is not kept waiting as long as one that takes nothing.
        return random.uniform(0, min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (stalled - 1)))

    retrying = Retrying(
        stop=stop_any(stop_after_delay(retry_seconds), stop_when_event_set(abort)),
        wait=backoff,
        retry=retry_if_exception(_retryable),
        sleep=lambda seconds: _interruptible_sleep(abort, seconds),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                stats.calls += 1
                stalled += 1
                before = len(pending)
                pending, codes, last_message = _put_once(put, batch.stream_name, pending, stats, pressure)
                if len(pending) < before:
                    stalled = 1
                if pending:
                    raise EntriesFailed(codes, last_message)
    except ConnectorError:
        raise
    except EntriesFailed as exc:
        raise transient_error(
            f"Kinesis stream '{batch.stream_name}' did not accept {sum(exc.codes.values())} records after "
            f"{stats.calls} attempts over up to {retry_seconds:g} s ({_codes(exc.codes)}; last: {exc.last_message}). "
            "If it is throttling, add shards or use on-demand capacity.",
            internal=str(exc),
        ) from None
    except Exception as exc:
        if aws_errors.is_retryable(exc):
            raise transient_error(
                f"Writing to Kinesis stream '{batch.stream_name}' kept failing for up to {retry_seconds:g} s: "
                f"{aws_errors.describe(exc)}",
                internal=repr(exc),
            ) from None
        raise aws_errors.traced(exc, f"write to Kinesis stream '{batch.stream_name}'") from None
    return stats


def _interruptible_sleep(abort: threading.Event, seconds: float) -> None:
    abort.wait(seconds)  # returns at once when the sync is aborted


def _put_once(
    put: Put, stream_name: str, entries: list[bytes], stats: SendStats, pressure: Pressure | None
) -> tuple[list[bytes], Counter[str], str]:
    """One PutRecords call: return the entries to resend, their error codes and the last error message."""
    try:
        results = put(stream_name, entries)
    except Exception as exc:
        if aws_errors.error_code(exc) in aws_errors.THROTTLING_CODES:
            stats.throttled += 1
            if pressure is not None:
                pressure.throttled(stream_name)
        raise
    if results is None:
        failed: list[tuple[bytes, dict[str, Any]]] = []
    elif len(results) != len(entries):
        raise system_error(
            f"Kinesis answered a PutRecords of {len(entries)} records with {len(results)} results; "
            "the connector cannot tell which records were written.")
    else:
        # Trust each entry, not FailedRecordCount: some endpoints report the count wrong.
        failed = [pair for pair in zip(entries, results, strict=True) if not pair[1].get("SequenceNumber")]
    if not failed:
        if pressure is not None:
            pressure.succeeded()
        return [], Counter(), ""
    codes = Counter(str(result.get("ErrorCode") or "NoSequenceNumber") for _, result in failed)
    stats.resent_entries += len(failed)
    throttled = sum(codes[code] for code in aws_errors.THROTTLING_CODES)
    stats.throttled += throttled
    if pressure is not None:
        if throttled:
            pressure.throttled(stream_name)
        else:
            pressure.succeeded()
    return [entry for entry, _ in failed], codes, str(failed[-1][1].get("ErrorMessage") or "")


def _codes(codes: Counter[str]) -> str:
    return ", ".join(f"{code} x{count}" for code, count in codes.most_common())


class Sender:
    """Runs :func:`put_batch` for up to :attr:`limit` batches at once and reports them as they complete.

    The limit starts at ``max_in_flight`` and follows :attr:`pressure` (halved on throttling, grown back after).
    Completions are queued and signalled on :attr:`wake_fd`, so the caller can wait for stdin and completions in
    one ``select``.
    """

    def __init__(self, put: Put, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 retry_seconds: float = DEFAULT_RETRY_TIMEOUT_SECONDS):
        self._put = put
        self._retry_seconds = retry_seconds
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="put-records")
        self._done: queue.SimpleQueue[tuple[Batch, Future[SendStats]]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.pressure = Pressure(max_in_flight)
        self.in_flight = 0
        self.abort = threading.Event()

    @property
    def limit(self) -> int:
        """Batches that may be in flight now (between 1 and ``max_in_flight``)."""
        return self.pressure.limit

    @property
    def wake_fd(self) -> int:
        """Readable when a batch has completed."""
        return self._wake_r

    def submit(self, batch: Batch) -> None:
        """Start writing ``batch``; the caller keeps ``in_flight`` below :attr:`limit`.

        A SIGTERM waits for the end (:func:`~destination_kinesis.sigterm.deferred`): a batch started must also be
        counted and have its completion queued, or the states it covers would never come out.
        """
        with deferred():
            future = self._pool.submit(put_batch, self._put, batch, self._retry_seconds, self.abort, self.pressure)
            self.in_flight += 1
            future.add_done_callback(lambda f: self._completed(batch, f))

    def _completed(self, batch: Batch, future: Future[SendStats]) -> None:
        self._done.put((batch, future))
        os.write(self._wake_w, b"x")

    def completions(self) -> list[tuple[Batch, Future[SendStats]]]:
        """The batches completed since the last call (each future holds its stats or its error)."""
        try:
            os.read(self._wake_r, 65536)
        except BlockingIOError:
            pass
        done = []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(done)
        return done

    def shutdown(self) -> None:
        """Wait for the running batches to finish (set :attr:`abort` first to cut their retries short)."""
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        """Shut down and release the wake-up pipe; :meth:`completions` is not to be called after this."""
        self.shutdown()
        os.close(self._wake_w)
        os.close(self._wake_r)
