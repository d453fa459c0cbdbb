"""Writing at Kinesis's per-shard limits: the real console script writes through the fault proxy, which enforces AWS's
limits (1,000 records and 1 MiB per second per shard, one second of burst) in front of kinesalite.

Every state is checked the moment it is printed against what the proxy saw Kinesis accept, and every record is read
back afterwards. What these tests pin is behaviour, not speed: the connector sends no faster than the shards take
(few entries throttled), leaves the share of the shards it is told to leave, names a hot shard and its key setting,
and loses nothing through a reshard made while it writes.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from .connector import (
    RunningConnector,
    SyncResult,
    aws_environment,
    beside,
    check_connection,
    configured_stream,
    connector_config,
    error_traces,
    run_write,
    unique,
    write_args,
)
from .fault_proxy import FaultPlan, FaultProxy
from .inputs import Message, loads, numbered_messages, record, stream_state, to_lines
from .kinesis_emulator import Emulator, enforce_iam, kinesis_client, split_first_shard
from .kpl import read_user_records
from .readback import (
    LiveCoverage,
    ReadBack,
    assert_records_written,
    assert_states_echoed,
    input_records,
    kinesis_stream_name,
    read_back,
)
from .shard_limits import ShardLimits, StreamCounts

AWS_LIMITS = ShardLimits()  # 1,000 records and 1 MiB per second per shard, one second of burst


@dataclass
class PacedRun:
    messages: list[Message]
    result: SyncResult
    counts: StreamCounts
    seconds: float
    written: ReadBack
    early: list[tuple[Any, list[Any]]]

    @property
    def throttled_share(self) -> float:
        return self.counts.total("throttled") / max(1, self.counts.total("entries"))

    def logs(self, level: str | None = None) -> list[str]:
        return [m["log"]["message"] for m in self.result.messages
                if m["type"] == "LOG" and (level is None or m["log"]["level"] == level)]

    def assert_complete(self) -> None:
        """Exit 0, every record in Kinesis, every state out, in order, and none before its records."""
        assert self.result.process.returncode == 0, self.result.describe()
        assert not error_traces(self.result.messages), self.result.describe()
        missing = self.written.missing(input_records(self.messages))
        assert not missing, f"{len(missing)} records never reached Kinesis, e.g. {missing[:5]}"
        assert not self.early, f"states printed before their records were in Kinesis: {self.early}"
        assert_states_echoed(self.messages, self.result)


def paced_sync(kinesalite: Emulator, tmp_path: Path, messages: list[Message], stream: str, shards: int,
               during: Any = None, partition_key_is_ab_id: bool = True, **config: Any) -> PacedRun:
    """Create the Kinesis stream of Airbyte stream ``stream`` with ``shards`` shards, write ``messages`` to it through
    a proxy enforcing AWS's limits, calling ``during(kinesis_name)`` on a thread once the sync runs; read everything
    back."""
    name = kinesis_stream_name(None, stream)
    client = kinesis_client(kinesalite.endpoint)
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    live = LiveCoverage(messages)
    started = time.monotonic()
    with FaultProxy(kinesalite.endpoint, FaultPlan(seed=1, shard_limits=AWS_LIMITS), live.on_written).start() as proxy:
        args = write_args(tmp_path, proxy.endpoint, [configured_stream(stream)], **config)
        with beside(functools.partial(during, name) if during else None):
            result = RunningConnector(args, to_lines(messages), on_message=live.on_message).wait(180)
    seconds = time.monotonic() - started
    assert proxy.limiter is not None
    counts = proxy.limiter.counts()[name]
    records = len(input_records(messages))
    print(f"\n{name}: {records} records in {seconds:.1f} s ({records / seconds:,.0f}/s), {counts.calls} calls, "
          f"{counts.total('entries')} entries sent, {counts.total('throttled')} throttled; per shard: "
          + ", ".join(f"{shard_id} {shard.accepted}" for shard_id, shard in counts.shards.items()))
    return PacedRun(messages, result, counts, seconds,
                    read_back(kinesalite.endpoint, messages, partition_key_is_ab_id=partition_key_is_ab_id),
                    list(live.early))


def test_random_keys_fill_both_shards_almost_without_throttling(kinesalite: Emulator, tmp_path: Path) -> None:
    """6,000 records on 2 shards (2,000 records/s at most): the connector keeps within the limits, so almost no
    entry comes back throttled, and it cannot be faster than the shards allow."""
    stream = unique("paced")
    messages = numbered_messages([(None, stream)], 6000, state_every=500)
    run = paced_sync(kinesalite, tmp_path, messages, stream, shards=2, bufferSize=500)
    run.assert_complete()
    assert run.throttled_share <= 0.03, run.counts
    shards = run.counts.shards
    assert len(shards) == 2 and min(s.accepted for s in shards.values()) >= 6000 * 0.4, shards
    burst = 2 * AWS_LIMITS.records_per_second * AWS_LIMITS.burst_seconds
    assert run.seconds >= (6000 - burst) / 2000, "faster than two shards can take"
    assert any("paced per shard" in line for line in run.logs())
    assert any("per shard, records written" in line and "shardId-000000000001" in line for line in run.logs())


def test_a_share_of_each_shard_leaves_the_rest_and_is_never_throttled(kinesalite: Emulator, tmp_path: Path) -> None:
    """shardWriteShare 0.5: the connector uses at most half of each shard, so the proxy throttles nothing."""
    stream = unique("share")
    messages = numbered_messages([(None, stream)], 3000, state_every=500)
    run = paced_sync(kinesalite, tmp_path, messages, stream, shards=2, bufferSize=500, shardWriteShare=0.5)
    run.assert_complete()
    assert run.counts.total("throttled") == 0, run.counts
    assert run.seconds >= (3000 - 2 * 250) / 1000, "more than half of two shards"
    assert any("× shardWriteShare 0.5" in line for line in run.logs())


def _hot_messages(stream: str, count: int, hot_share: float) -> list[Message]:
    """Records whose field ``k`` is one value for ``hot_share`` of them (spread evenly), distinct otherwise."""
    messages: list[Message] = []
    every = round(1 / (1 - hot_share))
    for seq in range(count):
        key = f"cold-{seq}" if seq % every == 0 else "the-hot-customer"
        messages.append(record(stream, {"seq": seq, "k": key, "pad": "p" * 100}, 1_700_000_000_000 + seq))
        if seq % 1000 == 999:
            messages.append(stream_state(seq // 1000 + 1, stream, cursor=seq))
    return messages


def test_a_hot_key_is_named_as_the_cause_and_the_sync_finishes_at_its_shards_limit(kinesalite: Emulator,
                                                                                   tmp_path: Path) -> None:
    """90 % of the records carry one key: its shard takes 1,000 records/s while the other has room. The warning
    names that shard, its share and the partitionKey setting, and says more shards will not help; nothing is
    lost. (ordering none: with per_key the key would go one record per round trip, see the next test.)"""
    stream = unique("hot")
    messages = _hot_messages(stream, 14_000, hot_share=0.9)
    run = paced_sync(kinesalite, tmp_path, messages, stream, shards=2, bufferSize=500, partitionKey="fields",
                     partitionKeyFields=["k"], ordering="none", partition_key_is_ab_id=False)
    run.assert_complete()
    hot = max(run.counts.shards.items(), key=lambda item: item[1].accepted)[0]
    (warning,) = [line for line in run.logs("WARN") if "concentrates records" in line]
    assert f"shard {hot}" in warning and "partitionKey 'fields': k" in warning
    assert "More shards do not spread one key" in warning and "the-hot-customer" not in warning
    assert run.throttled_share <= 0.03, run.counts
    assert run.seconds >= (12_600 - 1000) / 1000, "faster than the hot shard can take"


def test_a_hot_key_in_input_order_goes_one_record_per_round_trip_and_is_named(kinesalite: Emulator,
                                                                            tmp_path: Path) -> None:
    """ordering per_key (the default for keys from the data): the hot key has one record in flight at a time, so the
    sync goes at one record per round trip for it, and the warning says so and what to change."""
    stream = unique("hot_ordered")
    messages = _hot_messages(stream, 1_000, hot_share=0.9)
    run = paced_sync(kinesalite, tmp_path, messages, stream, shards=2, bufferSize=500, partitionKey="fields",
                     partitionKeyFields=["k"], partition_key_is_ab_id=False)
    run.assert_complete()
    (warning,) = [line for line in run.logs("WARN") if "one record per round trip" in line]
    assert "partitionKey 'fields': k" in warning and "set ordering to 'none'" in warning
    assert "the-hot-customer" not in warning
    assert run.counts.calls >= 900, "the hot key went more than one record per call"


@pytest.mark.parametrize("keys", ["random", "fields"])
def test_a_split_while_writing_loses_nothing_and_the_new_shards_are_used(kinesalite: Emulator, tmp_path: Path,
                                                                         keys: str) -> None:
    """SplitShard on the stream 2 s into a sync of 20,000 records (about 10 s on 2 shards): every record is still in
    Kinesis, every state covers only written records, the connector notices the new shards and writes to them."""
    stream = unique(f"split_{keys}")
    messages = numbered_messages([(None, stream)], 20_000, state_every=500)
    if keys == "fields":
        for message in messages:
            if message["type"] == "RECORD":
                message["record"]["data"]["k"] = message["record"]["data"]["seq"] % 500
    split_done = threading.Event()

    def split(name: str) -> None:
        time.sleep(2.0)
        split_first_shard(kinesalite.endpoint, name)
        split_done.set()

    options: dict[str, Any] = {"partitionKey": "fields", "partitionKeyFields": ["k"]} if keys == "fields" else {}
    run = paced_sync(kinesalite, tmp_path, messages, stream, shards=2, during=split, bufferSize=500,
                     partition_key_is_ab_id=keys == "random", **options)
    assert split_done.is_set()
    run.assert_complete()
    assert any("was resharded: 3 open shards" in line for line in run.logs()), run.logs()
    children = [shard for shard_id, shard in run.counts.shards.items()
                if shard_id not in ("shardId-000000000000", "shardId-000000000001")]
    assert len(children) == 2 and all(child.accepted for child in children), run.counts.shards
    if keys == "fields":  # ordering per_key, the default for keys from the data: kept through the split
        order: dict[int, list[int]] = {}
        for user in read_user_records(kinesalite.endpoint, kinesis_stream_name(None, stream)):
            data = loads(user.data)["_airbyte_data"]
            seqs = order.setdefault(data["k"], [])
            if not seqs or seqs[-1] != data["seq"]:
                seqs.append(data["seq"])
        wrong = [k for k in range(500) if order.get(k) != list(range(k, 20_000, 500))]
        assert not wrong, f"key {wrong[0]} out of order through the split: {order.get(wrong[0], [])[:20]}"


DENY_SHARD_LISTING = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"},
    {"Effect": "Deny", "Action": ["kinesis:ListShards", "kinesis:DescribeStream"], "Resource": "*"}]}


def test_without_permission_to_list_shards_check_warns_and_the_sync_writes_unpaced(moto: Emulator,
                                                                                    tmp_path: Path) -> None:
    """Credentials that may write but not list shards: check succeeds with a warning naming the permission, and a
    sync says once that it writes without pacing, then writes every record (moto checks every request's IAM policy;
    its Kinesis is used with one writer)."""
    iam = boto3.client("iam", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="setup",
                       aws_secret_access_key="setup")
    iam.create_user(UserName="no-shards")
    iam.put_user_policy(UserName="no-shards", PolicyName="p", PolicyDocument=json.dumps(DENY_SHARD_LISTING))
    key = iam.create_access_key(UserName="no-shards")["AccessKey"]
    enforce_iam(moto)
    config = connector_config(moto.endpoint, shardCount=1, maxInFlightRequests=1, accessKey=key["AccessKeyId"],
                              privateKey=key["SecretAccessKey"])
    env = aws_environment(tmp_path)
    status = check_connection(config, tmp_path, env)
    assert status.status == "SUCCEEDED", status.message
    assert "may not list the shards" in status.message and "kinesis:ListShards" in status.message
    stream = unique("unpaced")
    messages = [*(record(stream, {"id": i}, 1_700_000_000_000 + i) for i in range(50)), stream_state(1, stream)]
    result = run_write(config, [(None, stream)], to_lines(messages), tmp_path, env=env)
    assert result.process.returncode == 0, result.describe()
    enforce_iam(moto, enforced=False)  # the test reads back with keys IAM does not know
    assert_records_written(moto.endpoint, messages)
    assert_states_echoed(messages, result)
    warnings = [m["log"]["message"] for m in result.messages if m["type"] == "LOG" and m["log"]["level"] == "WARN"]
    (warning,) = [line for line in warnings if "Cannot list the shards" in line]
    assert "kinesis:ListShards" in warning and "without pacing" in warning


def test_an_on_demand_stream_is_mapped_and_paced_too(kinesis_local: Emulator, tmp_path: Path) -> None:
    """An ON_DEMAND stream the connector creates (kinesis-local) has shards like any other: they are listed, the
    writes paced per shard, and every record arrives."""
    stream = unique("on_demand")
    messages = numbered_messages([(None, stream)], 2000, state_every=500)
    live = LiveCoverage(messages)
    with FaultProxy(kinesis_local.endpoint, FaultPlan(seed=1, shard_limits=AWS_LIMITS), live.on_written).start() \
            as proxy:
        args = write_args(tmp_path, proxy.endpoint, [configured_stream(stream)], streamMode="on_demand",
                          bufferSize=500)
        result = RunningConnector(args, to_lines(messages), on_message=live.on_message).wait(180)
    assert result.process.returncode == 0, result.describe()
    assert proxy.limiter is not None
    counts = proxy.limiter.counts()[kinesis_stream_name(None, stream)]
    assert counts.total("throttled") == 0 and len(counts.shards) > 1, counts
    logs = [m["log"]["message"] for m in result.messages if m["type"] == "LOG"]
    assert any("paced per shard" in line for line in logs)
    written = read_back(kinesis_local.endpoint, messages)
    assert not written.missing(input_records(messages)) and not live.early
    assert_states_echoed(messages, result)
