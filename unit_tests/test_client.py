"""client: AWS sessions (keys, the default chain, an assumed role that refreshes) and Kinesis clients built from them.

Everything here runs offline: the environment is emptied of AWS settings, and STS is a small fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from destination_kinesis.client import (
    ADMIN_ATTEMPTS,
    ADMIN_READ_TIMEOUT_SECONDS,
    CONNECT_TIMEOUT_SECONDS,
    DATA_READ_TIMEOUT_SECONDS,
    AwsSession,
    aws_session,
    endpoint_region_mismatch,
    kinesis_client,
    resolve_region,
)
from destination_kinesis.config import parse_config
from destination_kinesis.errors import ConnectorError
from destination_kinesis.masking import masked
from unit_tests.fakes import client_error

CONFIG = {"accessKey": "AKIATESTKEY", "privateKey": "test-secret", "region": "eu-west-1"}
ROLE_ARN = "arn:aws:iam::123456789012:role/writer"
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")


@pytest.fixture(autouse=True)
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS variables, empty config and credentials files, no instance metadata: only what a test sets."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return aws_config


def _credentials(client: Any) -> Any:
    """The credentials a boto3 client signs with, frozen (refreshed first when due)."""
    return client._request_signer._credentials.get_frozen_credentials()


def test_data_path_client_makes_one_attempt_per_call() -> None:
    """The data-path client leaves retries to the dispatcher (1 attempt) and has a longer read timeout and the pool
    size asked for."""
    client = kinesis_client(aws_session(parse_config(CONFIG)), data_path=True, max_connections=6)
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (config.read_timeout, config.connect_timeout) == (DATA_READ_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS)
    assert config.max_pool_connections == 6


def test_admin_client_retries_once_within_a_short_timeout() -> None:
    """The admin client lets botocore try twice, each with a short read timeout, so check stays within 30 s."""
    config = kinesis_client(aws_session(parse_config(CONFIG))).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": ADMIN_ATTEMPTS}
    assert config.read_timeout == ADMIN_READ_TIMEOUT_SECONDS
    assert ADMIN_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + ADMIN_READ_TIMEOUT_SECONDS) <= 30


def test_region_endpoint_and_keys_come_from_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client uses the configured region, endpoint (https:// added) and keys, even when the environment has
    others."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    client = kinesis_client(aws_session(parse_config({**CONFIG, "endpoint": "localhost:4567"})))
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "https://localhost:4567"
    credentials = _credentials(client)
    assert (credentials.access_key, credentials.secret_key) == ("AKIATESTKEY", "test-secret")


def test_without_endpoint_the_regional_aws_endpoint_is_used() -> None:
    """No endpoint means AWS's endpoint for the region (us-east-1 when nothing names one)."""
    client = kinesis_client(aws_session(parse_config({"accessKey": "a", "privateKey": "b"})))
    assert client.meta.endpoint_url == "https://kinesis.us-east-1.amazonaws.com"


def test_region_defaults_to_the_chain_then_us_east_1(monkeypatch: pytest.MonkeyPatch,
                                                     no_aws_environment: Path) -> None:
    """Without a configured region: AWS_DEFAULT_REGION, else the profile's region, else us-east-1."""
    config = parse_config({})
    assert resolve_region(config) == "us-east-1"
    no_aws_environment.write_text("[default]\nregion = ca-central-1\n")
    assert resolve_region(config) == "ca-central-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    assert resolve_region(config) == "eu-north-1"
    session = aws_session(config)
    assert session.region == "eu-north-1" and kinesis_client(session).meta.region_name == "eu-north-1"
    assert resolve_region(parse_config({"region": "sa-east-1"})) == "sa-east-1"


def test_without_keys_the_environment_credentials_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """No accessKey/privateKey: the default chain's credentials (here the environment's, with a session token)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    credentials = _credentials(kinesis_client(aws_session(parse_config({"accessKey": "", "privateKey": ""}))))
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("ASIAFROMENV", "env-secret",
                                                                                    "env-token")


def test_without_keys_a_profile_is_used(monkeypatch: pytest.MonkeyPatch, no_aws_environment: Path) -> None:
    """AWS_PROFILE selects a profile of the shared config, as every AWS tool does."""
    no_aws_environment.write_text("[profile etl]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = p-secret\n"
                                  "region = eu-central-1\n")
    monkeypatch.setenv("AWS_PROFILE", "etl")
    session = aws_session(parse_config({}))
    assert session.region == "eu-central-1"
    assert _credentials(kinesis_client(session)).access_key == "AKIAPROFILE"


def test_missing_profile_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile that does not exist is a config error saying so, not a crash."""
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(ConnectorError) as caught:
        aws_session(parse_config({}))
    assert caught.value.failure_type == "config_error"
    assert "nope" in caught.value.message and "AWS configuration" in caught.value.message


@pytest.mark.parametrize(("override", "named"), [({"region": "us east 1"}, "us east 1"),
                                                 ({"endpoint": "http://[::1"}, "http://[::1")])
def test_unusable_region_or_endpoint_is_a_config_error(override: dict[str, str], named: str) -> None:
    """A region or endpoint the SDK cannot use fails as config_error naming it, never the keys."""
    with pytest.raises(ConnectorError) as caught:
        kinesis_client(aws_session(parse_config({**CONFIG, **override})))
    assert caught.value.failure_type == "config_error"
    assert named in caught.value.message
    assert "test-secret" not in caught.value.message


# --------------------------------------------------------------------------------------------------------------------
# Assumed role
# --------------------------------------------------------------------------------------------------------------------


class FakeSts:
    """STS AssumeRole that hands out numbered credentials expiring after ``lifetimes[i]`` (the last repeats), or
    raises ``error``."""

    def __init__(self, lifetimes: list[timedelta], error: BaseException | None = None):
        self.lifetimes = lifetimes
        self.error = error
        self.requests: list[dict[str, Any]] = []

    def assume_role(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        n = len(self.requests)
        lifetime = self.lifetimes[min(n, len(self.lifetimes)) - 1]
        return {"Credentials": {"AccessKeyId": f"ASIATEMP{n}", "SecretAccessKey": f"temp-secret-{n}-x9",
                                "SessionToken": f"temp-token-{n}-q7", "Expiration": datetime.now(timezone.utc)
                                + lifetime}}


@pytest.fixture
def fake_sts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeSts]]:
    """Route the session's STS client to the FakeSts a test appends; other services are built as usual."""
    fakes: list[FakeSts] = []
    real_client = AwsSession.client

    def client(self: AwsSession, service: str, *args: Any, **kwargs: Any) -> Any:
        return fakes[0] if service == "sts" else real_client(self, service, *args, **kwargs)

    monkeypatch.setattr(AwsSession, "client", client)
    yield fakes


def test_role_is_assumed_with_the_configured_session_name_and_external_id(fake_sts: list[FakeSts],
                                                                          clear_secrets: None) -> None:
    """With roleArn, Kinesis calls are signed with the role's temporary credentials, assumed with the configured
    session name and external ID, and the temporary secrets are masked in any output."""
    fake_sts.append(FakeSts([timedelta(hours=1)]))
    config = parse_config({**CONFIG, "roleArn": ROLE_ARN, "externalId": "ext-123", "roleSessionName": "nightly"})
    session = aws_session(config)
    assert fake_sts[0].requests == [{"RoleArn": ROLE_ARN, "RoleSessionName": "nightly", "ExternalId": "ext-123"}]
    credentials = _credentials(kinesis_client(session, data_path=True))
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("ASIATEMP1", "temp-secret-1-x9",
                                                                                    "temp-token-1-q7")
    assert session.region == "eu-west-1"
    assert masked("key temp-secret-1-x9 token temp-token-1-q7") == "key **** token ****"


def test_role_without_external_id_sends_none(fake_sts: list[FakeSts]) -> None:
    """No externalId: the request carries none, and the default session name."""
    fake_sts.append(FakeSts([timedelta(hours=1)]))
    aws_session(parse_config({"roleArn": ROLE_ARN}))
    assert fake_sts[0].requests == [{"RoleArn": ROLE_ARN, "RoleSessionName": "destination-kinesis"}]


def test_role_credentials_are_refreshed_before_they_expire(fake_sts: list[FakeSts], clear_secrets: None) -> None:
    """Credentials that expire within botocore's refresh window are replaced before the next call signs with them;
    fresh ones are reused. The new secrets are masked too."""
    fake_sts.append(FakeSts([timedelta(minutes=5), timedelta(hours=1)]))
    client = kinesis_client(aws_session(parse_config({"roleArn": ROLE_ARN})))
    assert len(fake_sts[0].requests) == 1
    assert _credentials(client).access_key == "ASIATEMP2"  # the first expire in 5 minutes: refreshed
    assert _credentials(client).access_key == "ASIATEMP2"
    assert len(fake_sts[0].requests) == 2
    assert masked("temp-secret-2-x9 temp-token-2-q7") == "**** ****"


@pytest.mark.parametrize(("error", "failure_type", "words"), [
    (client_error("AccessDenied", 403, "User is not authorized to perform: sts:AssumeRole", "AssumeRole"),
     "config_error", ["denied", "sts:AssumeRole"]),
    (client_error("InvalidClientTokenId", 403, "The security token included in the request is invalid", "AssumeRole"),
     "config_error", ["credentials"]),
    (client_error("RegionDisabledException", 403, "STS is not activated in this region", "AssumeRole"),
     "config_error", ["AWS STS answered", "not activated"]),
    (client_error("Throttling", 400, "Rate exceeded", "AssumeRole"), "transient_error", ["Rate exceeded"]),
    (EndpointConnectionError(endpoint_url="https://sts.eu-west-1.amazonaws.com"), "transient_error",
     ["https://sts.eu-west-1.amazonaws.com", "endpoint"]),
])
def test_role_that_cannot_be_assumed_fails_saying_why(fake_sts: list[FakeSts], error: Exception,
                                                       failure_type: str, words: list[str]) -> None:
    """A refused AssumeRole is a config error naming the role and AWS's reason; throttling or an unreachable STS
    is a transient error. Neither shows the keys."""
    fake_sts.append(FakeSts([], error=error))
    with pytest.raises(ConnectorError) as caught:
        aws_session(parse_config({**CONFIG, "roleArn": ROLE_ARN}))
    assert caught.value.failure_type == failure_type
    assert caught.value.message.startswith(f"Could not assume the role '{ROLE_ARN}': ")
    for word in words:
        assert word in caught.value.message, (word, caught.value.message)
    assert "test-secret" not in caught.value.message


def test_sts_client_is_regional_with_short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """STS is called in the session's region, with the admin timeouts, and AWS_ENDPOINT_URL_STS overrides its
    endpoint (how tests and private networks reach another STS)."""
    built: list[Any] = []
    real_client = AwsSession.client

    def client(self: AwsSession, service: str, *args: Any, **kwargs: Any) -> Any:
        made = real_client(self, service, *args, **kwargs)
        if service == "sts":
            built.append(made)
            made.assume_role = FakeSts([timedelta(hours=1)]).assume_role
        return made

    monkeypatch.setattr(AwsSession, "client", client)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1")
    aws_session(parse_config({**CONFIG, "roleArn": ROLE_ARN}))
    (sts,) = built
    assert sts.meta.region_name == "eu-west-1" and sts.meta.endpoint_url == "http://127.0.0.1:1"
    assert sts.meta.config.read_timeout == ADMIN_READ_TIMEOUT_SECONDS


@pytest.mark.parametrize(("endpoint", "region", "other"), [
    ("https://kinesis.eu-west-1.amazonaws.com", "us-east-1", "eu-west-1"),
    ("https://kinesis-fips.us-gov-west-1.amazonaws.com", "us-east-1", "us-gov-west-1"),
    ("https://vpce-0a1b-c2d3.kinesis.ap-southeast-2.vpce.amazonaws.com", "us-east-1", "ap-southeast-2"),
    ("https://kinesis.eu-central-1.api.aws", "eu-west-1", "eu-central-1"),
])
def test_endpoint_of_another_region_is_a_warning_naming_both(endpoint: str, region: str, other: str) -> None:
    """An AWS Kinesis endpoint (regional, FIPS, VPC, dual-stack) of another region than the configured one: the
    warning names both regions and what to do."""
    warning = endpoint_region_mismatch(endpoint, region)
    assert warning is not None and f"'{other}'" in warning and f"'{region}'" in warning
    assert "leave the endpoint empty" in warning


@pytest.mark.parametrize("endpoint", [None, "https://kinesis.us-east-1.amazonaws.com", "http://127.0.0.1:4567",
                                      "https://kinesis.example.com"])
def test_matching_or_non_aws_endpoints_give_no_warning(endpoint: str | None) -> None:
    """No endpoint, the region's own endpoint, an emulator or a proxy: nothing to warn about."""
    assert endpoint_region_mismatch(endpoint, "us-east-1") is None
