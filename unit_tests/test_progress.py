"""progress: a line about every 10 s with accepted records, rate and requests in flight; a warning when a stream
keeps throttling; the final per-stream summary."""

from __future__ import annotations

import logging

import pytest

from destination_kinesis.progress import PROGRESS_INTERVAL_SECONDS, THROTTLED_WARNING_SECONDS, Progress
from destination_kinesis.sender import SendStats


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_progress_line_every_interval_with_totals_rate_and_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing before the interval; then one line with records, MB, records/s over the interval, requests in flight,
    the limit, resent entries, and the records per Kinesis stream."""
    progress = Progress(["a", "b"], started=100.0)
    progress.accepted("a", 500, 1_000_000, SendStats(calls=2, resent_entries=7, throttled=1))
    progress.accepted("b", 1500, 2_000_000, SendStats(calls=1))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        progress.log_if_due(109.9, in_flight=3, limit=16, throttled_calls={})
        assert _messages(caplog) == []
        progress.log_if_due(110.0, in_flight=3, limit=16, throttled_calls={})
    (line,) = _messages(caplog)
    assert "2,000 records (3.0 MB) written, 200 records/s, 3 requests in flight (limit 16), 7 entries resent" in line
    assert "'a' 500, 'b' 1,500" in line
    assert progress.seconds_to_next(110.0) == PROGRESS_INTERVAL_SECONDS


def test_rate_is_over_the_last_interval(caplog: pytest.LogCaptureFixture) -> None:
    """The records/s of a line counts only what was accepted since the previous line."""
    progress = Progress(["a"], started=0.0)
    progress.accepted("a", 1000, 10, SendStats(calls=1))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        progress.log_if_due(10.0, 0, 4, {})
        progress.accepted("a", 5000, 10, SendStats(calls=1))
        progress.log_if_due(20.0, 0, 4, {})
    assert "500 records/s" in _messages(caplog)[-1]


def test_warns_once_when_a_stream_throttles_for_a_long_time(caplog: pytest.LogCaptureFixture) -> None:
    """Throttled in every interval for THROTTLED_WARNING_SECONDS: one warning naming the stream and what to do.
    A quiet interval resets the clock; another stream that never throttles gets no warning."""
    progress = Progress(["hot", "cold"], started=0.0)
    throttled = {"hot": 0}
    now = 0.0
    with caplog.at_level(logging.INFO, logger="airbyte"):
        for _ in range(3):  # throttled for 30 s, then a quiet interval
            now += PROGRESS_INTERVAL_SECONDS
            throttled["hot"] += 5
            progress.log_if_due(now, 1, 1, throttled)
        now += PROGRESS_INTERVAL_SECONDS
        progress.log_if_due(now, 1, 1, throttled)
        assert _messages(caplog, logging.WARNING) == []
        steps = int(THROTTLED_WARNING_SECONDS / PROGRESS_INTERVAL_SECONDS) + 3
        for _ in range(steps):
            now += PROGRESS_INTERVAL_SECONDS
            throttled["hot"] += 5
            progress.log_if_due(now, 1, 1, throttled)
    (warning,) = _messages(caplog, logging.WARNING)
    assert "'hot'" in warning and "add shards or use on-demand" in warning and "cold" not in warning


def test_summary_per_kinesis_stream(caplog: pytest.LogCaptureFixture) -> None:
    """One line per Kinesis stream with records, bytes, calls, resent entries and throttled requests; after a
    failure it says the counts are what was written before it."""
    progress = Progress(["a"], started=0.0)
    progress.accepted("a", 1234, 56789, SendStats(calls=3, resent_entries=2, throttled=1))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        progress.log_summary(succeeded=True)
        progress.log_summary(succeeded=False)
    done, failed = _messages(caplog)
    assert done == ("Kinesis stream 'a': 1,234 records (56,789 bytes) written in 3 PutRecords calls; 2 entries "
                    "resent, 1 throttled.")
    assert "written before the failure" in failed
