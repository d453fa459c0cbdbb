"""Which partition key each Airbyte stream's records get: one :class:`~destination_kinesis.encoder.KeyRule` per
stream at the start of a sync (:func:`key_rules`); the keys themselves are made by
:class:`~destination_kinesis.encoder.Partitioner`.

- ``random``: the record's ``_airbyte_ab_id`` (a random UUID), as in 0.1.5; records spread evenly over the shards.
- ``primary_key``: the values of the stream's primary key from the configured catalog, so every version of a row
  lands on the same shard.
- ``fields``: the values at the ``partitionKeyFields`` paths of the record's ``data``.

Without ``partitionKey`` in the config a stream whose destination sync mode is ``append_dedup`` and that has a
primary key uses ``primary_key``, and every other stream ``random``; an explicit ``partitionKey`` applies to every
stream, and ``primary_key`` for a stream without a primary key is a config error naming the streams.
"""

from __future__ import annotations

from collections.abc import Iterable

from destination_kinesis.catalog import ConfiguredStream
from destination_kinesis.config import KinesisConfig
from destination_kinesis.encoder import RANDOM, KeyRule
from destination_kinesis.errors import config_error
from destination_kinesis.messages import StreamKey, display_name


def key_rules(config: KinesisConfig, streams: Iterable[ConfiguredStream]) -> dict[StreamKey, KeyRule]:
    """Each configured stream's rule (see the module's docstring); a config error names every stream that
    ``partitionKey: primary_key`` is asked for but that has no primary key in the catalog."""
    fail = config.partition_key_missing == "fail"
    rules: dict[StreamKey, KeyRule] = {}
    without_primary_key: list[str] = []
    for stream in streams:
        kind = config.partition_key
        if kind is None:
            kind = "primary_key" if stream.mode == "append_dedup" and stream.primary_key_paths else "random"
        if kind == "random":
            rules[stream.key] = RANDOM
        elif kind == "fields":
            rules[stream.key] = KeyRule("fields", config.partition_key_fields, fail)
        elif stream.primary_key_paths:
            rules[stream.key] = KeyRule("primary_key", stream.primary_key_paths, fail)
        else:
            without_primary_key.append(display_name(stream.key))
    if without_primary_key:
        shown = ", ".join(f"'{name}'" for name in without_primary_key)
        raise config_error(f"partitionKey is 'primary_key', but the catalog gives no primary key for the streams "
                           f"{shown}: set a primary key for them in the connection, or choose partitionKey 'random' "
                           f"or 'fields'.")
    return rules
