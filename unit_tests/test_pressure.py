"""pressure: the in-flight limit halves on throttling (at most once per interval) and grows back by 1/limit per
call that went through, between 1 and the maximum. Time is a fake clock the test moves."""

from __future__ import annotations

import itertools
import threading

import pytest

from destination_kinesis.pressure import DECREASE_INTERVAL_SECONDS, Pressure


class Clock:
    """A clock that stands still until the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pressure(maximum: int) -> tuple[Pressure, Clock]:
    clock = Clock()
    return Pressure(maximum, clock=clock), clock


def throttle_apart(p: Pressure, clock: Clock, times: int) -> None:
    """``times`` throttled calls, each a full decrease interval after the one before."""
    for _ in range(times):
        clock.now += DECREASE_INTERVAL_SECONDS
        p.throttled("s")


def test_starts_at_the_maximum() -> None:
    """Before any signal the whole configured concurrency is allowed."""
    p, _ = pressure(16)
    assert (p.limit, p.maximum, p.decreases) == (16, 16, 0)


def test_throttled_halves_down_to_one() -> None:
    """Each throttled call (an interval apart) halves the limit, rounding down, and never below 1."""
    p, clock = pressure(16)
    seen = []
    for _ in range(6):
        throttle_apart(p, clock, 1)
        seen.append(p.limit)
    assert seen == [8, 4, 2, 1, 1, 1]
    assert p.decreases == 6


def test_odd_maximum_halves_to_its_floor() -> None:
    """5 halves to 2.5, which allows 2 requests."""
    p, clock = pressure(5)
    throttle_apart(p, clock, 1)
    assert p.limit == 2


def test_a_burst_of_throttles_within_the_interval_halves_once() -> None:
    """The calls in flight when throttling starts all come back throttled: within the interval that is one signal."""
    p, clock = pressure(16)
    p.throttled("s")
    for _ in range(20):
        clock.now += DECREASE_INTERVAL_SECONDS / 25
        p.throttled("s")
    assert p.limit == 8 and p.decreases == 1


def test_throttles_halve_again_once_the_interval_has_passed() -> None:
    """The interval counts from the last decrease: just before it nothing changes, from it on the limit halves."""
    p, clock = pressure(16)
    p.throttled("s")
    start = clock.now
    clock.now = start + DECREASE_INTERVAL_SECONDS * 0.99
    p.throttled("s")
    assert (p.limit, p.decreases) == (8, 1)
    clock.now = start + DECREASE_INTERVAL_SECONDS
    p.throttled("s")
    assert (p.limit, p.decreases) == (4, 2)
    clock.now += DECREASE_INTERVAL_SECONDS * 0.5
    p.throttled("s")
    assert (p.limit, p.decreases) == (4, 2)


def test_successes_do_not_reset_the_decrease_interval() -> None:
    """Calls that went through between two throttles neither allow an early decrease nor delay the next one."""
    p, clock = pressure(16)
    p.throttled("s")
    p.succeeded()
    clock.now += DECREASE_INTERVAL_SECONDS / 2
    p.throttled("s")
    assert p.decreases == 1
    clock.now += DECREASE_INTERVAL_SECONDS / 2
    p.throttled("s")
    assert p.decreases == 2


def test_succeeded_grows_by_one_over_the_limit() -> None:
    """From 1, each success adds 1/limit: 1 → 2 → 2.5 → 2.9 → 3.24…, so the allowed count follows that curve."""
    p, clock = pressure(8)
    throttle_apart(p, clock, 3)
    assert p.limit == 1
    expected_value, expected, seen = 1.0, [], []
    for _ in range(12):
        expected_value += 1 / expected_value
        expected.append(int(expected_value))
        p.succeeded()
        seen.append(p.limit)
    assert seen == expected == [2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 5]


def test_recovery_from_one_to_the_maximum_takes_31_successes_for_8() -> None:
    """With limit² growing by 2 + 1/limit² per success, after n successes from 1 it is 1 + 2n + Σ1/limit_k²; the
    sum is between 1 and 3 over the first 30 steps, so 30 successes leave the limit below 8 and the 31st reaches 8,
    about one more request per round trip of a full window."""
    p, clock = pressure(8)
    throttle_apart(p, clock, 3)
    assert p.limit == 1
    for _ in range(30):
        p.succeeded()
    assert p.limit == 7
    p.succeeded()
    assert p.limit == 8


def test_never_grows_above_the_maximum() -> None:
    """Successes at or near the maximum leave it at the maximum; the next throttle halves from the maximum."""
    p, clock = pressure(4)
    for _ in range(100):
        p.succeeded()
    assert p.limit == 4
    throttle_apart(p, clock, 1)
    assert p.limit == 2
    for _ in range(100):
        p.succeeded()
        assert p.limit <= 4
    assert p.limit == 4


def test_maximum_of_one_stays_one() -> None:
    """maxInFlightRequests 1: throttling cannot go below one request, successes cannot go above it."""
    p, clock = pressure(1)
    throttle_apart(p, clock, 3)
    p.succeeded()
    assert p.limit == 1


@pytest.mark.parametrize("maximum", [1, 3, 16])
def test_concurrent_updates_keep_the_limit_in_range(maximum: int) -> None:
    """Many threads reporting throttles (each one a new interval, so each halves) and successes at once, while
    another thread reads: the limit is always between 1 and the maximum."""
    ticks = itertools.count()
    p = Pressure(maximum, clock=lambda: next(ticks) * DECREASE_INTERVAL_SECONDS)
    stop = threading.Event()
    out_of_range: list[int] = []

    def report(worker: int) -> None:
        for i in range(3000):
            if (i + worker) % 7 == 0:
                p.throttled("s")
            else:
                p.succeeded()

    def read() -> None:
        while not stop.is_set():
            limit = p.limit
            if not 1 <= limit <= maximum:
                out_of_range.append(limit)

    reader = threading.Thread(target=read)
    reader.start()
    workers = [threading.Thread(target=report, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    reader.join()
    assert out_of_range == []
    assert 1 <= p.limit <= maximum
    assert p.decreases == sum(1 for w in range(8) for i in range(3000) if (i + w) % 7 == 0)



def test_throttled_calls_are_counted_per_stream() -> None:
    """Every throttled call is counted for its stream as it happens, halving or not."""
    p = Pressure(8, clock=lambda: 0.0)
    for name in ("a", "a", "b"):
        p.throttled(name)
    assert p.throttled_calls == {"a": 2, "b": 1}
    assert p.limit == 4  # one halving: all three fell within one interval
