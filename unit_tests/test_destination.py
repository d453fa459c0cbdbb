"""destination: check never raises and says what to fix; in-process write is refused."""

from __future__ import annotations

import json
import logging

import pytest
from airbyte_cdk.models import Status
from botocore.exceptions import EndpointConnectionError

from destination_kinesis import destination
from destination_kinesis.destination import DestinationKinesis
from destination_kinesis.errors import ConnectorError
from unit_tests.conftest import (
    REPO_ROOT,
    FakeSyncClient,
    client_error,
)

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
        list(DestinationKinesis().write(CONFIG, None, iter(())))  # type: ignore[arg-type]
    assert caught.value.failure_type == "system_error"
