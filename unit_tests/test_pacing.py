"""pacing: a shard's budget of records and bytes per second, lowered by throttling and grown back after."""

from __future__ import annotations

import pytest

from destination_kinesis.limits import SHARD_BYTES_PER_SECOND, SHARD_RECORDS_PER_SECOND
from destination_kinesis.pacing import (
    BURST_SECONDS,
    DECREASE_INTERVAL_SECONDS,
    RECOVERY_PER_SECOND,
    Budget,
    ShardLimits,
)


def test_defaults_are_the_aws_per_shard_limits() -> None:
    assert (SHARD_RECORDS_PER_SECOND, SHARD_BYTES_PER_SECOND) == (1000, 1024 * 1024)
    assert ShardLimits() == ShardLimits.share(1.0) == ShardLimits(1000, 1024 * 1024)
    assert ShardLimits.share(0.5) == ShardLimits(500, 512 * 1024)


def test_a_new_budget_holds_the_burst_and_refills_at_the_rate_up_to_it() -> None:
    budget = Budget(ShardLimits(), now=0.0)
    assert (budget.records, budget.bytes) == (1000 * BURST_SECONDS, SHARD_BYTES_PER_SECOND * BURST_SECONDS)
    assert budget.rested
    budget.spend(500, 200_000)
    assert not budget.rested
    budget.refill(0.1)
    assert budget.records == pytest.approx(100)
    budget.refill(10.0)
    assert budget.records == 1000 * BURST_SECONDS and budget.bytes == SHARD_BYTES_PER_SECOND * BURST_SECONDS


def test_sending_at_the_budget_gives_the_limit_over_time() -> None:
    """Spending whatever is there every 10 ms for 60 s sends the rate times the time, plus the first burst (the
    bucket starts full, so the first 10 ms add nothing)."""
    budget = Budget(ShardLimits.share(0.5), now=0.0)
    sent = 0
    for step in range(1, 6001):
        budget.refill(step / 100)
        records = int(budget.records)
        budget.spend(records, records * 100)
        sent += records
    assert sent == pytest.approx(500 * (60 - 0.01) + 500 * BURST_SECONDS, abs=1)


def test_seconds_to_rest_is_when_the_buckets_are_nearly_full_again() -> None:
    budget = Budget(ShardLimits(), now=0.0)
    budget.spend(500, 0)
    wait = budget.seconds_to_rest()
    assert wait == pytest.approx(0.45)
    budget.refill(wait)
    assert budget.rested


def test_a_record_budget_never_holds_less_than_one_record() -> None:
    limits = ShardLimits.share(0.001)
    assert limits.max_records == 1.0
    assert Budget(limits, 0.0).records == 1.0


def test_throttling_halves_the_rate_at_most_once_per_interval() -> None:
    budget = Budget(ShardLimits(), now=0.0)
    assert budget.throttled(1.0)
    assert budget.factor == 0.5
    assert not budget.throttled(1.0 + DECREASE_INTERVAL_SECONDS / 2)  # the same burst of rejections: one signal
    assert budget.factor == 0.5
    assert budget.throttled(1.0 + DECREASE_INTERVAL_SECONDS)
    assert budget.factor == 0.25


def test_the_rate_drops_by_the_share_throttled_at_most_by_half() -> None:
    budget = Budget(ShardLimits(), now=0.0)
    budget.throttled(0.0, share=0.1)
    assert budget.factor == pytest.approx(0.9)
    budget.throttled(10.0, share=0.9)
    assert budget.factor == pytest.approx(0.9 * 0.5)


def test_the_rate_grows_back_while_nothing_is_throttled() -> None:
    budget = Budget(ShardLimits(), now=0.0)
    budget.throttled(0.0)
    budget.refill(2.0)
    assert budget.factor == pytest.approx(0.5 + 2 * RECOVERY_PER_SECOND)
    budget.spend(int(budget.records), 0)
    budget.refill(100.0)
    assert budget.factor == 1.0
