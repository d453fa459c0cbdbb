"""Scenario 5, kill and resume: a sync of 100,000 records is killed with SIGKILL at a random point, then the input
is replayed as the platform would, each stream from just after the last STATE of it the connector printed.

Every record a printed state vouches for must be in Kinesis (the replay does not send it again, so the killed run
wrote it), and after the resumed run every record of the input is. Duplicates (records the killed run wrote after
its last state, sent again by the replay) are counted and printed.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .connector import RunningConnector, unique, write_args
from .inputs import Message, StreamKey, numbered_messages, to_lines
from .kinesis_emulator import Emulator
from .readback import Coverage, assert_states_echoed, input_records, read_back

RECORDS = 100_000
STATE_EVERY = 1_000
TIMEOUT_S = 300.0


def stream_of(message: Message) -> StreamKey:
    if message["type"] == "RECORD":
        return (message["record"].get("namespace"), message["record"]["stream"])
    descriptor = message["state"]["stream"]["stream_descriptor"]
    return (descriptor.get("namespace"), descriptor["name"])


def replay_after(messages: list[Message], printed: list[Message]) -> list[Message]:
    """The input a resumed sync gets: for each stream, its messages after the last of its states in ``printed``."""
    position = {message["state"]["id"]: index for index, message in enumerate(messages) if message["type"] == "STATE"}
    resume_after: dict[StreamKey, int] = {}
    for state in printed:
        resume_after[stream_of(state)] = position[state["state"]["id"]]
    return [message for index, message in enumerate(messages) if index > resume_after.get(stream_of(message), -1)]


@pytest.mark.parametrize("seed", [5101, 5102])
def test_kill_and_resume(kinesalite: Emulator, tmp_path: Path, seed: int) -> None:
    """100,000 records over two streams, a STREAM state for each stream every 1,000 records. SIGKILL after a random
    number of printed states (plus up to 0.3 s), so requests are in flight; then the replay runs to the end."""
    kill_and_resume(kinesalite, tmp_path, seed)


def kill_and_resume(kinesalite: Emulator, tmp_path: Path, seed: int, **config: Any) -> None:
    """The scenario, with ``config`` added to the connector's (test_aggregation runs it aggregated)."""
    rng = random.Random(seed)
    streams = [(None, unique("resume_a")), ("ns", unique("resume_b"))]
    messages = numbered_messages(streams, RECORDS, STATE_EVERY, pad=50)
    input_states = [message for message in messages if message["type"] == "STATE"]
    kill_after = rng.randrange(1, len(input_states) * 9 // 10)
    args = write_args(tmp_path, kinesalite.endpoint, streams, **config)

    with RunningConnector(args, to_lines(messages)) as first:
        seen = 0
        for message in first.messages(TIMEOUT_S):
            seen += message["type"] == "STATE"
            if seen == kill_after:
                time.sleep(rng.uniform(0.0, 0.3))
                first.send_signal(signal.SIGKILL)
                break
        killed = first.wait(TIMEOUT_S)
    assert killed.process.returncode == -signal.SIGKILL, "the connector was not killed mid-sync"
    printed = killed.states
    assert [s["state"]["id"] for s in printed] == [s["state"]["id"] for s in input_states[: len(printed)]]

    replay = replay_after(messages, printed)
    coverage = Coverage(messages)
    vouched_prefix: dict[str, int] = {}  # Kinesis stream → how many of its first records the printed states cover
    for state in printed:
        for name, needed in coverage.needs(state).items():
            vouched_prefix[name] = max(vouched_prefix.get(name, 0), needed)
    vouched = {(name, seq) for name, needed in vouched_prefix.items() for seq in coverage.order[name][:needed]}
    in_replay = set(input_records(replay))
    assert not vouched & in_replay, "the replay sends records that a printed state vouches for"
    resumed = RunningConnector(args, to_lines(replay)).wait(TIMEOUT_S)
    assert resumed.process.returncode == 0, resumed.describe()
    assert_states_echoed(replay, resumed)

    written = read_back(kinesalite.endpoint, messages)
    lost_by_kill = written.missing(vouched)  # only the killed run could have written these
    assert not lost_by_kill, f"printed states vouch for records that are lost, e.g. {sorted(lost_by_kill)[:5]}"
    missing = written.missing(input_records(messages))
    print(f"\nkill and resume (seed {seed}, {config or 'default config'}): killed after {len(printed)} of "
          f"{len(input_states)} states; replayed "
          f"{len(in_replay)} records; {len(input_records(messages))} records checked, {written.duplicates} "
          f"duplicates ({written.rewritten} sent again by the replay, {written.resent} resent), {len(missing)} lost")
    assert not missing, f"{len(missing)} records lost, e.g. {missing[:5]}"
