"""Local AWS endpoints for tests, quickstarts and benchmarks, and a reader that drains a stream.

Plain library code: no pytest here, so scripts can import it too.

- kinesalite: the faithful Kinesis emulator, for everything by default.
- kinesis-local (kinesis-mock): ON_DEMAND streams and tags; slow as a shard fills, so for small tests only.
- moto server: STS and IAM (assume role, credentials checked against IAM policies); its Kinesis loses records when
  several requests write to one shard, so it serves only single-writer tests.

The npm emulators are installed from ``integration_tests/emulator/package.json`` with
``npm ci --prefix integration_tests/emulator``; moto comes with the test extras. All keep their data in memory and
need no Docker.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


def kinesis_client(endpoint: str, region: str = REGION, **config: Any) -> Any:
    """A boto3 Kinesis client for ``endpoint`` with dummy credentials (the emulator accepts any)."""
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=region,
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
    """A running emulator process; ``stop()`` (or leaving the ``with`` block) ends it by PID."""

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
    # kinesalite throws from a request's 'error' handler when a client goes away mid-request (a connector killed
    # with SIGKILL while sending), which would end the emulator for every later test; a real endpoint just drops
    # that request. Only that error is ignored; any other still ends the process.
    ignore_aborted = ("process.on('uncaughtException', e => { if (e && e.code === 'ECONNRESET') return; "
                      "console.error(e); process.exit(1) });")
    script = f"{ignore_aborted} require('kinesalite')({options}).listen({port}, '127.0.0.1')"
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    return _start("kinesalite", [node, "-e", script], env, f"http://127.0.0.1:{port}")


def start_kinesis_local(create_stream_ms: int = 50) -> Emulator:
    """Start kinesis-local (kinesis-mock) on a free port of 127.0.0.1 and return once it answers ListStreams.

    ``create_stream_ms`` is how long a new stream stays CREATING. kinesis-mock has no host setting and listens on
    every interface; the tests talk to it on 127.0.0.1 only. Its TLS port, which nothing uses, gets a free port
    too. Raises EmulatorError as :func:`start_kinesalite` does.
    """
    node = shutil.which("node")
    if node is None:
        raise EmulatorError("node is not on PATH; install Node.js 20 to run kinesis-local")
    package = NODE_MODULES / "kinesis-local"
    if not package.is_dir():
        raise EmulatorError(f"kinesis-local is not installed in {NODE_MODULES}; run `{INSTALL_HINT}` first")
    port = free_port()
    tls_port = next(other for other in iter(free_port, None) if other != port)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({
        "KINESIS_MOCK_PLAIN_PORT": str(port),
        "KINESIS_MOCK_TLS_PORT": str(tls_port),
        "KINESIS_MOCK_CERT_PATH": str(package / "server.json"),
        "CREATE_STREAM_DURATION": f"{int(create_stream_ms)}ms",
        "LOG_LEVEL": "WARN",
        "AWS_REGION": REGION,
    })
    return _start("kinesis-local", [node, str(package / "main.js")], env, f"http://127.0.0.1:{port}")


def start_moto() -> Emulator:
    """Start a moto server on a free port of 127.0.0.1 and return once it answers.

    It serves STS, IAM and Kinesis; see :func:`enforce_iam` for checking credentials.
    Use its Kinesis with one writer per shard only.
    """
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _start("moto", argv, env, f"http://127.0.0.1:{port}")


def enforce_iam(moto: Emulator, enforced: bool = True) -> None:
    """Make the moto server check every request's credentials and IAM policies from now on (or stop checking)."""
    request = urllib.request.Request(f"{moto.endpoint}/moto-api/reset-auth", data=b"0" if enforced else b"inf",
                                     method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def reset_moto(moto: Emulator) -> None:
    """Forget every resource and stop checking credentials: a moto server as good as new."""
    enforce_iam(moto, enforced=False)
    request = urllib.request.Request(f"{moto.endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _start(what: str, argv: list[str], env: dict[str, str], endpoint: str) -> Emulator:
    """Run ``argv`` with its output in a temporary log; return once ``endpoint`` answers, else stop it and raise."""
    log_fd, log_name = tempfile.mkstemp(prefix=f"{what}-", suffix=".log")
    with os.fdopen(log_fd, "wb") as log:
        process = subprocess.Popen(argv, cwd=EMULATOR_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    emulator = Emulator(endpoint=endpoint, process=process, log_path=Path(log_name))
    try:
        _wait_until_ready(emulator, what)
    except BaseException:
        emulator.stop()
        raise
    return emulator


def _wait_until_ready(emulator: Emulator, what: str) -> None:
    client = kinesis_client(
        emulator.endpoint, connect_timeout=1, read_timeout=2, retries={"max_attempts": 1, "mode": "standard"}
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            output = emulator.log_path.read_text(errors="replace")[-2000:]
            raise EmulatorError(f"{what} exited with code {emulator.process.returncode}: {output}")
        try:
            client.list_streams(Limit=1)
            return
        except Exception as error:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = error
            time.sleep(0.1)
    raise EmulatorError(f"{what} did not answer on {emulator.endpoint} in {STARTUP_TIMEOUT_S:.0f} s: {last_error}")


def split_first_shard(endpoint: str, stream_name: str) -> None:
    """SplitShard the stream's first listed shard in the middle of its hash key range (a reshard while a sync runs)."""
    client = kinesis_client(endpoint)
    parent = client.list_shards(StreamName=stream_name)["Shards"][0]
    start, end = (int(parent["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey"))
    client.split_shard(StreamName=stream_name, ShardToSplit=parent["ShardId"],
                       NewStartingHashKey=str((start + end) // 2))


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


def read_stream(endpoint: str, stream_name: str, timeout_s: float = MAX_READ_S,
                region: str = REGION) -> list[dict[str, Any]]:
    """Read every record of every shard of ``stream_name`` (in ``region``) from the oldest one on.

    Returns dicts with ``data`` (bytes), ``partition_key``, ``shard_id`` and ``sequence_number``, shard by shard
    in sequence order. A shard is done when a page is empty and the consumer is not behind (MillisBehindLatest 0)
    or the shard is closed. Raises EmulatorError if reading takes longer than ``timeout_s``.
    """
    client = kinesis_client(endpoint, region)
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
