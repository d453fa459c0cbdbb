"""A stand-in Kinesis endpoint that accepts every PutRecords entry at once: a benchmark sees the client's ceiling.

usage: python benchmarks/instant_kinesis.py --port PORT [--host 127.0.0.1]

It speaks the Kinesis JSON 1.1 protocol over HTTP/1.1 keep-alive (one asyncio loop, any number of connections) and
answers what a producer needs: CreateStream (the stream is ACTIVE at once, with the shards asked for),
DescribeStreamSummary (no MaxRecordSizeInKiB, as on streams without large-record support), DescribeStream,
ListStreams, ListShards and PutRecords. A PutRecords of n entries gets n successes from a prebuilt answer; entries
are counted by their ``"PartitionKey"`` keys (Data is base64, so that text occurs nowhere else) and more than 500 are
refused, as Kinesis does. ``GET /stats`` returns ``{"records": {stream: entries accepted}, "requests": n}`` so
the benchmark can check that every record arrived. Signatures are not checked; nothing is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

MAX_ENTRIES = 500
ACCOUNT = "000000000000"
REGION = "us-east-1"
MAX_HASH_KEY = 2**128 - 1
_SEQUENCE_BASE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898


class Endpoint:
    """The state behind the protocol: streams created so far, and what PutRecords accepted."""

    def __init__(self) -> None:
        self.streams: dict[str, tuple[int, float]] = {}  # name -> (shard count, creation time)
        self.records: dict[str, int] = {}
        self.requests = 0
        self._answers: dict[int, bytes] = {}

    def put_records(self, body: bytearray, end: int) -> tuple[int, bytes]:
        entries = body.count(b'"PartitionKey"', 0, end)
        if entries > MAX_ENTRIES:
            return 400, _error("ValidationException", f"{entries} records in one PutRecords; at most 500")
        name = _stream_name(body, end)
        if name not in self.streams:
            return 400, _error("ResourceNotFoundException", f"Stream {name} under account {ACCOUNT} not found.")
        self.records[name] = self.records.get(name, 0) + entries
        self.requests += 1
        answer = self._answers.get(entries)
        if answer is None:
            results = ",".join(f'{{"SequenceNumber":"{_SEQUENCE_BASE + i}","ShardId":"shardId-000000000000"}}'
                               for i in range(entries))
            answer = self._answers[entries] = f'{{"FailedRecordCount":0,"Records":[{results}]}}'.encode()
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
            self.streams[name] = (int(request.get("ShardCount") or 1), time.time())
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
                           EncryptionType="NONE", OpenShardCount=shards, ConsumerCount=0)
        return summary

    def _shards(self, name: str) -> list[dict[str, Any]]:
        count = self.streams[name][0]
        width = (MAX_HASH_KEY + 1) // count
        return [{"ShardId": f"shardId-{i:012d}",
                 "HashKeyRange": {"StartingHashKey": str(i * width),
                                  "EndingHashKey": str(MAX_HASH_KEY if i == count - 1 else (i + 1) * width - 1)},
                 "SequenceNumberRange": {"StartingSequenceNumber": str(_SEQUENCE_BASE)}} for i in range(count)]

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
