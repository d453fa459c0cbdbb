"""The threads that make PutRecords calls: one attempt per call, each outcome handed back to the sending loop.

What to send, and what to do with an answer (accept, resend some entries, retry the call, fail), is decided in one
thread, by :class:`~destination_kinesis.dispatcher.Dispatcher`; these threads only carry calls to Kinesis, so that
several are in flight at once while the input is read. Completions are queued and signalled on :attr:`Sender.wake_fd`,
so the caller waits for stdin and completions in one ``select``.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from destination_kinesis.outbox import Call
from destination_kinesis.sigterm import deferred

#: One PutRecords call: (stream name, the Records array's content, number of entries, whether every entry's result is
#: wanted) → None when every entry was accepted (and results are not wanted), else one result per entry. See
#: :class:`destination_kinesis.putrecords.PutRecords`.
Put = Callable[[str, bytes, int, bool], list[dict[str, Any]] | None]

Results = list[dict[str, Any]] | None


def attempt(put: Put, call: Call) -> Results:
    """Make the call once: its entries' results (None: all accepted), or the exception it raised."""
    return put(call.stream_name, call.records_json(), call.records, call.verify)


class Sender:
    """Runs up to ``threads`` calls at once and reports them as they complete."""

    def __init__(self, put: Put, threads: int):
        self._put = put
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="put-records")
        self._done: queue.SimpleQueue[tuple[Call, Future[Results]]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.in_flight = 0

    @property
    def wake_fd(self) -> int:
        """Readable when a call has completed."""
        return self._wake_r

    def submit(self, call: Call) -> None:
        """Start making ``call``; the caller keeps the calls in flight within its limit.

        A SIGTERM waits for the end (:func:`~destination_kinesis.sigterm.deferred`): a call started must also be
        counted and have its completion queued, or the states its entries cover would never come out.
        """
        with deferred():
            future = self._pool.submit(attempt, self._put, call)
            self.in_flight += 1
            future.add_done_callback(lambda f: self._completed(call, f))

    def _completed(self, call: Call, future: Future[Results]) -> None:
        self._done.put((call, future))
        os.write(self._wake_w, b"x")

    def completions(self) -> list[tuple[Call, Future[Results]]]:
        """The calls completed since the last time (each future holds its results or its exception)."""
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
        """Wait for the calls in flight to finish."""
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        """Shut down and release the wake-up pipe; :meth:`completions` is not to be called after this."""
        self.shutdown()
        os.close(self._wake_w)
        os.close(self._wake_r)
