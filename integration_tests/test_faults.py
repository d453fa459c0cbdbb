"""Scenarios 1-4 of "nothing lost under faults": the real console script writes through the fault proxy into
kinesalite while the proxy partly fails, throttles or loses the answers to PutRecords calls.

Every state the connector prints is checked the moment it is printed against the records the proxy saw Kinesis
accept; after the run every record is read back from every shard. Duplicates are allowed (and printed), loss is not.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .connector import RunningConnector, SyncResult, error_traces, unique, write_args
from .fault_proxy import FaultPlan, FaultProxy
from .inputs import Message, numbered_messages, to_lines
from .kinesis_emulator import Emulator
from .readback import Coverage, LiveCoverage, ReadBack, assert_states_echoed, input_records, read_back


@dataclass
class FaultRun:
    messages: list[Message]
    result: SyncResult
    injected: dict[str, int]
    early_states: list[tuple[Any, list[Any]]]
    seconds: float
    written: ReadBack

    def report(self, name: str, seed: int) -> None:
        """Print what was injected and what was checked (pytest shows it with -s, or on failure)."""
        records = len(input_records(self.messages))
        lost = len(self.written.missing(input_records(self.messages)))
        print(f"\n{name} (seed {seed}): {self.injected}; {records} records checked, "
              f"{self.written.duplicates} duplicates ({self.written.resent} resent after a lost answer), "
              f"{lost} not in Kinesis; {len(self.result.states)} states; {self.seconds:.1f} s")

    def assert_nothing_lost(self) -> None:
        missing = self.written.missing(input_records(self.messages))
        assert not missing, f"{len(missing)} records never reached Kinesis, e.g. {missing[:5]}"
        assert not self.early_states, f"states printed before their records were in Kinesis: {self.early_states}"


def faulty_sync(kinesalite: Emulator, tmp_path: Path, plan: FaultPlan, count: int, state_every: int,
                timeout: float, refuse_for: float = 0.0, **config: Any) -> FaultRun:
    """Write ``count`` numbered records over two streams through a fault proxy following ``plan`` (listening only
    after ``refuse_for`` seconds), waiting at most ``timeout`` seconds for the connector; read everything back."""
    streams = [(None, unique("faults_a")), ("ns", unique("faults_b"))]
    messages = numbered_messages(streams, count, state_every)
    live = LiveCoverage(messages, kinesalite.endpoint)
    started = time.monotonic()
    with FaultProxy(kinesalite.endpoint, plan, on_landed=live.on_landed).start(refuse_for) as proxy:
        args = write_args(tmp_path, proxy.endpoint, streams, **config)
        result = RunningConnector(args, to_lines(messages), on_message=live.on_message).wait(timeout)
    seconds = time.monotonic() - started
    written = read_back(kinesalite.endpoint, messages)
    return FaultRun(messages, result, dict(proxy.injected), live.early, seconds, written)


@pytest.mark.parametrize(("failure_rate", "count", "seed"), [(0.1, 20_000, 101), (0.5, 20_000, 105)],
                         ids=["10%", "50%"])
def test_entries_failing_on_every_call(kinesalite: Emulator, tmp_path: Path, failure_rate: float, count: int,
                                       seed: int) -> None:
    """Scenario 1: on every PutRecords call each entry fails (throttled or internal failure, not written) with the
    given probability, and FailedRecordCount is wrong on 30% of the calls. The whole sync of 20,000 records
    succeeds within a bounded time, every record arrives, and no state is printed before its records
    are in.

    At 50% a 500-entry batch needs about 10 calls; the backoff starts again after each call that got entries
    through, so the sync takes seconds, not minutes."""
    plan = FaultPlan(seed=seed, calls={"partial": 1.0}, entry_failure=failure_rate, wrong_count=0.3)
    run = faulty_sync(kinesalite, tmp_path, plan, count=count, state_every=1_000, timeout=300, bufferSize=500)
    run.report(f"{failure_rate:.0%} of entries failing", seed)
    assert run.result.process.returncode == 0, run.result.describe()
    run.assert_nothing_lost()
    assert_states_echoed(run.messages, run.result)
    assert run.injected["failed_entries"] > failure_rate * count / 2, "the proxy failed too few entries"


def test_throttled_for_a_while_then_recovering(kinesalite: Emulator, tmp_path: Path) -> None:
    """Scenario 2: the endpoint refuses connections for the first 3 s (not up yet), then throttles every PutRecords
    call (HTTP 400 ProvisionedThroughputExceededException) for 5 s, longer than a few retries, then recovers:
    the sync succeeds, every record arrives and no state is printed before its records are in."""
    plan = FaultPlan(seed=201, throttle_window=(0.0, 5.0))
    run = faulty_sync(kinesalite, tmp_path, plan, count=5_000, state_every=250, timeout=120, refuse_for=3.0)
    run.report("refused for 3 s, then every call throttled for 5 s", plan.seed)
    assert run.result.process.returncode == 0, run.result.describe()
    run.assert_nothing_lost()
    assert_states_echoed(run.messages, run.result)
    assert run.injected["throttle"] >= 12, "the connector gave up retrying too soon, or the proxy did not throttle"


RETRY_TIMEOUT_S = 20


def test_throttling_that_never_ends(kinesalite: Emulator, tmp_path: Path) -> None:
    """Scenario 3: from the 31st PutRecords call on, every call is throttled for good. With
    ``retryTimeoutSeconds`` 20 the sync fails after retrying about that long (well within a minute): exit code
    non-zero, a transient_error TRACE naming the stream and the throttling, and every state it printed covers
    only records that are in Kinesis (checked as printed, and again by reading everything back).

    Needs the optional config key ``retryTimeoutSeconds``; without it the connector retries for 300 s and the test
    fails when its 90-second limit kills the connector."""
    plan = FaultPlan(seed=301, throttle_from_call=31)
    run = faulty_sync(kinesalite, tmp_path, plan, count=20_000, state_every=500, timeout=90, bufferSize=100,
                      retryTimeoutSeconds=RETRY_TIMEOUT_S)
    run.report("throttled for good after 30 calls", plan.seed)

    assert run.result.process.returncode != 0, run.result.describe()
    assert RETRY_TIMEOUT_S <= run.seconds < RETRY_TIMEOUT_S + 40, f"failed after {run.seconds:.1f} s"
    traces = error_traces(run.result.messages)
    assert len(traces) == 1, run.result.describe()
    error = traces[0]["error"]
    assert error["failure_type"] == "transient_error", error
    assert re.search(r"ProvisionedThroughputExceeded|throttl", error["message"], re.IGNORECASE), error["message"]
    assert re.search(r"Kinesis stream '_?(ns_)?faults_[ab]_", error["message"]), error["message"]
    assert not run.early_states, f"states printed before their records were in Kinesis: {run.early_states}"
    assert run.result.states, "no state came out while Kinesis still accepted records"
    coverage = Coverage(run.messages)
    for state in run.result.states:
        missing = coverage.missing(state, run.written.counts)
        assert not missing, f"state {state['state']['id']} vouches for records not in Kinesis: {missing[:5]}"


def test_lost_answers(kinesalite: Emulator, tmp_path: Path) -> None:
    """Scenario 4: answers to PutRecords calls are lost after Kinesis wrote the records: the connection is closed
    (20% of calls) or, once, nothing comes back until the connector's read timeout; 5% more calls lose the
    connection before anything is written. Every record arrives at least once; duplicates (the resent entries of
    calls whose answer was lost) are counted and printed; none is missing."""
    plan = FaultPlan(seed=401, calls={"drop_after": 0.2, "drop_before": 0.05, "hang_after": 0.05}, max_hangs=1)
    run = faulty_sync(kinesalite, tmp_path, plan, count=10_000, state_every=500, timeout=150)
    run.report("answers lost", plan.seed)
    assert run.result.process.returncode == 0, run.result.describe()
    run.assert_nothing_lost()
    assert_states_echoed(run.messages, run.result)
    assert run.injected["drop_after"] and run.injected["hang_after"], run.injected
    assert run.written.resent > 0, "answers were lost after writing, yet no record was written twice"


def test_every_fault_at_once(kinesalite: Emulator, tmp_path: Path) -> None:
    """All the faults mixed: partial failures with a wrong FailedRecordCount, throttling, HTTP 500 InternalFailure,
    HTTP 503 with an HTML body, connections closed before and after writing, and 1-second delays. The sync succeeds,
    every record arrives, no state is printed early."""
    plan = FaultPlan(
        seed=501,
        calls={"partial": 0.2, "throttle": 0.1, "internal": 0.05, "unavailable": 0.05, "drop_before": 0.05,
               "drop_after": 0.05, "slow": 0.05},
        entry_failure=0.3,
        wrong_count=0.5,
    )
    run = faulty_sync(kinesalite, tmp_path, plan, count=10_000, state_every=500, timeout=150)
    run.report("every fault at once", plan.seed)
    assert run.result.process.returncode == 0, run.result.describe()
    run.assert_nothing_lost()
    assert_states_echoed(run.messages, run.result)
    assert all(run.injected[kind] for kind in plan.calls), run.injected


def test_answer_cut_off_mid_body(kinesalite: Emulator, tmp_path: Path) -> None:
    """A 200 answer whose body is cut off halfway (the connection closes after Kinesis wrote the records) is an
    ambiguous failure like a lost answer: the sync resends and succeeds, every record arrives."""
    plan = FaultPlan(seed=601, calls={"truncate_after": 0.3})
    run = faulty_sync(kinesalite, tmp_path, plan, count=1_000, state_every=100, timeout=120)
    run.report("answers cut off mid-body", plan.seed)
    assert run.result.process.returncode == 0, run.result.describe()
    run.assert_nothing_lost()
    assert_states_echoed(run.messages, run.result)
