"""sync: write_sync wires the parts from stdin to stdout: streams made ready, records written, states emitted."""

from __future__ import annotations

import functools
import gzip
import io
import json
import logging

import pytest

from destination_kinesis import sync
from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.config import KinesisConfig, parse_config
from destination_kinesis.errors import ConnectorError
from destination_kinesis.output import Output
from destination_kinesis.sync import write_sync
from unit_tests.fakes import FakeSyncClient
from unit_tests.inputs import lines, record_line, run_on_pipe, state_id, stream_state_line

CONFIG = {"accessKey": "AKIA-SYNC-TEST", "privateKey": "sync-secret-value", "bufferSize": 2}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSyncClient:
    """The admin client and the data path both go to one fake (a FakeSyncClient is also a Put)."""
    client = FakeSyncClient()
    monkeypatch.setattr(sync, "kinesis_client", lambda *args, **kwargs: client)
    monkeypatch.setattr(sync, "PutRecords", lambda given: given)
    return client


def test_write_sync_creates_streams_writes_records_and_emits_states(fake: FakeSyncClient,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """write_sync creates missing streams with shardCount, writes each record to its Kinesis stream, emits the
    covered states on the output and logs per-stream totals."""
    fake.existing.add("crm_users")
    catalog = ConfiguredCatalog.model_validate({"streams": [
        {"stream": {"name": "users", "namespace": "crm"}}, {"stream": {"name": "orders"}}]})
    config = parse_config({**CONFIG, "shardCount": 2})
    stdout = io.BytesIO()
    feed = lines(record_line({"i": 1}, stream="users", namespace="crm"), record_line({"i": 2}, stream="orders"),
                 record_line({"i": 3}, stream="orders"), stream_state_line("orders", state_id=1),
                 stream_state_line("users", "crm", state_id=2))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        run_on_pipe(lambda fd: write_sync(config, catalog, fd, Output(stdout)), feed)
    assert fake.created == [("_orders", 2)]
    assert sorted((name, len(entries)) for name, entries in fake.calls) == [("_orders", 2), ("crm_users", 1)]
    assert [state_id(line) for line in stdout.getvalue().splitlines()] == [1, 2]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Stream 'orders': 2 records" in logged and "'crm.users' → Kinesis stream 'crm_users'" in logged


def test_write_sync_wires_partition_keys_format_compression_and_shared_streams(
        fake: FakeSyncClient, caplog: pytest.LogCaptureFixture) -> None:
    """append_dedup with a primary key gets primary-key partition keys, other streams random ones; the options
    reach the records, the start log names each choice, and the summary counts fallbacks."""
    catalog = ConfiguredCatalog.model_validate({"streams": [
        {"stream": {"name": "users"}, "destination_sync_mode": "append_dedup", "primary_key": [["id"]]},
        {"stream": {"name": "orders"}}]})
    config = parse_config({**CONFIG, "streamNameTemplate": "all", "dataFormat": "string", "compression": "gzip"})
    stdout = io.BytesIO()
    feed = lines(record_line({"id": 7}, stream="users"), record_line({"id": 8}, stream="orders"),
                 record_line({"no_id": 1}, stream="users"))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        run_on_pipe(lambda fd: write_sync(config, catalog, fd, Output(stdout)), feed)
    entries = {json.loads(json.loads(gzip.decompress(e["Data"]))["_airbyte_data"]).get("id"):
               (e["PartitionKey"], json.loads(gzip.decompress(e["Data"])))
               for _, es in fake.calls for e in es}
    assert entries[7][0] == "7" and entries[7][1]["_airbyte_stream"] == "users"
    assert entries[8][0] == entries[8][1]["_airbyte_ab_id"] and entries[8][1]["_airbyte_namespace"] is None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "'users' → Kinesis stream 'all', partition key: primary key id, in input order per key." in logged
    assert "'orders' → Kinesis stream 'all', partition key: random (_airbyte_ab_id)." in logged
    assert "_airbyte_data as a JSON string, compressed with gzip" in logged
    assert "1 records without their key fields given a random partition key" in logged


def test_write_sync_refuses_primary_key_for_a_stream_without_one(fake: FakeSyncClient) -> None:
    catalog = ConfiguredCatalog.model_validate({"streams": [{"stream": {"name": "orders"}}]})
    with pytest.raises(ConnectorError) as caught:
        run_on_pipe(lambda fd: write_sync(parse_config({**CONFIG, "partitionKey": "primary_key"}), catalog, fd,
                                          Output(io.BytesIO())), b"")
    assert "'orders'" in caught.value.message and caught.value.failure_type == "config_error"
    assert fake.created == []


def _write_sync(config: KinesisConfig, catalog: ConfiguredCatalog, fd: int) -> None:
    write_sync(config, catalog, fd, Output(io.BytesIO()))


def test_write_sync_warns_when_partition_key_fields_are_set_but_unused(fake: FakeSyncClient,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    catalog = ConfiguredCatalog.model_validate({"streams": [{"stream": {"name": "orders"}}]})
    for partition_key, shown in ((None, "not set"), ("random", "'random'")):
        caplog.clear()
        config = parse_config({**CONFIG, "partitionKeyFields": ["id"],
                               **({"partitionKey": partition_key} if partition_key else {})})
        with caplog.at_level(logging.INFO, logger="airbyte"):
            run_on_pipe(functools.partial(_write_sync, config, catalog), b"")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(f"partitionKeyFields is set, but partitionKey is {shown}" in w for w in warnings), warnings
