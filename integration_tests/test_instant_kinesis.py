"""The benchmarks' instant endpoint (``benchmarks/instant_kinesis.py``) puts each entry on the shard kinesalite does.

Both get streams of the same shard counts and the same PutRecords calls; the ShardIds they answer and the hash key
ranges they list must be equal. The counts cover one shard (no routing), powers of two (the first digest bytes
decide) and others, where a few digest prefixes straddle a shard boundary and take the exact division: keys with
those prefixes are searched for and sent too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from .connector import REPO_ROOT, unique
from .kinesis_emulator import Emulator, free_port, kinesis_client

INSTANT = REPO_ROOT / "benchmarks" / "instant_kinesis.py"
MAX_HASH_KEY = 2**128 - 1


@pytest.fixture(scope="module")
def instant() -> Iterator[Any]:
    """The instant endpoint in its own process (stopped by PID), and a client of it."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(INSTANT), "--port", str(port)], stdin=subprocess.DEVNULL)
    client = kinesis_client(f"http://127.0.0.1:{port}", retries={"max_attempts": 1, "mode": "standard"})
    deadline = time.monotonic() + 20
    while True:
        try:
            client.list_streams()
            break
        except EndpointConnectionError:
            assert process.poll() is None and time.monotonic() < deadline, "the instant endpoint did not start"
            time.sleep(0.05)
    yield client
    process.terminate()
    process.wait(timeout=10)


def straddling_keys(count: int, prefixes_wanted: int = 2, per_prefix: int = 2) -> list[str]:
    """Keys whose MD5 begins with a two-byte prefix that a boundary between ``count`` even shards cuts through."""
    width, span = (MAX_HASH_KEY + 1) // count, 1 << 112
    prefixes = sorted({(i * width) // span for i in range(1, count) if (i * width) % span})[:prefixes_wanted]
    keys: list[str] = []
    for prefix in prefixes:
        found, candidate = 0, 0
        while found < per_prefix:
            key = f"straddle-{prefix}-{candidate}"
            if int.from_bytes(hashlib.md5(key.encode()).digest()[:2], "big") == prefix:
                keys.append(key)
                found += 1
            candidate += 1
    return keys


@pytest.mark.parametrize("count", [1, 3, 4, 256, 1000])
def test_results_and_ranges_match_kinesalite(kinesalite: Emulator, instant: Any, count: int) -> None:
    """Random keys and keys on the prefixes that straddle a boundary; non-ASCII keys and keys with JSON escapes (a
    ``fields`` key such as ``"eu",17``); explicit hash keys at every boundary and at 0 and 2^128-1: every
    ShardId the instant endpoint answers is kinesalite's, and so is every listed hash key range."""
    direct = kinesis_client(kinesalite.endpoint)
    stream = unique("routing")
    for client in (direct, instant):
        client.create_stream(StreamName=stream, ShardCount=count)
    deadline = time.monotonic() + 30
    while direct.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    def ranges(client: Any) -> list[tuple[str, str, str]]:
        return [(shard["ShardId"], shard["HashKeyRange"]["StartingHashKey"], shard["HashKeyRange"]["EndingHashKey"])
                for shard in client.list_shards(StreamName=stream)["Shards"]]

    assert ranges(instant) == ranges(direct)
    starts = [int(start) for _, start, _ in ranges(direct)]
    explicit = sorted({0, MAX_HASH_KEY, *starts, *(start - 1 for start in starts if start)})
    plain = [unique("random") for _ in range(400)] + straddling_keys(count)
    calls = [
        [{"Data": b"x", "PartitionKey": key} for key in plain],
        [{"Data": b"x", "PartitionKey": key} for key in ['"eu",17', "café", "日本語", "a\\b"]],
        [{"Data": b"x", "PartitionKey": f"e{key}", "ExplicitHashKey": str(key)} for key in explicit][:500],
    ]
    for records in calls:
        expected = [result["ShardId"] for result in direct.put_records(StreamName=stream, Records=records)["Records"]]
        answer = instant.put_records(StreamName=stream, Records=records)
        assert answer["FailedRecordCount"] == 0
        assert [result["ShardId"] for result in answer["Records"]] == expected


@pytest.mark.parametrize("count", [3, 256])
def test_explicit_hash_keys_written_after_their_keys_are_read_without_parsing(count: int) -> None:
    """The connector writes each ExplicitHashKey right after its entry's key: those calls are answered from the
    keys cut out of the body, exactly as the parse answers them; a key written elsewhere (as boto3 writes it, before
    the partition key) sends the call to the parse."""
    spec = importlib.util.spec_from_file_location("instant_kinesis", INSTANT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shards = module.Shards(count)
    explicit = [0, MAX_HASH_KEY, *(shards.hash_key_range(i)[0] for i in range(count)), shards.width - 1]
    entries = [b'{"Data":"eA==","PartitionKey":"%s","ExplicitHashKey":"%d"}' % (unique("e").encode(), key)
               for key in explicit]
    entries += [b'{"Data":"eA==","PartitionKey":"%s"}' % key.encode() for key in straddling_keys(count)[:2]]
    body = bytearray(b'{"StreamName":"s","Records":[%s]}' % b",".join(entries))
    results = shards.results_of(body, len(body))
    assert results is not None and results == shards.parsed_results(body, len(body))
    boto_order = bytearray(b'{"StreamName":"s","Records":[{"Data":"eA==","ExplicitHashKey":"1","PartitionKey":"k"}]}')
    assert shards.results_of(boto_order, len(boto_order)) is None
