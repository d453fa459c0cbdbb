"""streams: create the missing Kinesis streams and wait until every stream takes writes, within bounds."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import pytest
from botocore.exceptions import EndpointConnectionError

from destination_kinesis import streams
from destination_kinesis.errors import ConnectorError
from destination_kinesis.streams import ensure_streams, stream_status
from unit_tests.conftest import FakeClock, client_error

Outcome = str | None | BaseException
"""A DescribeStreamSummary outcome: a status, None for "does not exist", or an error to raise."""


class FakeAdminClient:
    """A fake of boto3's Kinesis client for stream admin: scripted DescribeStreamSummary and CreateStream.

    ``describe[name]`` is the sequence of outcomes of that stream's describes (the last repeats); ``create[name]``
    the outcomes of its creates (None for success; the last repeats; success when not given).
    """

    def __init__(self, describe: dict[str, Sequence[Outcome]], create: dict[str, Sequence[BaseException | None]]
                 | None = None):
        self.describe = {name: list(outcomes) for name, outcomes in describe.items()}
        self.create = {name: list(outcomes) for name, outcomes in (create or {}).items()}
        self.describes: list[str] = []
        self.creates: list[tuple[str, int]] = []

    @staticmethod
    def _next(script: list, default: object) -> object:  # type: ignore[type-arg]
        if not script:
            return default
        return script.pop(0) if len(script) > 1 else script[0]

    def describe_stream_summary(self, *, StreamName: str) -> dict:  # noqa: N803 (boto3 names)
        self.describes.append(StreamName)
        outcome = self._next(self.describe[StreamName], None)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is None:
            raise client_error("ResourceNotFoundException", message=f"Stream {StreamName} not found",
                               operation="DescribeStreamSummary")
        return {"StreamDescriptionSummary": {"StreamName": StreamName, "StreamStatus": outcome}}

    def create_stream(self, *, StreamName: str, ShardCount: int) -> None:  # noqa: N803 (boto3 names)
        self.creates.append((StreamName, ShardCount))
        outcome = self._next(self.create.get(StreamName, []), None)
        if isinstance(outcome, BaseException):
            raise outcome


class Sleeps(list[float]):
    """An injected sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _fails(client: FakeAdminClient, names: list[str], failure_type: str, shard_count: int = 5,
           timeout: float = 300.0) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, names, shard_count, timeout=timeout, sleep=Sleeps())
    assert caught.value.failure_type == failure_type, caught.value.message
    return caught.value


def test_existing_active_streams_are_not_created() -> None:
    """Streams already ACTIVE (or UPDATING, which takes writes) are used as they are: no create, no waiting."""
    client = FakeAdminClient({"a": ["ACTIVE"], "b": ["UPDATING"]})
    sleeps = Sleeps()
    assert ensure_streams(client, ["a", "b"], 5, sleep=sleeps) == []
    assert client.creates == [] and sleeps == []
    assert client.describes == ["a", "b"]


def test_missing_stream_is_created_with_the_shard_count_and_polled_to_active() -> None:
    """A missing stream is created with shardCount shards, then described until ACTIVE."""
    client = FakeAdminClient({"new": [None, "CREATING", "CREATING", "ACTIVE"], "old": ["ACTIVE"]})
    sleeps = Sleeps()
    assert ensure_streams(client, ["old", "new"], 3, sleep=sleeps) == ["new"]
    assert client.creates == [("new", 3)]
    assert client.describes == ["old", "new", "new", "new", "new"]
    assert len(sleeps) == 3


def test_poll_interval_doubles_up_to_a_cap() -> None:
    """Polling starts fast and backs off to at most 2 s between describes."""
    client = FakeAdminClient({"s": ["CREATING"] * 9 + ["ACTIVE"]})
    sleeps = Sleeps()
    ensure_streams(client, ["s"], 1, sleep=sleeps)
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0])


def test_duplicate_names_are_handled_once() -> None:
    """A name listed twice is created once."""
    client = FakeAdminClient({"s": [None, "ACTIVE"]})
    assert ensure_streams(client, ["s", "s"], 2, sleep=Sleeps()) == ["s"]
    assert client.creates == [("s", 2)]


def test_limit_exceeded_on_create_is_retried() -> None:
    """LimitExceededException (too many streams CREATING) is retried on the next poll."""
    client = FakeAdminClient({"s": [None, None, None, "CREATING", "ACTIVE"]},
                             create={"s": [client_error("LimitExceededException"), client_error(
                                 "LimitExceededException"), None]})
    assert ensure_streams(client, ["s"], 2, sleep=Sleeps()) == ["s"]
    assert client.creates == [("s", 2)] * 3


def test_created_meanwhile_by_someone_else_is_fine() -> None:
    """ResourceInUseException on create (another writer created it first) is not an error."""
    client = FakeAdminClient({"s": [None, "ACTIVE"]}, create={"s": [client_error("ResourceInUseException")]})
    ensure_streams(client, ["s"], 2, sleep=Sleeps())
    assert client.creates == [("s", 2)]


def test_deleting_stream_is_created_again_once_gone() -> None:
    """A stream being deleted is waited for, then created again once it no longer exists."""
    client = FakeAdminClient({"s": ["DELETING", "DELETING", None, "CREATING", "ACTIVE"]})
    assert ensure_streams(client, ["s"], 4, sleep=Sleeps()) == ["s"]
    assert client.creates == [("s", 4)]


def test_throttled_and_unreachable_describes_are_retried() -> None:
    """Throttled describes and connection errors are retried on the next poll."""
    client = FakeAdminClient({"s": [client_error("LimitExceededException", operation="DescribeStreamSummary"),
                                    EndpointConnectionError(endpoint_url="https://kinesis.invalid"), "ACTIVE"]})
    ensure_streams(client, ["s"], 1, sleep=Sleeps())
    assert client.describes == ["s"] * 3


@pytest.mark.parametrize("shard_count", [0, -1])
def test_shard_count_below_one_with_a_missing_stream_is_a_config_error(shard_count: int) -> None:
    """A stream that must be created with shardCount < 1 fails as config_error naming the stream and shardCount."""
    client = FakeAdminClient({"existing": ["ACTIVE"], "missing_one": [None]})
    error = _fails(client, ["existing", "missing_one"], "config_error", shard_count=shard_count)
    assert "'missing_one'" in error.message and "shardCount" in error.message
    assert client.creates == []


def test_shard_count_zero_is_fine_when_every_stream_exists() -> None:
    """0.1.5 allowed shardCount 0; it matters only when a stream must be created."""
    assert ensure_streams(FakeAdminClient({"s": ["ACTIVE"]}), ["s"], 0, sleep=Sleeps()) == []


def test_timeout_is_a_transient_error_listing_the_streams_not_ready() -> None:
    """Streams still not writable at the timeout fail as transient_error listing each one with its status."""
    client = FakeAdminClient({"ready": ["ACTIVE"], "slow": [None, "CREATING"], "going": ["DELETING"]})
    error = _fails(client, ["ready", "slow", "going"], "transient_error", timeout=0.0)
    assert re.search(r"'slow'\W+CREATING", error.message) and re.search(r"'going'\W+DELETING", error.message)
    assert "'ready'" not in error.message


def test_timeout_is_reached_after_polling_within_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a fake clock: polling goes on while the next poll still ends before the deadline, then gives up."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    client = FakeAdminClient({"s": ["CREATING"]})
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, ["s"], 1, timeout=5.0, sleep=clock.sleep)
    assert caught.value.failure_type == "transient_error"
    assert "within 5 s" in caught.value.message and re.search(r"'s'\W+CREATING", caught.value.message)
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])  # one more 2 s poll would pass 5 s
    assert len(client.describes) == 6


def test_unreachable_endpoint_until_the_timeout_names_the_real_problem(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """An endpoint that stays unreachable fails as transient_error saying it could not connect (not just "not
    ready"), and the problem is logged once, not at every poll."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    client = FakeAdminClient({"s": [EndpointConnectionError(endpoint_url="https://kinesis.invalid")]})
    with caplog.at_level(logging.WARNING, logger="airbyte"), pytest.raises(ConnectorError) as caught:
        ensure_streams(client, ["s"], 1, timeout=5.0, sleep=clock.sleep)
    assert caught.value.failure_type == "transient_error"
    assert "'s'" in caught.value.message and "Could not connect" in caught.value.message
    assert len(client.describes) > 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "airbyte" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'s'" in warnings[0]


def test_stream_ready_just_before_the_deadline_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that becomes ACTIVE on the last poll within the timeout is ready, not timed out."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    client = FakeAdminClient({"s": [None] + ["CREATING"] * 4 + ["ACTIVE"]})
    assert ensure_streams(client, ["s"], 1, timeout=5.0, sleep=clock.sleep) == ["s"]


@pytest.mark.parametrize(("code", "failure_type"), [("AccessDeniedException", "config_error"),
                                                    ("UnrecognizedClientException", "config_error"),
                                                    ("InvalidArgumentException", "system_error")])
def test_refused_describe_fails_at_once(code: str, failure_type: str) -> None:
    """A describe refused for a reason retrying cannot fix fails at once, naming the stream."""
    client = FakeAdminClient({"s": [client_error(code, operation="DescribeStreamSummary")]})
    error = _fails(client, ["s"], failure_type)
    assert "'s'" in error.message and code in error.message
    assert client.describes == ["s"]


def test_refused_create_fails_at_once() -> None:
    """AccessDenied on CreateStream fails as config_error naming the stream."""
    client = FakeAdminClient({"s": [None]}, create={"s": [client_error("AccessDeniedException")]})
    error = _fails(client, ["s"], "config_error")
    assert "'s'" in error.message and "AccessDeniedException" in error.message


def test_stream_status() -> None:
    """stream_status gives the status, None for a missing stream, and raises any other error."""
    client = FakeAdminClient({"a": ["CREATING"], "gone": [None], "denied": [client_error("AccessDeniedException")]})
    assert stream_status(client, "a") == "CREATING"
    assert stream_status(client, "gone") is None
    with pytest.raises(Exception, match="AccessDenied"):
        stream_status(client, "denied")
