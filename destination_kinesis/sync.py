"""``write``: the streams made ready, then the records read from the input written, with every covered state
echoed. This module and those it imports stay clear of airbyte-cdk, whose import alone costs about a second."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from destination_kinesis import aws_errors
from destination_kinesis.batcher import Batcher
from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.checkpoint import Checkpoint
from destination_kinesis.client import aws_session, endpoint_region_mismatch, kinesis_client
from destination_kinesis.config import KinesisConfig
from destination_kinesis.dispatcher import Dispatcher
from destination_kinesis.encoder import Encoder, KeyRule, Partitioner, dotted
from destination_kinesis.limits import MAX_RECORD_BYTES, MAX_REQUEST_BYTES
from destination_kinesis.messages import StreamKey, display_name
from destination_kinesis.naming import kinesis_stream_names, shared_streams
from destination_kinesis.outbox import Outbox
from destination_kinesis.output import Output
from destination_kinesis.pacing import ShardLimits
from destination_kinesis.packing import Packer
from destination_kinesis.partition import key_rules
from destination_kinesis.progress import Progress
from destination_kinesis.putrecords import PutRecords
from destination_kinesis.route import Route
from destination_kinesis.sender import Sender
from destination_kinesis.shardmap import ShardMap, ShardsNotListed, load_shard_map
from destination_kinesis.streams import ensure_streams, new_streams
from destination_kinesis.writer import Writer


def write_sync(config: KinesisConfig, catalog: ConfiguredCatalog, fd: int, output: Output) -> None:
    """Write the records read from ``fd`` into Kinesis and emit covered states on ``output``.

    The Kinesis streams are made ready (or, with createStreams off, found missing) before any input is read.
    """
    logger = logging.getLogger("airbyte")
    started = time.monotonic()
    session = aws_session(config)
    logger.info("Writing to Kinesis in region '%s' at %s.", session.region, config.endpoint or "the AWS endpoint")
    mismatch = endpoint_region_mismatch(config.endpoint, session.region)
    if mismatch:
        logger.warning(mismatch)
    keys = list(dict.fromkeys(stream.key for stream in catalog.streams))
    names = kinesis_stream_names(keys, config.name_template)
    rules = key_rules(config, catalog.streams)
    shared = shared_streams(names)
    _log_routing(config, keys, names, rules, shared)
    admin = kinesis_client(session)
    streams = ensure_streams(admin, list(dict.fromkeys(names.values())), new_streams(config),
                             retry_seconds=config.retry_timeout_seconds)
    for name, info in streams.items():
        if info.max_record_bytes != MAX_RECORD_BYTES:
            logger.info("Kinesis stream '%s' takes records of up to %d bytes.", name, info.max_record_bytes)
    in_flight = config.max_in_flight_requests
    creating: str = "off" if not config.create_streams else config.stream_mode
    if config.create_streams and config.stream_mode == "provisioned":
        creating += f", {config.shard_count} shards"
    logger.info("Kinesis streams ready (%d created; creating: %s) in %.1f s; batches of up to %d records, up to %d "
                "requests in flight, retries for up to %d s.", sum(info.created for info in streams.values()),
                creating, time.monotonic() - started, config.buffer_size, in_flight, config.retry_timeout_seconds)
    kinesis_names = list(streams)
    maps = {name: shard_map(admin, name) for name in kinesis_names}
    limits = ShardLimits.share(config.shard_write_share)
    if any(maps.values()):
        share = "" if config.shard_write_share == 1 else f" × shardWriteShare {config.shard_write_share:g}"
        logger.info("Writes are paced per shard to %s records and %s bytes per second%s.",
                    f"{limits.records_per_second:,.0f}", f"{limits.bytes_per_second:,.0f}", share)
    packers = {name: _packer(config, name, maps[name], streams[name].max_record_bytes) for name in kinesis_names}
    checkpoint = Checkpoint(keys, output.write_lines)
    routes = {}
    for key in keys:
        encoder = Encoder(config.data_format, config.compression, key if names[key] in shared else None)
        routes[key] = Route(key, names[key], checkpoint.lane(key),
                            max_record_bytes=streams[names[key]].max_record_bytes,
                            partitioner=None if rules[key].is_random else Partitioner(key, rules[key]),
                            encoder=None if encoder.is_default else encoder,
                            skip_oversize=config.oversize_records == "skip",
                            ordered=ordered(config, rules[key]),
                            packing=packers[names[key]] is not None)
    client = kinesis_client(session, data_path=True, max_connections=in_flight + 2)
    now = time.monotonic()
    outboxes = [Outbox(name, maps[name], limits, config.buffer_size, MAX_REQUEST_BYTES, now, packers[name])
                for name in kinesis_names]
    progress = Progress(kinesis_names, now, key_settings(names, rules))
    dispatcher = Dispatcher(outboxes, Sender(PutRecords(client), in_flight), checkpoint, progress, in_flight,
                            config.retry_timeout_seconds, lambda name: shard_map(admin, name, quiet=True))
    batcher = Batcher(config.buffer_size, checkpoint)
    writer = Writer(routes, batcher, dispatcher, checkpoint, progress)
    # The SDK's models are hundreds of thousands of objects that live as long as the process; the garbage
    # collector would scan them all again and again as records come and go. Freezing them leaves it the records.
    gc.freeze()
    try:
        writer.run(fd)
    except BaseException:
        _log_summary(dispatcher, progress, routes.values(), batcher, checkpoint, started, succeeded=False)
        raise
    _log_summary(dispatcher, progress, routes.values(), batcher, checkpoint, started, succeeded=True)


def ordered(config: KinesisConfig, rule: KeyRule) -> bool:
    """Whether a stream's records keep their input order per partition key: ``ordering`` says, and unset means yes
    for keys from the data. Random keys are all distinct, so there is no order per key to keep."""
    return not rule.is_random and config.ordering != "none"


def _packer(config: KinesisConfig, name: str, shard_map: ShardMap | None, max_record_bytes: int) -> Packer | None:
    """How stream ``name`` packs records into aggregates, or None when it does not (aggregation none, or no shard
    map to tell which records share a shard: then it is said once)."""
    if config.aggregation == "none":
        return None
    if shard_map is None:
        logging.getLogger("airbyte").warning(
            "Kinesis stream '%s': records are written unaggregated, as its shards could not be listed: an aggregate "
            "may hold records of one shard only.", name)
        return None
    packer = Packer(min(config.aggregation_max_bytes, max_record_bytes), config.aggregation_max_records)
    logging.getLogger("airbyte").info(
        "Kinesis stream '%s': records are packed into KPL aggregated records of up to %s bytes and %s records.",
        name, f"{packer.max_bytes:,}", f"{packer.max_records:,}")
    return packer


def shard_map(client: Any, name: str, quiet: bool = False) -> ShardMap | None:
    """The shard map of Kinesis stream ``name``, or None (after saying why, unless ``quiet``) when it cannot be
    read: the stream is then written unpaced."""
    logger = logging.getLogger("airbyte")
    try:
        return load_shard_map(client, name)
    except ShardsNotListed as exc:
        if not quiet:
            logger.warning("Cannot list the shards of Kinesis stream '%s' (%s) Grant kinesis:ListShards (or "
                           "kinesis:DescribeStream) to pace writes per shard; until then the stream is written without "
                           "pacing, slowing down only when Kinesis throttles.", name, exc)
    except (ClientError, BotoCoreError) as exc:
        if not quiet:
            logger.warning("Could not read the shards of Kinesis stream '%s': %s The stream is written without "
                           "pacing for now.", name, aws_errors.describe(exc))
    return None


def key_settings(names: Mapping[StreamKey, str], rules: Mapping[StreamKey, KeyRule]) -> dict[str, str]:
    """Per Kinesis stream, the partitionKey setting its Airbyte streams' keys come from, as the log names it."""
    settings: dict[str, list[str]] = {}
    for key, name in names.items():
        rule = rules[key]
        kind = "random" if rule.is_random else rule.kind
        described = f"partitionKey '{kind}'" + ("" if rule.is_random else
                                                f": {', '.join(dotted(path) for path in rule.paths)}")
        settings.setdefault(name, [])
        if described not in settings[name]:
            settings[name].append(described)
    return {name: "; ".join(described) for name, described in settings.items()}


def _log_routing(config: KinesisConfig, keys: list[StreamKey], names: dict[StreamKey, str],
                 rules: dict[StreamKey, KeyRule], shared: dict[str, list[StreamKey]]) -> None:
    """Say where each Airbyte stream goes and how its records are written, and warn of options that do nothing."""
    logger = logging.getLogger("airbyte")
    if config.partition_key_fields and config.partition_key != "fields":
        logger.warning("partitionKeyFields is set, but partitionKey is %s, so those fields are not used; set "
                       "partitionKey to 'fields' to build keys from them.",
                       f"'{config.partition_key}'" if config.partition_key else "not set")
    for key in keys:
        logger.info("Stream '%s' → Kinesis stream '%s', partition key: %s%s.", display_name(key), names[key],
                    rules[key].describe(), ", in input order per key" if ordered(config, rules[key]) else "")
    for name, members in shared.items():
        logger.info("Kinesis stream '%s' receives the records of %d Airbyte streams: %s; each record names its "
                    "stream in _airbyte_stream and _airbyte_namespace.", name, len(members),
                    ", ".join(f"'{display_name(key)}'" for key in members))
    if config.data_format != "object" or config.compression != "none":
        logger.info("Records are written with _airbyte_data as a JSON %s, %s.", config.data_format,
                    "uncompressed" if config.compression == "none" else f"compressed with {config.compression}")


def _log_summary(dispatcher: Dispatcher, progress: Progress, routes: Iterable[Route], batcher: Batcher,
                 checkpoint: Checkpoint, started: float, succeeded: bool) -> None:
    logger = logging.getLogger("airbyte")
    for route in routes:
        stats = batcher.stats(route)
        extra = ""
        if stats.rejected:
            extra += f"; {stats.rejected:,} records over the size limit skipped"
        if route.partitioner is not None and route.partitioner.fallbacks:
            extra += f"; {route.partitioner.fallbacks:,} records without their key fields given a random partition key"
        logger.info("Stream '%s': %s records (%s bytes) read for '%s'%s.", display_name(route.key),
                    f"{stats.records:,}", f"{stats.bytes:,}", route.kinesis_name, extra)
    progress.log_summary(dispatcher, succeeded)
    logger.info("%d states emitted; %.1f s.", checkpoint.emitted, time.monotonic() - started)
