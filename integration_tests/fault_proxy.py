"""A fault-injecting HTTP proxy between the connector and kinesalite: what real Kinesis does that no emulator does.

The connector is pointed at the proxy (its ``endpoint``); the proxy forwards every call to the backend (kinesalite)
and, by a seeded random plan, does to PutRecords what AWS does under load:

- ``partial``: forwards only some entries (a real PutRecords with that subset, so a failed entry really is not
  written) and answers with the backend's results for those and ``ProvisionedThroughputExceededException`` or
  ``InternalFailure`` for the rest, with a ``FailedRecordCount`` that may be wrong;
- ``throttle`` (HTTP 400 ProvisionedThroughputExceededException), ``internal`` (HTTP 500 InternalFailure),
  ``unavailable`` (HTTP 503 with a non-JSON body, as a load balancer sends it);
- ``drop_before``: closes the connection without forwarding (nothing written);
- ``drop_after``, ``truncate_after``, ``hang_after``: forwards, so the records are written, then loses the answer:
  closes the connection, sends half the body and closes, or says nothing until the client gives up (a read
  timeout). These are the ambiguous cases, where a resend writes duplicates;
- ``slow``: waits ``slow_seconds`` before forwarding;
- ``refuse_for`` seconds after :meth:`FaultProxy.start` nothing listens (connections are refused);
- calls to the operations in ``reject_signature_of`` (any operation) get HTTP 400 IncompleteSignatureException whose
  message echoes the request's Authorization header, access key included, as AWS does.

With ``shard_limits`` the proxy also enforces AWS's per-shard write limits (see :mod:`.shard_limits`): it learns each
stream's open shards from the backend (ListShards), routes every entry a PutRecords would forward to its shard, and
refuses those over their shard's records/s or bytes/s budget exactly as Kinesis does: they are not forwarded, the
others go to the backend in one call, and the answer holds every result in request order, each refused entry as
``ProvisionedThroughputExceededException`` "Rate exceeded for shard <its shard> in stream <stream> under account
000000000000.", with a right ``FailedRecordCount`` (unless a ``partial`` fault makes it lie). The limits apply after
the plan's faults: a call faulted whole never reaches them, and a ``partial`` call's failed entries are not counted.
:attr:`FaultProxy.limiter` holds the counts per stream and shard. A SplitShard, MergeShards or UpdateShardCount that
passes through makes the proxy learn that stream's shards again.

Other calls (DescribeStreamSummary, CreateStream, ...) are forwarded untouched; kinesalite does not check signatures,
so a changed body goes on with the original headers and a corrected Content-Length.

Everything is bounded: loopback only, a thread per client connection, backend calls with a timeout, a hang that
ends when the client closes, when ``hang_limit_seconds`` pass or when the proxy stops, and :meth:`FaultProxy.stop`
closes every connection and joins every thread. The schedule is drawn from one ``random.Random(seed)``; which call
gets which draw depends on thread timing, so a seed fixes the mix of faults, not their exact order.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import random
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .kinesis_emulator import free_port
from .shard_limits import Clock, ShardLimiter, ShardLimits

TARGET_PREFIX = "Kinesis_20131202."
PUT_RECORDS = TARGET_PREFIX + "PutRecords"
RESHARDING = ("SplitShard", "MergeShards", "UpdateShardCount")
LIST_SHARDS_PAGE = 1000  # ListShards' MaxResults when the proxy learns a stream's shards (AWS's default)
CALL_FAULTS = ("partial", "throttle", "internal", "unavailable", "drop_before", "drop_after", "truncate_after",
               "hang_after", "slow")
THROTTLED = "ProvisionedThroughputExceededException"
RATE_EXCEEDED = "Rate exceeded for shard {shard} in stream {stream} under account 000000000000."
ENTRY_ERRORS = {
    THROTTLED: RATE_EXCEEDED.replace("{shard}", "shardId-000000000000"),
    "InternalFailure": "Internal service failure.",
}
PROXY_HEADERS = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", "fault-proxy")]
#: The proxy's own calls to the backend (ListShards): unsigned, as neither emulator checks more than the shape.
BACKEND_HEADERS = {
    "Content-Type": "application/x-amz-json-1.1", "X-Amz-Date": "20240101T000000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=fault-proxy/20240101/us-east-1/kinesis/aws4_request, "
                     "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0",
}
BACKEND_TIMEOUT_SECONDS = 30.0
IDLE_CONNECTION_SECONDS = 120.0
STOP_JOIN_SECONDS = 40.0

#: Called with (Kinesis stream name, record data) for each entry the backend accepted, before the client hears of it.
WrittenCallback = Callable[[str, bytes], None]
#: The same, with the id of the shard the backend wrote the record to.
LandedCallback = Callable[[str, bytes, str], None]


@dataclass
class FaultPlan:
    """What the proxy does to PutRecords calls.

    ``calls`` maps a fault of :data:`CALL_FAULTS` to the probability that a call gets it (at most one fault per call;
    the rest pass untouched). A ``partial`` call fails each entry with probability ``entry_failure``; its
    FailedRecordCount is wrong with probability ``wrong_count``. Every call is throttled while the seconds since the
    first PutRecords are within ``throttle_window`` (``(0.0, 5.0)``: for the first 5 s), and every call from the
    ``throttle_from_call``-th on (counting from 1: forever). At most ``max_hangs`` calls hang. Calls to the
    operations named in ``reject_signature_of`` (e.g. ``"ListStreams"``) are refused with an
    IncompleteSignatureException that echoes the request. ``shard_limits``, when set, are enforced on the entries
    forwarded (see the module docstring).
    """

    seed: int
    calls: Mapping[str, float] = field(default_factory=dict)
    entry_failure: float = 0.0
    wrong_count: float = 0.0
    throttle_window: tuple[float, float] = (0.0, 0.0)
    throttle_from_call: float = math.inf
    slow_seconds: float = 1.0
    max_hangs: int = 1
    hang_limit_seconds: float = 60.0
    reject_signature_of: tuple[str, ...] = ()
    shard_limits: ShardLimits | None = None

    def __post_init__(self) -> None:
        unknown = set(self.calls) - set(CALL_FAULTS)
        if unknown or sum(self.calls.values()) > 1.0:
            raise ValueError(f"bad fault plan: unknown faults {unknown} or probabilities summing over 1")


class FaultProxy:
    """The proxy; ``start()`` it, point the connector at :attr:`endpoint`, ``stop()`` it (or use ``with``).

    :attr:`injected` counts the faults injected by kind, plus ``calls`` (PutRecords calls seen), ``entries``
    (entries in them), ``failed_entries`` (entries answered as failed without being written) and ``wrong_count``
    (answers whose FailedRecordCount lies). ``on_landed``, like ``on_written``, hears of each accepted entry, with
    the shard it was written to. With the plan's ``shard_limits``, :attr:`limiter` enforces them and
    counts per stream and shard (else it is None). ``clock`` times the throttle window and the limits; tests pass a
    clock they move themselves.
    """

    def __init__(self, backend: str, plan: FaultPlan, on_written: WrittenCallback | None = None,
                 on_landed: LandedCallback | None = None,
                 clock: Clock = time.monotonic):
        parts = urlsplit(backend)
        self.backend = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.plan = plan
        self._on_written = on_written
        self._on_landed = on_landed
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._first_put: float | None = None
        self._hangs = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serving: threading.Thread | None = None
        self._starter: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self.port = free_port()
        self.injected: Counter[str] = Counter()
        self._clock = clock
        self.limiter = None if plan.shard_limits is None else ShardLimiter(plan.shard_limits, self._list_shards, clock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, refuse_for: float = 0.0) -> FaultProxy:
        """Listen on :attr:`port`, at once or after ``refuse_for`` seconds (connections are refused until then)."""
        if refuse_for <= 0:
            self._listen()
        else:
            self._starter = threading.Thread(target=self._listen_later, args=(refuse_for,), daemon=True)
            self._starter.start()
        return self

    def _listen_later(self, delay: float) -> None:
        if self._stopping.wait(delay):
            return
        try:
            self._listen()
        except BaseException as exc:  # reported by stop()
            self._start_error = exc

    def _listen(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.proxy = self
        self._server = server
        self._serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._serving.start()

    def stop(self) -> None:
        """Stop listening, close every client connection, end hangs and join every thread (bounded)."""
        self._stopping.set()
        if self._starter is not None:
            self._starter.join(STOP_JOIN_SECONDS)
        server = self._server
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()  # joins the connection threads; each ends within the backend timeout
        if self._serving is not None:
            self._serving.join(STOP_JOIN_SECONDS)
        if self._start_error is not None:
            raise RuntimeError(f"the fault proxy could not listen on port {self.port}") from self._start_error

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def summary(self) -> str:
        return ", ".join(f"{kind} {count}" for kind, count in sorted(self.injected.items()))

    # ------------------------------------------------------------------ the schedule

    def _choose(self, entries: int) -> tuple[str, list[bool], bool]:
        """The fault for a PutRecords call of ``entries`` entries: its kind, which entries fail (for ``partial``),
        and whether FailedRecordCount lies."""
        plan = self.plan
        with self._lock:
            now = self._clock()
            if self._first_put is None:
                self._first_put = now
            self.injected["calls"] += 1
            self.injected["entries"] += entries
            if (plan.throttle_window[0] <= now - self._first_put < plan.throttle_window[1]
                    or self.injected["calls"] >= plan.throttle_from_call):
                kind = "throttle"
            else:
                kind = "pass"
                draw = self._rng.random()
                for candidate, probability in plan.calls.items():
                    if draw < probability:
                        kind = candidate
                        break
                    draw -= probability
                if kind == "hang_after":
                    if self._hangs >= plan.max_hangs:
                        kind = "pass"
                    else:
                        self._hangs += 1
            failing = [kind == "partial" and self._rng.random() < plan.entry_failure for _ in range(entries)]
            lies = kind == "partial" and self._rng.random() < plan.wrong_count
            if kind != "pass":
                self.injected[kind] += 1
            self.injected["failed_entries"] += sum(failing)
            self.injected["wrong_count"] += lies
            return kind, failing, lies

    def _written(self, stream: str, entries: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        if self._on_written is None and self._on_landed is None:
            return
        for entry, result in zip(entries, results, strict=True):
            if result.get("SequenceNumber"):
                data = base64.b64decode(entry["Data"])
                if self._on_written is not None:
                    self._on_written(stream, data)
                if self._on_landed is not None:
                    self._on_landed(stream, data, str(result.get("ShardId")))

    def _list_shards(self, stream: str) -> list[dict[str, Any]] | None:
        """Every shard of ``stream`` as the backend lists them (ListShards, every page), or None when it answers
        otherwise (no such stream)."""
        shards: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamName": stream, "MaxResults": LIST_SHARDS_PAGE}
        while True:
            status, _, answer = _backend_call(self.backend, "POST", "/", json.dumps(request).encode(),
                                              {**BACKEND_HEADERS, "X-Amz-Target": TARGET_PREFIX + "ListShards"})
            if status != 200:
                return None
            page = json.loads(answer)
            shards.extend(page.get("Shards") or [])
            if not page.get("NextToken"):
                return shards
            request = {"NextToken": page["NextToken"], "MaxResults": LIST_SHARDS_PAGE}

    # ------------------------------------------------------------------ one request

    def handle(self, request: _Handler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        target = str(request.headers.get("X-Amz-Target"))
        operation = target.rpartition(".")[2]
        if operation in self.plan.reject_signature_of:
            self._reject_signature(request)
        elif target != PUT_RECORDS:
            self._forward(request, body, operation)
        else:
            self._put_records(request, body)

    def _reject_signature(self, request: _Handler) -> None:
        with self._lock:
            self.injected["reject_signature"] += 1
        echo = f"Authorization={request.headers['Authorization']}"
        request.answer_error(400, "IncompleteSignatureException", "Authorization header requires existence of "
                             f"either a 'X-Amz-Date' or a 'Date' header. {echo}")

    def _forward(self, request: _Handler, body: bytes, operation: str) -> None:
        """Any call but PutRecords goes to the backend as it is (a resharding one makes the limiter learn again)."""
        status, headers, answer = request.forward(body)
        if self.limiter is not None and operation in RESHARDING and status == 200:
            self.limiter.reshaped(_stream_of(json.loads(body)))
        request.relay(status, headers, answer)

    def _put_records(self, request: _Handler, body: bytes) -> None:
        """A PutRecords meets the plan's fault for this call, if any, and the shard limits."""
        payload = json.loads(body)
        entries: list[dict[str, Any]] = payload.get("Records") or []
        kind, failing, lies = self._choose(len(entries))
        stream = _stream_of(payload)
        if kind == "throttle":
            request.answer_error(400, THROTTLED, ENTRY_ERRORS[THROTTLED].format(stream=stream))
        elif kind == "internal":
            request.answer_error(500, "InternalFailure", ENTRY_ERRORS["InternalFailure"])
        elif kind == "unavailable":
            request.answer(503, "text/html", b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
        elif kind == "drop_before":
            request.close_connection = True
        else:
            if kind == "slow":
                self._stopping.wait(self.plan.slow_seconds)
            status, headers, answer = self._put(request, body, payload, entries, failing, lies)
            if kind == "drop_after":
                request.close_connection = True
            elif kind == "truncate_after":
                request.relay(status, headers, answer, cut=len(answer) // 2)
            elif kind == "hang_after":
                request.hang(self.plan.hang_limit_seconds, self._stopping)
            else:
                request.relay(status, headers, answer)

    def _put(self, request: _Handler, body: bytes, payload: dict[str, Any], entries: list[dict[str, Any]],
             failing: list[bool], lies: bool) -> tuple[int, list[tuple[str, str]], bytes]:
        """Forward, in one backend call, the entries that neither the plan (``failing``) nor the shard limits
        refuse; return the answer for the client: the backend's own when every entry went and the count is not to
        lie, else every entry's result in request order (the backend's error answer as it is)."""
        stream = _stream_of(payload)
        refused = [self._entry_error(stream) if fails else None for fails in failing]
        admission = None
        if self.limiter is not None:
            admission = self.limiter.admit(stream, [entry for entry, error in zip(entries, refused, strict=True)
                                                    if error is None])
            verdicts = zip(admission.shard_ids, admission.admitted, strict=True)
            for index in [index for index, error in enumerate(refused) if error is None]:
                shard_id, admitted = next(verdicts)
                if not admitted:
                    refused[index] = {"ErrorCode": THROTTLED,
                                      "ErrorMessage": RATE_EXCEEDED.format(shard=shard_id, stream=stream)}
        sent = [entry for entry, error in zip(entries, refused, strict=True) if error is None]
        backend_results: list[dict[str, Any]] = []
        if sent:
            whole = len(sent) == len(entries)
            status, headers, answer = request.forward(body if whole else
                                                      json.dumps({**payload, "Records": sent}).encode())
            if status != 200:
                return status, headers, answer
            backend_results = json.loads(answer).get("Records") or []
            self._written(stream, sent, backend_results)
            if self.limiter is not None and admission is not None:
                self.limiter.settle(admission, backend_results)
            if whole and not lies:
                return status, headers, answer
        accepted = iter(backend_results)
        results = [error if error is not None else next(accepted) for error in refused]
        failed = sum(1 for result in results if not result.get("SequenceNumber"))
        count = (0 if failed else len(results)) if lies else failed
        return 200, PROXY_HEADERS, json.dumps({"FailedRecordCount": count, "Records": results}).encode()

    def _entry_error(self, stream: str) -> dict[str, str]:
        """A failed entry's result as the plan's ``partial`` fault gives it: throttled or an internal failure."""
        with self._lock:
            code = self._rng.choice(list(ENTRY_ERRORS))
        return {"ErrorCode": code, "ErrorMessage": ENTRY_ERRORS[code].format(stream=stream)}


def _stream_of(payload: dict[str, Any]) -> str:
    """The stream a request names, by StreamName or by StreamARN (``arn:...:stream/NAME``)."""
    return str(payload.get("StreamName") or str(payload.get("StreamARN", "")).rpartition("/")[2])


def _backend_call(backend: tuple[str, int], method: str, path: str, body: bytes,
                  headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """One request to the backend on a new connection (see :meth:`_Handler.forward`); its status, headers, body."""
    connection = http.client.HTTPConnection(*backend, timeout=BACKEND_TIMEOUT_SECONDS)
    try:
        connection.request(method, path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads
    proxy: FaultProxy

    def __init__(self, *args: Any, **kwargs: Any):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects
    timeout = IDLE_CONNECTION_SECONDS
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.server.proxy.handle(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # one line per request would drown the test output

    def forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send this request with ``body`` to the backend on a new connection; return its status, headers, body.

        A new connection per call: a kept-alive one may have been closed by the backend, and resending on a fresh
        one after an error could write records twice without the test knowing.
        """
        headers = {name: value for name, value in self.headers.items() if name.lower() != "content-length"}
        return _backend_call(self.server.proxy.backend, self.command, self.path, body, headers)

    def relay(self, status: int, headers: list[tuple[str, str]], body: bytes, cut: int | None = None) -> None:
        """Answer with a backend response; with ``cut``, send only that many body bytes and close the connection."""
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True

    def answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-amzn-RequestId", "fault-proxy")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer_error(self, status: int, code: str, message: str) -> None:
        self.answer(status, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode())

    def hang(self, limit: float, stopping: threading.Event) -> None:
        """Say nothing until the client closes the connection, ``limit`` seconds pass or the proxy stops."""
        deadline = time.monotonic() + limit
        while not stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.2)
            try:
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    break  # the client gave up and closed
            except OSError:
                break  # or reset the connection
        self.close_connection = True

