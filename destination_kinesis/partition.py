"""Partition keys: which shard of its Kinesis stream each record lands on.

Each Airbyte stream gets one :class:`KeyRule` at the start of a sync (:func:`key_rules`):

- ``random``: the record's ``_airbyte_ab_id`` (a random UUID), as in 0.1.5; records spread evenly over the shards.
- ``primary_key``: the values of the stream's primary key from the configured catalog, so every version of a row
  lands on the same shard.
- ``fields``: the values at the ``partitionKeyFields`` paths of the record's ``data``.

Without ``partitionKey`` in the config a stream whose destination sync mode is ``append_dedup`` and that has a
primary key uses ``primary_key``, and every other stream ``random``; an explicit ``partitionKey`` applies to every
stream, and ``primary_key`` for a stream without a primary key is a config error naming the streams.

**The key** (:func:`key_text`) is the values at the key's paths, in the order of the paths, each written as compact
JSON and joined with ``,`` (the JSON array of the values without its brackets): ``17``, ``"eu",17``,
``{"a":1,"b":[true,null]}``. Strings are JSON strings with their quotes (non-ASCII characters as they are, ``"``,
``\\``, control characters and lone surrogates as JSON escapes), object members are sorted by name, and numbers are
written by value: integers with all their digits, other numbers as the shortest text of the double that holds them
exactly (``2.5``, ``100.0``, ``1e+16``), and the rest (``1e400``, 40-digit decimals) with all their significant
digits (``1E+400``). So the same values give the same key in every run, whatever spelling the source used; an
integer and a decimal of equal value (``5`` and ``5.0``) give different keys. A key longer than 256 characters (the
Kinesis limit, in Unicode characters) is replaced by the 64 hex digits of the SHA-256 of its UTF-8 text.

**Missing fields.** A path is missing when a member along it is absent or a value on the way is not an object;
``null`` is a value like any other. A record missing any of its key's fields gets its ``_airbyte_ab_id`` as key
(the fallback, counted per stream and logged once per stream, never with record content), or fails the sync with an
error naming the stream, the line and the field when ``partitionKeyMissing`` is ``fail``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from destination_kinesis.catalog import ConfiguredStream
from destination_kinesis.config import KinesisConfig
from destination_kinesis.errors import config_error, input_error
from destination_kinesis.limits import MAX_PARTITION_KEY_CHARS
from destination_kinesis.messages import Record
from destination_kinesis.naming import StreamKey, display_name
from destination_kinesis.rawjson import orjson_round_trip_is_exact

logger = logging.getLogger("airbyte")

Path = tuple[str, ...]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class KeyRule:
    """How one stream's partition keys are made: ``kind`` is random, primary_key or fields, ``paths`` the paths
    into ``data`` (empty for random), ``fail_when_missing`` what a record without them does."""

    kind: str
    paths: tuple[Path, ...] = ()
    fail_when_missing: bool = False

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    def describe(self) -> str:
        """For the start log: ``random (_airbyte_ab_id)``, ``primary key id, region``, ``fields customer.id``."""
        if self.is_random:
            return "random (_airbyte_ab_id)"
        what = "primary key" if self.kind == "primary_key" else "fields"
        return f"{what} {', '.join(dotted(path) for path in self.paths)}"


RANDOM = KeyRule("random")


def dotted(path: Path) -> str:
    """A path as the config writes it: member names joined with '.'."""
    return ".".join(path)


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


class Partitioner:
    """Makes the partition keys of one stream's records and counts the records that got the fallback key."""

    def __init__(self, stream: StreamKey, rule: KeyRule):
        self.stream = stream
        self.rule = rule
        #: Records that lacked a key field and were given their ``_airbyte_ab_id`` instead.
        self.fallbacks = 0

    def key(self, record: Record, ab_id: bytes) -> bytes:
        """The UTF-8 partition key of ``record``, whose ``_airbyte_ab_id`` is ``ab_id``.

        Raises an input error naming the stream, the line and the missing field when the rule says to fail.
        """
        if self.rule.is_random:
            return ab_id
        data = record.data if record.data is not None else exact_data(record.raw_data or b"{}")
        values = []
        for path in self.rule.paths:
            value = value_at(data, path)
            if value is _MISSING:
                return self._missing(path, record.line_no, ab_id)
            values.append(value)
        return key_text(values).encode("utf-8")

    def _missing(self, path: Path, line_no: int, ab_id: bytes) -> bytes:
        what = "primary key field" if self.rule.kind == "primary_key" else "partition key field"
        if self.rule.fail_when_missing:
            raise input_error(line_no, f"the record has no {what} '{dotted(path)}' in its data, and "
                                       f"partitionKeyMissing is 'fail'", display_name(self.stream))
        if self.fallbacks == 0:
            logger.warning("Stream '%s': the record at input line %d has no %s '%s' in its data, so it is written "
                           "with its _airbyte_ab_id as partition key (a random shard); so are any later records "
                           "missing a key field, counted in the summary. Set partitionKeyMissing to 'fail' to fail "
                           "the sync instead.", display_name(self.stream), line_no, what, dotted(path))
        self.fallbacks += 1
        return ab_id


def value_at(data: Any, path: Path) -> Any:
    """The value at ``path`` in ``data``, or ``_MISSING`` when a member on the way is absent or not in an object."""
    value = data
    for name in path:
        if type(value) is not dict:
            return _MISSING
        value = value.get(name, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def exact_data(raw_data: bytes) -> Any:
    """The record data copied exactly from its line, parsed with every digit: by orjson when its numbers are ones
    a double holds exactly (:func:`~destination_kinesis.rawjson.orjson_round_trip_is_exact`), else with integers
    as int and other numbers as Decimal (the stdlib parser also keeps lone surrogates, which orjson refuses).
    Either way :func:`key_text` writes the same values the same way."""
    if orjson_round_trip_is_exact(raw_data):
        try:
            return orjson.loads(raw_data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw_data, parse_float=Decimal)


def key_text(values: list[Any]) -> str:
    """The partition key of these values (see the module's docstring): joined JSON, hashed beyond 256 characters."""
    text = ",".join(_json(value) for value in values)
    if _has_surrogate(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # each lone surrogate as its JSON escape
    if len(text) > MAX_PARTITION_KEY_CHARS:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _json(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return json.dumps(value, ensure_ascii=False)
    if kind is int:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if kind is float:
        return orjson.dumps(value).decode("ascii")
    if kind is Decimal:
        return _decimal(value)
    if kind is dict:
        return "{" + ",".join(f"{_json(name)}:{_json(member)}" for name, member in sorted(value.items())) + "}"
    if kind is list:
        return "[" + ",".join(_json(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {kind.__name__}")


def _decimal(value: Decimal) -> str:
    """A decimal as a float would be written when a double holds it exactly, else with all its significant digits
    (never rounded by a decimal context)."""
    as_float = float(value)
    if as_float not in (float("inf"), float("-inf")) and Decimal(repr(as_float)) == value:
        return orjson.dumps(as_float).decode("ascii")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # JSON has no NaN or infinity
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return str(Decimal((sign, digits, exponent)))
