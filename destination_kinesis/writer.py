"""The write pipeline: stdin lines → records and states → batches → Kinesis, and covered states → stdout.

One thread reads, encodes and batches; the sender's threads talk to Kinesis. The reading thread waits in one
``select`` for input, for completed batches and for the next linger deadline, so a state is released as soon as its
records are acknowledged, even while the source is quiet, and reading pauses while the in-flight limit is reached.
"""

from __future__ import annotations

import logging
import os
import select
import time
from concurrent.futures import Future
from dataclasses import dataclass

from destination_kinesis.batcher import Batch, Batcher
from destination_kinesis.checkpoint import Checkpoint, Lane
from destination_kinesis.envelope import encode
from destination_kinesis.errors import input_error, system_error
from destination_kinesis.limits import MAX_RECORD_BYTES
from destination_kinesis.lines import LineReader
from destination_kinesis.messages import Record, parse_line
from destination_kinesis.naming import StreamKey, display_name
from destination_kinesis.sender import Sender, SendStats

logger = logging.getLogger("airbyte")

CHUNK_BYTES = 1 << 20


@dataclass(slots=True)
class Route:
    """Where one Airbyte stream's records go, and how many went."""

    key: StreamKey
    kinesis_name: str
    lane: Lane
    max_record_bytes: int = MAX_RECORD_BYTES
    records: int = 0
    bytes: int = 0


class Writer:
    """Runs one sync from an input file descriptor to the end, or to the first failure."""

    def __init__(self, routes: dict[StreamKey, Route], batcher: Batcher, sender: Sender, checkpoint: Checkpoint):
        self._routes = routes
        self._batcher = batcher
        self._sender = sender
        self._checkpoint = checkpoint
        self.totals = SendStats()

    def run(self, fd: int) -> None:
        """Write every record read from ``fd`` and emit every state; return only when all of it is done.

        On a failure, requests already sent may finish (their retries are cut short), states they cover are still
        emitted, records not yet sent are dropped, and the failure is raised.
        """
        try:
            self._pump(fd)
            for batch in self._batcher.drain():
                self._submit(batch)
            while self._sender.in_flight:
                self._wait_for_completion()
        except BaseException:
            self._sender.abort.set()
            self._sender.shutdown()
            self._collect(raise_errors=False)
            raise
        finally:
            self._sender.close()
        if self._checkpoint.pending_states:
            raise system_error(f"{self._checkpoint.pending_states} states were never covered by acknowledgements.")

    def _pump(self, fd: int) -> None:
        reader = LineReader()
        wake = self._sender.wake_fd
        while True:
            timeout = self._batcher.seconds_to_next_linger(time.monotonic())
            readable, _, _ = select.select([fd, wake], [], [], timeout)
            if wake in readable:
                self._collect()
            if fd in readable:
                chunk = os.read(fd, CHUNK_BYTES)
                for line in reader.feed(chunk) if chunk else reader.finish():
                    self._handle(line, reader.line_no)
                if not chunk:
                    return
            for batch in self._batcher.expired(time.monotonic()):
                self._submit(batch)

    def _handle(self, line: bytes, line_no: int) -> None:
        message = parse_line(line, line_no)
        if isinstance(message, Record):
            route = self._routes.get(message.key)
            if route is None:
                raise input_error(line_no, "this stream is not in the configured catalog", display_name(message.key))
            data, partition_key = encode(message)
            size = len(data) + len(partition_key)
            if size > MAX_RECORD_BYTES:
                raise input_error(
                    line_no,
                    f"the record is {size} bytes as a Kinesis record (data plus partition key), over the limit of "
                    f"{MAX_RECORD_BYTES} bytes; nothing of its batch was sent",
                    display_name(route.key),
                )
            route.records += 1
            route.bytes += size
            cell = self._checkpoint.record(route.lane)
            for batch in self._batcher.add(route.kinesis_name, data, partition_key, size, cell):
                self._submit(batch)
        elif message is not None:
            self._checkpoint.state(message)

    def _submit(self, batch: Batch) -> None:
        while self._sender.in_flight >= self._sender.max_in_flight:
            self._wait_for_completion()
        self._sender.submit(batch)

    def _wait_for_completion(self) -> None:
        select.select([self._sender.wake_fd], [], [])
        self._collect()

    def _collect(self, raise_errors: bool = True) -> None:
        """Acknowledge every completed batch that succeeded; then raise the first failure, if any."""
        failure: BaseException | None = None
        for batch, future in self._sender.completions():
            error = future.exception()
            if error is None:
                self._add_stats(future)
                self._checkpoint.ack(batch.cells)
            elif failure is None:
                failure = error
        if failure is not None and raise_errors:
            raise failure

    def _add_stats(self, future: Future[SendStats]) -> None:
        stats = future.result()
        self.totals.calls += stats.calls
        self.totals.resent_entries += stats.resent_entries
        self.totals.throttled += stats.throttled
