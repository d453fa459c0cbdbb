"""A local Kinesis (kinesalite) for tests, quickstarts and benchmarks, and a reader that drains a stream.

Plain library code: no pytest here, so scripts can import it too.

kinesalite is installed from ``integration_tests/emulator/package.json`` with
``npm ci --prefix integration_tests/emulator``; it keeps its data in memory and needs no Docker.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

EMULATOR_DIR = Path(__file__).resolve().parent / "emulator"
NODE_MODULES = EMULATOR_DIR / "node_modules"
INSTALL_HINT = "npm ci --prefix integration_tests/emulator"

REGION = "us-east-1"
DUMMY_KEY = "test"
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
GET_RECORDS_LIMIT = 10_000  # the Kinesis maximum per GetRecords call
MAX_READ_S = 300.0
# kinesalite counts the open shards of every stream against one account limit (10 by default); tests sharing
# one emulator create many streams, so the limit is raised far beyond what they use.
SHARD_LIMIT = 100_000


class EmulatorError(RuntimeError):
    """The emulator is not installed, did not start, or a stream could not be read."""


def kinesis_client(endpoint: str, **config: Any) -> Any:
    """A boto3 Kinesis client for ``endpoint`` with dummy credentials (the emulator accepts any)."""
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_KEY,
        config=Config(**config) if config else None,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Emulator:
    """A running kinesalite process; ``stop()`` (or leaving the ``with`` block) ends it by PID."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """Terminate the process, kill it if it does not exit within a few seconds. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_kinesalite(create_stream_ms: int = 50, shard_limit: int = SHARD_LIMIT) -> Emulator:
    """Start kinesalite on a free port of 127.0.0.1 and return once it answers ListStreams.

    ``create_stream_ms`` is how long a new stream stays CREATING; ``shard_limit`` caps the open shards of all
    streams together (CreateStream beyond it fails with LimitExceededException). Raises EmulatorError when node or
    the npm package is missing, or when the emulator does not answer within STARTUP_TIMEOUT_S.
    """
    node = shutil.which("node")
    if node is None:
        raise EmulatorError("node is not on PATH; install Node.js 20 to run kinesalite")
    if not (NODE_MODULES / "kinesalite").is_dir():
        raise EmulatorError(f"kinesalite is not installed in {NODE_MODULES}; run `{INSTALL_HINT}` first")

    port = free_port()
    options = f"{{createStreamMs: {int(create_stream_ms)}, shardLimit: {int(shard_limit)}}}"
    script = f"require('kinesalite')({options}).listen({port}, '127.0.0.1')"
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    log_fd, log_name = tempfile.mkstemp(prefix="kinesalite-", suffix=".log")
    with os.fdopen(log_fd, "wb") as log:
        process = subprocess.Popen(
            [node, "-e", script], cwd=EMULATOR_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    emulator = Emulator(endpoint=f"http://127.0.0.1:{port}", process=process, log_path=Path(log_name))
    try:
        _wait_until_ready(emulator)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def _wait_until_ready(emulator: Emulator) -> None:
    client = kinesis_client(
        emulator.endpoint, connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"}
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            output = emulator.log_path.read_text(errors="replace")[-2000:]
            raise EmulatorError(f"kinesalite exited with code {emulator.process.returncode}: {output}")
        try:
            client.list_streams(Limit=1)
            return
        except Exception as error:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = error
            time.sleep(0.1)
    raise EmulatorError(f"kinesalite did not answer on {emulator.endpoint} in {STARTUP_TIMEOUT_S:.0f} s: {last_error}")


def list_shard_ids(client: Any, stream_name: str) -> list[str]:
    """Every shard id of the stream, following ListShards pagination."""
    shard_ids: list[str] = []
    page = client.list_shards(StreamName=stream_name)
    while True:
        shard_ids.extend(shard["ShardId"] for shard in page["Shards"])
        token = page.get("NextToken")
        if not token:
            return shard_ids
        page = client.list_shards(NextToken=token)


def read_stream(endpoint: str, stream_name: str, timeout_s: float = MAX_READ_S) -> list[dict[str, Any]]:
    """Read every record of every shard of ``stream_name`` from the oldest one on.

    Returns dicts with ``data`` (bytes), ``partition_key``, ``shard_id`` and ``sequence_number``, shard by shard
    in sequence order. A shard is done when a page is empty and the consumer is not behind (MillisBehindLatest 0)
    or the shard is closed. Raises EmulatorError if reading takes longer than ``timeout_s``.
    """
    client = kinesis_client(endpoint)
    deadline = time.monotonic() + timeout_s
    records: list[dict[str, Any]] = []
    for shard_id in list_shard_ids(client, stream_name):
        iterator = client.get_shard_iterator(
            StreamName=stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            if time.monotonic() > deadline:
                raise EmulatorError(f"reading {stream_name} took longer than {timeout_s:.0f} s")
            page = client.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
            records.extend(
                {
                    "data": record["Data"],
                    "partition_key": record["PartitionKey"],
                    "shard_id": shard_id,
                    "sequence_number": record["SequenceNumber"],
                }
                for record in page["Records"]
            )
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return records
