"""Stream options run through the installed console script: streamMode and streamTags on kinesis-local (which
supports ON_DEMAND and tags), createStreams and streamNameTemplate on kinesalite, every record read back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .connector import Sync, check_connection, connector_config, error_traces, run_write, unique
from .inputs import EMITTED_AT, loads, record, stream_state, to_lines
from .kinesis_emulator import Emulator, kinesis_client, read_stream, start_kinesalite
from .readback import assert_states_echoed, assert_synced, kinesis_stream_name

TAGS = [{"key": "team", "value": "data platform"}, {"key": "cost-center", "value": "4711"}, {"key": "empty"}]


def _records(name: str, count: int, namespace: str | None = None, first: int = 0) -> list[dict[str, Any]]:
    return [record(name, {"id": i, "source": f"{namespace}.{name}"}, EMITTED_AT + i, namespace)
            for i in range(first, first + count)]


def _summary(emulator: Emulator, name: str) -> dict[str, Any]:
    return kinesis_client(emulator.endpoint).describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def _exists(emulator: Emulator, name: str) -> bool:
    try:
        _summary(emulator, name)
    except Exception as error:  # noqa: BLE001 - only "not found" is expected here
        assert "ResourceNotFoundException" in repr(error), error
        return False
    return True


# ---------------------------------------------------------------- streamMode and streamTags (kinesis-local)


@pytest.mark.parametrize(("options", "mode", "shards"), [
    ({"shardCount": 2}, "PROVISIONED", 2),
    ({"streamMode": "on_demand", "shardCount": 0, "streamTags": TAGS}, "ON_DEMAND", None),
])
def test_stream_mode_and_tags_of_created_streams(kinesis_local: Emulator, tmp_path: Path, options: dict[str, Any],
                                                 mode: str, shards: int | None) -> None:
    """A stream the connector creates has the configured mode (provisioned with shardCount shards by default,
    on-demand when asked, whatever shardCount says) and the configured tags; the records arrive."""
    stream = unique("mode")
    messages = [*_records(stream, 12), stream_state(1, stream, cursor=12)]
    stdin = to_lines(messages)
    result = run_write(connector_config(kinesis_local.endpoint, **options), [(None, stream)], stdin, tmp_path)
    assert_synced(kinesis_local.endpoint, stdin, result)
    name = kinesis_stream_name(None, stream)
    summary = _summary(kinesis_local, name)
    assert summary["StreamModeDetails"]["StreamMode"] == mode
    if shards is not None:
        assert summary["OpenShardCount"] == shards
    tags = kinesis_client(kinesis_local.endpoint).list_tags_for_stream(StreamName=name)["Tags"]
    expected = [{"Key": tag["key"], "Value": tag.get("value", "")} for tag in options.get("streamTags", [])]
    assert sorted(tags, key=lambda t: t["Key"]) == sorted(expected, key=lambda t: t["Key"])


# ---------------------------------------------------------------- createStreams (kinesalite)


def test_create_streams_off_fails_before_reading_and_names_every_missing_stream(kinesalite: Emulator,
                                                                               sync: Sync) -> None:
    """createStreams off with two streams missing: the sync fails at its start with a config_error naming both,
    creates nothing, writes nothing (not even to the stream that exists) and acknowledges nothing."""
    present, missing_a, missing_b = unique("present"), unique("missing_a"), unique("missing_b")
    kinesis_client(kinesalite.endpoint).create_stream(StreamName=kinesis_stream_name(None, present), ShardCount=1)
    messages = [*_records(present, 3), stream_state(1, present, cursor=3), *_records(missing_a, 2)]
    result = sync([(None, present), (None, missing_a), ("shop", missing_b)], to_lines(messages),
                  createStreams=False)
    assert result.process.returncode == 1 and result.states == []
    (trace,) = error_traces(result.messages)
    assert trace["error"]["failure_type"] == "config_error"
    message = trace["error"]["message"]
    for name in (kinesis_stream_name(None, missing_a), kinesis_stream_name("shop", missing_b)):
        assert f"'{name}'" in message and not _exists(kinesalite, name)
    assert kinesis_stream_name(None, present) not in message
    assert read_stream(kinesalite.endpoint, kinesis_stream_name(None, present)) == []


def test_create_streams_off_writes_to_existing_streams(kinesalite: Emulator, sync: Sync) -> None:
    """createStreams off and every stream there: the sync writes as usual (here with a 30 s retry timeout)."""
    stream = unique("existing")
    kinesis_client(kinesalite.endpoint).create_stream(StreamName=kinesis_stream_name(None, stream), ShardCount=2)
    messages = [*_records(stream, 25), stream_state(1, stream, cursor=25)]
    stdin = to_lines(messages)
    result = sync([(None, stream)], stdin, createStreams=False, retryTimeoutSeconds=30)
    assert_synced(kinesalite.endpoint, stdin, result)


def test_the_shard_limit_of_the_account_fails_within_the_retry_time(tmp_path: Path) -> None:
    """CreateStream refused with LimitExceededException (a kinesalite whose account allows 2 shards, shardCount 3)
    is retried for retryTimeoutSeconds (3 s), not for the 5 minutes a stream gets to become ACTIVE; then the sync
    fails with a config_error naming the shard limit of the account, before it acknowledges anything."""
    stream = unique("over_limit")
    with start_kinesalite(shard_limit=2) as emulator:
        stdin = to_lines([*_records(stream, 3), stream_state(1, stream, cursor=3)])
        config = connector_config(emulator.endpoint, shardCount=3, retryTimeoutSeconds=3)
        started = time.monotonic()
        result = run_write(config, [(None, stream)], stdin, tmp_path, timeout=60)
        elapsed = time.monotonic() - started
    assert result.process.returncode == 1 and result.states == []
    (trace,) = error_traces(result.messages)
    assert trace["error"]["failure_type"] == "config_error"
    assert "shard limit of the account" in trace["error"]["message"]
    assert f"'{kinesis_stream_name(None, stream)}'" in trace["error"]["message"]
    assert 3 <= elapsed < 20, elapsed


# ---------------------------------------------------------------- streamNameTemplate (kinesalite)


def test_template_routes_streams_and_shares_where_the_template_says(kinesalite: Emulator, tmp_path: Path) -> None:
    """'<prefix>.{stream}': 'users' of two namespaces share '<prefix>.users', 'orders' gets '<prefix>.orders', the
    prefix keeps its '.', and each Kinesis stream holds exactly its Airbyte streams' records."""
    prefix = unique("prod")
    users_eu, users_us = _records("users", 4, "eu"), _records("users", 3, "us", first=100)
    orders = _records("or ders", 5)
    messages = [*users_eu, *orders, stream_state(1, "or ders"), *users_us, stream_state(2, "users", "us"),
                stream_state(3, "users", "eu")]
    config = connector_config(kinesalite.endpoint, streamNameTemplate=f"{prefix}.{{stream}}")
    result = run_write(config, [("eu", "users"), ("us", "users"), (None, "or ders")], to_lines(messages), tmp_path)
    assert result.process.returncode == 0, result.describe()
    assert_states_echoed(messages, result)
    for name, sent in ((f"{prefix}.users", users_eu + users_us), (f"{prefix}.or_ders", orders)):
        written = [loads(item["data"]) for item in read_stream(kinesalite.endpoint, name)]
        assert sorted((e["_airbyte_emitted_at"], e["_airbyte_data"]["source"]) for e in written) == sorted(
            (m["record"]["emitted_at"], m["record"]["data"]["source"]) for m in sent), name


# ---------------------------------------------------------------- check with a fixed stream name (kinesalite)


def test_check_with_a_fixed_stream_name(kinesalite: Emulator, tmp_path: Path) -> None:
    """A template naming one fixed stream: with createStreams off, check fails while the stream is missing and
    passes once it exists; with createStreams on it passes without creating the stream."""
    fixed = unique("events")
    config = connector_config(kinesalite.endpoint, streamNameTemplate=fixed, createStreams=False)
    missing = check_connection(config, tmp_path)
    assert missing.status == "FAILED"
    assert f"'{fixed}'" in missing.message and "createStreams" in missing.message

    creatable = check_connection({**config, "createStreams": True}, tmp_path)
    assert creatable.status == "SUCCEEDED", creatable.message
    assert not _exists(kinesalite, fixed)

    kinesis_client(kinesalite.endpoint).create_stream(StreamName=fixed, ShardCount=1)
    exists = check_connection(config, tmp_path)
    assert exists.status == "SUCCEEDED", exists.message


# ---------------------------------------------------------------- MaxRecordSizeInKiB (kinesis-local)


def test_each_streams_record_size_is_read(kinesis_local: Emulator, tmp_path: Path) -> None:
    """A stream created with MaxRecordSizeInKiB 2048 is reported as taking records of up to 2 MiB; one that does
    not report the setting keeps the 1 MiB default (nothing logged). Both are written."""
    large, plain = unique("large"), unique("plain")
    client = kinesis_client(kinesis_local.endpoint)
    client.create_stream(StreamName=kinesis_stream_name(None, large), ShardCount=1, MaxRecordSizeInKiB=2048)
    client.create_stream(StreamName=kinesis_stream_name(None, plain), ShardCount=1)
    messages = [*_records(large, 3), *_records(plain, 3, first=10), stream_state(1, large), stream_state(2, plain)]
    stdin = to_lines(messages)
    result = run_write(connector_config(kinesis_local.endpoint), [(None, large), (None, plain)], stdin, tmp_path)
    assert_synced(kinesis_local.endpoint, stdin, result)
    logs = "\n".join(m["log"]["message"] for m in result.messages if m["type"] == "LOG")
    assert f"Kinesis stream '{kinesis_stream_name(None, large)}' takes records of up to 2097152 bytes." in logs
    assert f"Kinesis stream '{kinesis_stream_name(None, plain)}' takes records" not in logs
