"""Record aggregation (``aggregation: kpl``): the real console script writes KPL aggregated records, read back as a
KCL consumer reads them (:mod:`integration_tests.kpl`: de-aggregated with protobuf from the KPL's schema, and
filtered by the range of the shard each record was read from).

Every aggregate the backend accepts is checked as it is written (magic, MD5, protobuf), every state the moment it is
printed against the user records a KCL consumer would see, and every user record is found afterwards with its data
and partition key: through AWS's per-shard limits, the faults of the fault proxy, a SplitShard while the sync writes,
and a kill followed by a resumed sync.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from .connector import RunningConnector, SyncResult, beside, configured_stream, error_traces, unique, write_args
from .fault_proxy import FaultPlan, FaultProxy
from .inputs import Message, loads, numbered_messages, record, stream_state, to_lines
from .kinesis_emulator import Emulator, kinesis_client, split_first_shard
from .kpl import read_user_records
from .readback import LiveCoverage, ReadBack, assert_states_echoed, input_records, kinesis_stream_name, read_back
from .shard_limits import ShardLimits, StreamCounts
from .test_faults import faulty_sync
from .test_kill_resume import kill_and_resume


class AggregatedRun:
    def __init__(self, messages: list[Message], result: SyncResult, live: LiveCoverage, counts: StreamCounts | None,
                 written: ReadBack):
        self.messages = messages
        self.result = result
        self.live = live
        self.counts = counts
        self.written = written

    def logs(self) -> list[str]:
        return [m["log"]["message"] for m in self.result.messages if m["type"] == "LOG"]

    def assert_complete(self) -> None:
        assert self.result.process.returncode == 0, self.result.describe()
        assert not error_traces(self.result.messages), self.result.describe()
        assert self.live.broken == 0, "an aggregate with a wrong magic, MD5 or message was written"
        missing = self.written.missing(input_records(self.messages))
        assert not missing, f"{len(missing)} records a KCL consumer never sees, e.g. {missing[:5]}"
        assert not self.live.early, f"states printed before a KCL consumer could see their records: {self.live.early}"
        assert_states_echoed(self.messages, self.result)


def aggregated_sync(kinesalite: Emulator, tmp_path: Path, messages: list[Message], stream: str, shards: int,
                    plan: FaultPlan, during: Any = None, partition_key_is_ab_id: bool = True,
                    **config: Any) -> AggregatedRun:
    name = kinesis_stream_name(None, stream)
    client = kinesis_client(kinesalite.endpoint)
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    live = LiveCoverage(messages, kinesalite.endpoint)
    with FaultProxy(kinesalite.endpoint, plan, on_landed=live.on_landed).start() as proxy:
        args = write_args(tmp_path, proxy.endpoint, [configured_stream(stream)], aggregation="kpl", **config)
        with beside(functools.partial(during, name) if during else None):
            result = RunningConnector(args, to_lines(messages), on_message=live.on_message).wait(240)
    counts = proxy.limiter.counts().get(name) if proxy.limiter is not None else None
    written = read_back(kinesalite.endpoint, messages, partition_key_is_ab_id=partition_key_is_ab_id)
    print(f"\n{name}: {proxy.summary()}; {live.dropped} aggregates a KCL consumer drops; {written.duplicates} "
          f"duplicates")
    return AggregatedRun(messages, result, live, counts, written)


def test_random_keys_are_packed_within_the_per_shard_limits(kinesalite: Emulator, tmp_path: Path) -> None:
    """20,000 records of random keys on 2 shards through AWS's per-shard limits: far fewer Kinesis records than user
    records, none throttled, every user record seen once by a KCL consumer with its own partition key (its
    _airbyte_ab_id); the summary names Kinesis records and PUT payload units."""
    stream = unique("agg_random")
    messages = numbered_messages([(None, stream)], 20_000, state_every=1000, pad=250)
    run = aggregated_sync(kinesalite, tmp_path, messages, stream, 2, FaultPlan(seed=1, shard_limits=ShardLimits()),
                          bufferSize=500)
    run.assert_complete()
    assert run.written.duplicates == 0
    assert run.counts is not None and run.counts.total("throttled") == 0
    assert run.counts.total("accepted") < 20_000 / 50, run.counts
    (summary,) = [line for line in run.logs() if "20,000 records written as" in line]
    assert "PUT payload units" in summary


def test_keys_from_the_data_keep_their_order_inside_aggregates(kinesalite: Emulator, tmp_path: Path) -> None:
    """Keys from the data (ordering per_key by default): each aggregate holds one shard's records, and a KCL
    consumer reads each key's records in input order."""
    stream = unique("agg_keyed")
    messages: list[Message] = []
    for seq in range(12_000):
        messages.append(record(stream, {"seq": seq, "k": seq % 300, "pad": "p" * 100}, 1_700_000_000_000 + seq))
        if seq % 1000 == 999:
            messages.append(stream_state(seq // 1000 + 1, stream, cursor=seq))
    plan = FaultPlan(seed=3, calls={"partial": 0.5}, entry_failure=0.3)
    run = aggregated_sync(kinesalite, tmp_path, messages, stream, 3, plan, partition_key_is_ab_id=False,
                          partitionKey="fields", partitionKeyFields=["k"], bufferSize=500)
    run.assert_complete()
    order: dict[int, list[int]] = defaultdict(list)
    last_id: dict[int, str] = {}
    for user in read_user_records(kinesalite.endpoint, kinesis_stream_name(None, stream)):
        envelope = loads(user.data)
        key = envelope["_airbyte_data"]["k"]
        assert user.partition_key == str(key)
        if last_id.get(key) != envelope["_airbyte_ab_id"]:
            order[key].append(envelope["_airbyte_data"]["seq"])
            last_id[key] = envelope["_airbyte_ab_id"]
    wrong = [key for key in range(300) if order[key] != list(range(key, 12_000, 300))]
    assert not wrong, f"key {wrong[0]} out of order: {order[wrong[0]][:20]}"


@pytest.mark.parametrize("keys", ["random", "fields"])
def test_a_split_while_writing_loses_nothing_for_a_kcl_consumer(kinesalite: Emulator, tmp_path: Path,
                                                                keys: str) -> None:
    """SplitShard 2 s into a sync: aggregates that land on a shard whose range does not hold all their user
    records (the KCL would drop them) are packed again and sent; a KCL consumer sees every record, and no state
    comes out before it could."""
    stream = unique(f"agg_split_{keys}")
    messages = numbered_messages([(None, stream)], 20_000, state_every=500, pad=200)
    if keys == "fields":
        for message in messages:
            if message["type"] == "RECORD":
                message["record"]["data"]["k"] = message["record"]["data"]["seq"] % 997

    def split(name: str) -> None:
        time.sleep(2.0)
        split_first_shard(kinesalite.endpoint, name)

    options: dict[str, Any] = {"partitionKey": "fields", "partitionKeyFields": ["k"]} if keys == "fields" else {}
    run = aggregated_sync(kinesalite, tmp_path, messages, stream, 2, FaultPlan(seed=5, shard_limits=ShardLimits()),
                          during=split, partition_key_is_ab_id=keys == "random", bufferSize=500, **options)
    run.assert_complete()
    assert any("was resharded: 3 open shards" in line for line in run.logs()), run.logs()


@pytest.mark.parametrize("scenario", ["10% of entries rejected", "throttling bursts", "lost answers"])
def test_faults_with_aggregation(kinesalite: Emulator, tmp_path: Path, scenario: str) -> None:
    """The fault proxy's scenarios with aggregation on: every user record reaches a KCL consumer, no state early."""
    plan = {
        "10% of entries rejected": FaultPlan(seed=21, calls={"partial": 1.0}, entry_failure=0.1, wrong_count=0.3),
        "throttling bursts": FaultPlan(seed=22, calls={"throttle": 0.2}, throttle_window=(0.5, 2.0)),
        "lost answers": FaultPlan(seed=23, calls={"drop_after": 0.2, "drop_before": 0.05, "truncate_after": 0.05}),
    }[scenario]
    run = faulty_sync(kinesalite, tmp_path, plan, count=20_000, state_every=1_000, timeout=300, bufferSize=500,
                      aggregation="kpl")
    run.report(f"{scenario}, aggregated", plan.seed)
    assert run.result.process.returncode == 0, run.result.describe()
    run.assert_nothing_lost()
    assert_states_echoed(run.messages, run.result)


def test_kill_and_resume_with_aggregation(kinesalite: Emulator, tmp_path: Path) -> None:
    kill_and_resume(kinesalite, tmp_path, seed=5103, aggregation="kpl")
