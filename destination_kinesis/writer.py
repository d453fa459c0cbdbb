"""The write pipeline: stdin lines → records and states → batches → Kinesis, and covered states → stdout.

One thread reads, encodes and batches; the sender's threads talk to Kinesis. The reading thread waits in one
``select`` for input, for completed batches and for the next linger deadline, so a state is released as soon as its
records are acknowledged, even while the source is quiet, and reading pauses while the in-flight limit is reached.

Each record is touched once on its way: its fields found by msgspec (its ``data`` not parsed into objects but
copied as written), its envelope and PutRecords entry built as bytes, appended to its stream's batch. Lines that need
more (errors to explain, what msgspec refuses) go through :func:`~destination_kinesis.parser.parse_line`; records
of a stream whose :class:`Route` is not fast are found the fast way but encoded by the route's options.
"""

from __future__ import annotations

import logging
import os
import select
import time

import orjson
from msgspec import DecodeError
from pybase64 import b64encode

from destination_kinesis.batcher import Batcher
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.dispatcher import Dispatcher
from destination_kinesis.encoder import PAYLOAD, new_ids, payload
from destination_kinesis.errors import ConnectorError, InputError, input_error, system_error
from destination_kinesis.limits import MAX_REQUEST_BYTES
from destination_kinesis.lines import LineReader
from destination_kinesis.messages import Record, State, StreamKey, display_name
from destination_kinesis.parser import data_json, parse_line
from destination_kinesis.progress import Progress
from destination_kinesis.putrecords import ENTRY, open_entry
from destination_kinesis.reader import decode_line, fast_state, is_utf8
from destination_kinesis.route import Route

logger = logging.getLogger("airbyte")

CHUNK_BYTES = 1 << 20
#: Bytes of entries waiting to be sent (not in flight) before reading pauses.
DEFAULT_MAX_QUEUED_BYTES = 2 * MAX_REQUEST_BYTES
_ID_BLOCK = 4096
_ID_BYTES = 36  # a UUID's text, which is also the partition key
#: The first and the last byte of a JSON value that is an object (msgspec's Raw has no whitespace around it).
_OPEN_BRACE, _CLOSE_BRACE = ord("{"), ord("}")


class Writer:
    """Runs one sync from an input file descriptor to the end, or to the first failure."""

    def __init__(self, routes: dict[StreamKey, Route], batcher: Batcher, dispatcher: Dispatcher,
                 checkpoint: Checkpoint, progress: Progress, max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES):
        self._routes = routes
        self._batcher = batcher
        self._dispatcher = dispatcher
        self._checkpoint = checkpoint
        self._max_queued = max_queued_bytes
        self._ids: list[bytes] = []
        self.progress = progress

    def run(self, fd: int) -> None:
        """Write every record read from ``fd`` and emit every state; return only when all of it is done.

        A line that cannot be written (bad input) ends the reading: the records before it are still written and
        the states they cover emitted, then its error is raised. On any other failure, calls in flight finish,
        states they cover are still emitted, records not yet sent are dropped, and the failure is raised.
        """
        dispatcher = self._dispatcher
        try:
            try:
                self._pump(fd)
            except InputError as bad_line:
                self._finish(bad_line)
                raise
            self._finish(None)
        except BaseException:
            self._batcher.drain()  # not sent, but their runs end, so the routes' stats count every record read
            dispatcher.abort()
            dispatcher.sender.shutdown()
            dispatcher.collect(raise_errors=False)
            raise
        finally:
            dispatcher.sender.close()
        if self._checkpoint.pending_states:
            raise system_error(f"{self._checkpoint.pending_states} states were never covered by acknowledgements.")

    def _finish(self, bad_line: InputError | None) -> None:
        """Send every record read and wait until all are accepted (or a failure ends the sync). After a bad line,
        a failure to write the records before it is logged, and the bad line's error is the one raised."""
        dispatcher = self._dispatcher
        try:
            for batch in self._batcher.drain():
                dispatcher.put(batch)
            while not dispatcher.idle:
                self._wait(None)
        except Exception as exc:
            if bad_line is None:
                raise
            logger.error("Writing the records read before the bad input line failed too: %s",
                         exc.message if isinstance(exc, ConnectorError) else exc)
            raise bad_line from None

    def _pump(self, fd: int) -> None:
        """Read the input to its end; records are sent as their batches fill, states emitted as they are covered."""
        reader = LineReader()
        batcher, dispatcher = self._batcher, self._dispatcher
        while True:
            readable = self._wait(fd if dispatcher.queued_bytes < self._max_queued else None)
            if readable:
                chunk = os.read(fd, CHUNK_BYTES)
                first_line_no = reader.line_no + 1
                lines = reader.feed(chunk) if chunk else reader.finish()
                self._handle_lines(lines, first_line_no, reader.utf8)
                for batch in batcher.overflow():
                    dispatcher.put(batch)
                if not chunk:
                    return
            for batch in batcher.expired(time.monotonic()):
                dispatcher.put(batch)

    def _wait(self, fd: int | None) -> bool:
        """Wait for input on ``fd`` (None: wait without reading, the queues are full), a completed call, the next
        linger or budget deadline or the next progress line; settle completions, send what may be sent, log
        progress. Returns whether ``fd`` is readable."""
        dispatcher = self._dispatcher
        now = time.monotonic()
        timeout = self.progress.seconds_to_next(now)
        for deadline in (self._batcher.next_linger(), dispatcher.next_time()):
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
        wake = dispatcher.sender.wake_fd
        readable, _, _ = select.select([wake] if fd is None else [fd, wake], [], [], timeout)
        if wake in readable:
            dispatcher.collect()
        else:
            dispatcher.pump()
        self.progress.log_if_due(time.monotonic(), dispatcher)
        return fd is not None and fd in readable

    def _handle_lines(self, lines: list[bytes], line_no: int, utf8: bool) -> None:  # noqa: C901, PLR0912, PLR0915 - hot loop, inline on purpose
        """Handle consecutive input lines, the first being number ``line_no``; ``utf8`` says they are all valid UTF-8
        (else each line that needs it is checked).

        This loop runs once per record, so it does the common case inline, calls included: a RECORD of a configured
        stream with a fast route (random key, default envelope), valid UTF-8, with an integer ``emitted_at`` and an
        object ``data`` (copied as written, so exact), that fits in a Kinesis record, handed to
        :meth:`Batcher.append` as a PutRecords entry, or to :meth:`Batcher.append_packed` as its data and key when
        the route packs records into aggregates; and a STATE that :func:`fast_state` can cut. Records of other
        routes, and those over the size limit, are not parsed either but take :meth:`_write_record`. Anything else,
        valid or not, goes to :meth:`_handle`, which explains what is wrong with a line or handles it exactly.
        """
        routes_get = self._routes.get
        decode, b64 = decode_line, b64encode
        batcher, submit, state_in = self._batcher, self._dispatcher.put, self._checkpoint.state
        append, append_packed, count_runs = batcher.append, batcher.append_packed, batcher.count_runs
        ids = self._ids
        for line in lines:
            try:
                message = decode(line)
            except (DecodeError, RecursionError):  # msgspec gives up on deep nesting; parse_line does not
                message = None
            if message is not None:
                record = message.record
                if record is not None and message.type == "RECORD":
                    route = routes_get((record.namespace, record.stream))
                    if route is not None and route.fast and (utf8 or is_utf8(line)):
                        if not ids:
                            ids.extend(new_ids(_ID_BLOCK))
                        ab_id = ids.pop()  # a JSON string, quotes included
                        data = PAYLOAD % (ab_id, record.emitted_at, record.data)
                        if data[-2] == _CLOSE_BRACE:  # the data is an object
                            size = len(data) + _ID_BYTES
                            if size > route.max_record_bytes:
                                self._write_record(route, Record(route.key, record.emitted_at, None,
                                                                 bytes(record.data), line_no, line), ab_id)
                            elif route.packing:  # its data and its key, to be packed into aggregates
                                for batch in append_packed(route, data, size, ab_id[1:-1]):
                                    submit(batch)
                            else:
                                ready = append(route, ENTRY % (b64(data), ab_id), size)
                                if ready:  # one record in bufferSize or so: test before making an iterator
                                    for batch in ready:
                                        submit(batch)
                            line_no += 1
                            continue
                        ids.append(ab_id)  # not used: _handle explains what is wrong with the data
                    elif route is not None and (utf8 or is_utf8(line)):
                        data_text = bytes(record.data)
                        if data_text[0] == _OPEN_BRACE:
                            self._write_record(route, Record(route.key, record.emitted_at, None, data_text, line_no,
                                                             line))
                            line_no += 1
                            continue
                elif message.type == "STATE" and message.state and (utf8 or is_utf8(line)):
                    state = fast_state(line, message.state, line_no)
                    if state is not None:
                        count_runs()  # the records before the state are counted in before it
                        state_in(state)
                        line_no += 1
                        continue
            self._handle(line, line_no)
            line_no += 1

    def _handle(self, line: bytes, line_no: int) -> None:
        message = parse_line(line, line_no)
        if isinstance(message, Record):
            route = self._routes.get(message.key)
            if route is None:
                raise input_error(line_no, "this stream is not in the configured catalog", display_name(message.key))
            self._write_record(route, message)
        elif message is not None:
            self._state(message)

    def _state(self, state: State) -> None:
        self._batcher.count_runs()  # the records before the state are counted in before it
        self._checkpoint.state(state)

    def _write_record(self, route: Route, record: Record, quoted_id: bytes | None = None) -> None:
        """Give the record its id (``quoted_id`` from :func:`new_ids` when it has one already), partition key and
        Kinesis data, by its route's options, and write it."""
        if quoted_id is None:
            if not self._ids:
                self._ids.extend(new_ids(_ID_BLOCK))
            quoted_id = self._ids.pop()
        ab_id = quoted_id[1:-1]
        key = ab_id if route.partitioner is None else route.partitioner.key(record, ab_id)
        encode = payload if route.encoder is None else route.encoder
        self._write(route, encode(ab_id, record.emitted_at, data_json(record)), key, record.line_no)

    def _write(self, route: Route, data: bytes, key: bytes, line_no: int) -> None:
        """Add the record to its stream's batch (``key`` is its UTF-8 partition key) and send the batches that
        became ready. A record over the size limit fails the sync, or is skipped and counted as rejected when the
        route says so."""
        size = len(data) + len(key)
        if size > route.max_record_bytes:
            problem = (f"the record is {size} bytes as a Kinesis record (data plus partition key), over the limit "
                       f"of {route.max_record_bytes} bytes")
            if not route.skip_oversize:
                raise input_error(line_no, f"{problem} (oversizeRecords 'skip' skips such records, compression may "
                                           f"make them fit)", display_name(route.key))
            logger.warning("Input line %d (stream '%s'): %s; skipped (oversizeRecords is 'skip').", line_no,
                           display_name(route.key), problem)
            self._batcher.reject(route)
            return
        if route.packing:
            ready = self._batcher.add(route, data, size, key)
        elif route.partitioner is None:
            ready = self._batcher.add(route, open_entry(data, b'"%b"' % key), size)
        else:
            ready = self._batcher.add(route, open_entry(data, orjson.dumps(key.decode("utf-8"))), size, key)
        for batch in ready:
            self._dispatcher.put(batch)
