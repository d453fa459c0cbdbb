"""Throughput benchmark: the real ``destination-kinesis write`` beside the server's ceiling and the 0.1.5 baseline.

usage: .venv/bin/python benchmarks/bench.py [--records 1000000] [--record-bytes 400] [--streams 1] [--shards 4]
           [--state-every 1000] [--buffer-size 500] [--runs 1] [--mode kinesalite|instant|all]
           [--ceiling-threads 4,8,16] [--skip-baseline] [--skip-ceiling] [--suite] [--json PATH]
           [--baseline PATH] [--timeout SECONDS]

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
* baseline: ``python ../shared/peers/java_0_1_5_port.py write`` measured the same way.

Connector and baseline run ``--runs`` times each; ratios use the fastest successful run of each.

Modes: ``kinesalite`` (npm kinesalite on 127.0.0.1, from integration_tests/emulator) and ``instant``
(``benchmarks/instant_kinesis.py``: every PutRecords succeeds at once, so the connector's own ceiling shows).
Afterwards, outside the timed window, every sync is verified: against kinesalite every shard is read back and each
``seq`` is counted (missing, duplicate, in the wrong stream); the instant server only counts entries per stream. A run
that exits non-zero, misses records, puts them in the wrong stream or emits the wrong number of states is FAILED.
``server CPU %`` is the server process's CPU time over the wall time: near 100 % means the server was the limit.

``--suite`` runs the issue's targets in sequence (kinesalite with ceiling and baseline; instant; a state after every
record; ``--records``/5 and ``--records``*2 for memory flatness) and ends with a target/measured/pass table.
Timings depend on what else runs on the machine: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from integration_tests.kinesis_emulator import free_port, start_kinesalite  # noqa: E402

CONNECTOR = Path(sys.executable).parent / "destination-kinesis"
BASELINE = REPO.parent / "shared" / "peers" / "java_0_1_5_port.py"
INSTANT = Path(__file__).resolve().parent / "instant_kinesis.py"
NAMESPACE = "bench"
EMITTED_AT = 1_700_000_000_000
POOL_BODIES = 64
GET_RECORDS_LIMIT = 10_000
START_TIMEOUT_S = 20.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A server did not start or answer as expected."""


# ---------------------------------------------------------------- input


class RecordMaker:
    """Record ``data`` JSON of an exact size: ``seq`` first, realistic fields from a pool, padding last."""

    def __init__(self, record_bytes: int, seed: int = 7):
        rng = random.Random(seed)
        cities = ["Lisbon", "Osaka", "Nairobi", "Québec", "Reykjavík", "Lima", "Tbilisi", "Perth"]
        self._pool = [orjson.dumps({
            "user": f"user_{rng.randrange(10**6):06d}",
            "email": f"someone.{rng.randrange(10**5)}@example.com",
            "amount": round(rng.uniform(-1e6, 1e6), 4),
            "ratio": round(rng.random(), 12),
            "active": rng.random() < 0.5,
            "created_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                          f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randrange(1000):03d}Z",
            "address": {"city": rng.choice(cities), "zip": f"{rng.randrange(10**5):05d}",
                        "geo": {"lat": round(rng.uniform(-90, 90), 6), "lon": round(rng.uniform(-180, 180), 6)}},
            "tags": rng.sample(["new", "vip", "churn-risk", "b2b", "mobile", "emea", "trial"], 3),
            "scores": [rng.randint(-1000, 1000) for _ in range(4)],
        })[1:-1] for _ in range(256)]
        self._ids = [rng.getrandbits(40) for _ in range(997)]
        self.record_bytes = record_bytes
        smallest = len(self._make(10**9, 0))
        if record_bytes < smallest:
            raise SystemExit(f"--record-bytes must be at least {smallest}")
        self._padding = b"lorem ipsum dolor sit amet " * (record_bytes // 27 + 1)

    def _make(self, seq: int, pad: int) -> bytes:
        return b'{"seq":%d,"id":%d,%s,"note":"%s"}' % (
            seq, self._ids[seq % 997], self._pool[seq % 256], self._padding[:pad] if pad else b"")

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

    def stream_records(self, index: int) -> int:
        return len(range(index, self.records, self.streams))


def stream_name(index: int) -> str:
    return f"s{index}"


def kinesis_name(index: int) -> str:
    return f"{NAMESPACE}_{stream_name(index)}"


def generate(directory: Path, records: int, record_bytes: int, streams: int, state_every: int) -> Input:
    """Write the input file; see the module docstring for its shape."""
    maker = RecordMaker(record_bytes)
    path = directory / f"input-{records}-{record_bytes}-{streams}-{state_every}.jsonl"
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
    return Input(path, records, record_bytes, streams, state_every, states, data_bytes)


def write_config(directory: Path, endpoint: str, args: argparse.Namespace, streams: int) -> tuple[Path, Path]:
    config = directory / "config.json"
    config.write_text(json.dumps({"endpoint": endpoint, "region": "us-east-1", "accessKey": "bench",
                                  "privateKey": "bench-secret", "shardCount": args.shards,
                                  "bufferSize": args.buffer_size}))
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
                    args: argparse.Namespace) -> Result:
    server = start_server(mode)
    try:
        create_streams(server.endpoint, inp.streams, args.shards)
        clients = [Client(server.endpoint).connect() for _ in range(threads)]
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
        server.stop()
    failure = errors[0] if errors else ("" if sum(accepted) == inp.records else
                                        f"{inp.records - sum(accepted)} records not accepted")
    return Result(mode, "ceiling", inp.records, inp.state_every, wall, inp.data_bytes, threads=threads,
                  server_cpu_s=server_cpu, failure=failure)


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


def measure_sync(what: str, mode: str, inp: Input, args: argparse.Namespace, workdir: Path) -> Result:
    """Run the connector or the baseline on a fresh server, time it, then verify what arrived."""
    server = start_server(mode)
    try:
        config, catalog = write_config(workdir, server.endpoint, args, inp.streams)
        program = [sys.executable, str(args.baseline)] if what == "baseline" else [str(CONNECTOR)]
        out_path, err_path = workdir / f"{what}.out", workdir / f"{what}.err"
        with inp.path.open("rb") as stdin, out_path.open("wb") as stdout, err_path.open("wb") as stderr:
            cpu_before = cpu_seconds(server.pid)
            started = time.perf_counter()
            process = subprocess.Popen([*program, "write", "--config", str(config), "--catalog", str(catalog)],
                                       stdin=stdin, stdout=stdout, stderr=stderr)
            watchdog = threading.Timer(args.timeout, process.kill)
            watchdog.start()
            peak = PeakRss(process.pid)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            watchdog.cancel()
            peak_rss_kib = peak.stop()
            server_cpu = cpu_seconds(server.pid) - cpu_before
        process.returncode = os.waitstatus_to_exitcode(status)
        result = Result(mode, what, inp.records, inp.state_every, wall, inp.data_bytes,
                        cpu_s=usage.ru_utime + usage.ru_stime, peak_rss_kib=peak_rss_kib, server_cpu_s=server_cpu)
        states, trace = read_output(out_path)
        result.states = states
        expected_states = min(inp.states, 1) if what == "baseline" else inp.states
        if process.returncode != 0:
            tail = trace or err_path.read_text(errors="replace")[-500:]
            result.failure = f"exit code {process.returncode}: {tail}"
        started = time.perf_counter()
        verify(server, mode, inp, result)
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


def verify(server: Server, mode: str, inp: Input, result: Result) -> None:
    """Fill in missing, duplicate and misplaced counts (and the failure they make)."""
    if mode == "instant":
        received = Client(server.endpoint).stats()["records"]
        for index in range(inp.streams):
            expected, got = inp.stream_records(index), received.get(kinesis_name(index), 0)
            result.missing += max(0, expected - got)
            result.duplicates += max(0, got - expected)
    else:
        seen = bytearray(inp.records)
        for index in range(inp.streams):
            for data in read_stream(server.endpoint, kinesis_name(index)):
                value = orjson.loads(data)["_airbyte_data"]
                seq = (orjson.loads(value) if isinstance(value, str) else value)["seq"]
                if seq % inp.streams != index:
                    result.misplaced += 1
                if seen[seq] < 255:
                    seen[seq] += 1
        result.missing = seen.count(0)
        result.duplicates = sum(count - 1 for count in seen if count > 1)
    problems = [f"{n} {what}" for n, what in ((result.missing, "missing"), (result.misplaced, "in the wrong stream"))
                if n]
    if problems and not result.failure:
        result.failure = ", ".join(problems)


def read_stream(endpoint: str, name: str) -> Any:
    """Every record's data in a stream, shard by shard, from the oldest on (kinesalite's pages end empty).

    A stream that does not exist (the sync failed before creating it) holds nothing."""
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
                yield base64.b64decode(record["Data"])
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


def judge(measured: float | None, bound: float | None, kind: str) -> str:
    """"yes" or "no" for a target, "-" for a reference figure without a bound."""
    if bound is None:
        return "-"
    if measured is None:
        return "no"
    return "yes" if (measured == bound if kind == "all" else measured >= bound if kind == "min"
                     else measured <= bound) else "no"


def target_table(targets: list[tuple]) -> list[str]:
    lines = [f"{'target':<58} {'goal':>10} {'measured':>12}  pass"]
    for name, goal, measured, bound, kind in targets:
        if measured is None:
            shown = "not measured"
        elif kind == "all":
            shown = f"{measured}/{bound}"
        else:
            shown = f"{measured:,.0f}" if measured >= 1000 else f"{measured:.2f}"
        lines.append(f"{name:<58} {goal:>10} {shown:>12}  {judge(measured, bound, kind)}")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-bytes", type=int, default=400, help="size of each record's data JSON")
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--state-every", type=int, default=1000, help="records of a stream between its states")
    parser.add_argument("--buffer-size", type=int, default=500, help="the connector's bufferSize and ceiling batch")
    parser.add_argument("--runs", type=int, default=1, help="connector and baseline runs per mode (best counts)")
    parser.add_argument("--mode", choices=("kinesalite", "instant", "all"), default="kinesalite")
    parser.add_argument("--ceiling-threads", default="4,8,16", type=lambda s: [int(t) for t in s.split(",")])
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-ceiling", action="store_true")
    parser.add_argument("--suite", action="store_true", help="the issue's whole target list and a summary table")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="the 0.1.5 port script")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a sync is killed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if min(args.records, args.streams, args.shards, args.state_every, args.runs) < 1 or \
            not 1 <= args.buffer_size <= 500:
        parser.error("counts must be at least 1 and --buffer-size 1 to 500")
    if not CONNECTOR.exists():
        parser.error(f"{CONNECTOR} not found: run scripts/setup and use .venv/bin/python")
    if not args.skip_baseline and not args.baseline.exists():
        parser.error(f"baseline {args.baseline} not found (or pass --skip-baseline)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    cache: dict[tuple[int, int], Input] = {}

    def inputs(records: int, state_every: int) -> Input:
        if (records, state_every) not in cache:
            started = time.perf_counter()
            cache[(records, state_every)] = generate(workdir, records, args.record_bytes, args.streams, state_every)
            progress(f"generated {records:,} records, a state every {state_every} "
                     f"in {time.perf_counter() - started:.1f} s")
        return cache[(records, state_every)]

    load_before = os.getloadavg()
    progress(HEADER)
    targets: list[tuple] = []
    try:
        if args.suite:
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

    print(f"\n{args.record_bytes}-byte records, {args.streams} stream(s), {args.shards} shards, bufferSize "
          f"{args.buffer_size}; {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")
    print(HEADER)
    print("\n".join(row(r) for r in results))
    print()
    print("\n".join(ratios([r for r in results if r.records in (0, args.records)
                            and r.state_every == args.state_every])))
    if targets:
        print()
        print("\n".join(target_table(targets)))
    if args.json:
        args.json.write_text(json.dumps({
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "load_average": {"before": load_before, "after": load_after},
            "results": [r.as_dict() for r in results],
            "targets": [{"target": name, "goal": goal, "measured": measured, "pass": judge(measured, bound, kind)}
                        for name, goal, measured, bound, kind in targets]}, indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
