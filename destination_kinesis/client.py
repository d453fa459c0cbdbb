"""The one place that builds boto3 Kinesis clients from the configuration."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import InvalidRegionError

from destination_kinesis.config import KinesisConfig
from destination_kinesis.errors import config_error

CONNECT_TIMEOUT_SECONDS = 5
#: PutRecords of up to 5 MiB: long enough for a slow link, short enough that a hung request is retried.
DATA_READ_TIMEOUT_SECONDS = 30
#: Control-plane calls and check: two attempts of at most 5 s + 10 s stay within check's 30-second promise.
ADMIN_READ_TIMEOUT_SECONDS = 10
ADMIN_ATTEMPTS = 2


def kinesis_client(config: KinesisConfig, *, data_path: bool = False, max_connections: int = 10) -> Any:
    """A Kinesis client for ``config``.

    The data-path client makes exactly one attempt per call: the sender owns retries, because botocore does not
    resend the failed entries of a PutRecords that returned 200, and one retry policy keeps total time bounded.
    The admin client (create, describe, check) lets botocore retry once, within a short timeout. A region or
    endpoint the SDK cannot use raises a config error.
    """
    session = boto3.session.Session(
        aws_access_key_id=config.access_key.get_secret_value(),
        aws_secret_access_key=config.private_key.get_secret_value(),
        region_name=config.region,
    )
    boto_config = BotoConfig(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=DATA_READ_TIMEOUT_SECONDS if data_path else ADMIN_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": 1 if data_path else ADMIN_ATTEMPTS},
        max_pool_connections=max_connections,
        user_agent_extra="destination-kinesis",
    )
    try:
        return session.client("kinesis", endpoint_url=config.endpoint, config=boto_config)
    except (InvalidRegionError, ValueError) as exc:  # a malformed region or endpoint URL
        raise config_error(f"Cannot use region '{config.region}' with endpoint '{config.endpoint or 'default'}': "
                           f"{exc}") from None
