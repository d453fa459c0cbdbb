"""PyAirbyte runs this destination from its local executable, fed by a real source (airbyte-source-faker from PyPI),
into kinesalite. Every record is read back and compared with what the source produces on its own, and the states
PyAirbyte recorded from the destination are the source's.

PyAirbyte and the source depend on other versions of airbyte-cdk than the connector, so each gets a virtual
environment of its own, with pinned versions, kept in pytest's cache between runs (integration_tests/venvs.py).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from . import venvs
from .connector import CONNECTOR, connector_config, write_json
from .kinesis_emulator import read_stream, start_kinesalite
from .readback import ENVELOPE_KEYS, kinesis_stream_name

PYAIRBYTE = ["airbyte==0.71.3"]
SOURCE_FAKER = ["airbyte-source-faker==7.2.1"]
DRIVER = Path(__file__).parent / "pyairbyte_sync.py"
FAKER_STREAMS = ("products", "users", "purchases")
FAKER_CONFIG = {"count": 120, "seed": 7, "records_per_slice": 40, "parallelism": 1, "always_updated": True}
# The faker stamps each record with the time of the sync; everything else is fixed by the seed.
SYNC_TIME_FIELD = "updated_at"
RUN_TIMEOUT_S = 600

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pythons(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The python of PyAirbyte's and of the source's virtual environment, both installed side by side if needed."""
    root = venvs.kept_dir(pytestconfig, tmp_path_factory, "venvs")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(venvs.pinned, root / name, requirements)
                   for name, requirements in (("pyairbyte", PYAIRBYTE), ("source-faker", SOURCE_FAKER))}
        return {name: future.result() for name, future in futures.items()}


def faker_output(executable: Path, config: Path, work: Path) -> list[dict[str, Any]]:
    """Every message of a full read of every stream, run directly (no PyAirbyte)."""
    catalog = write_json(work / "faker_catalog.json", {"streams": [
        {"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
         "sync_mode": "full_refresh", "destination_sync_mode": "append"} for name in FAKER_STREAMS]})
    read = subprocess.run([str(executable), "read", "--config", str(config), "--catalog", str(catalog)],
                          capture_output=True, check=True, timeout=RUN_TIMEOUT_S, cwd=work, env=venvs.bytecode_env())
    return [json.loads(line) for line in read.stdout.splitlines() if line.strip()]


def without_sync_time(data: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(data.get(SYNC_TIME_FIELD), str), data
    return {key: value for key, value in data.items() if key != SYNC_TIME_FIELD}


def test_pyairbyte_syncs_source_faker_into_kinesis(pythons: dict[str, Path], tmp_path: Path) -> None:
    source_executable = pythons["source-faker"].parent / "source-faker"
    source_config = write_json(tmp_path / "faker_config.json", FAKER_CONFIG)
    expected = faker_output(source_executable, source_config, tmp_path)
    expected_records: dict[str, dict[int, dict[str, Any]]] = {}
    final_states: dict[str, dict[str, Any]] = {}
    for message in expected:
        if message["type"] == "RECORD":
            body = message["record"]
            expected_records.setdefault(body["stream"], {})[body["data"]["id"]] = without_sync_time(body["data"])
        elif message["type"] == "STATE":
            stream = message["state"]["stream"]
            final_states[stream["stream_descriptor"]["name"]] = without_sync_time(stream["stream_state"])
    assert set(expected_records) == set(FAKER_STREAMS)

    with start_kinesalite() as emulator:
        destination_config = write_json(tmp_path / "destination_config.json",
                                        connector_config(emulator.endpoint, shardCount=2))
        result_path = tmp_path / "result.json"
        env = venvs.bytecode_env(AIRBYTE_OFFLINE_MODE="1", DO_NOT_TRACK="1")  # no registry, no telemetry
        driver = subprocess.run(
            [str(pythons["pyairbyte"]), str(DRIVER), str(source_executable), str(source_config), str(CONNECTOR),
             str(destination_config), str(result_path)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=RUN_TIMEOUT_S)
        assert driver.returncode == 0, f"PyAirbyte sync failed:\n{driver.stdout[-3000:]}\n{driver.stderr[-5000:]}"

        for stream, by_id in expected_records.items():
            written = read_stream(emulator.endpoint, kinesis_stream_name(None, stream))
            assert len(written) == len(by_id), f"{stream}: {len(written)} records in Kinesis, {len(by_id)} read"
            seen: set[int] = set()
            for item in written:
                envelope = json.loads(item["data"])
                assert set(envelope) == ENVELOPE_KEYS
                assert envelope["_airbyte_ab_id"] == str(uuid.UUID(envelope["_airbyte_ab_id"]))
                assert type(envelope["_airbyte_emitted_at"]) is int
                data = envelope["_airbyte_data"]
                # PyAirbyte asks for append_dedup on streams with a primary key (id): the key is the documented one.
                assert item["partition_key"] == str(data["id"]), f"{stream}: partition key of {data['id']}"
                assert data["id"] not in seen, f"{stream}: id {data['id']} written twice"
                seen.add(data["id"])
                assert without_sync_time(data) == by_id[data["id"]], f"{stream}: record {data['id']} differs"

    recorded = json.loads(result_path.read_text())["states"]
    recorded_states = {state["stream"]["stream_descriptor"]["name"]: without_sync_time(state["stream"]["stream_state"])
                       for state in recorded}
    assert recorded_states == final_states


