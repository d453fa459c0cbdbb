"""shardmap: the open shards of a stream from ListShards (paged) or DescribeStream, and the shard of a key."""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

import pytest

from destination_kinesis.shardmap import (
    MAX_HASH_KEY,
    Shard,
    ShardMap,
    ShardsNotListed,
    hash_key,
    listing_refused,
    load_shard_map,
)
from unit_tests.fakes import client_error


def even_shards(count: int) -> list[Shard]:
    """``count`` shards splitting the hash space evenly, as CreateStream does."""
    step = (MAX_HASH_KEY + 1) // count
    return [Shard(f"shardId-{i:012d}", i * step, MAX_HASH_KEY if i == count - 1 else (i + 1) * step - 1)
            for i in range(count)]


def described(shard: Shard, closed: bool = False) -> dict[str, Any]:
    """A shard as ListShards and DescribeStream describe it."""
    sequence = {"StartingSequenceNumber": "1"}
    if closed:
        sequence["EndingSequenceNumber"] = "2"
    return {"ShardId": shard.id, "SequenceNumberRange": sequence,
            "HashKeyRange": {"StartingHashKey": str(shard.start), "EndingHashKey": str(shard.end)}}


class ShardsClient:
    """A fake admin client listing ``shards`` ``page`` at a time; ``refuse`` names operations answered with
    AccessDeniedException."""

    def __init__(self, shards: list[dict[str, Any]], page: int = 2, refuse: tuple[str, ...] = ()):
        self.shards = shards
        self.page = page
        self.refuse = refuse
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_shards(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("ListShards", request))
        if "ListShards" in self.refuse:
            raise client_error("AccessDeniedException", operation="ListShards")
        start = int(request.get("NextToken", 0))
        answer: dict[str, Any] = {"Shards": self.shards[start:start + self.page]}
        if start + self.page < len(self.shards):
            answer["NextToken"] = str(start + self.page)
        return answer

    def describe_stream(self, **request: Any) -> dict[str, Any]:
        self.calls.append(("DescribeStream", request))
        if "DescribeStream" in self.refuse:
            raise client_error("AccessDeniedException", operation="DescribeStream")
        ids = [shard["ShardId"] for shard in self.shards]
        start = ids.index(request["ExclusiveStartShardId"]) + 1 if "ExclusiveStartShardId" in request else 0
        page = self.shards[start:start + self.page]
        return {"StreamDescription": {"Shards": page, "HasMoreShards": start + self.page < len(self.shards)}}


def test_hash_key_is_the_md5_as_a_big_endian_integer() -> None:
    """The published MD5s of "" and "a", read most significant byte first, as Kinesis places records by them."""
    assert hash_key(b"") == 0xD41D8CD98F00B204E9800998ECF8427E
    assert hash_key(b"a") == 0x0CC175B9C0F1B6A831C399E269772661


def test_a_key_goes_to_the_shard_whose_range_holds_the_md5_of_its_utf8() -> None:
    shard_map = ShardMap(even_shards(7))
    rng = random.Random(3)
    for _ in range(2000):
        key = "".join(rng.choice("abcé€𝄞0123") for _ in range(rng.randint(1, 20))).encode()
        value = int.from_bytes(hashlib.md5(key).digest(), "big")
        assert hash_key(key) == value
        shard = shard_map.shards[shard_map.index_of_key(key)]
        assert shard.start <= value <= shard.end
        assert shard_map.index_of_hash_key(value) == shard_map.index_of_key(key)


@pytest.mark.parametrize("value", [0, 1, MAX_HASH_KEY - 1, MAX_HASH_KEY])
def test_hash_keys_at_the_ends_of_the_space_and_at_each_boundary(value: int) -> None:
    shards = even_shards(4)
    shard_map = ShardMap(list(reversed(shards)))  # the order given does not matter
    assert shard_map.shards == tuple(shards)
    index = shard_map.index_of_hash_key(value)
    assert shards[index].start <= value <= shards[index].end
    for shard in shards:
        assert shard_map.shards[shard_map.index_of_hash_key(shard.start)] == shard
        assert shard_map.shards[shard_map.index_of_hash_key(shard.end)] == shard


def test_explicit_hash_key_of_a_shard_is_in_its_range() -> None:
    for shard in even_shards(5):
        assert shard.start <= int(shard.explicit_hash_key) <= shard.end


def test_list_shards_is_paged_and_closed_shards_are_left_out() -> None:
    """After a split the parent is closed (its sequence range has an end); its children take its keys."""
    parent, other = even_shards(2)
    middle = (parent.start + parent.end) // 2
    children = [Shard("shardId-000000000002", parent.start, middle), Shard("shardId-000000000003", middle + 1,
                                                                          parent.end)]
    client = ShardsClient([described(parent, closed=True), described(other)] + [described(c) for c in children])
    shard_map = load_shard_map(client, "orders")
    assert [shard.id for shard in shard_map.shards] == [children[0].id, children[1].id, other.id]
    assert [operation for operation, _ in client.calls] == ["ListShards", "ListShards"]
    assert client.calls[0][1]["StreamName"] == "orders"
    assert "StreamName" not in client.calls[1][1] and client.calls[1][1]["NextToken"] == "2"


def test_describe_stream_when_list_shards_is_not_allowed() -> None:
    client = ShardsClient([described(shard) for shard in even_shards(5)], refuse=("ListShards",))
    shard_map = load_shard_map(client, "orders")
    assert len(shard_map) == 5
    requests = [request for operation, request in client.calls if operation == "DescribeStream"]
    assert [request.get("ExclusiveStartShardId") for request in requests] == [None, "shardId-000000000001",
                                                                             "shardId-000000000003"]


def test_neither_allowed_says_so_naming_both_refusals() -> None:
    client = ShardsClient([described(shard) for shard in even_shards(2)], refuse=("ListShards", "DescribeStream"))
    with pytest.raises(ShardsNotListed) as caught:
        load_shard_map(client, "orders")
    assert str(caught.value).count("AccessDeniedException") == 2


def test_other_errors_are_raised() -> None:
    class Failing(ShardsClient):
        def list_shards(self, **request: Any) -> dict[str, Any]:
            raise client_error("ResourceNotFoundException", operation="ListShards")

    with pytest.raises(Exception, match="ResourceNotFoundException"):
        load_shard_map(Failing([]), "orders")


def test_listing_refused_is_none_when_either_call_is_allowed_or_the_stream_is_missing() -> None:
    shards = [described(shard) for shard in even_shards(2)]
    assert listing_refused(ShardsClient(shards), "orders") is None
    assert listing_refused(ShardsClient(shards, refuse=("ListShards",)), "orders") is None

    class Missing(ShardsClient):
        def list_shards(self, **request: Any) -> dict[str, Any]:
            raise client_error("ResourceNotFoundException", operation="ListShards")

    assert listing_refused(Missing([]), None) is None


def test_listing_refused_names_both_refusals_and_asks_about_a_stream_that_cannot_exist() -> None:
    client = ShardsClient([], refuse=("ListShards", "DescribeStream"))
    refused = listing_refused(client, None)
    assert refused is not None and refused.count("AccessDeniedException") == 2
    (name,) = {request["StreamName"] for _, request in client.calls}
    assert re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", name) and "probe" in name


def test_a_403_without_a_known_code_is_a_refusal() -> None:
    """Some endpoints answer a denied call with HTTP 403 and a body botocore cannot read (moto's XML)."""
    class Forbidden(ShardsClient):
        def list_shards(self, **request: Any) -> dict[str, Any]:
            raise client_error("403", status=403, operation="ListShards")

    with pytest.raises(ShardsNotListed):
        load_shard_map(Forbidden([], refuse=("DescribeStream",)), "orders")
