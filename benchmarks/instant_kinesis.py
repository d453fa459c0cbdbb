"""A stand-in Kinesis endpoint that accepts every PutRecords entry at once: a benchmark sees the client's ceiling.

usage: python benchmarks/instant_kinesis.py --port PORT [--host 127.0.0.1]

It speaks the Kinesis JSON 1.1 protocol over HTTP/1.1 keep-alive (one asyncio loop, any number of connections) and
answers what a producer needs: CreateStream (the stream is ACTIVE at once, with the shards asked for),
DescribeStreamSummary (no MaxRecordSizeInKiB, as on streams without large-record support), DescribeStream,
ListStreams, ListShards and PutRecords. A PutRecords of n entries gets n successes; more than 500 are refused, as
Kinesis does. Each success names the shard Kinesis would have put the entry on: a stream's shards split the hash key
space evenly, as CreateStream does (the ranges ListShards and DescribeStream list), and an entry goes to the one
holding the 128-bit big-endian MD5 of its partition key in UTF-8, or its ExplicitHashKey. ``GET /stats`` returns
``{"records": {stream: entries accepted}, "requests": n}`` so the benchmark can check that every record arrived.
Signatures are not checked; nothing is stored; sequence numbers are not unique.

Speed: the endpoint must stay far faster than the client it measures. A one-shard stream needs no routing (a
prebuilt answer per entry count, entries counted by their ``"PartitionKey"``: Data is base64, so that text occurs
nowhere else). Otherwise the keys are cut from the body by one regular expression and hashed by CPython's own MD5
(about half the cost of OpenSSL's for keys this short); the first byte of each digest picks the shard's prebuilt
result from a table, or its first two bytes where a shard boundary falls within that byte (more than 256 shards, or a
count that is not a power of two), and only the prefixes a boundary cuts take the 128-bit division. An
ExplicitHashKey right after its entry's key (as the connector writes it) is cut out by the same expression, its shard
remembered per value (a producer that picks shards reuses each shard's starting key). A call with an ExplicitHashKey
elsewhere, or with a key holding a JSON escape, is parsed as JSON instead: exact for any key, several times slower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

try:  # CPython's built-in MD5: for 36-byte keys about twice as fast as hashlib's OpenSSL one
    from _md5 import md5
except ImportError:  # an interpreter built without it
    from hashlib import md5

MAX_ENTRIES = 500
ACCOUNT = "000000000000"
REGION = "us-east-1"
MAX_HASH_KEY = 2**128 - 1
_SEQUENCE_BASE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
_PREFIX_BITS = 16
_PARTITION_KEY = re.compile(rb'"PartitionKey"\s*:\s*"([^"]*)"')
_KEYS = re.compile(rb'"PartitionKey"\s*:\s*"([^"]*)"(?:\s*,\s*"ExplicitHashKey"\s*:\s*"(\d+)")?')


class Shards:
    """A stream's ``count`` shards, splitting the hash key space evenly, and each one's result for PutRecords."""

    def __init__(self, count: int):
        self.count = count
        self.width = (MAX_HASH_KEY + 1) // count
        self.results = [b'{"SequenceNumber":"%d","ShardId":"%s"}' % (_SEQUENCE_BASE, shard_id(i).encode())
                        for i in range(count)]
        # A digest's first byte, else its first two, decide its shard when no boundary falls inside that prefix.
        self.by_byte: list[bytes | None] = [None] * 256
        self.by_prefix: dict[bytes, bytes] = {}
        self.by_explicit: dict[bytes, bytes] = {}  # an ExplicitHashKey's result, as the text it was sent as
        for byte in range(256 if count > 1 else 0):
            shard = self._only_shard(byte, 8)
            if shard is not None:
                self.by_byte[byte] = self.results[shard]
                continue
            for prefix in range(byte << 8, (byte + 1) << 8):
                shard = self._only_shard(prefix, 16)
                if shard is not None:
                    self.by_prefix[prefix.to_bytes(2, "big")] = self.results[shard]

    def _only_shard(self, prefix: int, bits: int) -> int | None:
        """The shard holding every hash key that begins with these ``bits`` bits, or None when a boundary cuts it."""
        span = 1 << (128 - bits)
        first, last = self.index(prefix * span), self.index((prefix + 1) * span - 1)
        return first if first == last else None

    def index(self, hash_key: int) -> int:
        return min(hash_key // self.width, self.count - 1)

    def hash_key_range(self, index: int) -> tuple[int, int]:
        return index * self.width, MAX_HASH_KEY if index == self.count - 1 else (index + 1) * self.width - 1

    def results_of(self, body: bytearray, end: int) -> list[bytes] | None:
        """Each entry's result, in order; None when the body must be parsed as JSON (see the module docstring)."""
        if body.find(b'"ExplicitHashKey"', 0, end) >= 0:
            return self._explicit_results(body, end)
        keys = _PARTITION_KEY.findall(body, 0, end)
        # A key with an escape holds a backslash before the quote the expression stops at.
        if b"\\" in b"".join(keys):
            return None
        by_byte, by_prefix, exact = self.by_byte, self.by_prefix, self.exact
        return [by_byte[digest[0]] or by_prefix.get(digest[:2]) or exact(digest)
                for digest in [md5(key).digest() for key in keys]]

    def _explicit_results(self, body: bytearray, end: int) -> list[bytes] | None:
        """:meth:`results_of` for a body with ExplicitHashKeys: None unless each one follows its entry's key."""
        pairs = _KEYS.findall(body, 0, end)
        explicit = [hash_key for _, hash_key in pairs if hash_key]
        if len(explicit) != body.count(b'"ExplicitHashKey"', 0, end) or any(b"\\" in key for key, _ in pairs):
            return None
        by_explicit, results = self.by_explicit, []
        for key, hash_key in pairs:
            if not hash_key:
                digest = md5(key).digest()
                results.append(self.by_byte[digest[0]] or self.by_prefix.get(digest[:2]) or self.exact(digest))
                continue
            result = by_explicit.get(hash_key)
            if result is None:
                result = by_explicit[hash_key] = self.results[self.index(int(hash_key))]
            results.append(result)
        return results

    def exact(self, digest: bytes) -> bytes:
        return self.results[self.index(int.from_bytes(digest, "big"))]

    def parsed_results(self, body: bytearray, end: int) -> list[bytes]:
        """Each entry's result from the parsed body: its ExplicitHashKey, else the MD5 of its key in UTF-8."""
        results = []
        for entry in json.loads(bytes(body[:end])).get("Records") or []:
            explicit = entry.get("ExplicitHashKey")
            if explicit is not None:
                results.append(self.results[self.index(int(explicit))])
            else:
                results.append(self.exact(md5(str(entry["PartitionKey"]).encode()).digest()))
        return results


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


class Endpoint:
    """The state behind the protocol: streams created so far, and what PutRecords accepted."""

    def __init__(self) -> None:
        self.streams: dict[str, tuple[Shards, float]] = {}  # name -> (its shards, creation time)
        self.records: dict[str, int] = {}
        self.requests = 0
        self._answers: dict[int, bytes] = {}

    def put_records(self, body: bytearray, end: int) -> tuple[int, bytes]:
        name = _stream_name(body, end)
        if name not in self.streams:
            return 400, _error("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.")
        shards = self.streams[name][0]
        results = None
        if shards.count == 1:
            entries = body.count(b'"PartitionKey"', 0, end)
        else:
            results = shards.results_of(body, end)
            if results is None:
                results = shards.parsed_results(body, end)
            entries = len(results)
        if entries > MAX_ENTRIES:
            return 400, _error("ValidationException", f"{entries} records in one PutRecords; at most 500")
        self.records[name] = self.records.get(name, 0) + entries
        self.requests += 1
        if results is not None:
            return 200, b'{"FailedRecordCount":0,"Records":[%s]}' % b",".join(results)
        answer = self._answers.get(entries)
        if answer is None:
            answer = self._answers[entries] = b'{"FailedRecordCount":0,"Records":[%s]}' % b",".join(
                [shards.results[0]] * entries)
        return 200, answer

    def control(self, operation: str, request: dict[str, Any]) -> tuple[int, bytes]:
        """Every operation but PutRecords: rare, so plain json is fine."""
        name = request.get("StreamName", "")
        if operation == "ListStreams":
            names = sorted(self.streams)
            return 200, _json({"StreamNames": names, "HasMoreStreams": False,
                               "StreamSummaries": [self._summary(n, brief=True) for n in names]})
        if operation == "CreateStream":
            if name in self.streams:
                return 400, _error("ResourceInUseException", f"Stream {name} under account {ACCOUNT} already exists.")
            self.streams[name] = (Shards(int(request.get("ShardCount") or 1)), time.time())
            return 200, b"{}"
        if name not in self.streams:
            return 400, _error("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.")
        if operation == "DescribeStreamSummary":
            return 200, _json({"StreamDescriptionSummary": self._summary(name)})
        if operation == "DescribeStream":
            return 200, _json({"StreamDescription": {**self._summary(name, brief=True), "Shards": self._shards(name),
                                                     "HasMoreShards": False, "RetentionPeriodHours": 24,
                                                     "EnhancedMonitoring": [], "EncryptionType": "NONE"}})
        if operation == "ListShards":
            return 200, _json({"Shards": self._shards(name)})
        return 400, _error("UnknownOperationException", f"{operation} is not offered by this stand-in")

    def _summary(self, name: str, brief: bool = False) -> dict[str, Any]:
        shards, created = self.streams[name]
        summary = {"StreamName": name, "StreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}",
                   "StreamStatus": "ACTIVE", "StreamModeDetails": {"StreamMode": "PROVISIONED"},
                   "StreamCreationTimestamp": created}
        if not brief:
            summary.update(RetentionPeriodHours=24, EnhancedMonitoring=[{"ShardLevelMetrics": []}],
                           EncryptionType="NONE", OpenShardCount=shards.count, ConsumerCount=0)
        return summary

    def _shards(self, name: str) -> list[dict[str, Any]]:
        shards = self.streams[name][0]
        return [{"ShardId": shard_id(i),
                 "HashKeyRange": {"StartingHashKey": str(start), "EndingHashKey": str(end)},
                 "SequenceNumberRange": {"StartingSequenceNumber": str(_SEQUENCE_BASE)}}
                for i, (start, end) in enumerate(map(shards.hash_key_range, range(shards.count)))]

    def stats(self) -> bytes:
        return _json({"records": self.records, "requests": self.requests})


def _stream_name(body: bytearray, end: int) -> str:
    key = body.find(b'"StreamName"', 0, end)
    if key < 0:
        return ""
    start = body.find(b'"', key + 12, end) + 1
    return body[start:body.find(b'"', start, end)].decode()


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error(code: str, message: str) -> bytes:
    return _json({"__type": code, "message": message})


def _header(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` (lower case) in the lower-cased header block ``head``."""
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start:end if end >= 0 else len(head)].strip()


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: requests with a Content-Length body, answered in order."""

    def __init__(self, endpoint: Endpoint):
        self._endpoint = endpoint
        self._buffer = bytearray()
        self._head: bytes | None = None
        self._length = 0
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while True:
            if self._head is None:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._head = bytes(self._buffer[:end]).lower()
                del self._buffer[:end + 4]
                length = _header(self._head, b"content-length")
                if length is None and _header(self._head, b"transfer-encoding") is not None:
                    self._transport.write(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\n\r\n")
                    self._transport.close()
                    return
                self._length = int(length or 0)
                if _header(self._head, b"expect") == b"100-continue":
                    self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if len(self._buffer) < self._length:
                return
            status, body = self._answer(self._head)
            del self._buffer[:self._length]
            self._transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
                                  b"Content-Length: %d\r\n\r\n%s" % (status, b"OK" if status == 200 else b"Bad Request",
                                                                     len(body), body))
            if _header(self._head, b"connection") == b"close":
                self._transport.close()
                return
            self._head = None

    def _answer(self, head: bytes) -> tuple[int, bytes]:
        if head.startswith(b"get /stats "):
            return 200, self._endpoint.stats()
        target = _header(head, b"x-amz-target") or b""
        operation = target.partition(b".")[2]
        if operation == b"putrecords":
            return self._endpoint.put_records(self._buffer, self._length)
        try:
            request = json.loads(bytes(self._buffer[:self._length]) or b"{}")
        except ValueError:
            return 400, _error("SerializationException", "the request body is not JSON")
        canonical = _OPERATIONS.get(operation, operation.decode())
        return self._endpoint.control(canonical, request)


_OPERATIONS = {op.lower().encode(): op for op in
               ("ListStreams", "CreateStream", "DescribeStreamSummary", "DescribeStream", "ListShards")}


async def serve(host: str, port: int) -> None:
    endpoint = Endpoint()
    server = await asyncio.get_running_loop().create_server(lambda: Connection(endpoint), host, port, backlog=128)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
