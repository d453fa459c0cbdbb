"""Throughput benchmark: the real ``destination-kinesis write`` beside the server's ceiling and the 0.1.5 baseline.

usage: .venv/bin/python benchmarks/bench.py [--records 1000000] [--record-bytes 400] [--streams 1] [--shards N]
           [--state-every 1000] [--buffer-size 500] [--runs 1] [--mode kinesalite|instant|all|shard-limited]
           [--ceiling-threads 4,8,16] [--skip-baseline] [--skip-ceiling] [--suite] [--json PATH]
           [--baseline PATH] [--timeout SECONDS] [--connector-config JSON] [--keys random|hot]
           [--split-after SECONDS] [--suite-limits [--scale FACTOR]]

It writes the Airbyte input once to a temporary file: ``--records`` RECORD messages whose ``data`` JSON is exactly
``--record-bytes`` bytes (a ``seq`` field numbering the records from 0, ints, strings, floats of at most 15 digits, a
bool, a nested object, arrays, padding), spread round-robin over ``--streams`` streams of namespace ``bench``, and a
STREAM state with a per-stream cursor after every ``--state-every`` records of a stream (plus a last one for a
stream's remainder). Then, per mode, each measurement on its own freshly started server:

* ceiling: the records as pre-built PutRecords bodies of ``--buffer-size`` entries (envelopes shaped like the
  connector's, base64 in JSON; a pool of 64 distinct bodies per stream, cycled) pushed by N threads over keep-alive
  http.client connections, once per N in ``--ceiling-threads``; the best N is the ceiling. It times the pushing
  only, not the server start or stream creation.
* empty sync: the connector on an input without records, measured as below: its fixed cost (imports, clients,
  stream creation), which every connector figure includes.
* connector: ``destination-kinesis write`` (the console script next to ``sys.executable``) reading the input file on
  stdin; wall time from spawn to exit, user+sys CPU of that process alone (``os.wait4``) and its peak RSS
  (``VmHWM`` from ``/proc``, polled while it runs: ``wait4``'s ``ru_maxrss`` would include this benchmark's own
  memory, which the child shares between fork and exec).
* baseline: ``python ../shared/peers/java_0_1_5_port.py write`` measured the same way; that file is not part of this
  repository, and where it is absent (a fresh clone) the baseline is skipped, saying so.

Connector and baseline run ``--runs`` times each; ratios use the fastest successful run of each.

Modes: ``kinesalite`` (npm kinesalite on 127.0.0.1, from integration_tests/emulator) and ``instant``
(``benchmarks/instant_kinesis.py``: every PutRecords succeeds at once, so the connector's own ceiling shows). Their
streams have 32 (kinesalite) and 256 (instant) shards unless ``--shards`` says otherwise: the connector sends no shard
more than 1,000 records/s, and with few shards that pace, not the connector or the server, would be what these modes
measure (see :data:`UNPACED_SHARDS`).
Afterwards, outside the timed window, every sync is verified: against kinesalite every shard is read back and each
``seq`` is counted (missing, duplicate, in the wrong stream); the instant server only counts entries per stream. A run
that exits non-zero, misses records, puts them in the wrong stream or emits the wrong number of states is FAILED.
``server CPU %`` is the server process's CPU time over the wall time: near 100 % means the server was the limit.

``--suite`` runs the issue's targets in sequence (kinesalite with ceiling and baseline; instant; a state after every
record; ``--records``/5 and ``--records``*2 for memory flatness) and ends with a target/measured/pass table.
Timings depend on what else runs on the machine: the load average is printed before and after.

Shard-limited mode (``--mode shard-limited``, issue 14): the connector writes through the fault proxy
(``integration_tests/fault_proxy.py``) enforcing AWS's per-shard limits (1,000 records/s and 1 MiB/s of data plus
key per shard, one second of burst) in front of a fresh kinesalite, the baseline through another of the same kind.
Here ``--record-bytes`` is the size of the connector's unaggregated Kinesis record: the envelope
``{"_airbyte_ab_id":"<uuid>","_airbyte_emitted_at":<ms>,"_airbyte_data":<data>}`` plus the 36-byte partition key,
so the data JSON is ``--record-bytes`` - 146 bytes (400 → 254; the baseline's envelope, data as a JSON string, is
larger). ``--keys hot`` adds a field ``k`` (34 characters, so a ``fields`` key made of it has 36 bytes too) that
holds one value in 90 % of the records and one of 10,000 others in the rest; pair it with ``--connector-config
'{"partitionKey":"fields","partitionKeyFields":["k"]}'``. ``--connector-config`` is merged into the config as it is
(options the connector does not know are passed too). ``--split-after S`` splits ``shardId-000000000000`` of the
first stream in the middle of its range, on kinesalite directly, S seconds after the program starts. Figures:

* ``window s``: from the first to the last entry the proxy saw accepted; ``rec/s``: distinct records written over
  that window; ``×cap``: that over the provisioned capacity, streams × shards × min(1,000, 1 MiB ÷ record bytes).
  The one second of burst lets a run beat 1.0 a little (60,000 records on 2 shards: at most 1.03), short runs more.
* ``thr %``: entries the proxy refused as over their shard's limit, of all entries sent (resends included);
  ``calls``: PutRecords calls; ``sent÷wr``: bytes of every entry sent over bytes of the entries written.
* ``lost``/``dup``: every shard (closed ones too) read back, each record found by its ``seq``;
  ``states``: emitted/expected (the baseline prints only its last); ``early``: states printed before the proxy saw
  every record they cover accepted; ``srv%``: kinesalite's CPU; ``bench%``: this process's (the proxy's threads).
* per shard: entries, accepted, throttled; with ``--keys hot``, the hot shard (the one that took the most), its
  records/s over the window as a share of one shard's rate, and the seconds from its coming to its limit (the
  earlier of its budget running out at the proxy and its having taken a full bucket's worth, one second of its rate:
  after that it can only go at its rate, throttled or paced) to the program's first WARN log naming it (``not
  found`` if none).

Read-back goes through :func:`user_records` (one Kinesis record, its user records): the place to de-aggregate
KPL-aggregated records. ``--suite-limits`` runs issue 14's target list (2 shards with 400- and 5,000-byte records at
``bufferSize`` 100 and 500, 8 shards, ``shardWriteShare`` 0.5, a hot key, a SplitShard after 10 s, each shard-limited
run on its own input, the plain ones beside the baseline; the bench's own ceiling for the 8-shard input, its calls
pre-built and pushed by 8 threads through the proxy, routed and counted under limits that never bind, into
kinesalite; then the connector against the instant endpoint with 256 shards, 1M records of 400-byte data,
``bufferSize`` 500) and ends with a target/measured/pass table; ``--scale`` shrinks every record count for a quick
trial. The baseline stops at its first failed entry (where 0.1.5 dropped it),
so in this mode only the connector's runs decide the exit status.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from integration_tests.fault_proxy import FaultPlan, FaultProxy  # noqa: E402
from integration_tests.kinesis_emulator import free_port, start_kinesalite  # noqa: E402
from integration_tests.kpl import sub_records  # noqa: E402
from integration_tests.shard_limits import (  # noqa: E402
    BYTES_PER_SECOND,
    RECORDS_PER_SECOND,
    ShardLimits,
    StreamCounts,
)

CONNECTOR = Path(sys.executable).parent / "destination-kinesis"
BASELINE = REPO.parent / "shared" / "peers" / "java_0_1_5_port.py"
INSTANT = Path(__file__).resolve().parent / "instant_kinesis.py"
NAMESPACE = "bench"
EMITTED_AT = 1_700_000_000_000
POOL_BODIES = 64
PUT_UNIT_BYTES = 25 * 1024
SUMMARY = re.compile(rb"Kinesis stream '([^']+)': ([\d,]+) records written as ([\d,]+) Kinesis records")
GET_RECORDS_LIMIT = 10_000
START_TIMEOUT_S = 20.0
HOT_SHARE = 0.9  # the share of records that carry the hot key with --keys hot
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Shards of each stream in the kinesalite and instant modes unless --shards says otherwise: enough that the
#: connector's pacing (1,000 records/s a shard) stays above the server. Not more: kinesalite slows down as a stream's
#: shards grow (its ceiling here: 14,000 records/s at 4 shards, 10,900 at 32, 4,400 at 256).
UNPACED_SHARDS = {"kinesalite": 32, "instant": 256}
#: Shards of each stream in shard-limited mode unless --shards says otherwise.
LIMITED_SHARDS = 4


class BenchError(RuntimeError):
    """A server did not start or answer as expected."""


# ---------------------------------------------------------------- input


class RecordMaker:
    """Record ``data`` JSON of an exact size: ``seq`` first, then with ``keys="hot"`` a key field ``k``, realistic
    fields from a pool (a slimmer pool when the full one does not fit), padding last.

    ``k`` is a 34-character string, so the partition key made of it (its JSON text, quotes included) has 36 bytes,
    as a UUID has: with ``keys="hot"`` 90 % of the records (a seeded draw) carry ``k0000…0``, the others one of
    10,000 other values; with ``keys="many"`` the records take 10,007 values in turn.
    """

    def __init__(self, record_bytes: int, seed: int = 7, keys: str = "random"):
        rng = random.Random(seed)
        cities = ["Lisbon", "Osaka", "Nairobi", "Québec", "Reykjavík", "Lima", "Tbilisi", "Perth"]
        full, slim = [], []
        for _ in range(256):
            fields: dict[str, Any] = {
                "user": f"user_{rng.randrange(10**6):06d}",
                "email": f"someone.{rng.randrange(10**5)}@example.com",
                "amount": round(rng.uniform(-1e6, 1e6), 4),
                "ratio": round(rng.random(), 12),
                "active": rng.random() < 0.5,
                "created_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                              f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randrange(1000):03d}Z",
            }
            slim.append(orjson.dumps(fields)[1:-1])
            fields.update({
                "address": {"city": rng.choice(cities), "zip": f"{rng.randrange(10**5):05d}",
                            "geo": {"lat": round(rng.uniform(-90, 90), 6), "lon": round(rng.uniform(-180, 180), 6)}},
                "tags": rng.sample(["new", "vip", "churn-risk", "b2b", "mobile", "emea", "trial"], 3),
                "scores": [rng.randint(-1000, 1000) for _ in range(4)],
            })
            full.append(orjson.dumps(fields)[1:-1])
        self._ids = [rng.getrandbits(40) for _ in range(997)]
        if keys == "random":
            self._keys = [b""]
        elif keys == "many":
            self._keys = [b'"k":"k%033d",' % value for value in range(10_007)]
        else:
            self._keys = [b'"k":"k%033d",' % (0 if rng.random() < HOT_SHARE else 1 + rng.randrange(10_000))
                          for _ in range(10_007)]
        self.record_bytes = record_bytes
        for self._pool in (full, slim):
            smallest = max(len(self._make(10**9, 0, item)) for item in self._pool)
            if record_bytes >= smallest:
                break
        else:
            raise SystemExit(f"records of {record_bytes} bytes cannot hold the fields: at least {smallest} needed")
        self._padding = b"lorem ipsum dolor sit amet " * (record_bytes // 27 + 1)

    def _make(self, seq: int, pad: int, item: bytes | None = None) -> bytes:
        return b'{"seq":%d,%s"id":%d,%s,"note":"%s"}' % (
            seq, self._keys[seq % len(self._keys)], self._ids[seq % 997],
            self._pool[seq % 256] if item is None else item, self._padding[:pad] if pad else b"")

    def data(self, seq: int) -> bytes:
        unpadded = len(self._make(seq, 0))
        return self._make(seq, self.record_bytes - unpadded)


@dataclass
class Input:
    path: Path
    records: int
    record_bytes: int
    streams: int
    state_every: int
    states: int
    data_bytes: int
    keys: str = "random"

    def stream_records(self, index: int) -> int:
        return len(range(index, self.records, self.streams))


def stream_name(index: int) -> str:
    return f"s{index}"


def kinesis_name(index: int) -> str:
    return f"{NAMESPACE}_{stream_name(index)}"


def generate(directory: Path, records: int, record_bytes: int, streams: int, state_every: int,
             keys: str = "random") -> Input:
    """Write the input file; see the module docstring for its shape (``record_bytes``: of each record's data)."""
    maker = RecordMaker(record_bytes, keys=keys)
    path = directory / f"input-{records}-{record_bytes}-{streams}-{state_every}-{keys}.jsonl"
    counts = [0] * streams
    states = data_bytes = 0
    lines: list[bytes] = []

    def state(index: int, cursor: int) -> bytes:
        nonlocal states
        states += 1
        return orjson.dumps({"type": "STATE", "state": {
            "type": "STREAM", "id": states,
            "stream": {"stream_descriptor": {"name": stream_name(index), "namespace": NAMESPACE},
                       "stream_state": {"cursor": cursor}},
            "sourceStats": {"recordCount": float(counts[index] % state_every or state_every)}}}) + b"\n"

    with path.open("wb") as out:
        for seq in range(records):
            index = seq % streams
            data = maker.data(seq)
            data_bytes += len(data)
            lines.append(b'{"type":"RECORD","record":{"namespace":"%s","stream":"%s","data":%s,"emitted_at":%d}}\n'
                         % (NAMESPACE.encode(), stream_name(index).encode(), data, EMITTED_AT + seq // 1000))
            counts[index] += 1
            if counts[index] % state_every == 0:
                lines.append(state(index, seq))
            if len(lines) >= 10_000:
                out.write(b"".join(lines))
                lines.clear()
        for index in range(streams):
            if counts[index] % state_every:
                lines.append(state(index, records - 1 - (records - 1 - index) % streams))
        out.write(b"".join(lines))
    return Input(path, records, record_bytes, streams, state_every, states, data_bytes, keys)


def write_config(directory: Path, endpoint: str, args: argparse.Namespace, streams: int) -> tuple[Path, Path]:
    """The config (``--shards``, ``--buffer-size``, then ``--connector-config`` over them) and the catalog."""
    config = directory / "config.json"
    config.write_text(json.dumps({"endpoint": endpoint, "region": "us-east-1", "accessKey": "bench",
                                  "privateKey": "bench-secret", "shardCount": args.shards,
                                  "bufferSize": args.buffer_size, **args.connector_config}))
    catalog = directory / "catalog.json"
    catalog.write_text(json.dumps({"streams": [{
        "stream": {"name": stream_name(i), "namespace": NAMESPACE, "json_schema": {},
                   "supported_sync_modes": ["full_refresh", "incremental"]},
        "sync_mode": "incremental", "destination_sync_mode": "append"} for i in range(streams)]}))
    return config, catalog


# ---------------------------------------------------------------- servers and a raw client


class Server(Protocol):
    endpoint: str

    @property
    def pid(self) -> int: ...

    def stop(self) -> None: ...


class InstantServer:
    """``instant_kinesis.py`` in its own process on a free port of 127.0.0.1, stopped by PID."""

    def __init__(self) -> None:
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, str(INSTANT), "--port", str(port)],
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                Client(self.endpoint).stats()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise BenchError(f"the instant server did not answer on {self.endpoint}") from None
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(mode: str) -> Server:
    return start_kinesalite() if mode == "kinesalite" else InstantServer()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Client:
    """Kinesis JSON 1.1 over one keep-alive connection. Unsigned: kinesalite checks only the header's shape."""

    def __init__(self, endpoint: str):
        url = urlsplit(endpoint)
        self._conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=120)
        self._headers = {
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Date": "20240101T000000Z",
            "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20240101/us-east-1/kinesis/aws4_request, "
                             "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0"}

    def post(self, operation: str, body: bytes) -> tuple[int, bytes]:
        self._conn.request("POST", "/", body, {**self._headers, "X-Amz-Target": f"Kinesis_20131202.{operation}"})
        response = self._conn.getresponse()
        return response.status, response.read()

    def call(self, operation: str, **payload: Any) -> Any:
        status, body = self.post(operation, orjson.dumps(payload))
        if status != 200:
            raise BenchError(f"{operation} answered {status}: {body[:300]!r}")
        return orjson.loads(body) if body else {}

    def stats(self) -> Any:
        self._conn.request("GET", "/stats")
        return orjson.loads(self._conn.getresponse().read())

    def connect(self) -> Client:
        self._conn.connect()
        return self

    def close(self) -> None:
        self._conn.close()


def create_streams(endpoint: str, streams: int, shards: int) -> None:
    client = Client(endpoint)
    for index in range(streams):
        client.call("CreateStream", StreamName=kinesis_name(index), ShardCount=shards)
        deadline = time.monotonic() + START_TIMEOUT_S
        while client.call("DescribeStreamSummary", StreamName=kinesis_name(index))[
                "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise BenchError(f"stream {kinesis_name(index)} did not become ACTIVE")
            time.sleep(0.05)
    client.close()


# ---------------------------------------------------------------- measurements


@dataclass
class Result:
    mode: str
    what: str  # "ceiling", "empty sync", "connector" or "baseline"
    records: int
    state_every: int
    wall_s: float
    data_bytes: int
    threads: int | None = None
    cpu_s: float | None = None
    peak_rss_kib: int | None = None
    states: int | None = None
    server_cpu_s: float | None = None
    missing: int = 0
    duplicates: int = 0
    misplaced: int = 0
    failure: str = ""
    verify_s: float = 0.0  # reading back what arrived, after the timed run

    @property
    def ok(self) -> bool:
        return not self.failure

    @property
    def rate(self) -> float:
        return self.records / self.wall_s

    @property
    def cpu_us(self) -> float | None:
        return None if self.cpu_s is None or not self.records else self.cpu_s * 1e6 / self.records

    @property
    def rss_mib(self) -> float | None:
        return None if self.peak_rss_kib is None else self.peak_rss_kib / 1024

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "records_per_s": self.rate, "mb_per_s": self.data_bytes / self.wall_s
                / 1e6, "cpu_us_per_record": self.cpu_us, "peak_rss_mib": self.rss_mib}


def ceiling_requests(inp: Input, batch: int) -> list[tuple[bytes, int]]:
    """PutRecords bodies covering every record of the input, round-robin over the streams."""
    maker = RecordMaker(inp.record_bytes)
    seq = itertools.count()

    def body(index: int, entries: int) -> tuple[bytes, int]:
        parts = []
        for _ in range(entries):
            key = str(uuid.uuid4()).encode()
            envelope = b'{"_airbyte_ab_id":"%s","_airbyte_emitted_at":%d,"_airbyte_data":%s}' % (
                key, EMITTED_AT, maker.data(next(seq)))
            parts.append(b'{"Data":"%s","PartitionKey":"%s"}' % (base64.b64encode(envelope), key))
        return b'{"StreamName":"%s","Records":[%s]}' % (kinesis_name(index).encode(), b",".join(parts)), entries

    per_stream = []
    for index in range(inp.streams):
        full, rest = divmod(inp.stream_records(index), batch)
        pool = [body(index, batch) for _ in range(min(full, POOL_BODIES))]
        per_stream.append([pool[i % len(pool)] for i in range(full)] + ([body(index, rest)] if rest else []))
    return [request for group in itertools.zip_longest(*per_stream) for request in group if request]


def measure_ceiling(mode: str, inp: Input, requests: list[tuple[bytes, int]], threads: int,
                    args: argparse.Namespace, via_proxy: bool = False) -> Result:
    """Push ``requests`` with ``threads`` threads to a fresh server of ``mode``; ``via_proxy``: through the fault
    proxy routing and counting every entry under limits that never bind (what the shard-limited mode's bench itself
    can carry), reported as mode "proxy"."""
    server = start_server(mode)
    proxy = FaultProxy(server.endpoint, FaultPlan(seed=0, shard_limits=UNBOUND)).start() if via_proxy else None
    try:
        endpoint = server.endpoint if proxy is None else proxy.endpoint
        create_streams(endpoint, inp.streams, args.shards)
        clients = [Client(endpoint).connect() for _ in range(threads)]
        accepted = [0] * threads
        errors: list[str] = []
        counter = itertools.count()

        def push(k: int) -> None:
            try:
                while (i := next(counter)) < len(requests) and not errors:
                    body, entries = requests[i]
                    status, answer = clients[k].post("PutRecords", body)
                    if status != 200 or not answer.startswith(b'{"FailedRecordCount":0,'):
                        errors.append(f"PutRecords answered {status}: {answer[:200]!r}")
                        return
                    accepted[k] += entries
            except Exception as exc:  # noqa: BLE001 - reported as the run's failure
                errors.append(repr(exc))

        workers = [threading.Thread(target=push, args=(k,)) for k in range(threads)]
        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - cpu_before
        for client in clients:
            client.close()
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
    failure = errors[0] if errors else ("" if sum(accepted) == inp.records else
                                        f"{inp.records - sum(accepted)} records not accepted")
    return Result("proxy" if via_proxy else mode, "ceiling", inp.records, inp.state_every, wall, inp.data_bytes,
                  threads=threads, server_cpu_s=server_cpu, failure=failure)


class PeakRss:
    """Polls a running process's ``VmHWM`` (the peak resident memory of the program it exec'd) every 20 ms.

    ``VmHWM`` only grows, so the last value read before the process exits is its peak but for what it allocated in
    its last 20 ms. :meth:`stop` returns the peak in KiB (None when it could not be read at all).
    """

    def __init__(self, pid: int):
        self._path = Path(f"/proc/{pid}/status")
        self._done = threading.Event()
        self.peak_kib: int | None = None
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while True:
            try:
                for line in self._path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib or 0, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            if self._done.wait(0.02):
                return

    def stop(self) -> int | None:
        self._done.set()
        self._thread.join()
        return self.peak_kib


@dataclass
class Timed:
    """A finished program run: wall seconds from spawn to exit, its own user+sys CPU, its peak RSS, its exit code."""

    wall_s: float
    cpu_s: float
    peak_rss_kib: int | None
    returncode: int


def run_timed(argv: list[str], stdin: Path, stdout: Any, stderr: Any, timeout: float,
              on_start: Callable[[subprocess.Popen[bytes]], None] | None = None) -> Timed:
    """Run ``argv`` with the file ``stdin`` as its input, killed after ``timeout`` seconds. ``on_start`` gets the
    process as soon as it is spawned (to read its stdout when that is a pipe)."""
    with stdin.open("rb") as source:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdin=source, stdout=stdout, stderr=stderr)
        if on_start is not None:
            on_start(process)
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        peak = PeakRss(process.pid)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        watchdog.cancel()
    peak_rss_kib = peak.stop()
    process.returncode = os.waitstatus_to_exitcode(status)
    return Timed(wall, usage.ru_utime + usage.ru_stime, peak_rss_kib, process.returncode)


def program(what: str, args: argparse.Namespace, config: Path, catalog: Path) -> list[str]:
    """The ``write`` command line of the connector or the baseline."""
    head = [sys.executable, str(args.baseline)] if what == "baseline" else [str(CONNECTOR)]
    return [*head, "write", "--config", str(config), "--catalog", str(catalog)]


def measure_sync(what: str, mode: str, inp: Input, args: argparse.Namespace, workdir: Path) -> Result:
    """Run the connector or the baseline on a fresh server, time it, then verify what arrived."""
    server = start_server(mode)
    try:
        config, catalog = write_config(workdir, server.endpoint, args, inp.streams)
        out_path, err_path = workdir / f"{what}.out", workdir / f"{what}.err"
        with out_path.open("wb") as stdout, err_path.open("wb") as stderr:
            cpu_before = cpu_seconds(server.pid)
            timed = run_timed(program(what, args, config, catalog), inp.path, stdout, stderr, args.timeout)
            server_cpu = cpu_seconds(server.pid) - cpu_before
        result = Result(mode, what, inp.records, inp.state_every, timed.wall_s, inp.data_bytes, cpu_s=timed.cpu_s,
                        peak_rss_kib=timed.peak_rss_kib, server_cpu_s=server_cpu)
        states, trace = read_output(out_path)
        result.states = states
        expected_states = min(inp.states, 1) if what == "baseline" else inp.states
        if timed.returncode != 0:
            tail = trace or err_path.read_text(errors="replace")[-500:]
            result.failure = f"exit code {timed.returncode}: {tail}"
        started = time.perf_counter()
        verify(server, mode, inp, result, out_path)
        result.verify_s = time.perf_counter() - started
        if not result.failure and states != expected_states:
            result.failure = f"{states} states emitted, {expected_states} expected"
    finally:
        server.stop()
    return result


def read_output(path: Path) -> tuple[int, str]:
    """The number of STATE messages on stdout, and the last TRACE error's message."""
    states, trace = 0, ""
    with path.open("rb") as lines:
        for line in lines:
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if message.get("type") == "STATE":
                states += 1
            elif message.get("type") == "TRACE" and "error" in message.get("trace", {}):
                trace = str(message["trace"]["error"].get("message"))
    return states, trace


def verify(server: Server, mode: str, inp: Input, result: Result, out_path: Path) -> None:
    """Fill in missing, duplicate and misplaced counts (and the failure they make). The instant endpoint counts
    Kinesis records, not the user records aggregated ones hold: against it, an aggregated stream must have received
    as many Kinesis records as the program says it wrote its user records in, and it must say it wrote them all."""
    if mode == "instant":
        received = Client(server.endpoint).stats()["records"]
        written = written_summary(out_path)
        for index in range(inp.streams):
            expected, got = inp.stream_records(index), received.get(kinesis_name(index), 0)
            if kinesis_name(index) in written:
                user, kinesis = written[kinesis_name(index)]
                if kinesis != got:
                    result.failure = f"{got} Kinesis records received, {kinesis} written"
                got = user
            result.missing += max(0, expected - got)
            result.duplicates += max(0, got - expected)
    else:
        seen, result.misplaced, _ = written_seqs(server.endpoint, inp)
        result.missing = seen.count(0)
        result.duplicates = sum(count - 1 for count in seen if count > 1)
    problems = [f"{n} {what}" for n, what in ((result.missing, "missing"), (result.misplaced, "in the wrong stream"))
                if n]
    if problems and not result.failure:
        result.failure = ", ".join(problems)


def written_summary(out_path: Path) -> dict[str, tuple[int, int]]:
    """Per Kinesis stream whose user records went in fewer Kinesis records (aggregation), both numbers, from the
    program's summary log (``'name': N records written as K Kinesis records``)."""
    written = {}
    for line in out_path.read_bytes().splitlines():
        match = SUMMARY.search(line)
        if match:
            user, kinesis = (int(match[group].replace(b",", b"")) for group in (2, 3))
            if user != kinesis:
                written[match[1].decode()] = (user, kinesis)
    return written


def written_seqs(endpoint: str, inp: Input) -> tuple[bytearray, int, int]:
    """How often each record (by ``seq``) is in the input's streams (at most 255), how many are in the wrong one, and
    the PUT payload units of the Kinesis records holding them (a unit per started 25 KiB of data plus key)."""
    seen = bytearray(inp.records)
    misplaced = units = 0
    for index in range(inp.streams):
        for data, key in read_stream(endpoint, kinesis_name(index)):
            units += -(-(len(data) + len(key.encode())) // PUT_UNIT_BYTES)
            for record in user_records(data):
                seq = record_seq(record)
                if seq % inp.streams != index:
                    misplaced += 1
                if seen[seq] < 255:
                    seen[seq] += 1
    return seen, misplaced, units


def user_records(data: bytes) -> list[bytes]:
    """The user records one Kinesis record holds: the record itself, or the sub-records of a KPL-aggregated one
    (:mod:`integration_tests.kpl`). Every read-back and the shard-limited mode's live check go through here."""
    subs = sub_records(data)
    return [data] if subs is None else [sub.data for sub in subs]


def record_seq(user_record: bytes) -> int:
    """The ``seq`` of a written record: in ``_airbyte_data``, an object (the connector) or a JSON string (0.1.5)."""
    value = orjson.loads(user_record)["_airbyte_data"]
    return int((orjson.loads(value) if isinstance(value, str) else value)["seq"])


def read_stream(endpoint: str, name: str) -> Iterator[tuple[bytes, str]]:
    """Every record's data and partition key in a stream, shard by shard (closed ones too), from the oldest on
    (kinesalite's pages end empty). A stream that does not exist (the sync failed before creating it) holds
    nothing."""
    client = Client(endpoint)
    status, answer = client.post("ListShards", orjson.dumps({"StreamName": name}))
    if status == 400 and b"ResourceNotFoundException" in answer:
        return
    if status != 200:
        raise BenchError(f"ListShards answered {status}: {answer[:300]!r}")
    for shard in orjson.loads(answer)["Shards"]:
        iterator = client.call("GetShardIterator", StreamName=name, ShardId=shard["ShardId"],
                               ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.call("GetRecords", ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
            if not page["Records"]:
                break
            for record in page["Records"]:
                yield base64.b64decode(record["Data"]), record["PartitionKey"]
            iterator = page.get("NextShardIterator")
    client.close()


# ---------------------------------------------------------------- runs and reports


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(result: Result) -> Result:
    """Show a finished measurement on stderr at once."""
    progress(row(result) + (f"  (verified in {result.verify_s:.1f} s)" if result.verify_s else ""))
    return result


def measure_mode(mode: str, inp: Input, args: argparse.Namespace, workdir: Path, ceiling: bool, baseline: bool,
                 empty: Input | None = None) -> list[Result]:
    """The ceiling trials, an empty sync (the connector's fixed cost) when ``empty`` is given, then the syncs."""
    args = argparse.Namespace(**{**vars(args), "shards": args.shards or UNPACED_SHARDS[mode]})
    results: list[Result] = []
    if ceiling:
        requests = ceiling_requests(inp, args.buffer_size)
        for threads in args.ceiling_threads:
            results.append(report(measure_ceiling(mode, inp, requests, threads, args)))
        del requests  # the bodies take tens of MB; free them before the syncs run
    if empty is not None:
        results.append(report(measure_sync("empty sync", mode, empty, args, workdir)))
    for what in ("connector", "baseline") if baseline else ("connector",):
        for _ in range(args.runs):
            results.append(report(measure_sync(what, mode, inp, args, workdir)))
    return results


def best(results: list[Result], mode: str, what: str, records: int | None = None,
         state_every: int | None = None) -> Result | None:
    """The fastest successful run of ``what`` in ``mode`` (of that input size and state frequency if given)."""
    candidates = [r for r in results if r.mode == mode and r.what == what and r.ok
                  and records in (None, r.records) and state_every in (None, r.state_every)]
    return max(candidates, key=lambda r: r.rate, default=None)


def beyond_empty(results: list[Result], run: Result | None) -> float | None:
    """CPU µs per record of ``run`` minus the CPU of the empty sync of its mode (start-up and shutdown)."""
    empty = best(results, run.mode, "empty sync") if run else None
    if run is None or empty is None or run.cpu_s is None or empty.cpu_s is None:
        return None
    return (run.cpu_s - empty.cpu_s) * 1e6 / run.records


HEADER = (f"{'mode':<10} {'what':<14} {'records':>9} {'st.every':>8} {'wall s':>7} {'rec/s':>9} {'MB/s':>6} "
          f"{'CPU µs/rec':>10} {'RSS MiB':>8} {'states':>7} {'srv CPU%':>8}  check")


def num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row(r: Result) -> str:
    what = f"ceiling ×{r.threads}" if r.what == "ceiling" else r.what
    check = "ok" if r.ok else "FAILED: " + " ".join(r.failure.split())
    if r.duplicates:
        check += f" ({r.duplicates} duplicates)"
    rate, mbps = (r.rate, r.data_bytes / r.wall_s / 1e6) if r.records and r.ok else (None, None)
    return (f"{r.mode:<10} {what:<14} {r.records:>9} {r.state_every:>8} {r.wall_s:>7.1f} {num(rate, ',.0f'):>9} "
            f"{num(mbps, '.2f'):>6} {num(r.cpu_us, '.1f'):>10} {num(r.rss_mib, '.0f'):>8} "
            f"{num(r.states, 'd'):>7} {num(r.server_cpu_s and r.server_cpu_s * 100 / r.wall_s, '.0f'):>8}  "
            f"{check[:160]}")


def ratios(results: list[Result]) -> list[str]:
    lines = []
    for mode in dict.fromkeys(r.mode for r in results):
        ceiling, baseline = best(results, mode, "ceiling"), best(results, mode, "baseline")
        empty, connector = best(results, mode, "empty sync"), best(results, mode, "connector")
        if empty is not None and empty.cpu_s is not None:
            lines.append(f"{mode}: connector fixed cost (empty sync): {empty.wall_s:.1f} s wall, "
                         f"{empty.cpu_s:.2f} s CPU, {empty.rss_mib:.0f} MiB; CPU beyond it "
                         f"{num(beyond_empty(results, connector), '.1f')} µs/record")
        for what, r in (("connector", connector), ("baseline", baseline)):
            if r is None:
                continue
            parts = []
            if ceiling:
                parts.append(f"{r.rate / ceiling.rate:.2f} × ceiling ({ceiling.rate:,.0f} rec/s, "
                             f"{ceiling.threads} threads)")
            if baseline and r is not baseline:
                parts.append(f"{r.rate / baseline.rate:.2f} × baseline records/s, "
                             f"{r.cpu_us / baseline.cpu_us:.2f} × its CPU/record, "  # type: ignore[operator]
                             f"{r.rss_mib / baseline.rss_mib:.2f} × its peak RSS")  # type: ignore[operator]
            if parts:
                lines.append(f"{mode}: {what} {r.rate:,.0f} rec/s = " + "; ".join(parts))
    return lines


def run_suite(args: argparse.Namespace, workdir: Path, inputs: Any) -> tuple[list[Result], list[tuple]]:
    n, small, large = args.records, args.records // 5, args.records * 2
    empty = inputs(0, args.state_every)
    results = measure_mode("kinesalite", inputs(n, args.state_every), args, workdir,
                           ceiling=not args.skip_ceiling, baseline=not args.skip_baseline, empty=empty)
    results += measure_mode("instant", inputs(n, args.state_every), args, workdir, ceiling=not args.skip_ceiling,
                            baseline=False, empty=empty)
    for records, state_every in ((n, 1), (small, args.state_every), (large, args.state_every)):
        results += measure_mode("instant", inputs(records, state_every), args, workdir, ceiling=False,
                                baseline=False)

    def ratio(a: Result | None, b: Result | None, attr: str) -> float | None:
        return None if a is None or b is None else getattr(a, attr) / getattr(b, attr)

    kin, inst = best(results, "kinesalite", "connector", n, args.state_every), \
        best(results, "instant", "connector", n, args.state_every)
    every1 = best(results, "instant", "connector", n, 1)
    rss_small = best(results, "instant", "connector", small, args.state_every)
    rss_large = best(results, "instant", "connector", large, args.state_every)
    connector_runs = [r for r in results if r.what == "connector"]
    peak = max((r.rss_mib for r in connector_runs if r.rss_mib is not None), default=None)
    ceiling, baseline = best(results, "kinesalite", "ceiling"), best(results, "kinesalite", "baseline")
    targets = [
        (f"kinesalite {n:,}: connector ÷ server ceiling", "≥ 0.90", ratio(kin, ceiling, "rate"), 0.9, "min"),
        (f"kinesalite {n:,}: baseline ÷ server ceiling (reference)", "≈ 0.5", ratio(baseline, ceiling, "rate"),
         None, ""),
        (f"connector CPU µs/record, kinesalite {n:,}", "≤ 5", kin and kin.cpu_us, 5.0, "max"),
        (f"connector CPU µs/record, instant {n:,}", "≤ 5", inst and inst.cpu_us, 5.0, "max"),
        ("  the same beyond an empty sync's CPU (reference)", "", beyond_empty(results, inst), None, ""),
        (f"instant {n:,}: connector records/s", "≥ 150,000", inst and inst.rate, 150_000, "min"),
        ("state every record ÷ every 1,000: records/s (instant)", "≥ 0.50", ratio(every1, inst, "rate"), 0.5, "min"),
        ("peak RSS of every connector run, MiB", "≤ 150", peak, 150.0, "max"),
        (f"peak RSS {large:,} ÷ {small:,} records (instant)", "≤ 1.10", ratio(rss_large, rss_small, "rss_mib"),
         1.1, "max"),
        ("every connector run verified (records, states)", "all", sum(r.ok for r in connector_runs),
         len(connector_runs), "all"),
    ]
    return results, targets


def judge(measured: float | str | None, bound: float | None, kind: str) -> str:
    """"yes" or "no" for a target, "-" for a reference figure without a bound; a text instead of a figure (such as
    "not found") fails its target."""
    if bound is None:
        return "-"
    if measured is None or isinstance(measured, str):
        return "no"
    return "yes" if (measured == bound if kind == "all" else measured >= bound if kind == "min"
                     else measured <= bound) else "no"


def target_table(targets: list[tuple]) -> list[str]:
    lines = [f"{'target':<58} {'goal':>10} {'measured':>12}  pass"]
    for name, goal, measured, bound, kind in targets:
        if measured is None:
            shown = "not measured"
        elif isinstance(measured, str):
            shown = measured
        elif kind == "all":
            shown = f"{measured}/{bound}"
        elif isinstance(measured, int):
            shown = f"{measured:,}"
        else:
            shown = f"{measured:,.0f}" if measured >= 1000 else f"{measured:.2f}"
        lines.append(f"{name:<58} {goal:>10} {shown:>12}  {judge(measured, bound, kind)}")
    return lines


# ---------------------------------------------------------------- shard-limited mode
# The connector (or the baseline) writes through the fault proxy in its AWS per-shard limit mode into kinesalite.

#: The connector's envelope without its data: {"_airbyte_ab_id":"<uuid>","_airbyte_emitted_at":<ms>,"_airbyte_data":}
ENVELOPE_BYTES = len(b'{"_airbyte_ab_id":"","_airbyte_emitted_at":,"_airbyte_data":}') + 36 + len(str(EMITTED_AT))
KEY_BYTES = 36  # a UUID partition key, and the key of a --keys hot record (see RecordMaker)
CAPACITY_TARGET = 0.95
THROTTLED_TARGET_PERCENT = 3.0
SHARE_TARGET = 0.55
WARNING_TARGET_S = 20.0
UNBOUND = ShardLimits(records_per_second=1e12, bytes_per_second=1e15)  # routed and counted, never refused


def data_size(record_bytes: int) -> int:
    """The data JSON size that makes the connector's Kinesis record (envelope plus partition key) ``record_bytes``."""
    return record_bytes - ENVELOPE_BYTES - KEY_BYTES


def shard_rate(record_bytes: int) -> float:
    """Records/s one shard takes of records this size: 1,000, or fewer where 1 MiB/s binds first."""
    return min(RECORDS_PER_SECOND, BYTES_PER_SECOND / record_bytes)


@dataclass(frozen=True)
class Setup:
    """One shard-limited run: ``record_bytes`` is the size of the connector's Kinesis record (envelope plus key)."""

    shards: int
    records: int
    record_bytes: int
    buffer_size: int
    streams: int = 1
    keys: str = "random"
    config: dict[str, Any] = field(default_factory=dict)
    split_after: float | None = None

    @property
    def capacity(self) -> float:
        """Records/s the streams take: streams × shards × each shard's rate."""
        return self.streams * self.shards * shard_rate(self.record_bytes)

    def describe(self) -> str:
        parts = [f"{self.shards} shards", f"{self.record_bytes:,} B", f"bufferSize {self.buffer_size}"]
        if self.streams > 1:
            parts.insert(0, f"{self.streams} streams")
        if self.keys != "random":
            parts.append(f"{self.keys} key")
        if self.split_after is not None:
            parts.append(f"split after {self.split_after:g} s")
        if self.config:
            parts.append(json.dumps(self.config, separators=(",", ":")))
        return ", ".join(parts)


class Coverage:
    """What the proxy saw Kinesis accept, by ``seq`` and when, and whether each STATE the program printed vouched
    only for accepted records: a STREAM state's cursor is the ``seq`` of its stream's last record before it.

    :meth:`on_written` runs in the proxy's threads before the client hears of the write, :meth:`on_state` in the
    thread reading the program's stdout, so a state printed after its records were accepted is never called early.
    """

    def __init__(self, inp: Input):
        self._streams = inp.streams
        self._accepted = bytearray(inp.records)
        self._next = list(range(inp.streams))  # per stream: its first seq not known to be accepted
        self._lock = threading.Lock()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.early = 0

    def on_written(self, stream: str, data: bytes) -> None:
        for record in user_records(data):
            self._accepted[record_seq(record)] = 1
        now = time.monotonic()
        with self._lock:
            self.first_at = now if self.first_at is None else self.first_at
            self.last_at = now if self.last_at is None else max(self.last_at, now)

    def on_state(self, message: dict[str, Any]) -> None:
        stream = message["state"]["stream"]
        index = int(stream["stream_descriptor"]["name"][1:])  # stream_name(index)
        cursor = stream["stream_state"]["cursor"]
        accepted, after = self._accepted, self._next[index]
        while after < len(accepted) and accepted[after]:
            after += self._streams
        self._next[index] = after
        if after <= cursor:
            self.early += 1


class OutputWatch:
    """Reads a running program's stdout: counts STATEs (each checked by ``coverage``), keeps the last TRACE error
    and every WARN log with the ``time.monotonic()`` it arrived at."""

    def __init__(self, stdout: Any, coverage: Coverage):
        self.states = 0
        self.trace = ""
        self.warnings: list[tuple[float, str]] = []
        self._coverage = coverage
        self._thread = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._thread.start()

    def _read(self, stdout: Any) -> None:
        with stdout:
            for line in stdout:
                arrived = time.monotonic()
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                kind = message.get("type")
                if kind == "STATE":
                    self.states += 1
                    self._coverage.on_state(message)
                elif kind == "LOG" and message["log"].get("level") in ("WARN", "WARNING"):
                    self.warnings.append((arrived, str(message["log"].get("message"))))
                elif kind == "TRACE" and "error" in message.get("trace", {}):
                    self.trace = str(message["trace"]["error"].get("message"))

    def join(self) -> None:
        self._thread.join(START_TIMEOUT_S)


class Splitter:
    """Splits a stream's ``shardId-000000000000`` in the middle of its hash key range, on kinesalite directly (not
    through the proxy), ``after`` seconds after :meth:`start`; waits for the stream to be ACTIVE first."""

    def __init__(self, endpoint: str, stream: str, after: float):
        self._endpoint, self._stream, self._after = endpoint, stream, after
        self._done = threading.Event()
        self.split_at: float | None = None
        self.error = ""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        if self._done.wait(self._after):
            return
        client = Client(self._endpoint)
        try:
            while not self._done.is_set():
                status, answer = client.post("DescribeStreamSummary", orjson.dumps({"StreamName": self._stream}))
                if status == 200 and b'"ACTIVE"' in answer:
                    break
                time.sleep(0.05)
            else:
                return
            (shard,) = [shard for shard in client.call("ListShards", StreamName=self._stream)["Shards"]
                        if shard["ShardId"] == "shardId-000000000000"]
            hash_range = shard["HashKeyRange"]
            middle = (int(hash_range["StartingHashKey"]) + int(hash_range["EndingHashKey"]) + 1) // 2
            client.call("SplitShard", StreamName=self._stream, ShardToSplit=shard["ShardId"],
                        NewStartingHashKey=str(middle))
            self.split_at = time.monotonic()
        except (BenchError, OSError, ValueError) as exc:
            self.error = str(exc)
        finally:
            client.close()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(START_TIMEOUT_S)


@dataclass
class Limited:
    """A shard-limited run's figures (times in seconds, bytes as the proxy counts them: data plus key)."""

    what: str  # "connector" or "baseline"
    setup: Setup
    wall_s: float = 0.0
    cpu_s: float | None = None
    peak_rss_kib: int | None = None
    window_s: float | None = None  # from the first to the last entry the proxy saw accepted
    entries: int = 0  # entries sent, resends included
    accepted: int = 0
    throttled: int = 0
    calls: int = 0
    bytes_sent: int = 0
    bytes_accepted: int = 0
    misrouted: int = 0
    put_units: int = 0  # of the Kinesis records read back (duplicates too)
    lost: int = 0
    duplicates: int = 0
    misplaced: int = 0
    states: int = 0
    states_expected: int = 0
    early_states: int = 0
    server_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0  # this process: the proxy's threads, the live checks
    shards: dict[str, dict[str, Any]] = field(default_factory=dict)
    hot_shard: str = ""
    hot_accepted: int = 0
    limit_after_s: float | None = None  # from the spawn to the hot shard coming to its limit
    warning_after_s: float | None = None  # from then to the first WARN naming the hot shard
    warning: str = ""
    first_warning_after_s: float | None = None  # from the spawn to the program's first WARN log, whatever it says
    first_warning: str = ""
    split: str = ""
    failure: str = ""

    @property
    def ok(self) -> bool:
        return not self.failure

    @property
    def rate(self) -> float | None:
        """Distinct records written per second of the writing window."""
        return (self.setup.records - self.lost) / self.window_s if self.window_s else None

    @property
    def of_capacity(self) -> float | None:
        return None if self.rate is None else self.rate / self.setup.capacity

    @property
    def throttled_percent(self) -> float | None:
        return self.throttled * 100 / self.entries if self.entries else None

    @property
    def sent_per_written(self) -> float | None:
        return self.bytes_sent / self.bytes_accepted if self.bytes_accepted else None

    @property
    def units_per_million(self) -> float | None:
        """PUT payload units per million records written."""
        return self.put_units * 1e6 / self.setup.records if self.put_units else None

    @property
    def hot_of_limit(self) -> float | None:
        """The hot shard's accepted records/s over the window, as a share of what one shard takes."""
        if not self.window_s or not self.hot_shard:
            return None
        return self.hot_accepted / self.window_s / shard_rate(self.setup.record_bytes)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "records_per_s": self.rate, "of_capacity": self.of_capacity,
                "capacity": self.setup.capacity, "throttled_percent": self.throttled_percent,
                "sent_per_written": self.sent_per_written, "hot_of_limit": self.hot_of_limit,
                "put_units_per_million": self.units_per_million}


def measure_limited(what: str, setup: Setup, inp: Input, args: argparse.Namespace, workdir: Path) -> Limited:
    """Run the connector or the baseline through a fresh proxy (AWS's limits) into a fresh kinesalite; read back."""
    result = Limited(what, setup, states_expected=min(inp.states, 1) if what == "baseline" else inp.states)
    run_args = argparse.Namespace(**{**vars(args), "shards": setup.shards, "buffer_size": setup.buffer_size,
                                     "connector_config": setup.config})
    coverage = Coverage(inp)
    kinesalite = start_kinesalite()
    try:
        proxy = FaultProxy(kinesalite.endpoint, FaultPlan(seed=0, shard_limits=ShardLimits()), coverage.on_written)
        splitter = (Splitter(kinesalite.endpoint, kinesis_name(0), setup.split_after)
                    if setup.split_after is not None else None)
        watch: OutputWatch | None = None
        spawned = 0.0

        def on_start(process: subprocess.Popen[bytes]) -> None:
            nonlocal watch, spawned
            spawned = time.monotonic()
            watch = OutputWatch(process.stdout, coverage)
            if splitter is not None:
                splitter.start()

        with proxy.start():
            config, catalog = write_config(workdir, proxy.endpoint, run_args, inp.streams)
            err_path = workdir / f"{what}.err"
            with err_path.open("wb") as stderr:
                server_before, bench_before = cpu_seconds(kinesalite.pid), time.process_time()
                try:
                    timed = run_timed(program(what, run_args, config, catalog), inp.path, subprocess.PIPE, stderr,
                                      args.timeout, on_start)
                finally:
                    if splitter is not None:
                        splitter.stop()
                result.server_cpu_s = cpu_seconds(kinesalite.pid) - server_before
                result.bench_cpu_s = time.process_time() - bench_before
            assert watch is not None
            watch.join()
        result.wall_s, result.cpu_s, result.peak_rss_kib = timed.wall_s, timed.cpu_s, timed.peak_rss_kib
        note_output(result, watch, coverage, spawned)
        assert proxy.limiter is not None
        count_limits(result, proxy.limiter.counts())
        if setup.keys == "hot":
            find_hot_shard_warning(result, proxy.limiter.counts(), watch.warnings, spawned)
        if splitter is not None:
            result.split = split_note(splitter, len(proxy.limiter.open_shards(kinesis_name(0))), spawned)
        seen, result.misplaced, result.put_units = written_seqs(kinesalite.endpoint, inp)
        result.lost = seen.count(0)
        result.duplicates = sum(count - 1 for count in seen if count > 1)
        exit_problem = (f"exit code {timed.returncode}: {watch.trace or err_path.read_text(errors='replace')[-300:]}"
                        if timed.returncode else "")
        result.failure = limited_failure(result, exit_problem)
    finally:
        kinesalite.stop()
    return result


def split_note(splitter: Splitter, open_shards: int, spawned: float) -> str:
    """When the split was made (seconds after the connector started) and the open shards after, or why not."""
    if splitter.split_at is None:
        return f"no split made: {splitter.error or 'the sync ended first'}"
    return f"split at {splitter.split_at - spawned:.1f} s, {open_shards} open shards after"


def limited_failure(result: Limited, exit_problem: str) -> str:
    """What went wrong in a shard-limited run, "" when nothing did."""
    problems = [exit_problem,
                f"{result.lost} lost" if result.lost else "",
                f"{result.misplaced} in the wrong stream" if result.misplaced else "",
                f"{result.states} of {result.states_expected} states" if result.states != result.states_expected
                else "",
                f"{result.early_states} states before their records" if result.early_states else ""]
    return "; ".join(problem for problem in problems if problem)


def note_output(result: Limited, watch: OutputWatch, coverage: Coverage, spawned: float) -> None:
    """Fill in the states, the writing window and the first WARN log."""
    result.states, result.early_states = watch.states, coverage.early
    if coverage.first_at is not None and coverage.last_at is not None:
        result.window_s = coverage.last_at - coverage.first_at
    if watch.warnings:
        result.first_warning_after_s = watch.warnings[0][0] - spawned
        result.first_warning = watch.warnings[0][1][:300]


def count_limits(result: Limited, counts: dict[str, StreamCounts]) -> None:
    """Fill in the proxy's counts, summed over the streams, and per shard."""
    for stream, stream_counts in counts.items():
        result.calls += stream_counts.calls
        result.misrouted += stream_counts.misrouted
        for shard_id, shard in stream_counts.shards.items():
            result.entries += shard.entries
            result.accepted += shard.accepted
            result.throttled += shard.throttled
            result.bytes_sent += shard.entry_bytes
            result.bytes_accepted += shard.accepted_bytes
            result.shards[f"{stream}/{shard_id}"] = {"entries": shard.entries, "accepted": shard.accepted,
                                                     "throttled": shard.throttled}


def find_hot_shard_warning(result: Limited, counts: dict[str, StreamCounts], warnings: list[tuple[float, str]],
                           spawned: float) -> None:
    """The hot shard (the one that took the most records); when it came to its limit, the earlier of its budget
    running out at the proxy (an entry refused, or its bucket emptied) and its having taken a full bucket's worth
    (from then on it can only go at its rate: how a connector that paces itself shows); and how long after that the
    program's first WARN log naming the shard came."""
    shards = [(shard_id, shard) for stream in counts.values() for shard_id, shard in stream.shards.items()]
    if not shards:
        return
    result.hot_shard, hot = max(shards, key=lambda item: item[1].accepted)
    result.hot_accepted = hot.accepted
    moments = [moment for moment in (hot.exhausted_at, hot.burst_taken_at) if moment is not None]
    if not moments:
        return
    at_limit = min(moments)
    result.limit_after_s = at_limit - spawned
    named = [(arrived, message) for arrived, message in warnings if result.hot_shard in message]
    if named:
        result.warning_after_s = named[0][0] - at_limit
        result.warning = named[0][1][:300]


LIMITED_HEADER = (f"{'what':<10} {'records':>8} {'rec B':>6} {'buf':>4} {'window s':>8} {'rec/s':>7} {'×cap':>5} "
                  f"{'thr %':>6} {'calls':>6} {'sent÷wr':>7} {'lost':>6} {'dup':>5} {'states':>9} {'early':>5} "
                  f"{'srv%':>5} {'bench%':>6}  setup; check")


def limited_row(r: Limited) -> str:
    check = "ok" if r.ok else "FAILED: " + " ".join(r.failure.split())
    states = f"{r.states}/{r.states_expected}"
    rate, of_capacity = (r.rate, r.of_capacity) if r.ok else (None, None)  # a failed run's rate means little
    return (f"{r.what:<10} {r.setup.records:>8} {r.setup.record_bytes:>6} {r.setup.buffer_size:>4} "
            f"{num(r.window_s, '.1f'):>8} {num(rate, ',.0f'):>7} {num(of_capacity, '.2f'):>5} "
            f"{num(r.throttled_percent, '.1f'):>6} {r.calls:>6} {num(r.sent_per_written, '.2f'):>7} {r.lost:>6} "
            f"{r.duplicates:>5} {states:>9} {r.early_states:>5} {num(r.server_cpu_s * 100 / r.wall_s, '.0f'):>5} "
            f"{num(r.bench_cpu_s * 100 / r.wall_s, '.0f'):>6}  {r.setup.describe()}; {check[:200]}")


def limited_details(r: Limited) -> list[str]:
    """Per shard entries, accepted and throttled; the hot shard and its warning; the split."""
    lines = [f"{r.what}, {r.setup.describe()}: wall {r.wall_s:.1f} s, CPU {num(r.cpu_s, '.1f')} s, "
             f"peak RSS {num(r.peak_rss_kib and r.peak_rss_kib / 1024, '.0f')} MiB, capacity "
             f"{r.setup.capacity:,.0f} records/s, {r.entries:,} entries sent "
             f"({num(r.entries and r.bytes_sent / r.entries, ',.0f')} bytes each), {r.accepted:,} accepted, "
             f"{r.misrouted} written on another shard than the proxy predicted, "
             f"{num(r.units_per_million, ',.0f')} PUT payload units per million records"]
    lines += [f"  {shard}: {c['entries']:,} entries, {c['accepted']:,} accepted, {c['throttled']:,} throttled"
              for shard, c in sorted(r.shards.items())]
    if r.hot_shard:
        budget = ("never at its limit" if r.limit_after_s is None
                  else f"at its limit {r.limit_after_s:.1f} s after the start")
        warned = ("no WARN log naming it: not found" if r.warning_after_s is None
                  else f"WARN naming it {r.warning_after_s:.1f} s later: {r.warning}")
        lines.append(f"  hot shard {r.hot_shard}: {num(r.hot_of_limit, '.2f')} × its limit; {budget}; {warned}")
    if r.first_warning_after_s is not None:
        lines.append(f"  first WARN log {r.first_warning_after_s:.1f} s after the start: {r.first_warning}")
    if r.split:
        lines.append(f"  {r.split}")
    return lines


def measure_limited_pair(setup: Setup, inp: Input, args: argparse.Namespace, workdir: Path,
                         baseline: bool) -> list[Limited]:
    """The connector's run and the baseline's (when ``baseline``); a run the benchmark itself could not make is
    reported as FAILED and the next one goes on."""
    results = []
    for what in ("connector", "baseline") if baseline else ("connector",):
        try:
            result = measure_limited(what, setup, inp, args, workdir)
        except Exception as exc:  # noqa: BLE001 - a suite reports every run it can
            result = Limited(what, setup, failure=f"the benchmark failed: {exc!r}")
        progress(limited_row(result))
        results.append(result)
    return results


def run_suite_limits(args: argparse.Namespace, workdir: Path,
                     inputs: Any) -> tuple[list[Limited], list[Result], list[tuple]]:
    """Issue 14's target list: shard-limited runs (each beside the baseline where the input is plain) and the plain
    path against the instant endpoint; ``--scale`` multiplies every record count (for a quick trial)."""

    def records(count: int) -> int:
        return max(1, round(count * args.scale))

    fields_key = {"partitionKey": "fields", "partitionKeyFields": ["k"]}
    capacity_runs = [Setup(2, records(60_000), 400, 100), Setup(2, records(60_000), 400, 500),
                     Setup(2, records(30_000), 5000, 100), Setup(2, records(30_000), 5000, 500),
                     Setup(8, records(160_000), 400, 100)]
    share = Setup(2, records(60_000), 400, 100, config={"shardWriteShare": 0.5})
    # ordering none: in input order (per_key, the default for keys from the data) the hot key would go one record
    # per round trip, see --suite-ordering; issue 14's hot key is the one its shard's limit holds back
    hot = Setup(2, records(60_000), 400, 100, keys="hot", config={**fields_key, "ordering": "none"})
    split = Setup(2, records(60_000), 400, 100, split_after=10.0 * args.scale)
    limited: list[Limited] = []
    for setup in [*capacity_runs, share, hot, split]:
        inp = inputs(setup.records, args.state_every, data_size(setup.record_bytes), setup.keys)
        limited += measure_limited_pair(setup, inp, args, workdir, baseline=setup in capacity_runs
                                        and not args.skip_baseline)
    wide = capacity_runs[-1]
    wide_args = argparse.Namespace(**{**vars(args), "shards": wide.shards, "connector_config": {}})
    wide_input = inputs(wide.records, args.state_every, data_size(wide.record_bytes))
    bench_ceiling = report(measure_ceiling("kinesalite", wide_input, ceiling_requests(wide_input, wide.buffer_size),
                                           8, wide_args, via_proxy=True))
    instant_args = argparse.Namespace(**{**vars(args), "shards": UNPACED_SHARDS["instant"], "buffer_size": 500,
                                         "connector_config": {}})
    plain = measure_mode("instant", inputs(records(1_000_000), args.state_every, 400), instant_args, workdir,
                         ceiling=False, baseline=False)

    def connector(setup: Setup) -> Limited | None:
        return next((r for r in limited if r.setup == setup and r.what == "connector"), None)

    def baseline_of(setup: Setup) -> Limited | None:
        return next((r for r in limited if r.setup == setup and r.what == "baseline"), None)

    targets: list[tuple] = []
    for setup in capacity_runs:
        run, base = connector(setup), baseline_of(setup)
        name = setup.describe()
        targets.append((f"{name}: rec/s ÷ capacity", f"≥ {CAPACITY_TARGET}", run and run.of_capacity,
                        CAPACITY_TARGET, "min"))
        if setup == wide:
            targets.append(("  the bench's own ceiling ÷ capacity (reference)", "",
                            bench_ceiling.rate / setup.capacity if bench_ceiling.ok else "failed", None, ""))
        targets += [
            ("  throttled % of entries sent", f"≤ {THROTTLED_TARGET_PERCENT:g}", run and run.throttled_percent,
             THROTTLED_TARGET_PERCENT, "max"),
            ("  payload bytes sent ÷ written (reference)", "", run and run.sent_per_written, None, ""),
            ("  PutRecords calls (reference)", "", run and run.calls, None, ""),
            ("  0.1.5 baseline: rec/s ÷ capacity (reference)", "",
             base and (base.of_capacity if base.ok else "failed"), None, ""),
            ("  0.1.5 baseline: records lost (reference)", "", base and base.lost, None, ""),
        ]
    share_run, hot_run, split_run = connector(share), connector(hot), connector(split)
    warning: float | str | None = None
    if hot_run is not None:
        warning = hot_run.warning_after_s if hot_run.warning_after_s is not None else "not found"
    targets += [
        ("shardWriteShare 0.5: rec/s ÷ capacity", f"≤ {SHARE_TARGET}", share_run and share_run.of_capacity,
         SHARE_TARGET, "max"),
        ("  entries throttled", "0", share_run and share_run.throttled, 0, "max"),
        ("hot key: the sync finishes (exit 0, nothing lost)", "yes", int(bool(hot_run and hot_run.ok)), 1, "all"),
        ("  hot shard's rec/s ÷ its limit", f"≥ {CAPACITY_TARGET}", hot_run and hot_run.hot_of_limit,
         CAPACITY_TARGET, "min"),
        ("  at its limit to a WARN naming the hot shard, s", f"≤ {WARNING_TARGET_S:g}", warning, WARNING_TARGET_S,
         "max"),
        ("SplitShard while writing: records lost", "0", split_run and split_run.lost, 0, "max"),
        ("  states emitted, none early", "all", int(bool(split_run and split_run.states == split_run.states_expected
                                                      and not split_run.early_states)), 1, "all"),
    ]
    runs = [r for r in limited if r.what == "connector"]
    targets += [
        ("every shard-limited run: nothing lost", "all", sum(r.lost == 0 for r in runs), len(runs), "all"),
        ("every shard-limited run: every state, none early", "all",
         sum(r.states == r.states_expected and not r.early_states for r in runs), len(runs), "all"),
    ]
    instant = best(plain, "instant", "connector")
    targets += [
        (f"instant {records(1_000_000):,}, {UNPACED_SHARDS['instant']} shards: connector rec/s", "≥ 150,000",
         instant and instant.rate, 150_000, "min"),
        ("  connector CPU µs/record", "≤ 8", instant and instant.cpu_us, 8.0, "max"),
        ("  verified (records, states)", "all", sum(r.ok for r in plain), len(plain), "all"),
    ]
    return limited, [bench_ceiling, *plain], targets


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-bytes", type=int, default=400,
                        help="size of each record's data JSON; in shard-limited mode of its Kinesis record")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--shards", type=int, help="shards of each stream (kinesalite 32, instant 256, so that pacing "
                        f"does not bind; shard-limited {LIMITED_SHARDS})")
    parser.add_argument("--state-every", type=int, default=1000, help="records of a stream between its states")
    parser.add_argument("--buffer-size", type=int, default=500, help="the connector's bufferSize and ceiling batch")
    parser.add_argument("--runs", type=int, default=1, help="connector and baseline runs per mode (best counts)")
    parser.add_argument("--mode", choices=("kinesalite", "instant", "all", "shard-limited"), default="kinesalite")
    parser.add_argument("--ceiling-threads", default="4,8,16", type=lambda s: [int(t) for t in s.split(",")])
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--suite", action="store_true", help="the issue's whole target list and a summary table")
    parser.add_argument("--suite-limits", action="store_true",
                        help="issue 14's target list (shard-limited runs and the plain path) and a summary table")
    parser.add_argument("--suite-aggregation", action="store_true",
                        help="issue 16's target list (aggregation kpl: shard-limited runs, PUT units, instant path)")
    parser.add_argument("--suite-ordering", action="store_true",
                        help="issue 17's target list (ordering per_key: shard-limited runs, a hot key, 64 shards)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="the suites: multiply every record count by this (a quick trial; targets assume 1)")
    parser.add_argument("--connector-config", type=json.loads, default={},
                        help='JSON object merged into the connector\'s config, e.g. \'{"shardWriteShare": 0.5}\'')
    parser.add_argument("--keys", choices=("random", "hot", "many"), default="random",
                        help="hot: 90%% of records carry one value in a field k, many: k takes 10,007 values in turn "
                             '(use them with --connector-config \'{"partitionKey":"fields","partitionKeyFields":'
                             '["k"]}\')')
    parser.add_argument("--split-after", type=float,
                        help="shard-limited mode: SplitShard shardId-000000000000 this many seconds after the start")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="the 0.1.5 port script")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a sync is killed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.shards is None and args.mode == "shard-limited":
        args.shards = LIMITED_SHARDS
    if min(args.records, args.streams, args.shards or 1, args.state_every, args.runs) < 1 or \
            not 1 <= args.buffer_size <= 500:
        parser.error("counts must be at least 1 and --buffer-size 1 to 500")
    if not isinstance(args.connector_config, dict):
        parser.error("--connector-config must be a JSON object")
    if args.mode == "shard-limited" and data_size(args.record_bytes) < 1:
        parser.error(f"--record-bytes must exceed the envelope and key, {ENVELOPE_BYTES + KEY_BYTES} bytes")
    if not CONNECTOR.exists():
        parser.error(f"{CONNECTOR} not found: run scripts/setup and use .venv/bin/python")
    if not args.skip_baseline and not args.baseline.exists():
        # The 0.1.5 port is not part of this repository (a fresh clone has no ../shared): measure without it.
        progress(f"baseline {args.baseline} not found: the 0.1.5 baseline is skipped (pass --baseline PATH to run it)")
        args.skip_baseline = True
    return args


def report_all(args: argparse.Namespace, limited_mode: bool, limited: list[Limited], results: list[Result],
               targets: list[tuple], loads: tuple[float, float]) -> None:
    """Print every table: the shard-limited runs or the settings line, the other runs with their ratios, the
    targets; ``loads`` is the load average before and after."""
    load_before, load_after = loads
    if limited_mode:
        print(f"\nshard-limited: AWS's per-shard limits (1,000 records/s, 1 MiB/s, 1 s of burst) enforced by the fault "
              f"proxy in front of kinesalite; {os.cpu_count()} CPUs, load average {load_before:.2f} before, "
              f"{load_after:.2f} after")
        print(LIMITED_HEADER)
        print("\n".join(limited_row(r) for r in limited))
        print()
        print("\n".join(line for r in limited for line in limited_details(r)))
    else:
        shards = args.shards or ", ".join(f"{n} ({mode})" for mode, n in UNPACED_SHARDS.items())
        print(f"\n{args.record_bytes}-byte records, {args.streams} stream(s), {shards} shards, bufferSize "
              f"{args.buffer_size}; {os.cpu_count()} CPUs, load average {load_before:.2f} before, "
              f"{load_after:.2f} after")
    if results:
        print()
        print(HEADER)
        print("\n".join(row(r) for r in results))
        lines = ratios([r for r in results if r.records in (0, args.records) and r.state_every == args.state_every])
        if lines:
            print()
            print("\n".join(lines))
    if targets:
        print()
        print("\n".join(target_table(targets)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    cache: dict[tuple[int, int, int, str], Input] = {}

    def inputs(records: int, state_every: int, data_bytes: int | None = None, keys: str = "random") -> Input:
        """The input of ``records`` records whose data JSON has ``data_bytes`` bytes (``--record-bytes``)."""
        key = (records, state_every, args.record_bytes if data_bytes is None else data_bytes, keys)
        if key not in cache:
            started = time.perf_counter()
            cache[key] = generate(workdir, records, key[2], args.streams, state_every, keys)
            progress(f"generated {records:,} records of {key[2]:,}-byte data, a state every {state_every} "
                     f"in {time.perf_counter() - started:.1f} s")
        return cache[key]

    load_before = os.getloadavg()
    suite = args.suite_limits or args.suite_aggregation or args.suite_ordering
    limited_mode = suite or args.mode == "shard-limited"
    progress(LIMITED_HEADER if limited_mode else HEADER)
    targets: list[tuple] = []
    limited: list[Limited] = []
    try:
        if suite:
            from suites import run_suite_aggregation, run_suite_ordering

            run = (run_suite_limits if args.suite_limits else run_suite_aggregation if args.suite_aggregation
                   else run_suite_ordering)
            limited, results, targets = run(args, workdir, inputs)
        elif args.mode == "shard-limited":
            setup = Setup(args.shards, args.records, args.record_bytes, args.buffer_size, args.streams, args.keys,
                          args.connector_config, args.split_after)
            inp = inputs(args.records, args.state_every, data_size(args.record_bytes), args.keys)
            limited = measure_limited_pair(setup, inp, args, workdir, baseline=not args.skip_baseline)
            results = []
        elif args.suite:
            results, targets = run_suite(args, workdir, inputs)
        else:
            results = []
            for mode in ("kinesalite", "instant") if args.mode == "all" else (args.mode,):
                results += measure_mode(mode, inputs(args.records, args.state_every), args, workdir,
                                        ceiling=not args.skip_ceiling, baseline=not args.skip_baseline,
                                        empty=inputs(0, args.state_every))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    report_all(args, limited_mode, limited, results, targets, (load_before[0], load_after[0]))
    if args.json:
        args.json.write_text(json.dumps({
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "load_average": {"before": load_before, "after": load_after},
            "results": [r.as_dict() for r in results],
            "shard_limited": [r.as_dict() for r in limited],
            "targets": [{"target": name, "goal": goal, "measured": measured, "pass": judge(measured, bound, kind)}
                        for name, goal, measured, bound, kind in targets]}, indent=2))
    # The baseline stops at its first failed entry (where 0.1.5 dropped it); only the connector's runs
    # decide the exit status in shard-limited mode.
    return 0 if all(r.ok for r in results) and all(r.ok for r in limited if r.what == "connector") else 1


if __name__ == "__main__":
    sys.exit(main())
