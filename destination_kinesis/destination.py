"""spec, check and write wired together: thin glue over the modules that do the work."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import boto3
from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteMessage, ConfiguredAirbyteCatalog, Status
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_kinesis import aws_errors
from destination_kinesis.batcher import Batcher
from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.client import kinesis_client
from destination_kinesis.config import KinesisConfig, parse_config
from destination_kinesis.errors import system_error
from destination_kinesis.naming import display_name, kinesis_stream_names
from destination_kinesis.output import Output
from destination_kinesis.sender import DEFAULT_MAX_IN_FLIGHT, Sender
from destination_kinesis.streams import ensure_streams
from destination_kinesis.writer import Route, Writer


class DestinationKinesis(Destination):
    """spec comes from the packaged ``spec.json``; the command line is :mod:`destination_kinesis.run`."""

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Parse the config and list streams with it: SUCCEEDED, or FAILED with what to fix. Never raises."""
        try:
            parsed = parse_config(config)
            kinesis_client(parsed).list_streams(Limit=1)
        except AirbyteTracedException as exc:
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


def write_sync(config: KinesisConfig, catalog: ConfiguredCatalog, fd: int, output: Output) -> None:
    """Write the records read from ``fd`` into Kinesis and emit covered states on ``output``."""
    logger = logging.getLogger("airbyte")
    started = time.monotonic()
    keys = list(dict.fromkeys(stream.key for stream in catalog.streams))
    names = kinesis_stream_names(keys)
    for key in keys:
        logger.info("Stream '%s' → Kinesis stream '%s'.", display_name(key), names[key])
    created = ensure_streams(kinesis_client(config), list(names.values()), config.shard_count)
    logger.info("Kinesis streams ready (%d created) in %.1f s; batches of up to %d records, %d requests in flight.",
                len(created), time.monotonic() - started, config.buffer_size, DEFAULT_MAX_IN_FLIGHT)
    checkpoint = Checkpoint(keys, output.write_line)
    routes = {key: Route(key, names[key], checkpoint.lane(key)) for key in keys}
    sender = Sender(kinesis_client(config, data_path=True, max_connections=DEFAULT_MAX_IN_FLIGHT + 2))
    writer = Writer(routes, Batcher(config.buffer_size), sender, checkpoint)
    try:
        writer.run(fd)
    except BaseException:
        # Counts are taken as records are read; after a failure only the emitted states vouch for what was written.
        _log_summary(writer, routes.values(), checkpoint, started, "read (not all written) for")
        raise
    _log_summary(writer, routes.values(), checkpoint, started, "written to")


def _log_summary(writer: Writer, routes: Iterable[Route], checkpoint: Checkpoint, started: float, verb: str) -> None:
    logger = logging.getLogger("airbyte")
    for route in routes:
        logger.info("Stream '%s': %d records, %d bytes %s '%s'.", display_name(route.key), route.records,
                    route.bytes, verb, route.kinesis_name)
    logger.info("%d PutRecords calls, %d entries resent, %d throttled; %d states emitted; %.1f s.",
                writer.totals.calls, writer.totals.resent_entries, writer.totals.throttled,
                checkpoint.emitted, time.monotonic() - started)
