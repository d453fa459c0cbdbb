"""SIGTERM during ``write``: the connector stops reading, lets the requests in flight finish or cuts their retries
short, prints only covered states, and exits non-zero with a TRACE saying the sync was interrupted, in bounded time.

stdin stays open in these tests, as when the source is still sending: a connector that waited for the end of its
input instead of stopping would hit the test's time limit.
"""

from __future__ import annotations

import math
import re
import signal
import time
from pathlib import Path

import pytest

from .connector import RunningConnector, SyncResult, error_traces, unique, write_args
from .fault_proxy import FaultPlan, FaultProxy
from .inputs import numbered_messages, to_lines
from .kinesis_emulator import Emulator
from .readback import LiveCoverage, assert_stopped_covered

#: Generous: the requests in flight take 3 s at the proxy; the bound proves the stop does not wait for more input.
STOP_LIMIT_S = 20.0


def assert_interrupted(result: SyncResult) -> None:
    """Exit code 1 and, last on stdout, a transient_error TRACE that says the sync was interrupted by SIGTERM."""
    assert result.process.returncode == 1, result.describe()
    traces = error_traces(result.messages)
    assert len(traces) == 1 and result.messages[-1]["type"] == "TRACE", result.describe()
    error = traces[0]["error"]
    assert error["failure_type"] == "transient_error", error
    assert re.search(r"interrupted.*SIGTERM", error["message"]), error["message"]


def terminate_and_wait(connector: RunningConnector) -> tuple[SyncResult, float]:
    """Send SIGTERM; return the result and the seconds the connector took to exit."""
    connector.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    result = connector.wait(timeout=time.monotonic() - connector.started + STOP_LIMIT_S + 30)
    return result, time.monotonic() - sent


@pytest.mark.parametrize("scenario", ["slow_requests_in_flight", "retrying_throttled_requests"])
def test_sigterm_during_write(kinesalite: Emulator, tmp_path: Path, scenario: str) -> None:
    """slow_requests_in_flight: every PutRecords takes 3 s; SIGTERM 1 s after the first state came out, while the
    next requests are in flight. They finish, the states they cover may come out, nothing else is read or sent.

    retrying_throttled_requests: every PutRecords is throttled; SIGTERM once the connector has retried a dozen
    times. The retries (allowed 300 s) stop at once.

    Both: exit within 20 s of the signal, non-zero, with a TRACE saying the sync was interrupted; every state
    printed covers only records Kinesis had accepted when it was printed."""
    streams = [(None, unique("sigterm_a")), ("ns", unique("sigterm_b"))]
    messages = numbered_messages(streams, 20_000, state_every=100)
    live = LiveCoverage(messages)
    if scenario == "slow_requests_in_flight":
        plan = FaultPlan(seed=701, calls={"slow": 1.0}, slow_seconds=3.0)
    else:
        plan = FaultPlan(seed=702, throttle_window=(0.0, math.inf))
    with FaultProxy(kinesalite.endpoint, plan, live.on_written).start() as proxy:
        args = write_args(tmp_path, proxy.endpoint, streams)
        with RunningConnector(args, to_lines(messages), keep_stdin_open=True, on_message=live.on_message) as connector:
            wait_for(connector, proxy, scenario)
            result, stop_seconds = terminate_and_wait(connector)
    print(f"\nSIGTERM, {scenario}: {dict(proxy.injected)}; stopped {stop_seconds:.1f} s after the signal; "
          f"{len(result.states)} states printed, {len(connector.messages_seen)} messages in all")

    assert_interrupted(result)
    assert stop_seconds < STOP_LIMIT_S, f"the connector took {stop_seconds:.1f} s to stop"
    assert_stopped_covered(kinesalite.endpoint, messages, result, live)


def wait_for(connector: RunningConnector, proxy: FaultProxy, scenario: str) -> None:
    """Return once the run is where the scenario sends SIGTERM: 1 s after the first state, or after a dozen throttled
    calls."""
    if scenario == "slow_requests_in_flight":
        for message in connector.messages(timeout=60):
            if message["type"] == "STATE":
                time.sleep(1.0)
                return
        pytest.fail("the connector ended before printing a state")
    deadline = time.monotonic() + 60
    while proxy.injected["throttle"] < 12:
        assert time.monotonic() < deadline and connector.process.poll() is None, "no throttled retries seen"
        time.sleep(0.1)
