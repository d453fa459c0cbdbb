"""streams: create the missing Kinesis streams (as configured, or not at all) and wait until every stream takes
writes, within bounds; read each stream's largest record."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from destination_kinesis import streams
from destination_kinesis.config import parse_config
from destination_kinesis.errors import ConnectorError
from destination_kinesis.limits import MAX_RECORD_BYTES
from destination_kinesis.streams import NewStreams, StreamInfo, check_stream, ensure_streams, new_streams, stream_status
from unit_tests.fakes import FakeClock, client_error

Outcome = str | None | BaseException | dict
"""A DescribeStreamSummary outcome: a status, a whole summary, None for "does not exist", or an error to raise."""


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
        self.creates: list[dict[str, object]] = []

    @staticmethod
    def _next(script: list[Any], default: object) -> object:
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
        if isinstance(outcome, dict):
            return {"StreamDescriptionSummary": {"StreamName": StreamName, **outcome}}
        return {"StreamDescriptionSummary": {"StreamName": StreamName, "StreamStatus": outcome}}

    def create_stream(self, **request: object) -> None:
        self.creates.append(request)
        outcome = self._next(self.create.get(str(request["StreamName"]), []), None)
        if isinstance(outcome, BaseException):
            raise outcome


class Sleeps(list[float]):
    """An injected sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _created(ready: dict[str, StreamInfo]) -> list[str]:
    return [name for name, info in ready.items() if info.created]


def shards(client: FakeAdminClient) -> list[tuple[object, object]]:
    """(stream name, shard count) of each CreateStream request."""
    return [(request["StreamName"], request.get("ShardCount")) for request in client.creates]


def _fails(client: FakeAdminClient, names: list[str], failure_type: str, shard_count: int = 5,
           timeout: float = 300.0) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, names, NewStreams(shard_count=shard_count), timeout=timeout, sleep=Sleeps())
    assert caught.value.failure_type == failure_type, caught.value.message
    return caught.value


def test_existing_active_streams_are_not_created() -> None:
    """Streams already ACTIVE (or UPDATING, which takes writes) are used as they are: no create, no waiting."""
    client = FakeAdminClient({"a": ["ACTIVE"], "b": ["UPDATING"]})
    sleeps = Sleeps()
    assert _created(ensure_streams(client, ["a", "b"], NewStreams(shard_count=5), sleep=sleeps)) == []
    assert shards(client) == [] and sleeps == []
    assert client.describes == ["a", "b"]


def test_missing_stream_is_created_with_the_shard_count_and_polled_to_active() -> None:
    """A missing stream is created with shardCount shards, then described until ACTIVE."""
    client = FakeAdminClient({"new": [None, "CREATING", "CREATING", "ACTIVE"], "old": ["ACTIVE"]})
    sleeps = Sleeps()
    assert _created(ensure_streams(client, ["old", "new"], NewStreams(shard_count=3), sleep=sleeps)) == ["new"]
    assert shards(client) == [("new", 3)]
    assert client.describes == ["old", "new", "new", "new", "new"]
    assert len(sleeps) == 3


def test_poll_interval_doubles_up_to_a_cap() -> None:
    """Polling starts fast and backs off to at most 2 s between describes."""
    client = FakeAdminClient({"s": ["CREATING"] * 9 + ["ACTIVE"]})
    sleeps = Sleeps()
    ensure_streams(client, ["s"], NewStreams(shard_count=1), sleep=sleeps)
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0])


def test_duplicate_names_are_handled_once() -> None:
    """A name listed twice is created once."""
    client = FakeAdminClient({"s": [None, "ACTIVE"]})
    assert _created(ensure_streams(client, ["s", "s"], NewStreams(shard_count=2), sleep=Sleeps())) == ["s"]
    assert shards(client) == [("s", 2)]


def test_limit_exceeded_on_create_is_retried() -> None:
    """LimitExceededException (too many streams CREATING) is retried on the next poll."""
    client = FakeAdminClient({"s": [None, None, None, "CREATING", "ACTIVE"]},
                             create={"s": [client_error("LimitExceededException"), client_error(
                                 "LimitExceededException"), None]})
    assert _created(ensure_streams(client, ["s"], NewStreams(shard_count=2), sleep=Sleeps())) == ["s"]
    assert shards(client) == [("s", 2)] * 3


def test_create_refused_for_the_retry_time_is_the_shard_limit_of_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """CreateStream answering LimitExceededException for retryTimeoutSeconds (20 s here, not the 300 s the streams
    get to become ACTIVE) fails as a config error that names the account's shard limit and what to do."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    started = clock.now
    limit = client_error("LimitExceededException", operation="CreateStream",
                         message="This request would exceed the shard limit for the account")
    client = FakeAdminClient({"s": [None]}, create={"s": [limit]})
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, ["s"], NewStreams(shard_count=2), sleep=clock.sleep, retry_seconds=20)
    error = caught.value
    assert error.failure_type == "config_error"
    assert "shard limit of the account" in error.message and "'s'" in error.message
    assert "20 s (retryTimeoutSeconds)" in error.message and "shardCount" in error.message
    assert 20 <= clock.now - started <= 22


def test_a_call_failing_for_the_retry_time_is_a_transient_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttled describes are retried for retryTimeoutSeconds in a row; then the sync fails, saying why."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    throttled = client_error("LimitExceededException", operation="DescribeStreamSummary")
    client = FakeAdminClient({"s": [throttled]})
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, ["s"], NewStreams(shard_count=1), sleep=clock.sleep, retry_seconds=10)
    assert caught.value.failure_type == "transient_error"
    assert "kept failing for 10 s (retryTimeoutSeconds)" in caught.value.message
    assert "LimitExceededException" in caught.value.message and "shard limit" not in caught.value.message


def test_the_retry_time_counts_failures_in_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call that goes through starts the stream's retry time again: with a retry time of 3 s, four failures (over
    0.7 s), a success, then two failures (over 2 s) end in an ACTIVE stream, though 5.1 s pass from the first
    failure to the last."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    throttled = client_error("LimitExceededException", operation="DescribeStreamSummary")
    client = FakeAdminClient({"s": [throttled] * 4 + ["CREATING"] + [throttled] * 2 + ["ACTIVE"]})
    ready = ensure_streams(client, ["s"], NewStreams(shard_count=1), sleep=clock.sleep, retry_seconds=3)
    assert list(ready) == ["s"]


def test_created_meanwhile_by_someone_else_is_fine() -> None:
    """ResourceInUseException on create (another writer created it first) is not an error."""
    client = FakeAdminClient({"s": [None, "ACTIVE"]}, create={"s": [client_error("ResourceInUseException")]})
    ensure_streams(client, ["s"], NewStreams(shard_count=2), sleep=Sleeps())
    assert shards(client) == [("s", 2)]


def test_deleting_stream_is_created_again_once_gone() -> None:
    """A stream being deleted is waited for, then created again once it no longer exists."""
    client = FakeAdminClient({"s": ["DELETING", "DELETING", None, "CREATING", "ACTIVE"]})
    assert _created(ensure_streams(client, ["s"], NewStreams(shard_count=4), sleep=Sleeps())) == ["s"]
    assert shards(client) == [("s", 4)]


def test_throttled_and_unreachable_describes_are_retried() -> None:
    """Throttled describes and connection errors are retried on the next poll."""
    client = FakeAdminClient({"s": [client_error("LimitExceededException", operation="DescribeStreamSummary"),
                                    EndpointConnectionError(endpoint_url="https://kinesis.invalid"), "ACTIVE"]})
    ensure_streams(client, ["s"], NewStreams(shard_count=1), sleep=Sleeps())
    assert client.describes == ["s"] * 3


@pytest.mark.parametrize("shard_count", [0, -1])
def test_shard_count_below_one_with_a_missing_stream_is_a_config_error(shard_count: int) -> None:
    """A stream that must be created with shardCount < 1 fails as config_error naming the stream and shardCount."""
    client = FakeAdminClient({"existing": ["ACTIVE"], "missing_one": [None]})
    error = _fails(client, ["existing", "missing_one"], "config_error", shard_count=shard_count)
    assert "'missing_one'" in error.message and "shardCount" in error.message
    assert shards(client) == []


def test_shard_count_zero_is_fine_when_every_stream_exists() -> None:
    """0.1.5 allowed shardCount 0; it matters only when a stream must be created."""
    client = FakeAdminClient({"s": ["ACTIVE"]})
    assert _created(ensure_streams(client, ["s"], NewStreams(shard_count=0), sleep=Sleeps())) == []


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
        ensure_streams(client, ["s"], NewStreams(shard_count=1), timeout=5.0, sleep=clock.sleep)
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
        ensure_streams(client, ["s"], NewStreams(shard_count=1), timeout=5.0, sleep=clock.sleep)
    assert caught.value.failure_type == "transient_error"
    assert "'s'" in caught.value.message and "Could not connect" in caught.value.message
    assert len(client.describes) > 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "airbyte" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'s'" in warnings[0]


def test_an_endpoint_that_never_answers_fails_within_a_minute_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not one answer for NEVER_ANSWERED_SECONDS: a config error naming the endpoint, long before the 5 minutes."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    client = FakeAdminClient({"s": [EndpointConnectionError(endpoint_url="https://kinesis.invalid")]})
    client.meta = type("Meta", (), {"endpoint_url": "https://kinesis.invalid"})()  # type: ignore[attr-defined]
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, ["s"], NewStreams(shard_count=1), timeout=300.0, sleep=clock.sleep)
    assert caught.value.failure_type == "config_error"
    assert "https://kinesis.invalid has not answered any call" in caught.value.message
    assert streams.NEVER_ANSWERED_SECONDS <= clock.now - 1000.0 <= streams.NEVER_ANSWERED_SECONDS + 2


def test_once_the_endpoint_has_answered_its_outages_get_the_whole_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    client = FakeAdminClient({"s": [None, *[EndpointConnectionError(endpoint_url="https://kinesis.invalid")] * 200]})
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, ["s"], NewStreams(shard_count=1), timeout=120.0, sleep=clock.sleep)
    assert caught.value.failure_type == "transient_error" and "within 120 s" in caught.value.message


def test_stream_ready_just_before_the_deadline_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream that becomes ACTIVE on the last poll within the timeout is ready, not timed out."""
    clock = FakeClock()
    monkeypatch.setattr(streams, "time", clock)
    client = FakeAdminClient({"s": [None] + ["CREATING"] * 4 + ["ACTIVE"]})
    ready = ensure_streams(client, ["s"], NewStreams(shard_count=1), timeout=5.0, sleep=clock.sleep)
    assert _created(ready) == ["s"]


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


# --------------------------------------------------------------------------------------------------------------------
# Stream mode, tags, createStreams off, record size
# --------------------------------------------------------------------------------------------------------------------


def test_provisioned_create_request_is_0_1_5s_unless_tags_are_set() -> None:
    """By default CreateStream carries only the name and shard count, as 0.1.5 sent it; tags are added when set."""
    client = FakeAdminClient({"plain": [None, "ACTIVE"], "tagged": [None, "ACTIVE"]})
    ensure_streams(client, ["plain"], NewStreams(shard_count=2), sleep=Sleeps())
    ensure_streams(client, ["tagged"], NewStreams(shard_count=2, tags={"team": "data", "env": ""}), sleep=Sleeps())
    assert client.creates == [{"StreamName": "plain", "ShardCount": 2},
                              {"StreamName": "tagged", "ShardCount": 2, "Tags": {"team": "data", "env": ""}}]


@pytest.mark.parametrize("shard_count", [5, 0])
def test_on_demand_streams_are_created_without_shard_count(shard_count: int) -> None:
    """In on_demand mode the stream is created with StreamMode ON_DEMAND and no ShardCount (any shardCount, even 0,
    is fine), with the tags."""
    client = FakeAdminClient({"s": [None, "ACTIVE"]})
    new = NewStreams("on_demand", shard_count, {"team": "data"})
    assert _created(ensure_streams(client, ["s"], new, sleep=Sleeps())) == ["s"]
    assert client.creates == [{"StreamName": "s", "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
                               "Tags": {"team": "data"}}]


def test_with_create_streams_off_every_missing_stream_is_named_at_once() -> None:
    """createStreams off: after one describe of each stream, a config error names every missing stream (one being
    deleted counts as missing) and nothing is created."""
    client = FakeAdminClient({"here": ["ACTIVE"], "gone_a": [None], "going": ["DELETING"], "gone_b": [None]})
    with pytest.raises(ConnectorError) as caught:
        ensure_streams(client, ["here", "gone_a", "going", "gone_b"], None, sleep=Sleeps())
    assert caught.value.failure_type == "config_error"
    message = caught.value.message
    assert all(f"'{name}'" in message for name in ("gone_a", "going", "gone_b")) and "'here'" not in message
    assert "createStreams" in message
    assert client.creates == [] and client.describes == ["here", "gone_a", "going", "gone_b"]


def test_with_create_streams_off_existing_streams_are_used_and_creating_ones_awaited() -> None:
    """createStreams off: existing streams are written; one someone else is creating is waited for."""
    client = FakeAdminClient({"a": ["ACTIVE"], "b": ["CREATING", "CREATING", "ACTIVE"]})
    ready = ensure_streams(client, ["a", "b"], None, sleep=Sleeps())
    assert list(ready) == ["a", "b"] and _created(ready) == [] and client.creates == []


def test_max_record_size_is_read_from_the_summary() -> None:
    """Each stream's MaxRecordSizeInKiB becomes its max_record_bytes, read from the describe that found it writable
    (after creating it, too); without it, or with a value that is no size, it is 1 MiB."""
    client = FakeAdminClient({
        "large": [{"StreamStatus": "ACTIVE", "MaxRecordSizeInKiB": 10240}],
        "created": [None, {"StreamStatus": "CREATING"}, {"StreamStatus": "ACTIVE", "MaxRecordSizeInKiB": 2048}],
        "plain": ["ACTIVE"],
        "odd": [{"StreamStatus": "ACTIVE", "MaxRecordSizeInKiB": 0}],
    })
    ready = ensure_streams(client, ["large", "created", "plain", "odd", "large"], NewStreams(), sleep=Sleeps())
    assert ready == {"large": StreamInfo(False, 10 * 1024 * 1024), "created": StreamInfo(True, 2 * 1024 * 1024),
                     "plain": StreamInfo(False, MAX_RECORD_BYTES), "odd": StreamInfo(False, MAX_RECORD_BYTES)}
    assert MAX_RECORD_BYTES == 1024 * 1024


def test_new_streams_follow_the_config() -> None:
    """The creation settings come from streamMode, shardCount and streamTags; createStreams off means none."""
    config = parse_config({"streamMode": "on_demand", "shardCount": 2, "streamTags": [{"key": "a", "value": "b"}]})
    assert new_streams(config) == NewStreams("on_demand", 2, {"a": "b"})
    assert new_streams(parse_config({})) == NewStreams("provisioned", 5, {})
    assert new_streams(parse_config({"createStreams": False})) is None


@pytest.mark.parametrize(("outcome", "new", "words"), [
    ("ACTIVE", None, None),
    ("UPDATING", NewStreams(), None),
    (None, NewStreams(), None),
    ("DELETING", NewStreams(), None),
    (None, NewStreams("on_demand", 0), None),
    (None, NewStreams("provisioned", 0), ["'s'", "shardCount 0", "on_demand"]),
    (None, None, ["'s'", "does not exist", "createStreams"]),
    ("DELETING", None, ["'s'", "being deleted", "createStreams"]),
])
def test_check_stream_says_whether_a_sync_could_write(outcome: Outcome, new: NewStreams | None,
                                                      words: list[str] | None) -> None:
    """check_stream: None when the stream exists or the settings allow creating it, else what to fix."""
    client = FakeAdminClient({"s": [outcome]})
    problem = check_stream(client, "s", new)
    if words is None:
        assert problem is None
    else:
        assert problem is not None and all(word in problem for word in words), problem
    assert client.creates == []


def test_existing_stream_with_other_shard_count_gets_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """An existing provisioned stream whose open shards differ from shardCount: a warning saying shardCount applies
    only to created streams. Same count, on-demand streams, on-demand settings and created streams: no warning."""
    client = FakeAdminClient({
        "fewer": [{"StreamStatus": "ACTIVE", "OpenShardCount": 2}],
        "same": [{"StreamStatus": "ACTIVE", "OpenShardCount": 5}],
        "on_demand": [{"StreamStatus": "ACTIVE", "OpenShardCount": 4,
                       "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}],
        "created": [None, {"StreamStatus": "ACTIVE", "OpenShardCount": 5}],
    })
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        ensure_streams(client, ["fewer", "same", "on_demand", "created"], NewStreams(shard_count=5), sleep=Sleeps())
        ensure_streams(client, ["fewer"], NewStreams(mode="on_demand"), sleep=Sleeps())
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "'fewer' exists with 2 open shards, not the 5 of shardCount" in warning
