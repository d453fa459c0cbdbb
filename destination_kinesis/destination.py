"""spec, check and write wired together: thin glue over the modules that do the work."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import boto3
from airbyte_cdk.destinations import Destination
from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteMessage, ConfiguredAirbyteCatalog, Status
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from botocore.exceptions import BotoCoreError

from destination_kinesis import aws_errors
from destination_kinesis.batcher import Batcher
from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.client import aws_session, kinesis_client, resolve_region
from destination_kinesis.config import KinesisConfig, parse_config
from destination_kinesis.errors import config_error, system_error
from destination_kinesis.limits import MAX_RECORD_BYTES
from destination_kinesis.naming import display_name, kinesis_stream_names, shared_streams
from destination_kinesis.output import Output
from destination_kinesis.sender import DEFAULT_MAX_IN_FLIGHT, Sender
from destination_kinesis.streams import check_stream, ensure_streams, new_streams
from destination_kinesis.writer import Route, Writer

T = TypeVar("T")


class DestinationKinesis(Destination):
    """spec comes from the packaged ``spec.json``; the command line is :mod:`destination_kinesis.run`."""

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        """Parse the config, get credentials (assuming the role, when set), list streams with them and, when the
        template names one fixed stream, check that it exists or can be created. SUCCEEDED, or FAILED with what to
        fix; never raises."""
        try:
            parsed = parse_config(config)
        except AirbyteTracedException as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=exc.message)
        try:
            _check_aws(parsed)
        except AirbyteTracedException as exc:
            return AirbyteConnectionStatus(status=Status.FAILED, message=f"{exc.message}{_region_hint(parsed)}")
        except Exception as exc:  # a bug: still a status, not a crash
            message = f"Unexpected error: {aws_errors.describe(exc)}"
            return AirbyteConnectionStatus(status=Status.FAILED, message=message)
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def write(self, config: Mapping[str, Any], configured_catalog: ConfiguredAirbyteCatalog,
              input_messages: Iterable[AirbyteMessage]) -> Iterable[AirbyteMessage]:
        """Not offered in-process: airbyte-cdk's parsed messages have lost state ids and digits of numbers, which
        this destination must keep. Use the ``destination-kinesis write`` command."""
        raise system_error("destination-kinesis writes only through its command line (destination-kinesis write).")


def _check_aws(config: KinesisConfig) -> None:
    """Raise a traced exception saying what failed and what to do; return when the sync can start."""
    logger = logging.getLogger("airbyte")
    session = aws_session(config)
    client = kinesis_client(session)
    _aws_call(f"list Kinesis streams in region '{session.region}'", lambda: client.list_streams(Limit=1))
    fixed = config.name_template.fixed_name
    if fixed is None:
        return
    new = new_streams(config)
    problem = _aws_call(f"describe Kinesis stream '{fixed}'", lambda: check_stream(client, fixed, new))
    if problem:
        raise config_error(problem)
    logger.info("Every Airbyte stream goes to the Kinesis stream '%s', which exists or is created by the sync.", fixed)


def _aws_call(action: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except AirbyteTracedException:
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


def write_sync(config: KinesisConfig, catalog: ConfiguredCatalog, fd: int, output: Output) -> None:
    """Write the records read from ``fd`` into Kinesis and emit covered states on ``output``.

    The Kinesis streams are made ready (or, with createStreams off, found missing) before any input is read.
    """
    logger = logging.getLogger("airbyte")
    started = time.monotonic()
    session = aws_session(config)
    logger.info("Writing to Kinesis in region '%s' at %s.", session.region, config.endpoint or "the AWS endpoint")
    keys = list(dict.fromkeys(stream.key for stream in catalog.streams))
    names = kinesis_stream_names(keys, config.name_template)
    for key in keys:
        logger.info("Stream '%s' → Kinesis stream '%s'.", display_name(key), names[key])
    for name, members in shared_streams(names).items():
        logger.info("Kinesis stream '%s' receives the records of %d Airbyte streams: %s.", name, len(members),
                    ", ".join(f"'{display_name(key)}'" for key in members))
    streams = ensure_streams(kinesis_client(session), list(dict.fromkeys(names.values())), new_streams(config))
    for name, info in streams.items():
        if info.max_record_bytes != MAX_RECORD_BYTES:
            logger.info("Kinesis stream '%s' takes records of up to %d bytes.", name, info.max_record_bytes)
    logger.info("Kinesis streams ready (%d created) in %.1f s; batches of up to %d records, %d requests in flight.",
                sum(info.created for info in streams.values()), time.monotonic() - started, config.buffer_size,
                DEFAULT_MAX_IN_FLIGHT)
    checkpoint = Checkpoint(keys, output.write_line)
    routes = {key: Route(key, names[key], checkpoint.lane(key), max_record_bytes=streams[names[key]].max_record_bytes)
              for key in keys}
    sender = Sender(kinesis_client(session, data_path=True, max_connections=DEFAULT_MAX_IN_FLIGHT + 2),
                    retry_seconds=config.retry_timeout_seconds)
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
