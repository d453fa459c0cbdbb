"""The CDK's Destination for spec and check (PyAirbyte and the CDK's test suites use it); write runs in sync.py."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import boto3
from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteMessage, ConfiguredAirbyteCatalog, Status
from botocore.exceptions import BotoCoreError

from destination_kinesis import aws_errors
from destination_kinesis.client import aws_session, kinesis_client, resolve_region
from destination_kinesis.config import KinesisConfig, parse_config
from destination_kinesis.errors import ConnectorError, config_error, system_error
from destination_kinesis.shardmap import listing_refused
from destination_kinesis.streams import check_stream, new_streams

T = TypeVar("T")


class DestinationKinesis(Destination):
    """spec comes from the packaged ``spec.json``; the command line is :mod:`destination_kinesis.run`."""

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Parse the config, get credentials (assuming the role, when set), list streams with them and, when the
        template names one fixed stream, check that it exists or can be created. SUCCEEDED, or FAILED with what to
        fix; never raises."""
        try:
            parsed = parse_config(config)
        except ConnectorError as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=exc.message)
        try:
            warning = _check_aws(parsed)
        except ConnectorError as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=f"{exc.message}{_region_hint(parsed)}")
        except Exception as exc:  # a bug: still a status, not a crash
            message = f"Unexpected error: {aws_errors.describe(exc)}"
            return AirbyteConnectionStatus(status=Status.FAILED, message=message)
        return AirbyteConnectionStatus(status=Status.SUCCEEDED, message=warning)

    def write(self, config: Mapping[str, Any], configured_catalog: ConfiguredAirbyteCatalog,
              input_messages: Iterable[AirbyteMessage]) -> Iterable[AirbyteMessage]:
        """Not offered in-process: airbyte-cdk's parsed messages have lost state ids and digits of numbers, which
        this destination must keep. Use the ``destination-kinesis write`` command."""
        raise system_error("destination-kinesis writes only through its command line (destination-kinesis write).")


def _check_aws(config: KinesisConfig) -> str | None:
    """Raise a traced exception saying what failed and what to do; return when the sync can start, with a warning
    about what it cannot do (pace its writes per shard, when the credentials may not list shards), if anything."""
    logger = logging.getLogger("airbyte")
    session = aws_session(config)
    client = kinesis_client(session)
    _aws_call(f"list Kinesis streams in region '{session.region}'", lambda: client.list_streams(Limit=1))
    fixed = config.name_template.fixed_name
    refused = _aws_call("list the shards of a Kinesis stream", lambda: listing_refused(client, fixed))
    warning = None if refused is None else (
        f"Warning: these credentials may not list the shards of the streams ({refused}) The sync will write without "
        "pacing its writes per shard, slowing down only when Kinesis throttles. Grant kinesis:ListShards (or "
        "kinesis:DescribeStream) on the streams to pace them.")
    if fixed is None:
        return warning
    new = new_streams(config)
    problem = _aws_call(f"describe Kinesis stream '{fixed}'", lambda: check_stream(client, fixed, new))
    if problem:
        raise config_error(problem)
    logger.info("Every Airbyte stream goes to the Kinesis stream '%s', which exists or is created by the sync.", fixed)
    return warning


def _aws_call(action: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ConnectorError:
        raise
    except Exception as exc:
        raise aws_errors.traced(exc, action) from None


def _region_hint(config: KinesisConfig) -> str:
    """For a failure that may come from a mistyped region: say that the SDK does not know it."""
    if config.endpoint is not None:
        return ""
    try:
        region = resolve_region(config)
        session = boto3.session.Session()
        known = any(region in session.get_available_regions("kinesis", partition)
                    for partition in session.get_available_partitions())
    except BotoCoreError:  # the AWS configuration itself is unreadable; the failure says so
        return ""
    return "" if known else f" '{region}' is not a region this AWS SDK knows; check the region name."
