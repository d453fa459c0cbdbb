"""sync: write_sync wires the parts from stdin to stdout: streams made ready, records written, states emitted."""

from __future__ import annotations

import io
import logging

import pytest

from destination_kinesis import sync
from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.config import parse_config
from destination_kinesis.output import Output
from destination_kinesis.sync import write_sync
from unit_tests.conftest import FakeSyncClient, lines, record_line, run_on_pipe, state_id, stream_state_line

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
