"""spec, check and write wired together: thin glue over the modules that do the work."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import boto3
from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteMessage, ConfiguredAirbyteCatalog, Status

from destination_kinesis import aws_errors
from destination_kinesis.client import kinesis_client
from destination_kinesis.config import KinesisConfig, parse_config
from destination_kinesis.errors import ConnectorError, system_error


class DestinationKinesis(Destination):
    """spec comes from the packaged ``spec.json``; the command line is :mod:`destination_kinesis.run`."""

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Parse the config and list streams with it: SUCCEEDED, or FAILED with what to fix. Never raises."""
        try:
            parsed = parse_config(config)
            kinesis_client(parsed).list_streams(Limit=1)
        except ConnectorError as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=exc.message)
        except Exception as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=_check_failure(parsed, exc))
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def write(self, config: Mapping[str, Any], configured_catalog: ConfiguredAirbyteCatalog,
              input_messages: Iterable[AirbyteMessage]) -> Iterable[AirbyteMessage]:
        """Not offered in-process: airbyte-cdk's parsed messages have lost state ids and digits of numbers, which
        this destination must keep. Use the ``destination-kinesis write`` command."""
        raise system_error("destination-kinesis writes only through its command line (destination-kinesis write).")


def _check_failure(config: KinesisConfig, exc: Exception) -> str:
    message = f"Could not list Kinesis streams: {aws_errors.describe(exc)}"
    if config.endpoint is None and not _known_region(config.region):
        message += f" '{config.region}' is not a region this AWS SDK knows; check the region name."
    return message


def _known_region(region: str) -> bool:
    session = boto3.session.Session()
    return any(region in session.get_available_regions("kinesis", partition)
               for partition in session.get_available_partitions())
