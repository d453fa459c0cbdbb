"""The one place that builds AWS sessions and Kinesis clients from the configuration.

Credentials come from ``accessKey``/``privateKey`` when given, else from the standard AWS chain (environment,
shared config and profiles, web identity, ECS and EC2 roles). With ``roleArn`` the session's credentials are those
of the assumed role, fetched through STS AssumeRole and fetched again before they expire, so a sync of many hours
keeps working. Every temporary credential is registered as a secret, so logs and traces mask it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import CredentialProvider, CredentialResolver, Credentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError, InvalidRegionError

from destination_kinesis import aws_errors
from destination_kinesis.config import DEFAULT_REGION, KinesisConfig
from destination_kinesis.errors import config_error, transient_error
from destination_kinesis.masking import register_secrets

logger = logging.getLogger("airbyte")

CONNECT_TIMEOUT_SECONDS = 5
#: PutRecords of up to 5 MiB: long enough for a slow link, short enough that a hung request is retried.
DATA_READ_TIMEOUT_SECONDS = 30
#: Control-plane calls, STS and check: two attempts of at most 5 s + 10 s stay within check's 30-second promise.
ADMIN_READ_TIMEOUT_SECONDS = 10
ADMIN_ATTEMPTS = 2
ASSUME_ROLE_METHOD = "sts-assume-role"


@dataclass(frozen=True)
class AwsSession:
    """A boto3 session with the configuration's credentials, and the region its clients use."""

    session: boto3.session.Session
    region: str
    kinesis_endpoint: str | None

    def client(self, service: str, boto_config: BotoConfig, endpoint: str | None = None) -> Any:
        """A client of ``service``; a region or endpoint the SDK cannot use raises a config error."""
        try:
            return self.session.client(service, region_name=self.region, endpoint_url=endpoint, config=boto_config)
        except (InvalidRegionError, ValueError) as exc:  # a malformed region or endpoint URL
            raise config_error(f"Cannot use region '{self.region}' with endpoint '{endpoint or 'default'}': "
                               f"{exc}") from None


#: The region in an AWS Kinesis endpoint's host name (regional, FIPS, dual-stack and VPC endpoints).
_ENDPOINT_REGION = re.compile(
    r"(?:^|\.)kinesis(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.(?:vpce\.)?(?:api\.aws|amazonaws\.com)")


def endpoint_region_mismatch(endpoint: str | None, region: str) -> str | None:
    """A warning when ``endpoint`` is an AWS Kinesis endpoint of another region than ``region`` (requests are signed
    for ``region``, so AWS refuses them), else None."""
    host = urlsplit(endpoint).hostname if endpoint else None
    match = _ENDPOINT_REGION.search(host or "")
    if match is None or match.group(1) == region:
        return None
    return (f"The endpoint '{endpoint}' is in region '{match.group(1)}' but the region is '{region}': requests are "
            f"signed for '{region}' and AWS will refuse them. Set the region to '{match.group(1)}' or leave the "
            "endpoint empty.")


def aws_session(config: KinesisConfig) -> AwsSession:
    """The session every client of one run is built from (sessions are not thread-safe: build clients in one thread).

    The region is :func:`resolve_region`'s. With ``roleArn`` the role is assumed at once, so a role that cannot be
    assumed fails here, as a config error saying why (a transient error when STS is throttling or failing).
    """
    try:
        base = botocore.session.Session()
        region = resolve_region(config, base)
        if config.access_key is not None or config.private_key is not None:
            base.set_credentials(_secret(config.access_key), _secret(config.private_key))
        session = AwsSession(boto3.session.Session(botocore_session=base), region, config.endpoint)
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        raise config_error(f"Could not read the AWS configuration: {exc}.", internal=repr(exc)) from None
    if config.role_arn is None:
        return session
    sts = session.client("sts", _admin_config())
    refresh = _assume_role(sts, config)
    try:
        credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, ASSUME_ROLE_METHOD)
    except Exception as exc:
        action = f"assume the role '{config.role_arn}'"
        if aws_errors.is_retryable(exc):
            raise transient_error(f"Could not {action}: {aws_errors.describe(exc)}", internal=repr(exc)) from None
        raise aws_errors.traced(exc, action) from None
    assumed = botocore.session.Session()
    assumed.register_component("credential_provider", CredentialResolver([_Fixed(credentials)]))
    return AwsSession(boto3.session.Session(botocore_session=assumed), region, config.endpoint)


def resolve_region(config: KinesisConfig, base: botocore.session.Session | None = None) -> str:
    """``region`` when set, else the AWS default chain's (AWS_DEFAULT_REGION, the profile), else us-east-1."""
    chain = (base or botocore.session.Session()).get_config_variable("region")
    return config.region or chain or DEFAULT_REGION


def kinesis_client(session: AwsSession, *, data_path: bool = False, max_connections: int = 10) -> Any:
    """A Kinesis client for the session's region and the configured endpoint.

    The data-path client makes exactly one attempt per call: the dispatcher decides every retry, because botocore
    does not resend the failed entries of a PutRecords that returned 200, and one retry policy keeps total time
    bounded.
    The admin client (create, describe, check) lets botocore retry once, within a short timeout.
    """
    if not data_path:
        return session.client("kinesis", _admin_config(max_connections), session.kinesis_endpoint)
    boto_config = BotoConfig(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=DATA_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=max_connections,
        user_agent_extra="destination-kinesis",
    )
    return session.client("kinesis", boto_config, session.kinesis_endpoint)


def _admin_config(max_connections: int = 10) -> BotoConfig:
    return BotoConfig(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=ADMIN_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": ADMIN_ATTEMPTS},
        max_pool_connections=max_connections,
        user_agent_extra="destination-kinesis",
    )


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def _assume_role(sts: Any, config: KinesisConfig) -> Callable[[], dict[str, str]]:
    """A refresher for botocore: each call assumes the role anew and returns the credentials' metadata."""
    request = {"RoleArn": config.role_arn, "RoleSessionName": config.role_session_name}
    if config.external_id is not None:
        request["ExternalId"] = config.external_id.get_secret_value()

    def refresh() -> dict[str, str]:
        credentials = sts.assume_role(**request)["Credentials"]
        register_secrets([credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]])
        logger.info("Assumed the role '%s'; its credentials expire at %s.", config.role_arn,
                    credentials["Expiration"].isoformat())
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    return refresh


class _Fixed(CredentialProvider):  # type: ignore[misc]  # botocore is untyped
    """Hands botocore credentials built here (the assumed role's) instead of searching the chain for them."""

    METHOD = ASSUME_ROLE_METHOD

    def __init__(self, credentials: Credentials):
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials
