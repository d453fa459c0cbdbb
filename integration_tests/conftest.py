"""Shared fixtures and helpers: a kinesalite emulator, config/catalog files, running the installed console script,
and the read-back check that compares what Kinesis holds with what went in."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from .kinesis_emulator import (
    Emulator,
    EmulatorError,
    read_stream,
    reset_moto,
    start_kinesalite,
    start_kinesis_local,
    start_moto,
)

CONNECTOR = Path(sys.executable).parent / "destination-kinesis"
REGION = "us-east-1"
SHARD_COUNT = 3
ENVELOPE_KEYS = {"_airbyte_ab_id", "_airbyte_emitted_at", "_airbyte_data"}
EMITTED_AT = 1_700_000_000_000
DEFAULT_TIMEOUT_S = 120.0

Message = dict[str, Any]
StreamKey = tuple[str | None, str]  # (namespace, name)


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


@pytest.fixture
def sync(kinesalite: Emulator, tmp_path: Path) -> Callable[..., SyncResult]:
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
