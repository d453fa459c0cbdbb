"""Order per partition key (``ordering: per_key``) through the faults of the fault proxy.

20,000 records over 200 keys, interleaved in the input, are written through a proxy that rejects entries, throttles,
loses answers, delays them, or enforces AWS's per-shard limits. Each shard is then read back in sequence-number
order: for every key, the records read, with consecutive copies of one ``_airbyte_ab_id`` collapsed (copies come only
from lost answers), must be that key's records in input order, every one of them. The same input with ``ordering:
none`` comes out of order under heavy rejection, which shows the check can fail.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from .connector import RunningConnector, SyncResult, configured_stream, error_traces, unique, write_args
from .fault_proxy import FaultPlan, FaultProxy
from .inputs import Message, loads, record, stream_state, to_lines
from .kinesis_emulator import Emulator, read_stream
from .readback import LiveCoverage, assert_states_echoed, kinesis_stream_name
from .shard_limits import ShardLimits
from .test_kill_resume import replay_after

RECORDS = 20_000
KEYS = 200


def keyed_messages(stream: str, count: int = RECORDS, keys: int = KEYS, state_every: int = 1000) -> list[Message]:
    """Records whose field ``k`` cycles through ``keys`` values (so every key's records are interleaved with the
    others'), each with its ``seq``; a state after every ``state_every`` records."""
    messages: list[Message] = []
    for seq in range(count):
        messages.append(record(stream, {"seq": seq, "k": seq % keys, "pad": "p" * 60}, 1_700_000_000_000 + seq))
        if seq % state_every == state_every - 1:
            messages.append(stream_state(seq // state_every + 1, stream, cursor=seq))
    return messages


def per_key_order(endpoint: str, kinesis_name: str) -> dict[int, list[int]]:
    """Each key's seqs as its shard holds them, in sequence-number order, with consecutive copies of one ab_id
    (a record written again after a lost answer) collapsed."""
    order: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for item in read_stream(endpoint, kinesis_name):
        envelope = loads(item["data"])
        data = envelope["_airbyte_data"]
        assert item["partition_key"] == str(data["k"])
        copies = order[data["k"]]
        if not copies or copies[-1][1] != envelope["_airbyte_ab_id"]:
            copies.append((data["seq"], envelope["_airbyte_ab_id"]))
    return {key: [seq for seq, _ in copies] for key, copies in order.items()}


def out_of_order_keys(order: dict[int, list[int]], count: int = RECORDS, keys: int = KEYS) -> list[int]:
    """Keys whose records are not exactly their input records in input order."""
    return [key for key in range(keys) if order.get(key) != list(range(key, count, keys))]


def ordered_sync(kinesalite: Emulator, tmp_path: Path, plan: FaultPlan, **config: Any) -> tuple[SyncResult,
                                                                                             dict[int, list[int]]]:
    stream = unique("ordered")
    messages = keyed_messages(stream)
    live = LiveCoverage(messages)
    with FaultProxy(kinesalite.endpoint, plan, live.on_written).start() as proxy:
        args = write_args(tmp_path, proxy.endpoint, [configured_stream(stream)], partitionKey="fields",
                          partitionKeyFields=["k"], bufferSize=500, shardCount=2, retryTimeoutSeconds=120, **config)
        result = RunningConnector(args, to_lines(messages), on_message=live.on_message).wait(300)
    print(f"\n{stream}: {proxy.summary()}")
    assert result.process.returncode == 0, result.describe()
    assert not error_traces(result.messages), result.describe()
    assert not live.early, f"states printed before their records were in Kinesis: {live.early}"
    assert_states_echoed(messages, result)
    return result, per_key_order(kinesalite.endpoint, kinesis_stream_name(None, stream))


SCENARIOS = {
    "10% of entries rejected": FaultPlan(seed=11, calls={"partial": 1.0}, entry_failure=0.1),
    "50% of entries rejected": FaultPlan(seed=12, calls={"partial": 1.0}, entry_failure=0.5),
    "throttling bursts": FaultPlan(seed=13, calls={"throttle": 0.2, "partial": 0.3}, entry_failure=0.3,
                                   throttle_window=(0.5, 2.0)),
    "lost answers": FaultPlan(seed=14, calls={"drop_after": 0.15, "truncate_after": 0.05, "drop_before": 0.05}),
    "slow answers": FaultPlan(seed=15, calls={"slow": 0.2}, slow_seconds=0.5),
    "AWS's per-shard limits": FaultPlan(seed=16, shard_limits=ShardLimits()),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_key_arrives_complete_and_in_input_order(kinesalite: Emulator, tmp_path: Path, scenario: str) -> None:
    """ordering is left unset: keys from the data default to per_key."""
    _, order = ordered_sync(kinesalite, tmp_path, SCENARIOS[scenario])
    wrong = out_of_order_keys(order)
    assert not wrong, f"{len(wrong)} keys out of order or incomplete, e.g. key {wrong[0]}: {order.get(wrong[0])}"


def test_without_ordering_heavy_rejection_reorders_keys(kinesalite: Emulator, tmp_path: Path) -> None:
    """The same check, with ordering none: resent entries land after later ones of their key."""
    _, order = ordered_sync(kinesalite, tmp_path, SCENARIOS["50% of entries rejected"], ordering="none")
    assert all(sorted(seqs) == list(range(key, RECORDS, KEYS)) for key, seqs in order.items()), "records were lost"
    assert len(out_of_order_keys(order)) > KEYS // 2


def test_kill_and_resume_keeps_each_syncs_records_of_a_key_in_order(kinesalite: Emulator, tmp_path: Path) -> None:
    """SIGKILL a per_key sync after some states, then replay from the last states as the platform would: a key's
    records may repeat from the last state on, but what each sync wrote of a key is in input order, and together
    they hold every record. Per key the shard holds: a prefix of the key's records in input order (the killed sync),
    then every record of the key from the replay's first on, in order."""
    stream = unique("ordered_resume")
    messages = keyed_messages(stream)
    input_states = [message for message in messages if message["type"] == "STATE"]
    args = write_args(tmp_path, kinesalite.endpoint, [configured_stream(stream)], partitionKey="fields",
                      partitionKeyFields=["k"], bufferSize=500, shardCount=2)
    with RunningConnector(args, to_lines(messages)) as first:
        seen = 0
        for message in first.messages(120):
            seen += message["type"] == "STATE"
            if seen == 6:
                time.sleep(0.2)
                first.send_signal(signal.SIGKILL)
                break
        killed = first.wait(120)
    assert killed.process.returncode == -signal.SIGKILL, "the connector was not killed mid-sync"
    printed = killed.states
    assert 0 < len(printed) < len(input_states)
    replay = replay_after(messages, printed)
    resumed = RunningConnector(args, to_lines(replay)).wait(120)
    assert resumed.process.returncode == 0, resumed.describe()
    replayed: dict[int, list[int]] = defaultdict(list)
    for message in replay:
        if message["type"] == "RECORD":
            replayed[message["record"]["data"]["k"]].append(message["record"]["data"]["seq"])
    order = per_key_order(kinesalite.endpoint, kinesis_stream_name(None, stream))
    for key in range(KEYS):
        everything = list(range(key, RECORDS, KEYS))
        seqs, again = order[key], replayed[key]
        first_part = seqs[:len(seqs) - len(again)]
        assert first_part == everything[:len(first_part)], f"key {key}: the killed sync's records out of order"
        assert seqs[len(first_part):] == again, f"key {key}: the resumed sync's records out of order or missing"
        assert set(seqs) == set(everything), f"key {key}: records missing"
