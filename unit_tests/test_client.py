"""client: boto3 Kinesis clients built from the configuration (built offline; no call is made)."""

from __future__ import annotations

import pytest

from destination_kinesis.client import (
    ADMIN_ATTEMPTS,
    ADMIN_READ_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    DATA_READ_TIMEOUT_SECONDS,
    kinesis_client,
)
from destination_kinesis.config import parse_config
from destination_kinesis.errors import ConnectorError

CONFIG = {"accessKey": "AKIATESTKEY", "privateKey": "test-secret", "region": "eu-west-1"}


def test_data_path_client_makes_one_attempt_per_call() -> None:
    """The data-path client leaves retries to the sender (1 attempt) and has a longer read timeout and the pool
    size asked for."""
    client = kinesis_client(parse_config(CONFIG), data_path=True, max_connections=6)
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (config.read_timeout, config.connect_timeout) == (DATA_READ_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS)
    assert config.max_pool_connections == 6


def test_admin_client_retries_once_within_a_short_timeout() -> None:
    """The admin client lets botocore try twice, each with a short read timeout, so check stays within 30 s."""
    config = kinesis_client(parse_config(CONFIG)).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": ADMIN_ATTEMPTS}
    assert config.read_timeout == ADMIN_READ_TIMEOUT_SECONDS
    assert ADMIN_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + ADMIN_READ_TIMEOUT_SECONDS) <= 30


def test_region_endpoint_and_credentials_come_from_the_config() -> None:
    """The client uses the configured region, endpoint (https:// added) and keys."""
    client = kinesis_client(parse_config({**CONFIG, "endpoint": "localhost:4567"}))
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "https://localhost:4567"
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("AKIATESTKEY", "test-secret")


def test_without_endpoint_the_regional_aws_endpoint_is_used() -> None:
    """No endpoint means AWS's endpoint for the region (us-east-1 by default)."""
    client = kinesis_client(parse_config({"accessKey": "a", "privateKey": "b"}))
    assert client.meta.endpoint_url == "https://kinesis.us-east-1.amazonaws.com"


@pytest.mark.parametrize(("override", "named"), [({"region": "us east 1"}, "us east 1"),
                                                 ({"endpoint": "http://[::1"}, "http://[::1")])
def test_unusable_region_or_endpoint_is_a_config_error(override: dict[str, str], named: str) -> None:
    """A region or endpoint the SDK cannot use fails as config_error naming it, never the keys."""
    with pytest.raises(ConnectorError) as caught:
        kinesis_client(parse_config({**CONFIG, **override}))
    assert caught.value.failure_type == "config_error"
    assert named in caught.value.message
    assert "test-secret" not in caught.value.message
