"""Where the connector's CPU goes: each part of a sync measured alone, beside the connector's own run.

usage: .venv/bin/python benchmarks/parts.py [--records 1000000] [--record-bytes 400] [--state-every 1000]
           [--buffer-size 500] [--calls 200]

The input is ``bench.py``'s (one stream, a state every ``--state-every`` records). The parts, each in one thread with
nothing else of the connector running, its CPU read with ``time.thread_time`` (user + system):

* reading: :class:`~destination_kinesis.writer.Writer` over the input file with a stand-in dispatcher that
  acknowledges each batch as it is put: reading stdin, splitting lines, decoding, envelopes and base64, batching,
  states.
* PutRecords: ``--calls`` of the batches the reading part made, sent one after another through
  :class:`~destination_kinesis.putrecords.PutRecords` (botocore's signer and HTTP session) to ``bench.py``'s instant
  server; per record sent. The SHA-256 that SigV4 signing computes of each body is also timed apart (over the
  batch's entries joined: the body but for its few dozen bytes of head and tail).
* fixed: ``destination-kinesis write`` on an input without records (``bench.py``'s empty sync): start-up, clients,
  stream creation; per record of ``--records``.

Then the connector itself on the same input and the instant server (``bench.py``'s connector run, user + system CPU
of its process). The parts' sum is what a sync costs done in one thread, one step after another; the connector
reads while its sender threads sign and send, and what it spends beyond the sum is the price of that overlap (GIL
hand-offs, caches shared with the other threads and with the server).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import bench

from destination_kinesis.batcher import Batch, Batcher
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.client import aws_session, kinesis_client
from destination_kinesis.config import parse_config
from destination_kinesis.progress import Progress
from destination_kinesis.putrecords import PutRecords
from destination_kinesis.route import Route
from destination_kinesis.writer import Writer


class AckAtOnce:
    """Stands in for :class:`~destination_kinesis.dispatcher.Dispatcher`: every batch is acknowledged as it is put,
    so no other thread runs. The first ``keep`` batches are kept for the PutRecords part."""

    idle = True
    queued_bytes = 0
    outboxes: dict[str, object] = {}  # what Progress reads of a dispatcher: no shards, nothing in flight
    in_flight = 0
    limit = 1

    def __init__(self, keep: int, checkpoint: Checkpoint):
        self._keep = keep
        self._checkpoint = checkpoint
        self.kept: list[Batch] = []
        self.sender = NoSender()

    def put(self, batch: Batch) -> None:
        if len(self.kept) < self._keep:
            self.kept.append(batch)
        self._checkpoint.ack(batch.runs)

    def pump(self) -> None:
        pass

    def next_time(self) -> float | None:
        return None

    def collect(self, raise_errors: bool = True) -> None:
        pass

    def abort(self) -> None:
        pass


class NoSender:
    """The stand-in dispatcher's sender: nothing is ever in flight, so its wake-up pipe is never written."""

    def __init__(self) -> None:
        self.wake_fd, self._wake_w = os.pipe()

    def shutdown(self) -> None:
        pass

    def close(self) -> None:
        os.close(self.wake_fd)
        os.close(self._wake_w)


def measure_reading(inp: bench.Input, buffer_size: int, keep: int) -> tuple[float, list[Batch]]:
    """CPU seconds of the reading thread over the whole input, and the first ``keep`` batches it made."""
    key = (bench.NAMESPACE, bench.stream_name(0))
    states: list[int] = []
    checkpoint = Checkpoint([key], lambda lines: states.append(len(lines)))
    dispatcher = AckAtOnce(keep, checkpoint)
    routes = {key: Route(key, bench.kinesis_name(0), checkpoint.lane(key))}
    progress = Progress([bench.kinesis_name(0)], time.monotonic())
    batcher = Batcher(buffer_size, checkpoint)
    writer = Writer(routes, batcher, dispatcher, checkpoint, progress)  # type: ignore[arg-type]
    fd = os.open(inp.path, os.O_RDONLY)
    gc.freeze()  # as the connector does once its clients are built
    try:
        started = time.thread_time()
        writer.run(fd)
        cpu = time.thread_time() - started
    finally:
        os.close(fd)
    records = sum(batcher.stats(route).records for route in routes.values())
    if (records, sum(states)) != (inp.records, inp.states):
        raise bench.BenchError(f"the reading part handled {records} records and {sum(states)} states, "
                               f"{inp.records} and {inp.states} expected")
    return cpu, dispatcher.kept


def measure_calls(batches: list[Batch], config: Path) -> tuple[float, float, int]:
    """CPU seconds of the PutRecords calls of ``batches`` (one after another), CPU seconds of hashing their entries
    joined (each body but for its head and tail), and the entries sent."""
    session = aws_session(parse_config(json.loads(config.read_text())))
    put = PutRecords(kinesis_client(session, data_path=True))
    # The Records array of each call, its entries closed as a stream of one shard closes them.
    bodies = [b"},".join(batch.entries) + b"}" for batch in batches]
    put(batches[0].stream_name, bodies[0], len(batches[0].entries))  # the connection opened, the credentials read
    call_cpu = 0.0
    for batch, body in zip(batches, bodies, strict=True):
        started = time.thread_time()
        if put(batch.stream_name, body, len(batch.entries)) is not None:
            raise bench.BenchError("the instant server did not accept every entry")
        call_cpu += time.thread_time() - started
    started = time.thread_time()
    for body in bodies:
        hashlib.sha256(body).hexdigest()
    hash_cpu = time.thread_time() - started
    return call_cpu, hash_cpu, sum(len(batch.entries) for batch in batches)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-bytes", type=int, default=400)
    parser.add_argument("--state-every", type=int, default=1000)
    parser.add_argument("--buffer-size", type=int, default=500)
    parser.add_argument("--calls", type=int, default=200, help="PutRecords calls timed")
    args = parser.parse_args(argv)
    if min(args.records, args.state_every, args.calls) < 1 or not 1 <= args.buffer_size <= 500:
        parser.error("counts must be at least 1 and --buffer-size 1 to 500")
    # What bench.measure_sync reads of its arguments (shards as bench.py's instant mode: pacing does not bind).
    args.shards, args.timeout = bench.UNPACED_SHARDS["instant"], 3600.0
    args.baseline, args.connector_config = bench.BASELINE, {}

    workdir = Path(tempfile.mkdtemp(prefix="parts-"))
    try:
        inp = bench.generate(workdir, args.records, args.record_bytes, 1, args.state_every)
        empty = bench.generate(workdir, 0, args.record_bytes, 1, args.state_every)
        bench.progress("measuring the reading thread")
        reading, batches = measure_reading(inp, args.buffer_size, args.calls)
        server = bench.InstantServer()
        try:
            bench.create_streams(server.endpoint, 1, args.shards)
            config, _ = bench.write_config(workdir, server.endpoint, args, 1)
            bench.progress(f"measuring {len(batches)} PutRecords calls")
            calls, hashing, sent = measure_calls(batches, config)
        finally:
            server.stop()
        del batches
        bench.progress("measuring the empty sync and the connector")
        fixed = bench.report(bench.measure_sync("empty sync", "instant", empty, args, workdir))
        connector = bench.report(bench.measure_sync("connector", "instant", inp, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not (fixed.ok and connector.ok) or fixed.cpu_s is None or connector.cpu_s is None:
        print(f"a sync failed: {fixed.failure or connector.failure}", file=sys.stderr)
        return 1

    per_record = 1e6 / args.records
    reading_us, calls_us, fixed_us = reading * per_record, calls * 1e6 / sent, fixed.cpu_s * per_record
    total_us, connector_us = reading_us + calls_us + fixed_us, connector.cpu_s * per_record
    print(f"\n{args.records:,} records of {args.record_bytes} bytes, a state every {args.state_every}, batches of "
          f"{args.buffer_size}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for name, value in (("CPU µs per record", None),
                        ("reading thread", reading_us),
                        (f"PutRecords calls ({sent:,} records)", calls_us),
                        ("  of which SHA-256 of the body", hashing * 1e6 / sent),
                        ("fixed cost (empty sync)", fixed_us),
                        ("sum: one thread, one step at a time", total_us),
                        ("connector (instant server)", connector_us),
                        ("  beyond the sum: the overlap", connector_us - total_us)):
        print(f"{name:<40} {'µs' if value is None else format(value, '.2f'):>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
