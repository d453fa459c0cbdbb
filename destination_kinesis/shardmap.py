"""Where Kinesis puts each record: a stream's open shards and their hash key ranges.

Kinesis writes a record to the open shard whose ``HashKeyRange`` holds the record's hash key: its explicit hash key
when the entry has one, else the 128-bit big-endian integer of MD5(partition key as UTF-8). A :class:`ShardMap` holds
one stream's open shards, read with ListShards (paged; DescribeStream where ListShards is not allowed), and predicts
a key's shard without asking Kinesis. The map goes stale when the stream is resharded (SplitShard, MergeShards,
UpdateShardCount, or an on-demand stream scaling); the dispatcher notices from the ``ShardId`` of PutRecords results and
loads it again.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import md5
from typing import Any

from destination_kinesis import aws_errors

logger = logging.getLogger("airbyte")

#: Hash keys are integers of 128 bits.
HASH_KEY_BYTES = 16
MAX_HASH_KEY = (1 << 128) - 1
#: Shards asked for per ListShards page (the API's maximum is 10,000; 1,000 keeps answers small).
LIST_SHARDS_PAGE = 1000
#: Errors of an endpoint that does not offer a call: like a refusal, try another call, or write without a map.
_NOT_OFFERED = frozenset({"UnknownOperationException", "InvalidAction"})


@dataclass(frozen=True, slots=True)
class Shard:
    """One open shard: its id and the first and last hash key it takes."""

    id: str
    start: int
    end: int

    @property
    def explicit_hash_key(self) -> bytes:
        """A hash key inside this shard's range, as the decimal text an entry's ``ExplicitHashKey`` takes."""
        return str(self.start).encode("ascii")


class ShardMap:
    """A stream's open shards in hash key order; ``index_of_*`` give the position in :attr:`shards` of the shard
    a key goes to. The open shards of a stream cover every hash key exactly once."""

    def __init__(self, shards: Sequence[Shard]):
        if not shards:
            raise ValueError("a shard map needs at least one open shard")
        self.shards = tuple(sorted(shards, key=lambda shard: shard.start))
        # Big-endian bytes compare as the integers they hold, so an MD5 digest is looked up without converting it.
        self._starts = [shard.start.to_bytes(HASH_KEY_BYTES, "big") for shard in self.shards]

    def __len__(self) -> int:
        return len(self.shards)

    def index_of_digest(self, digest: bytes) -> int:
        """The shard of a 16-byte big-endian hash key (an MD5 digest)."""
        return bisect_right(self._starts, digest) - 1

    def index_of_key(self, partition_key: bytes) -> int:
        """The shard of a partition key (UTF-8) sent without an explicit hash key."""
        return bisect_right(self._starts, md5(partition_key).digest()) - 1

    def index_of_hash_key(self, hash_key: int) -> int:
        """The shard of an explicit hash key."""
        return self.index_of_digest(hash_key.to_bytes(HASH_KEY_BYTES, "big"))

    def ids(self) -> list[str]:
        return [shard.id for shard in self.shards]


def hash_key(partition_key: bytes) -> int:
    """The hash key Kinesis derives from a partition key (UTF-8): MD5 as a 128-bit big-endian integer."""
    return int.from_bytes(md5(partition_key).digest(), "big")


class ShardsNotListed(Exception):
    """The credentials may call neither ListShards nor DescribeStream (or the endpoint offers neither)."""


def load_shard_map(client: Any, stream_name: str) -> ShardMap:
    """The open shards of ``stream_name``, from ListShards, else from DescribeStream when ListShards is refused.

    Raises :class:`ShardsNotListed` when both are refused, and the AWS error of any other failure.
    """
    try:
        return ShardMap(list(_open_shards(_list_shards(client, stream_name))))
    except Exception as exc:
        if not _refused(exc):
            raise
        first = exc
    try:
        return ShardMap(list(_open_shards(_describe_shards(client, stream_name))))
    except Exception as exc:
        if not _refused(exc):
            raise
        raise ShardsNotListed(f"{aws_errors.describe(first)} {aws_errors.describe(exc)}") from None


#: A stream name nobody uses: probing with it tells a missing permission (AccessDenied) from a present one
#: (ResourceNotFound) without needing a stream.
_PROBE_NAME = "destination-kinesis-permission-probe-9f3c1e7a"


def listing_refused(client: Any, stream_name: str | None) -> str | None:
    """Why the sync could not read shard maps with these credentials (neither ListShards nor DescribeStream is
    allowed), or None when it can. Asks about ``stream_name``, or about a stream that does not exist when None.
    Errors other than a refusal or a missing stream are raised."""
    name = stream_name or _PROBE_NAME
    refusals = []
    calls: tuple[Callable[[], object], ...] = (lambda: client.list_shards(StreamName=name, MaxResults=1),
                                                lambda: client.describe_stream(StreamName=name, Limit=1))
    for call in calls:
        try:
            call()
            return None
        except Exception as exc:
            code = aws_errors.error_code(exc)
            if code == "ResourceNotFoundException":
                return None
            if not _refused(exc):
                raise
            refusals.append(aws_errors.describe(exc))
    return " ".join(refusals)


def _refused(exc: BaseException) -> bool:
    return aws_errors.is_denied(exc) or aws_errors.error_code(exc) in _NOT_OFFERED


def _list_shards(client: Any, stream_name: str) -> Iterator[dict[str, Any]]:
    page = client.list_shards(StreamName=stream_name, MaxResults=LIST_SHARDS_PAGE)
    while True:
        yield from page.get("Shards") or ()
        token = page.get("NextToken")
        if not token:
            return
        page = client.list_shards(NextToken=token, MaxResults=LIST_SHARDS_PAGE)


def _describe_shards(client: Any, stream_name: str) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {"StreamName": stream_name}
    while True:
        description = client.describe_stream(**request)["StreamDescription"]
        shards = description.get("Shards") or []
        yield from shards
        if not description.get("HasMoreShards") or not shards:
            return
        request["ExclusiveStartShardId"] = shards[-1]["ShardId"]


def _open_shards(shards: Iterator[dict[str, Any]]) -> Iterator[Shard]:
    """The shards still taking writes: a closed shard's sequence number range has an end."""
    for shard in shards:
        if (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber") is None:
            keys = shard["HashKeyRange"]
            yield Shard(str(shard["ShardId"]), int(keys["StartingHashKey"]), int(keys["EndingHashKey"]))
