"""Small hand-written fakes: a Kinesis client that follows a script, the AWS errors, responses and entries it deals
in, and a clock. Nothing here talks to a network."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from destination_kinesis import putrecords


def client_error(code: str, status: int = 400, message: str = "injected by the test",
                 operation: str = "PutRecords") -> ClientError:
    """A botocore ClientError as boto3 raises it for an AWS error response."""
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


Response = dict[str, Any]
Step = BaseException | Callable[[list[dict[str, Any]]], Response]


def accept_all(entries: Sequence[dict[str, Any]]) -> Response:
    """A PutRecords response accepting every entry."""
    return {
        "FailedRecordCount": 0,
        "Records": [{"SequenceNumber": f"4959{i:020d}", "ShardId": "shardId-000000000000"}
                    for i in range(len(entries))],
    }


def fail_entries(failed: Callable[[int, dict[str, Any]], bool] | Iterable[int],
                 code: str = "ProvisionedThroughputExceededException", message: str = "Rate exceeded for shard",
                 failed_record_count: int | None = None) -> Callable[[list[dict[str, Any]]], Response]:
    """A response step failing the entries chosen by index (or by a predicate on index and entry).

    ``failed_record_count`` overrides the reported FailedRecordCount (some endpoints report it wrong).
    """
    chosen = failed if callable(failed) else (lambda i, _entry, s=frozenset(failed): i in s)

    def respond(entries: list[dict[str, Any]]) -> Response:
        records = []
        for i, entry in enumerate(entries):
            if chosen(i, entry):
                records.append({"ErrorCode": code, "ErrorMessage": message})
            else:
                records.append({"SequenceNumber": f"4959{i:020d}", "ShardId": "shardId-000000000000"})
        count = sum("ErrorCode" in r for r in records)
        return {"FailedRecordCount": count if failed_record_count is None else failed_record_count, "Records": records}

    return respond


def decode_entry(entry: bytes | dict[str, Any]) -> dict[str, Any]:
    """A PutRecords entry (JSON text, open as the batcher holds it or closed, or parsed) → ``{"Data": bytes,
    "PartitionKey": str}`` plus its ``ExplicitHashKey`` when it has one, as boto3 takes it."""
    parsed = entry if isinstance(entry, dict) else json.loads(entry if entry.endswith(b"}") else entry + b"}")
    return {**parsed, "Data": base64.b64decode(parsed["Data"])}


def encode_entry(data: bytes, partition_key: str) -> bytes:
    """``{"Data": data, "PartitionKey": partition_key`` as the open JSON text the batcher holds."""
    return putrecords.open_entry(data, json.dumps(partition_key).encode())


class FakeKinesisClient:
    """A fake of boto3's Kinesis client for the data path: ``put_records`` follows a script of steps.

    Call ``i`` takes ``script[i]``: an exception to raise, or a function of the entries returning the response. Once
    the script is used up (or for a stream listed in ``default`` with its own step) every call accepts everything.
    Each call is recorded as (stream name, a copy of its entries). When ``gate`` is given, every call waits for it
    first, which lets a test hold calls in flight; ``max_concurrent`` is the most calls seen inside at once.
    ``log``, when given, gets ("accepted", data) for every entry a response accepted, before the call returns.
    """

    def __init__(self, script: Sequence[Step] = (), gate: threading.Event | None = None,
                 log: list[tuple[str, Any]] | None = None, default: Step = accept_all):
        self.script = list(script)
        self.gate = gate
        self.log = log
        self.default = default
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self.entered = threading.Semaphore(0)
        self._lock = threading.Lock()

    def __call__(self, stream_name: str, records: bytes, count: int,
                 results: bool = False) -> list[dict[str, Any]] | None:
        """The sender's view (a :data:`destination_kinesis.sender.Put`): the Records array's content in; None when
        every entry was accepted and no results are asked for, else one result per entry."""
        entries = [decode_entry(entry) for entry in json.loads(b"[" + records + b"]")]
        assert len(entries) == count
        answer = self.put_records(StreamName=stream_name, Records=entries)["Records"]
        if not results and all(result.get("SequenceNumber") for result in answer) and len(answer) == count:
            return None
        return answer

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> Response:  # noqa: N803 (boto3 names)
        with self._lock:
            step = self.script[len(self.calls)] if len(self.calls) < len(self.script) else self.default
            self.calls.append((StreamName, list(Records)))
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        self.entered.release()
        try:
            if self.gate is not None:
                assert self.gate.wait(10), "the test never opened the gate"
            if isinstance(step, BaseException):
                raise step
            response = step(Records)
            if self.log is not None:
                with self._lock:
                    for entry, result in zip(Records, response["Records"], strict=False):
                        if result.get("SequenceNumber"):
                            self.log.append(("accepted", entry["Data"]))
            return response
        finally:
            with self._lock:
                self.concurrent -= 1

    @property
    def sent_data(self) -> list[bytes]:
        """The Data of every entry of every call, in call order (resent entries appear again)."""
        return [entry["Data"] for _, entries in self.calls for entry in entries]


class FakeSyncClient(FakeKinesisClient):
    """The fake data-path client plus the admin calls that check and ensure_streams make: every stream in
    ``existing`` is ACTIVE, others do not exist until created."""

    def __init__(self, list_error: BaseException | None = None, existing: tuple[str, ...] = ()):
        super().__init__()
        self.list_error = list_error
        self.existing = set(existing)
        self.listed: list[dict[str, Any]] = []
        self.created: list[tuple[str, int]] = []

    def list_streams(self, **kwargs: Any) -> dict[str, Any]:
        self.listed.append(kwargs)
        if self.list_error is not None:
            raise self.list_error
        return {"StreamNames": [], "HasMoreStreams": False}

    def describe_stream_summary(self, *, StreamName: str) -> dict[str, Any]:  # noqa: N803 (boto3 names)
        if StreamName not in self.existing:
            raise client_error("ResourceNotFoundException", operation="DescribeStreamSummary")
        return {"StreamDescriptionSummary": {"StreamStatus": "ACTIVE"}}

    def create_stream(self, *, StreamName: str, ShardCount: int) -> None:  # noqa: N803 (boto3 names)
        self.created.append((StreamName, ShardCount))
        self.existing.add(StreamName)

    def list_shards(self, *, StreamName: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803 (boto3 names)
        """Every stream has one open shard."""
        return {"Shards": [{"ShardId": "shardId-000000000000", "SequenceNumberRange": {"StartingSequenceNumber": "1"},
                            "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)}}]}


class FakeClock:
    """Stands in for the ``time`` module of a package module: monotonic() is ``now``; sleep() moves it on at once
    and records the wait."""

    def __init__(self, now: float = 1000.0):
        self.now = now
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
