"""Shared fixtures and helpers: a kinesalite emulator, config/catalog files, running the installed console script,
and the read-back check that compares what Kinesis holds with what went in."""

from __future__ import annotations

import copy
import json
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

import docker
import pytest
from docker.errors import BuildError

from .kinesis_emulator import Emulator, EmulatorError, read_stream, start_kinesalite

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


# ---------------------------------------------------------------- emulator


@pytest.fixture(scope="session")
def kinesalite() -> Iterator[Emulator]:
    """One kinesalite for the whole session; tests use distinct stream names, so they never see each other's data."""
    try:
        emulator = start_kinesalite()
    except EmulatorError as error:
        failure = f"cannot start the Kinesis emulator: {error}"
    else:
        failure = ""
    if failure:  # outside the except block, so the report shows only the message
        pytest.fail(failure, pytrace=False)
    yield emulator
    emulator.stop()


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
    args: list[str], stdin_bytes: bytes = b"", timeout: float = DEFAULT_TIMEOUT_S
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``destination-kinesis`` console script and wait for it (killing it after ``timeout``)."""
    if not CONNECTOR.exists():
        pytest.fail(f"{CONNECTOR} is missing: install the connector with `pip install -e .`", pytrace=False)
    return subprocess.run([str(CONNECTOR), *args], input=stdin_bytes, capture_output=True, timeout=timeout)


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


@pytest.fixture
def sync(kinesalite: Emulator, tmp_path: Path) -> Callable[..., SyncResult]:
    """Run ``write`` against the emulator: ``sync(streams, stdin_bytes, timeout=..., **config_overrides)``."""

    def run(
        streams: Iterable[StreamKey | dict[str, Any]],
        stdin_bytes: bytes,
        timeout: float = DEFAULT_TIMEOUT_S,
        **config_overrides: Any,
    ) -> SyncResult:
        config = write_json(tmp_path / "config.json", connector_config(kinesalite.endpoint, **config_overrides))
        catalog_path = write_json(tmp_path / "catalog.json", catalog(streams))
        args = ["write", "--config", str(config), "--catalog", str(catalog_path)]
        process = run_connector(args, stdin_bytes, timeout)
        return SyncResult(process, parse_messages(process.stdout))

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
