"""progress: a line about every 10 s with accepted records, rate and requests in flight; warnings for a hot shard
and for a stream at its limit; the final summary per stream and shard."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from destination_kinesis.outbox import Outbox
from destination_kinesis.pacing import ShardLimits
from destination_kinesis.progress import (
    HOT_SHARD_SECONDS,
    PROGRESS_INTERVAL_SECONDS,
    THROTTLED_WARNING_SECONDS,
    WATCH_INTERVAL_SECONDS,
    Progress,
    Sustained,
)
from destination_kinesis.shardmap import ShardMap
from unit_tests.test_outbox import batch, keys_for
from unit_tests.test_shardmap import even_shards


@dataclass
class Dispatching:
    """What progress reads of the dispatcher."""

    outboxes: dict[str, Outbox] = field(default_factory=dict)
    in_flight: int = 3
    limit: int = 16


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_progress_line_every_interval_with_totals_rate_and_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing before the interval; then one line with records, MB, records/s over the interval, requests in flight,
    the limit, resent and throttled entries, and the records per Kinesis stream."""
    progress = Progress(["a", "b"], started=100.0)
    progress.accepted("a", 500, 1_000_000)
    progress.resent("a", 7, 1)
    progress.accepted("b", 1500, 2_000_000)
    with caplog.at_level(logging.INFO, logger="airbyte"):
        progress.log_if_due(109.9, Dispatching())
        assert _messages(caplog) == []
        progress.log_if_due(110.0, Dispatching())
    (line,) = _messages(caplog)
    assert ("2,000 records (3.0 MB) written, 200 records/s, 3 requests in flight (limit 16), 7 entries resent so far "
            "(1 throttled)") in line
    assert "'a' 500, 'b' 1,500" in line
    assert 0 < progress.seconds_to_next(110.0) <= WATCH_INTERVAL_SECONDS


def test_rate_is_over_the_last_interval(caplog: pytest.LogCaptureFixture) -> None:
    progress = Progress(["a"], started=0.0)
    progress.accepted("a", 1000, 10)
    with caplog.at_level(logging.INFO, logger="airbyte"):
        progress.log_if_due(10.0, Dispatching())
        progress.accepted("a", 5000, 10)
        progress.log_if_due(20.0, Dispatching())
    assert "500 records/s" in _messages(caplog)[-1]


def _look(progress: Progress, dispatching: Dispatching, start: float, seconds: float,
          each: object = None) -> float:
    now = start
    while now < start + seconds:
        now += WATCH_INTERVAL_SECONDS
        if callable(each):
            each()
        progress.log_if_due(now, dispatching)
    return now


def test_warns_once_when_an_unpaced_stream_throttles_for_a_long_time(caplog: pytest.LogCaptureFixture) -> None:
    """Throttled at every look for THROTTLED_WARNING_SECONDS: one warning naming the stream and what to do. A quiet
    look resets the clock; another stream that never throttles gets no warning."""
    progress = Progress(["hot", "cold"], started=0.0)
    dispatching = Dispatching({name: Outbox(name, None, ShardLimits(), 500, 5 << 20, 0.0) for name in ("hot", "cold")})
    with caplog.at_level(logging.INFO, logger="airbyte"):
        now = _look(progress, dispatching, 0.0, THROTTLED_WARNING_SECONDS - 5, lambda: progress.resent("hot", 5, 5))
        now = _look(progress, dispatching, now, 1)  # quiet
        assert _messages(caplog, logging.WARNING) == []
        _look(progress, dispatching, now, THROTTLED_WARNING_SECONDS + 5, lambda: progress.resent("hot", 5, 5))
    (warning,) = _messages(caplog, logging.WARNING)
    assert "'hot'" in warning and "Kinesis has been throttling" in warning and "Add shards" in warning
    assert "cold" not in warning


def test_warns_once_when_every_shard_of_a_stream_stays_at_its_limit(caplog: pytest.LogCaptureFixture) -> None:
    """Random keys waiting on two shards without budget for a minute: the stream needs shards."""
    progress = Progress(["s"], started=0.0)
    box = Outbox("s", ShardMap(even_shards(2)), ShardLimits(1, 10**9), 500, 5 << 20, 0.0)
    box.put(batch(100))
    box.compose(0.0)
    box.compose(0.0)  # both shards spent their one record
    def spend_all() -> None:
        for queue in box.shards:
            assert queue.budget is not None
            queue.budget.spend(1, 0)

    with caplog.at_level(logging.INFO, logger="airbyte"):
        _look(progress, Dispatching({"s": box}), 0.0, THROTTLED_WARNING_SECONDS + 2, spend_all)
    (warning,) = _messages(caplog, logging.WARNING)
    assert "every shard has been at its write limit" in warning and "2 shards" in warning and "Add shards" in warning


def test_warns_about_a_hot_shard_naming_it_its_share_and_the_key_setting(caplog: pytest.LogCaptureFixture) -> None:
    """Keyed entries waiting for one shard's budget while the other has room, for HOT_SHARD_SECONDS: one warning
    naming the shard, its share of the stream's records and the partitionKey setting, suggesting another key; never
    the key's value."""
    shard_map = ShardMap(even_shards(2))
    progress = Progress(["s"], started=0.0, key_settings={"s": "partitionKey 'fields': customer.id"})
    box = Outbox("s", shard_map, ShardLimits(10, 10**9), 500, 5 << 20, 0.0)
    hot_key = keys_for(shard_map, 1, 1, "secret-value")[0]
    box.put(batch(36, keys=[hot_key] * 36, tag="h"))
    box.put(batch(4, keys=keys_for(shard_map, 0, 4, "cold"), tag="c"))
    while box.compose(0.0) is not None:
        pass
    with caplog.at_level(logging.INFO, logger="airbyte"):
        _look(progress, Dispatching({"s": box}), 0.0, HOT_SHARD_SECONDS + 3,
              lambda: box.shards[1].budget.spend(1, 0))  # type: ignore[union-attr]
    (warning,) = _messages(caplog, logging.WARNING)
    assert "shard shardId-000000000001" in warning and "90% of the stream's records" in warning
    assert "partitionKey 'fields': customer.id" in warning and "one partition key value makes up 100%" in warning
    assert "More shards do not spread one key" in warning
    assert "secret-value" not in warning


def test_summary_per_kinesis_stream_and_shard(caplog: pytest.LogCaptureFixture) -> None:
    progress = Progress(["a"], started=0.0)
    progress.accepted("a", 1234, 56789)
    progress.called("a")
    progress.called("a")
    progress.resent("a", 2, 1)
    box = Outbox("a", ShardMap(even_shards(2)), ShardLimits(), 500, 5 << 20, 0.0)
    box.shards[0].accepted, box.shards[1].accepted, box.shards[1].throttled = 600, 634, 1
    with caplog.at_level(logging.INFO, logger="airbyte"):
        progress.log_summary(Dispatching({"a": box}), succeeded=True)
        progress.log_summary(None, succeeded=False)
    done, shards, failed = _messages(caplog)
    assert done == ("Kinesis stream 'a': 1,234 records written as 1,234 Kinesis records (56,789 bytes, 1,234 PUT "
                    "payload units) in 2 PutRecords calls; 2 entries resent, 1 throttled.")
    assert shards == ("Kinesis stream 'a' per shard, records written (entries throttled): shardId-000000000000 600 "
                      "(0 throttled), shardId-000000000001 634 (1 throttled).")
    assert "written before the failure" in failed


def test_progress_interval_is_ten_seconds() -> None:
    assert PROGRESS_INTERVAL_SECONDS == 10.0


def test_the_line_says_what_holds_a_stream_back(caplog: pytest.LogCaptureFixture) -> None:
    """Keys in order waiting to send a record again, shards backing off, and aggregated streams' Kinesis records."""
    box = Outbox("s", ShardMap(even_shards(2)), ShardLimits(), 500, 5 << 20, 0.0)
    box.retrying.update({b"a", b"b"})
    box.shards[1].not_before = 100.0
    progress = Progress(["s"], started=0.0)
    progress.accepted("s", 1000, 400_000, kinesis_records=8, put_units=16)
    with caplog.at_level(logging.INFO, logger="airbyte"):
        progress.log_if_due(10.0, Dispatching({"s": box}))
    (line,) = _messages(caplog)
    assert "'s' 1,000 in 8 Kinesis records (16 PUT payload units)" in line
    assert "2 keys waiting to send a record again" in line and "1 shard backing off after a failure" in line


def test_a_sustained_condition_is_told_once_after_it_held_without_a_break() -> None:
    watch = Sustained()
    assert watch.held(True, 0.0, 10.0) is None
    assert watch.held(True, 9.0, 10.0) is None
    assert watch.held(False, 9.5, 10.0) is None  # a break starts the count again
    assert watch.held(True, 10.0, 10.0) is None
    assert watch.held(True, 20.0, 10.0) == 10.0
    assert watch.held(True, 40.0, 10.0) is None  # told once
