"""destination: check never raises and says what to fix; write_sync (sync.py) hands the stream options on."""

from __future__ import annotations

import io
import json
import logging
import os
from typing import Any

import pytest
from airbyte_cdk.models import Status
from botocore.exceptions import EndpointConnectionError

from destination_kinesis import destination, sync
from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.config import parse_config
from destination_kinesis.destination import DestinationKinesis
from destination_kinesis.dispatcher import Dispatcher
from destination_kinesis.errors import ConnectorError, config_error
from destination_kinesis.limits import MAX_RECORD_BYTES
from destination_kinesis.output import Output
from destination_kinesis.route import Route
from destination_kinesis.sync import write_sync
from destination_kinesis.writer import Writer
from unit_tests.fakes import FakeSyncClient, client_error
from unit_tests.inputs import lines, record_line, run_on_pipe, state_id, stream_state_line
from unit_tests.paths import REPO_ROOT

LOGGER = logging.getLogger("airbyte")
CONFIG = {"accessKey": "AKIA-DEST-TEST", "privateKey": "dest-secret-value", "bufferSize": 2}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSyncClient:
    client = FakeSyncClient()
    monkeypatch.setattr(destination, "kinesis_client", lambda *args, **kwargs: client)
    return client


def test_spec_is_the_packaged_spec() -> None:
    """spec() serves spec.json."""
    spec = DestinationKinesis().spec(LOGGER)
    expected = json.loads((REPO_ROOT / "spec.json").read_text())
    assert spec.connectionSpecification == expected["connectionSpecification"]


def test_check_succeeds_when_streams_can_be_listed(fake: FakeSyncClient) -> None:
    """check lists one stream name with the configured client and reports SUCCEEDED."""
    status = DestinationKinesis().check(LOGGER, CONFIG)
    assert status.status == Status.SUCCEEDED
    assert fake.listed == [{"Limit": 1}]


def test_check_with_invalid_config_fails_without_raising(fake: FakeSyncClient) -> None:
    """An invalid config is a FAILED status naming the field, never an exception or a secret."""
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "bufferSize": 0})
    assert status.status == Status.FAILED
    assert "bufferSize" in status.message and "dest-secret-value" not in status.message
    assert fake.listed == []


@pytest.mark.parametrize(("options", "named"), [
    ({"partitionKey": "fields"}, "partitionKeyFields"),
    ({"compression": "brotli"}, "compression"),
])
def test_check_reports_bad_record_options(fake: FakeSyncClient, options: dict[str, Any], named: str) -> None:
    """The record options are checked as far as they can be without a catalog."""
    status = DestinationKinesis().check(LOGGER, {**CONFIG, **options})
    assert status.status == Status.FAILED and named in status.message and fake.listed == []


def test_spec_offers_append_and_append_dedup() -> None:
    spec = DestinationKinesis().spec(LOGGER)
    assert [mode.value for mode in spec.supported_destination_sync_modes or []] == ["append", "append_dedup"]


def test_check_with_refused_credentials_says_what_to_fix(fake: FakeSyncClient) -> None:
    """An AWS refusal becomes a FAILED status explaining it."""
    fake.list_error = client_error("UnrecognizedClientException", operation="ListStreams")
    status = DestinationKinesis().check(LOGGER, CONFIG)
    assert status.status == Status.FAILED
    assert "credentials" in status.message and "accessKey" in status.message


def test_check_with_unknown_region_hints_at_the_region(fake: FakeSyncClient) -> None:
    """An unreachable AWS endpoint for a region the SDK does not know points at the region name."""
    fake.list_error = EndpointConnectionError(endpoint_url="https://kinesis.us-esat-1.amazonaws.com")
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "region": "us-esat-1"})
    assert status.status == Status.FAILED
    assert "'us-esat-1' is not a region" in status.message
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "region": "eu-west-1"})
    assert "is not a region" not in status.message


def test_in_process_write_is_refused() -> None:
    """write() through the CDK would lose state ids and digits: it is refused with a system_error."""
    with pytest.raises(ConnectorError) as caught:
        list(DestinationKinesis().write(CONFIG, None, iter(())))
    assert caught.value.failure_type == "system_error"


def test_check_reports_a_role_that_cannot_be_assumed(fake: FakeSyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure to get credentials (here: assuming the role) is the FAILED message; Kinesis is not called."""
    def refuse(config: object) -> None:
        raise config_error("Could not assume the role 'arn:aws:iam::123456789012:role/r': AWS denied the request.")

    monkeypatch.setattr(destination, "aws_session", refuse)
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "roleArn": "arn:aws:iam::123456789012:role/r"})
    assert status.status == Status.FAILED and "Could not assume the role" in status.message
    assert fake.listed == []


def test_check_with_unknown_region_and_role_hints_at_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """Assuming a role in a mistyped region fails to reach STS; the message points at the region name."""
    def unreachable(config: object) -> None:
        raise config_error("Could not assume the role 'r': Could not connect to the AWS endpoint.")

    monkeypatch.setattr(destination, "aws_session", unreachable)
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "region": "eu-wset-1"})
    assert "'eu-wset-1' is not a region" in status.message


class FakeStreamsClient(FakeSyncClient):
    """FakeSyncClient whose streams report a MaxRecordSizeInKiB (``record_kib[name]``), whose describes can be
    refused, and which takes any CreateStream request."""

    def __init__(self, record_kib: dict[str, int] | None = None, describe_error: BaseException | None = None):
        super().__init__()
        self.record_kib = record_kib or {}
        self.describe_error = describe_error
        self.create_requests: list[dict[str, Any]] = []

    def describe_stream_summary(self, *, StreamName: str) -> dict[str, Any]:  # noqa: N803 (boto3 names)
        if self.describe_error is not None:
            raise self.describe_error
        summary = super().describe_stream_summary(StreamName=StreamName)
        if StreamName in self.record_kib:
            summary["StreamDescriptionSummary"]["MaxRecordSizeInKiB"] = self.record_kib[StreamName]
        return summary

    def create_stream(self, **request: Any) -> None:
        self.create_requests.append(request)
        self.existing.add(request["StreamName"])


@pytest.fixture
def streams_fake(monkeypatch: pytest.MonkeyPatch) -> FakeStreamsClient:
    client = FakeStreamsClient()
    for module in (destination, sync):
        monkeypatch.setattr(module, "kinesis_client", lambda *args, **kwargs: client)
    monkeypatch.setattr(sync, "PutRecords", lambda given: given)
    return client


@pytest.mark.parametrize(("existing", "overrides", "failed_words"), [
    (True, {"createStreams": False}, None),
    (False, {}, None),
    (False, {"streamMode": "on_demand", "shardCount": 0}, None),
    (False, {"createStreams": False}, ["'events'", "does not exist", "createStreams"]),
    (False, {"shardCount": 0}, ["'events'", "shardCount 0"]),
])
def test_check_with_a_fixed_stream_name_checks_that_stream(streams_fake: FakeStreamsClient, existing: bool,
                                                           overrides: dict[str, Any],
                                                           failed_words: list[str] | None) -> None:
    """A template without placeholders names the one stream every sync writes: check says whether it exists or
    can be created (createStreams on, and shardCount usable), without creating it."""
    if existing:
        streams_fake.existing.add("events")
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "streamNameTemplate": "events", **overrides})
    if failed_words is None:
        assert status.status == Status.SUCCEEDED, status.message
    else:
        assert status.status == Status.FAILED
        assert all(word in status.message for word in failed_words), status.message
    assert streams_fake.listed == [{"Limit": 1}] and streams_fake.create_requests == []


def test_check_with_a_fixed_stream_reports_a_refused_describe(streams_fake: FakeStreamsClient) -> None:
    """A describe the credentials may not make is named with the stream and what to grant."""
    streams_fake.describe_error = client_error("AccessDeniedException", operation="DescribeStreamSummary")
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "streamNameTemplate": "events"})
    assert status.status == Status.FAILED
    assert "describe Kinesis stream 'events'" in status.message and "permission" in status.message


def test_check_with_placeholders_describes_no_stream(streams_fake: FakeStreamsClient) -> None:
    """Without the catalog, a template with placeholders names no stream to check."""
    streams_fake.describe_error = AssertionError("check described a stream")
    status = DestinationKinesis().check(LOGGER, {**CONFIG, "streamNameTemplate": "prod.{stream}",
                                                  "createStreams": False})
    assert status.status == Status.SUCCEEDED, status.message


def test_check_succeeds_with_a_warning_when_shards_may_not_be_listed(streams_fake: FakeStreamsClient,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that may write but not list shards: the sync can run (unpaced), so check succeeds, and its message
    says what is missing."""
    def refused(**request: Any) -> Any:
        raise client_error("AccessDeniedException", operation="ListShards")

    monkeypatch.setattr(streams_fake, "list_shards", refused, raising=False)
    monkeypatch.setattr(streams_fake, "describe_stream", refused, raising=False)
    status = DestinationKinesis().check(LOGGER, CONFIG)
    assert status.status == Status.SUCCEEDED
    assert status.message is not None and "may not list the shards" in status.message
    assert "kinesis:ListShards" in status.message and "without pacing" in status.message


# --------------------------------------------------------------------------------------------------------------------
# write_sync: template, createStreams, stream options, record size and retry time handed on
# --------------------------------------------------------------------------------------------------------------------


def test_write_sync_with_create_streams_off_fails_before_reading_input(streams_fake: FakeStreamsClient) -> None:
    """createStreams off and streams missing: a config error names every missing stream before one byte of input
    is read, and nothing is created or written."""
    streams_fake.existing.add("crm_users")
    catalog = ConfiguredCatalog.model_validate({"streams": [
        {"stream": {"name": "users", "namespace": "crm"}}, {"stream": {"name": "orders"}},
        {"stream": {"name": "items", "namespace": "shop"}}]})
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, record_line({"i": 1}, stream="orders") + b"\n")
        with pytest.raises(ConnectorError) as caught:
            write_sync(parse_config({**CONFIG, "createStreams": False}), catalog, read_fd, Output(io.BytesIO()))
        os.set_blocking(read_fd, False)
        assert os.read(read_fd, 1 << 16).startswith(b'{"type":"RECORD"')  # still unread
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert caught.value.failure_type == "config_error"
    assert "'_orders'" in caught.value.message and "'shop_items'" in caught.value.message
    assert "crm_users" not in caught.value.message
    assert streams_fake.create_requests == [] and streams_fake.calls == []


def test_write_sync_uses_the_template_and_creates_streams_as_configured(streams_fake: FakeStreamsClient,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """'prod.{stream}' sends both namespaces' 'users' to one Kinesis stream (logged as shared), created on demand
    with the tags; every record arrives and each stream's states come out."""
    catalog = ConfiguredCatalog.model_validate({"streams": [
        {"stream": {"name": "users", "namespace": "eu"}}, {"stream": {"name": "users", "namespace": "us"}}]})
    config = parse_config({**CONFIG, "streamNameTemplate": "prod.{stream}", "streamMode": "on_demand",
                           "streamTags": [{"key": "team", "value": "data"}]})
    stdout = io.BytesIO()
    feed = lines(record_line({"i": 1}, stream="users", namespace="eu"),
                 record_line({"i": 2}, stream="users", namespace="us"), stream_state_line("users", "us", state_id=1),
                 stream_state_line("users", "eu", state_id=2))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        run_on_pipe(lambda fd: write_sync(config, catalog, fd, Output(stdout)), feed)
    assert streams_fake.create_requests == [{"StreamName": "prod.users", "StreamModeDetails": {"StreamMode":
                                             "ON_DEMAND"}, "Tags": {"team": "data"}}]
    assert [(name, len(entries)) for name, entries in streams_fake.calls] == [("prod.users", 2)]
    assert [state_id(line) for line in stdout.getvalue().splitlines()] == [1, 2]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Kinesis stream 'prod.users' receives the records of 2 Airbyte streams: 'eu.users', 'us.users'" in logged


def test_write_sync_hands_record_size_and_retry_time_on(streams_fake: FakeStreamsClient,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each route gets its Kinesis stream's MaxRecordSizeInKiB in bytes (1 MiB when not reported), and the
    dispatcher retries for retryTimeoutSeconds."""
    streams_fake.existing.update({"_big", "_plain"})
    streams_fake.record_kib["_big"] = 4096
    seen: dict[str, Any] = {}

    class SpyWriter(Writer):
        def __init__(self, routes: dict[Any, Route], *args: Any):
            seen["routes"] = routes
            super().__init__(routes, *args)

    class SpyDispatcher(Dispatcher):
        def __init__(self, *args: Any):
            seen["retry_seconds"] = args[5]
            super().__init__(*args)

    monkeypatch.setattr(sync, "Writer", SpyWriter)
    monkeypatch.setattr(sync, "Dispatcher", SpyDispatcher)
    catalog = ConfiguredCatalog.model_validate({"streams": [{"stream": {"name": n}} for n in ("big", "plain")]})
    config = parse_config({**CONFIG, "retryTimeoutSeconds": 42})
    run_on_pipe(lambda fd: write_sync(config, catalog, fd, Output(io.BytesIO())), b"")
    assert {key: route.max_record_bytes for key, route in seen["routes"].items()} == {
        (None, "big"): 4096 * 1024, (None, "plain"): MAX_RECORD_BYTES}
    assert seen["retry_seconds"] == 42
