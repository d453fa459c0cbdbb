"""Shared fixtures and helpers: a kinesalite emulator, config/catalog files, running the installed console script,
and the read-back check that compares what Kinesis holds with what went in."""

from __future__ import annotations

import copy
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import BuildError

from .kinesis_emulator import (
    Emulator,
    EmulatorError,
    read_stream,
    reset_moto,
    start_kinesalite,
    start_kinesis_local,
    start_moto,
)

# airbyte-cdk's standard suite (test_conformance.py) takes its scenarios and options from these hooks.
pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CONNECTOR = Path(sys.executable).parent / "destination-kinesis"
REGION = "us-east-1"
SHARD_COUNT = 3
ENVELOPE_KEYS = {"_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_data"}
EMITTED_AT = 1_700_000_000_000
DEFAULT_TIMEOUT_S = 120.0

Message = dict[str, Any]
StreamKey = tuple[str | None, str]  # (namespace, name)


def pytest_configure(config: pytest.Config) -> None:
    # airbyte_cdk.test.standard_tests marks some of its tests with these; importing it (test_secrets.py runs its leak
    # check) needs them known under --strict-markers.
    config.addinivalue_line("markers", "image_tests: airbyte-cdk's tests of a connector's Docker image")
    config.addinivalue_line("markers", "requires_creds: airbyte-cdk's tests that need real credentials")


# ---------------------------------------------------------------- emulator


def _started(start: Callable[[], Emulator]) -> Iterator[Emulator]:
    try:
        emulator = start()
    except EmulatorError as error:
        failure = f"cannot start the emulator: {error}"
    else:
        failure = ""
    if failure:  # outside the except block, so the report shows only the message
        pytest.fail(failure, pytrace=False)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def kinesalite() -> Iterator[Emulator]:
    """One kinesalite for the whole session; tests use distinct stream names, so they never see each other's data."""
    yield from _started(start_kinesalite)


@pytest.fixture(scope="session")
def kinesis_local() -> Iterator[Emulator]:
    """One kinesis-local (ON_DEMAND, tags) for the session, started only by the tests that need it."""
    yield from _started(start_kinesis_local)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Emulator]:
    """One moto server (STS, IAM) for the session; use the ``moto`` fixture, which resets it for each test."""
    yield from _started(start_moto)


@pytest.fixture
def moto(moto_server: Emulator) -> Emulator:
    """The moto server, emptied and not checking credentials, for one test."""
    reset_moto(moto_server)
    return moto_server


def aws_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """This process's environment without AWS settings (no variables, no config or credentials files, no instance
    metadata), plus ``variables``: what the connector sees is only what a test gives it."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
                "AWS_EC2_METADATA_DISABLED": "true", **variables})
    return env


def kept_dir(config: pytest.Config, factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory kept between runs in pytest's cache, or a fresh temporary one when the cache plugin is off
    (``-p no:cacheprovider``: then ``config`` has no ``cache`` at all)."""
    cache = getattr(config, "cache", None)
    return cache.mkdir(name) if cache is not None else factory.mktemp(name)


def unique(prefix: str) -> str:
    """``prefix`` plus a random hex fragment: a stream name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def kinesis_stream_name(namespace: str | None, name: str) -> str:
    """The Kinesis stream the connector must write an Airbyte stream to (the documented naming rule)."""
    decomposed = unicodedata.normalize("NFKD", f"{namespace or ''}_{name}")
    without_marks = "".join(char for char in decomposed if not unicodedata.combining(char))
    underscored = re.sub(r"[ \t\n\r\x0b\x0c]+", "_", without_marks)
    return re.sub(r"[^A-Za-z0-9_]", "_", underscored)[:128]


# ---------------------------------------------------------------- Airbyte messages


def record(name: str, data: Any, emitted_at: int, namespace: str | None = None) -> Message:
    body: dict[str, Any] = {"stream": name, "data": data, "emitted_at": emitted_at}
    if namespace is not None:
        body["namespace"] = namespace
    return {"type": "RECORD", "record": body}


def stream_state(state_id: int, name: str, namespace: str | None = None, cursor: Any = None) -> Message:
    """A STREAM state as the platform sends it: with an integer ``id`` and ``sourceStats``."""
    descriptor: dict[str, Any] = {"name": name}
    if namespace is not None:
        descriptor["namespace"] = namespace
    return {
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": descriptor, "stream_state": {"cursor": cursor}},
            "id": state_id,
            "sourceStats": {"recordCount": 1.0},
        },
    }


def to_lines(messages: Iterable[Message | str]) -> bytes:
    """JSON lines for stdin; a ``str`` item is taken as an already written line."""
    return b"".join(
        (item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)).encode() + b"\n" for item in messages
    )


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every digit: big integers stay int, every other number becomes a Decimal."""
    return json.loads(text, parse_float=Decimal)


# ---------------------------------------------------------------- files and the console script


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def connector_config(endpoint: str, **overrides: Any) -> dict[str, Any]:
    config = {
        "endpoint": endpoint,
        "region": REGION,
        "shardCount": SHARD_COUNT,
        "accessKey": unique("test-access-key"),
        "privateKey": unique("test-private-key"),
        "bufferSize": 100,
    }
    config.update(overrides)
    return config


def configured_stream(
    name: str, namespace: str | None = None, destination_sync_mode: str = "append", **extra: Any
) -> dict[str, Any]:
    return {
        "stream": {
            "name": name,
            "namespace": namespace,
            "json_schema": {},
            "supported_sync_modes": ["full_refresh", "incremental"],
        },
        "sync_mode": "incremental",
        "destination_sync_mode": destination_sync_mode,
        **extra,
    }


def catalog(streams: Iterable[StreamKey | dict[str, Any]]) -> dict[str, Any]:
    """A ConfiguredAirbyteCatalog; each item is (namespace, name) or an already built configured stream."""
    return {"streams": [item if isinstance(item, dict) else configured_stream(item[1], item[0]) for item in streams]}


def run_connector(
    args: list[str], stdin_bytes: bytes = b"", timeout: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``destination-kinesis`` console script and wait for it (killing it after ``timeout``); in
    ``env`` when given, else in this process's environment."""
    if not CONNECTOR.exists():
        pytest.fail(f"{CONNECTOR} is missing: install the connector with `pip install -e .`", pytrace=False)
    return subprocess.run([str(CONNECTOR), *args], input=stdin_bytes, capture_output=True, timeout=timeout, env=env)


def parse_messages(stdout: bytes) -> list[Message]:
    """Every stdout line as an Airbyte message; a line that is not a JSON object fails the test."""
    messages = []
    # bytes.splitlines splits at \n and \r only; str.splitlines would also split inside JSON at U+2028.
    for number, line in enumerate(stdout.splitlines(), start=1):
        try:
            message = loads(line)
        except ValueError:  # includes UnicodeDecodeError
            pytest.fail(f"stdout line {number} is not JSON: {line[:500]!r}")
        if not isinstance(message, dict) or "type" not in message:
            pytest.fail(f"stdout line {number} is not an Airbyte message: {line[:500]!r}")
        messages.append(message)
    return messages


def of_type(messages: list[Message], message_type: str) -> list[Message]:
    return [message for message in messages if message["type"] == message_type]


def error_traces(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``trace`` bodies of the TRACE messages of type ERROR."""
    return [m["trace"] for m in of_type(messages, "TRACE") if m.get("trace", {}).get("type") == "ERROR"]


@dataclass
class SyncResult:
    process: subprocess.CompletedProcess[bytes]
    messages: list[Message]

    @property
    def states(self) -> list[Message]:
        return of_type(self.messages, "STATE")

    def describe(self) -> str:
        """Exit code, stderr tail and error traces, for assertion messages."""
        stderr = self.process.stderr.decode(errors="replace")[-3000:]
        return f"exit code {self.process.returncode}; traces {error_traces(self.messages)}; stderr tail:\n{stderr}"


def run_write(config: dict[str, Any], streams: Iterable[StreamKey | dict[str, Any]], stdin_bytes: bytes,
              tmp_path: Path, timeout: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None) -> SyncResult:
    """Run ``write`` with ``config`` and a catalog of ``streams`` (files in ``tmp_path``), ``stdin_bytes`` as input."""
    config_path = write_json(tmp_path / "config.json", config)
    catalog_path = write_json(tmp_path / "catalog.json", catalog(streams))
    args = ["write", "--config", str(config_path), "--catalog", str(catalog_path)]
    process = run_connector(args, stdin_bytes, timeout, env)
    return SyncResult(process, parse_messages(process.stdout))


@dataclass
class CheckStatus:
    status: str  # SUCCEEDED or FAILED
    message: str
    process: subprocess.CompletedProcess[bytes]

    @property
    def output(self) -> bytes:
        return self.process.stdout + self.process.stderr


def check_connection(config: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> CheckStatus:
    """Run ``check`` with ``config``: its one CONNECTION_STATUS (a check that ends otherwise fails the test)."""
    process = run_connector(["check", "--config", str(write_json(tmp_path / "check-config.json", config))], env=env)
    statuses = of_type(parse_messages(process.stdout), "CONNECTION_STATUS")
    assert len(statuses) == 1, f"exit {process.returncode}: {process.stdout[-2000:]!r} {process.stderr[-2000:]!r}"
    status = statuses[0]["connectionStatus"]
    return CheckStatus(status["status"], status.get("message") or "", process)


Sync = Callable[..., SyncResult]
"""The ``sync`` fixture: runs the console script's write on given input and returns what it did."""


@pytest.fixture
def sync(kinesalite: Emulator, tmp_path: Path) -> Sync:
    """Run ``write`` against the emulator: ``sync(streams, stdin_bytes, timeout=..., **config_overrides)``."""

    def run(
        streams: Iterable[StreamKey | dict[str, Any]],
        stdin_bytes: bytes,
        timeout: float = DEFAULT_TIMEOUT_S,
        **config_overrides: Any,
    ) -> SyncResult:
        return run_write(connector_config(kinesalite.endpoint, **config_overrides), streams, stdin_bytes, tmp_path,
                         timeout)

    return run


# ---------------------------------------------------------------- read-back check


def expected_states(input_messages: list[Message]) -> list[Message]:
    """Each input STATE with ``destinationStats.recordCount`` added: records of its stream since that stream's
    previous state (STREAM), or records of all streams since the previous state (GLOBAL, LEGACY)."""
    since_stream_state: Counter[StreamKey] = Counter()
    since_any_state = 0
    states = []
    for message in input_messages:
        if message["type"] == "RECORD":
            body = message["record"]
            since_stream_state[(body.get("namespace"), body["stream"])] += 1
            since_any_state += 1
        elif message["type"] == "STATE":
            state = message["state"]
            if state.get("type") == "STREAM":
                descriptor = state["stream"]["stream_descriptor"]
                key = (descriptor.get("namespace"), descriptor["name"])
                count = since_stream_state.pop(key, 0)
            else:
                count = since_any_state
                since_stream_state.clear()
            since_any_state = 0
            expected = copy.deepcopy(message)
            expected["state"]["destinationStats"] = {"recordCount": count}
            states.append(expected)
    return states


def assert_states_echoed(input_messages: list[Message], result: SyncResult) -> None:
    """Every input STATE comes out once, in input order, unchanged but for the added destinationStats."""
    expected = expected_states(input_messages)
    actual = result.states
    assert len(actual) == len(expected), f"{len(actual)} states out, {len(expected)} in; {result.describe()}"
    for position, (out, want) in enumerate(zip(actual, expected, strict=True)):
        out, want = copy.deepcopy(out), copy.deepcopy(want)
        out_stats, want_stats = out["state"].pop("destinationStats", None), want["state"].pop("destinationStats")
        assert out == want, f"state #{position} changed on its way through"
        assert isinstance(out_stats, dict) and set(out_stats) == {"recordCount"}, f"state #{position}: {out_stats}"
        assert out_stats["recordCount"] == want_stats["recordCount"], f"state #{position} recordCount"


def assert_records_written(endpoint: str, input_messages: list[Message]) -> None:
    """Kinesis holds exactly the input records, each once, every shard of every stream read back.

    Matching goes by ``emitted_at``, which the tests keep unique per stream. Each Kinesis record must be the JSON
    envelope {_airbyte_ab_id: uuid4 = partition key, unique; _airbyte_emitted_at: int; _airbyte_data: the input}.
    """
    expected: dict[str, dict[int, Any]] = {}
    for message in input_messages:
        if message["type"] != "RECORD":
            continue
        body = message["record"]
        by_time = expected.setdefault(kinesis_stream_name(body.get("namespace"), body["stream"]), {})
        assert body["emitted_at"] not in by_time, "test inputs must keep emitted_at unique per stream"
        by_time[body["emitted_at"]] = body["data"]

    ab_ids: set[str] = set()
    for stream_name, by_time in expected.items():
        written = read_stream(endpoint, stream_name)
        assert len(written) == len(by_time), f"{stream_name}: {len(written)} records written, {len(by_time)} sent"
        seen: set[int] = set()
        for item in written:
            envelope = loads(item["data"])
            assert isinstance(envelope, dict) and set(envelope) == ENVELOPE_KEYS, f"{stream_name}: {envelope!r:.300}"
            ab_id = envelope["_airbyte_ab_id"]
            assert isinstance(ab_id, str) and str(uuid.UUID(ab_id)) == ab_id and uuid.UUID(ab_id).version == 4
            assert item["partition_key"] == ab_id
            assert ab_id not in ab_ids, f"duplicate _airbyte_ab_id {ab_id}"
            ab_ids.add(ab_id)
            emitted_at = envelope["_airbyte_emitted_at"]
            assert type(emitted_at) is int and emitted_at in by_time, f"{stream_name}: emitted_at {emitted_at!r}"
            assert emitted_at not in seen, f"{stream_name}: record emitted at {emitted_at} written twice"
            seen.add(emitted_at)
            assert envelope["_airbyte_data"] == by_time[emitted_at], f"{stream_name}: data of {emitted_at} differs"


def assert_synced(endpoint: str, stdin_bytes: bytes, result: SyncResult) -> None:
    """The sync succeeded, Kinesis holds exactly the input records and every state came back right."""
    assert result.process.returncode == 0, result.describe()
    assert not error_traces(result.messages), result.describe()
    input_messages = [loads(line) for line in stdin_bytes.splitlines() if line.strip()]
    input_messages = [message for message in input_messages if message.get("type") in ("RECORD", "STATE")]
    assert_records_written(endpoint, input_messages)
    assert_states_echoed(input_messages, result)


# ---------------------------------------------------------------- numbered syncs: at-least-once read-back and coverage
# Each record carries a unique integer ``seq`` in its data, so a record can be found again however often it was
# written; the checks below allow duplicates (and count them) but fail on any loss.

SEQ = "seq"
RecordId = tuple[str, int]  # (Kinesis stream name, seq)


def numbered_messages(streams: list[StreamKey], count: int, state_every: int, pad: int = 100) -> list[Message]:
    """``count`` records spread round-robin over ``streams``, each with data ``{"seq": n, "pad": ...}`` and a unique
    ``emitted_at``; after every ``state_every`` records, a STREAM state (unique integer ``id``) for each stream."""
    messages: list[Message] = []
    state_id = 0
    for seq in range(count):
        namespace, name = streams[seq % len(streams)]
        messages.append(record(name, {SEQ: seq, "pad": "p" * pad}, EMITTED_AT + seq, namespace))
        if seq % state_every == state_every - 1 or seq == count - 1:
            for namespace, name in streams:
                state_id += 1
                messages.append(stream_state(state_id, name, namespace, cursor=seq))
    return messages


def record_seq(data: bytes) -> int | None:
    """The ``seq`` of a Kinesis record's data, or None when it is not the envelope of a numbered record."""
    envelope = loads(data)
    payload = envelope.get("_airbyte_data") if isinstance(envelope, dict) else None
    seq = payload.get(SEQ) if isinstance(payload, dict) else None
    return seq if type(seq) is int else None


def _scope(message: Message, all_streams: Iterable[str]) -> list[str]:
    """The Kinesis streams whose earlier records a STATE message vouches for."""
    state = message["state"]
    if state.get("type") == "STREAM":
        descriptor = state["stream"]["stream_descriptor"]
        return [kinesis_stream_name(descriptor.get("namespace"), descriptor["name"])]
    return list(all_streams)


class Coverage:
    """Which records each input state vouches for: every earlier record of its scope.

    :meth:`missing` answers, for a state the connector emitted, which of those records are not (yet) in a set of
    written record ids. It remembers how far each stream is known to be written, so checking many states against a
    growing set costs one pass over the input.
    """

    def __init__(self, input_messages: list[Message]):
        self.order: dict[str, list[int]] = {}  # Kinesis stream → its seqs in input order
        self._needs: dict[Any, dict[str, int]] = {}  # state id → Kinesis stream → records of it before the state
        self._written_up_to: dict[str, int] = {}
        for message in input_messages:
            if message["type"] == "RECORD":
                body = message["record"]
                name = kinesis_stream_name(body.get("namespace"), body["stream"])
                self.order.setdefault(name, []).append(body["data"][SEQ])
            elif message["type"] == "STATE":
                scope = _scope(message, self.order)
                self._needs[message["state"]["id"]] = {name: len(self.order.get(name, [])) for name in scope}

    def needs(self, state: Message) -> dict[str, int]:
        """Kinesis stream → how many of its first records (in input order) the emitted ``state`` vouches for."""
        return self._needs[state["state"]["id"]]

    def missing(self, state: Message, written: set[RecordId] | Counter[RecordId]) -> list[RecordId]:
        """The records ``state`` vouches for that are not in ``written`` (which may only grow between calls)."""
        gaps = []
        for name, needed in self.needs(state).items():
            seqs = self.order[name] if needed else []
            done = self._written_up_to.get(name, 0)
            while done < len(seqs) and (name, seqs[done]) in written:
                done += 1
            self._written_up_to[name] = done
            gaps.extend((name, seq) for seq in seqs[done:needed] if (name, seq) not in written)
        return gaps


@dataclass
class ReadBack:
    """What the Kinesis streams hold of a numbered input: how often each record is there, and its duplicates."""

    counts: Counter[RecordId]
    resent: int  # extra copies with an ab_id seen before: the same entry written again after an ambiguous failure
    rewritten: int  # extra copies with a new ab_id: the record sent again by a replayed input

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def duplicates(self) -> int:
        return self.resent + self.rewritten

    def missing(self, expected: Iterable[RecordId]) -> list[RecordId]:
        return [key for key in expected if not self.counts[key]]


def input_records(input_messages: list[Message]) -> dict[RecordId, Any]:
    """The numbered records of an input by (Kinesis stream, seq), each with its data."""
    records: dict[RecordId, Any] = {}
    for message in input_messages:
        if message["type"] == "RECORD":
            body = message["record"]
            records[(kinesis_stream_name(body.get("namespace"), body["stream"]), body["data"][SEQ])] = body["data"]
    return records


def read_back(endpoint: str, input_messages: list[Message]) -> ReadBack:
    """Read every shard of every stream the input writes to. Every Kinesis record must be the envelope of an input
    record with its exact data and its ``_airbyte_ab_id`` as partition key; copies are counted, never refused."""
    expected = input_records(input_messages)
    counts: Counter[RecordId] = Counter()
    ab_ids: set[str] = set()
    resent = rewritten = 0
    for stream_name in dict.fromkeys(name for name, _ in expected):
        for item in read_stream(endpoint, stream_name):
            envelope = loads(item["data"])
            assert isinstance(envelope, dict) and set(envelope) == ENVELOPE_KEYS, f"{stream_name}: {envelope!r:.300}"
            ab_id = envelope["_airbyte_ab_id"]
            assert item["partition_key"] == ab_id, f"{stream_name}: partition key is not the ab_id"
            data = envelope["_airbyte_data"]
            key = (stream_name, data.get(SEQ) if isinstance(data, dict) else None)
            assert key in expected, f"{stream_name}: a record that is not in the input: {data!r:.200}"
            assert data == expected[key], f"{stream_name}: the data of seq {key[1]} differs from the input"
            if counts[key]:
                if ab_id in ab_ids:
                    resent += 1
                else:
                    rewritten += 1
            counts[key] += 1
            ab_ids.add(ab_id)
    return ReadBack(counts, resent, rewritten)


# ---------------------------------------------------------------- a connector running in the background


class RunningConnector:
    """``destination-kinesis`` as a child process whose stdout is read line by line while it runs.

    A thread feeds ``stdin_bytes`` (and closes stdin after them unless ``keep_stdin_open``); another reads stdout and
    calls ``on_message`` with each Airbyte message the moment its line arrives, so a check made there sees the world
    as it was when the connector printed the line (give or take the pipe). :meth:`messages` yields the same messages
    to the test thread. Every wait is bounded; :meth:`close` kills the process if it still runs.
    """

    def __init__(self, args: list[str], stdin_bytes: bytes, keep_stdin_open: bool = False,
                 on_message: Callable[[Message], None] | None = None):
        if not CONNECTOR.exists():
            pytest.fail(f"{CONNECTOR} is missing: install the connector with `pip install -e .`", pytrace=False)
        self.args = [str(CONNECTOR), *args]
        self.process = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.started = time.monotonic()
        self.stdin_done = threading.Event()  # every stdin byte was written (the connector may not have read them)
        self._keep_stdin_open = keep_stdin_open
        self._on_message = on_message
        self._queue: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._stdout = bytearray()
        self._stderr = bytearray()
        self.messages_seen: list[Message] = []
        self.callback_errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._feed, args=(stdin_bytes,), daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _feed(self, stdin_bytes: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            view = memoryview(stdin_bytes)
            for start in range(0, len(view), 1 << 16):
                stdin.write(view[start : start + (1 << 16)])
            stdin.flush()
            self.stdin_done.set()
            if not self._keep_stdin_open:
                stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the connector exited (or was killed) before reading everything

    def _read_stdout(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            self._stdout += line
            if not line.strip():
                continue
            message = loads(line)
            if self._on_message is not None:
                try:
                    self._on_message(message)
                except BaseException as error:  # reported to the test by result()
                    self.callback_errors.append(error)
            self._queue.put(message)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        for chunk in iter(lambda: stderr.read1(1 << 16), b""):
            self._stderr += chunk

    def messages(self, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[Message]:
        """Each stdout message as it arrives, until stdout closes; fails the test if that takes over ``timeout``
        seconds from the start."""
        deadline = self.started + timeout
        while True:
            try:
                message = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                message = TIMED_OUT
            if message is TIMED_OUT:
                self.close()
                pytest.fail(f"the connector did not finish within {timeout:.0f} s; stderr tail: "
                            f"{bytes(self._stderr[-2000:]).decode(errors='replace')}", pytrace=False)
            if message is None:
                return
            self.messages_seen.append(message)
            yield message

    def send_signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = DEFAULT_TIMEOUT_S) -> SyncResult:
        """Read every message, wait for the exit (bounded by ``timeout`` from the start), return the result."""
        for _ in self.messages(timeout):
            pass
        try:
            self.process.wait(timeout=max(1.0, self.started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"the connector closed stdout but did not exit within {timeout:.0f} s", pytrace=False)
        for thread in self._threads[1:]:
            thread.join(STOP_READERS_S)
        self.close()
        if self.callback_errors:
            raise self.callback_errors[0]
        completed = subprocess.CompletedProcess(self.args, self.process.returncode, bytes(self._stdout),
                                                bytes(self._stderr))
        return SyncResult(completed, list(self.messages_seen))

    def close(self) -> None:
        """Kill the process if it still runs and close its pipes. Safe to call twice."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_READERS_S)
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def __enter__(self) -> RunningConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


STOP_READERS_S = 10.0
TIMED_OUT: Message = {"type": "timed out"}


def write_args(tmp_path: Path, endpoint: str, streams: Iterable[StreamKey | dict[str, Any]],
               **config_overrides: Any) -> list[str]:
    """The ``write`` arguments, with a config for ``endpoint`` and a catalog of ``streams`` written to ``tmp_path``."""
    config = write_json(tmp_path / "config.json", connector_config(endpoint, **config_overrides))
    catalog_path = write_json(tmp_path / "catalog.json", catalog(streams))
    return ["write", "--config", str(config), "--catalog", str(catalog_path)]


class LiveCoverage:
    """Checks each state the moment the connector prints it against the records the fault proxy saw Kinesis accept.

    Pass :meth:`on_written` to the :class:`~integration_tests.fault_proxy.FaultProxy` and :meth:`on_message` to the
    :class:`RunningConnector`. The proxy notes a record before it answers the connector, so a state printed after its
    records were accepted is never flagged; :attr:`early` lists the states printed before (their id and gaps).
    """

    def __init__(self, input_messages: list[Message]):
        self._coverage = Coverage(input_messages)
        self.written: set[RecordId] = set()
        self.early: list[tuple[Any, list[RecordId]]] = []
        self._lock = threading.Lock()

    def on_written(self, stream_name: str, data: bytes) -> None:
        seq = record_seq(data)
        with self._lock:
            self.written.add((stream_name, seq if seq is not None else -1))

    def on_message(self, message: Message) -> None:
        if message.get("type") != "STATE":
            return
        with self._lock:
            gaps = self._coverage.missing(message, self.written)
        if gaps:
            self.early.append((message["state"].get("id"), gaps[:5]))


# ---------------------------------------------------------------- Docker


IMAGE_TAG = "airbyte/destination-kinesis:dev-test"
DOCKER_API_TIMEOUT_S = 30  # each API call; an engine that does not answer in this time counts as none
DOCKER_BUILD_TIMEOUT_S = 900


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client whose engine answers a ping. Without one, every test that needs it is skipped, with the
    reason; that a ``docker`` command is installed is not enough (here the client is, and no daemon runs)."""
    try:
        client = docker.from_env(timeout=DOCKER_API_TIMEOUT_S)
        client.ping()
    except Exception as error:  # noqa: BLE001 - whatever the reason, there is no engine to build or run with
        reason = f"no Docker engine answers ({error})"
    else:
        reason = ""
    if reason:  # outside the except block, so the report shows only the reason
        pytest.skip(reason)
    yield client
    client.close()


@pytest.fixture(scope="session")
def connector_image(docker_client: Any) -> str:
    """The image built from this repository's Dockerfile with the docker SDK (the classic builder), as IMAGE_TAG."""
    try:
        docker_client.images.build(path=str(REPO_ROOT), tag=IMAGE_TAG, rm=True, forcerm=True,
                                   timeout=DOCKER_BUILD_TIMEOUT_S)
    except BuildError as error:
        log = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in error.build_log)
        pytest.fail(f"docker build failed: {error.msg}\n{log[-5000:]}", pytrace=False)
    return IMAGE_TAG
