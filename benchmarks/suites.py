"""The target lists of issue 16 (record aggregation) and issue 17 (order per key), run by ``bench.py
--suite-aggregation`` and ``--suite-ordering`` from the measurements bench.py makes (see its docstring).

Each suite returns the shard-limited runs, the other runs and a target list, as ``bench.run_suite_limits`` does; the
targets are each issue's own, for its own inputs (``--scale`` shrinks the record counts for a quick trial).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench import (
    CAPACITY_TARGET,
    THROTTLED_TARGET_PERCENT,
    UNPACED_SHARDS,
    Limited,
    Result,
    Setup,
    best,
    data_size,
    measure_limited_pair,
    measure_mode,
)

AGGREGATED = {"aggregation": "kpl"}
#: Issue 16: aggregated 400-byte records at least this many times the unaggregated capacity.
AGGREGATED_CAPACITY = 2.3
#: Issue 16: at most this many PUT payload units per million aggregated 400-byte records.
UNITS_PER_MILLION = 20_000
#: Issue 16: aggregated 5,000-byte records use at least this many times fewer PUT units than unaggregated.
FEWER_UNITS = 4.0
PER_KEY = {"partitionKey": "fields", "partitionKeyFields": ["k"], "ordering": "per_key"}


def _measure(setups: list[Setup], args: argparse.Namespace, workdir: Path, inputs: Any) -> list[Limited]:
    runs: list[Limited] = []
    for setup in setups:
        inp = inputs(setup.records, args.state_every, data_size(setup.record_bytes), setup.keys)
        runs += measure_limited_pair(setup, inp, args, workdir, baseline=False)
    return runs


def _instant(args: argparse.Namespace, workdir: Path, inputs: Any, shards: int, config: dict[str, Any],
             records: int, keys: str = "random") -> list[Result]:
    instant_args = argparse.Namespace(**{**vars(args), "shards": shards, "buffer_size": 500,
                                         "connector_config": config})
    return measure_mode("instant", inputs(records, args.state_every, 400, keys), instant_args, workdir,
                        ceiling=False, baseline=False)


def _every_run(runs: list[Limited]) -> list[tuple]:
    return [
        ("every shard-limited run: nothing lost", "all", sum(r.lost == 0 for r in runs), len(runs), "all"),
        ("every shard-limited run: every state, none early", "all",
         sum(r.states == r.states_expected and not r.early_states for r in runs), len(runs), "all"),
    ]


def run_suite_aggregation(args: argparse.Namespace, workdir: Path,
                          inputs: Any) -> tuple[list[Limited], list[Result], list[tuple]]:
    """Issue 16: 2 shards, random keys, 400- and 5,000-byte records aggregated (5,000-byte ones also unaggregated,
    for the PUT units), then the aggregated path against the instant endpoint (256 shards, 1M records)."""
    scale = args.scale
    small = Setup(2, max(1, round(60_000 * scale)), 400, 500, config=AGGREGATED)
    large = Setup(2, max(1, round(30_000 * scale)), 5000, 500, config=AGGREGATED)
    large_plain = Setup(2, max(1, round(30_000 * scale)), 5000, 500)
    limited = _measure([small, large, large_plain], args, workdir, inputs)
    records = max(1, round(1_000_000 * scale))
    instant = _instant(args, workdir, inputs, UNPACED_SHARDS["instant"], AGGREGATED, records)
    run_small, run_large, run_plain = (next((r for r in limited if r.setup == s), None)
                                       for s in (small, large, large_plain))
    fewer = None
    if run_large and run_plain and run_large.put_units and run_plain.put_units:
        fewer = run_plain.put_units / run_large.put_units
    fastest = best(instant, "instant", "connector")
    targets: list[tuple] = [
        ("400 B aggregated: rec/s ÷ unaggregated capacity", f"≥ {AGGREGATED_CAPACITY}",
         run_small and run_small.of_capacity, AGGREGATED_CAPACITY, "min"),
        ("  Kinesis records throttled, %", f"≤ {THROTTLED_TARGET_PERCENT:g}", run_small and run_small.throttled_percent,
         THROTTLED_TARGET_PERCENT, "max"),
        ("  PUT payload units per million records", f"≤ {UNITS_PER_MILLION:,}",
         run_small and run_small.units_per_million, UNITS_PER_MILLION, "max"),
        ("5,000 B aggregated: rec/s ÷ capacity (bytes bind)", f"≥ {CAPACITY_TARGET}",
         run_large and run_large.of_capacity, CAPACITY_TARGET, "min"),
        ("  throttled, %", f"≤ {THROTTLED_TARGET_PERCENT:g}", run_large and run_large.throttled_percent,
         THROTTLED_TARGET_PERCENT, "max"),
        ("  PUT units unaggregated ÷ aggregated", f"≥ {FEWER_UNITS:g}", fewer, FEWER_UNITS, "min"),
        (f"instant {records:,}, {UNPACED_SHARDS['instant']} shards, aggregated: rec/s", "≥ 150,000",
         fastest and fastest.rate, 150_000, "min"),
        ("  connector CPU µs/record", "≤ 5", fastest and fastest.cpu_us, 5.0, "max"),
        ("  verified (records, states)", "all", sum(r.ok for r in instant), len(instant), "all"),
        *_every_run([r for r in limited if r.what == "connector"]),
    ]
    return limited, instant, targets


def run_suite_ordering(args: argparse.Namespace, workdir: Path,
                       inputs: Any) -> tuple[list[Limited], list[Result], list[tuple]]:
    """Issue 17: ``ordering`` per_key with keys from a field of 10,007 values, 400-byte records on 2 and 8 shards;
    one hot key (90 % of the records) in order, which goes one record per round trip; then the instant endpoint with
    64 shards, per_key beside none."""
    scale = args.scale
    two = Setup(2, max(1, round(60_000 * scale)), 400, 500, keys="many", config=PER_KEY)
    eight = Setup(8, max(1, round(160_000 * scale)), 400, 500, keys="many", config=PER_KEY)
    hot = Setup(2, max(1, round(3_000 * scale)), 400, 500, keys="hot", config=PER_KEY)
    limited = _measure([two, eight, hot], args, workdir, inputs)
    records = max(1, round(1_000_000 * scale))
    per_key = _instant(args, workdir, inputs, 64, PER_KEY, records, keys="many")
    none = _instant(args, workdir, inputs, 64, {**PER_KEY, "ordering": "none"}, records, keys="many")
    run_two, run_eight, run_hot = (next((r for r in limited if r.setup == s), None) for s in (two, eight, hot))
    fast_key, fast_none = best(per_key, "instant", "connector"), best(none, "instant", "connector")
    hot_rate = None
    if run_hot is not None and run_hot.window_s:
        hot_rate = run_hot.hot_accepted / run_hot.window_s
    targets: list[tuple] = [
        ("per_key, 2 shards, 400 B: rec/s ÷ capacity", f"≥ {CAPACITY_TARGET}", run_two and run_two.of_capacity,
         CAPACITY_TARGET, "min"),
        ("  throttled, %", f"≤ {THROTTLED_TARGET_PERCENT:g}", run_two and run_two.throttled_percent,
         THROTTLED_TARGET_PERCENT, "max"),
        ("per_key, 8 shards, 400 B: rec/s ÷ capacity", f"≥ {CAPACITY_TARGET}", run_eight and run_eight.of_capacity,
         CAPACITY_TARGET, "min"),
        ("  throttled, %", f"≤ {THROTTLED_TARGET_PERCENT:g}", run_eight and run_eight.throttled_percent,
         THROTTLED_TARGET_PERCENT, "max"),
        ("per_key, one hot key: its records/s (reference: one per round trip)", "", hot_rate, None, ""),
        (f"instant {records:,}, 64 shards: per_key rec/s (reference)", "", fast_key and fast_key.rate, None, ""),
        ("  none rec/s (reference)", "", fast_none and fast_none.rate, None, ""),
        ("  per_key CPU µs/record (reference)", "", fast_key and fast_key.cpu_us, None, ""),
        ("  none CPU µs/record (reference)", "", fast_none and fast_none.cpu_us, None, ""),
        ("  verified (records, states)", "all", sum(r.ok for r in per_key + none), len(per_key + none), "all"),
        *_every_run([r for r in limited if r.what == "connector"]),
    ]
    return limited, [*per_key, *none], targets
