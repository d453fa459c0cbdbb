"""Scenario 6, hostile input: each bad input gets a clear error (or correct handling), and nothing past a bad line
is written or acknowledged.

test_write.py covers invalid JSON, a RECORD without ``data`` or with ``data`` not an object, a missing or float
``emitted_at``, an unknown stream and a record just over 1 MiB; the cases here are the rest of the issue's list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from destination_kinesis.limits import MIB

from .connector import (
    Sync,
    SyncResult,
    catalog,
    connector_config,
    error_traces,
    parse_messages,
    run_connector,
    unique,
    write_json,
)
from .inputs import EMITTED_AT, loads, record, stream_state
from .kinesis_emulator import Emulator, kinesis_client, read_stream
from .readback import assert_synced, kinesis_stream_name


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# case -> (stream name, marker) -> (line 3 as bytes, patterns its error message must all match). Line 3 is the last
# line and has no newline in the truncated case.
BAD_LINES: dict[str, Callable[[str, str], tuple[bytes, list[str]]]] = {
    "truncated_last_line": lambda name, marker: (
        json.dumps(record(name, {"m": marker}, EMITTED_AT + 2)).encode()[:-7], [r"\bline 3\b", "JSON"]),
    "non_utf8_bytes": lambda name, marker: (
        json.dumps(record(name, {"m": marker}, EMITTED_AT + 2)).encode().replace(marker.encode(), b"\xff\xfe\x80"),
        [r"\bline 3\b", "UTF-8"]),
    "record_of_2_mib": lambda name, marker: (
        json.dumps(record(name, {"m": marker, "blob": "x" * 2 * MIB}, EMITTED_AT + 2)).encode(),
        [r"\bline 3\b", re.escape(name), "limit"]),
    "line_of_100_mib": lambda name, marker: (
        json.dumps(record(name, {"m": marker, "blob": "y" * 100 * MIB}, EMITTED_AT + 2)).encode(),
        [r"\bline 3\b", "longer than"]),
    "nesting_10000_levels": lambda name, marker: (
        f'{{"type": "RECORD", "record": {{"stream": "{name}", "emitted_at": {EMITTED_AT + 2}, '
        f'"data": {{"m": "{marker}", "deep": {nested(10_000)}}}}}}}'.encode(),
        [r"\bline 3\b", "nest"]),
    "nan_literal": lambda name, marker: (
        f'{{"type": "RECORD", "record": {{"stream": "{name}", "emitted_at": {EMITTED_AT + 2}, '
        f'"data": {{"m": "{marker}", "x": NaN}}}}}}'.encode(),
        [r"\bline 3\b", "NaN"]),
    "infinity_literal": lambda name, marker: (
        f'{{"type": "RECORD", "record": {{"stream": "{name}", "emitted_at": {EMITTED_AT + 2}, '
        f'"data": {{"m": "{marker}", "x": -Infinity}}}}}}'.encode(),
        [r"\bline 3\b", "Infinity"]),
}


def written_markers(endpoint: str, name: str) -> list[str]:
    """The ``m`` of each record in the Kinesis stream of ``name``."""
    items = read_stream(endpoint, kinesis_stream_name(None, name))
    return [loads(item["data"])["_airbyte_data"].get("m") for item in items]


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_bad_line(kinesalite: Emulator, sync: Sync, case: str) -> None:
    """Line 3 is bad; lines 1-2 are a record and its state, lines 4-5 another. The sync fails with exit code 1 and
    one system_error TRACE naming line 3 and the problem, without quoting the record. Only state 1 may come out,
    and only if record 1 is in Kinesis; nothing from line 3 on is in Kinesis."""
    name, marker = unique("hostile"), unique("MARKER")
    bad_line, patterns = BAD_LINES[case](name, marker)
    lines = [json.dumps(record(name, {"m": "first"}, EMITTED_AT + 1)).encode(),
             json.dumps(stream_state(1, name)).encode(), bad_line]
    if case != "truncated_last_line":
        lines += [json.dumps(record(name, {"m": "after"}, EMITTED_AT + 3)).encode(),
                  json.dumps(stream_state(2, name)).encode(), b""]

    result = sync([(None, name)], b"\n".join(lines), timeout=180)

    assert result.process.returncode == 1, result.describe()
    traces = error_traces(result.messages)
    assert len(traces) == 1, result.describe()
    error = traces[0]["error"]
    assert error["failure_type"] == "system_error", error
    assert all(re.search(p, error["message"], re.IGNORECASE) for p in patterns), (patterns, error["message"])
    output = result.process.stdout + result.process.stderr
    assert marker.encode() not in output, "the output quotes the bad record"
    assert len(output) < 1 * MIB, "the output echoes the input"
    states = [state["state"]["id"] for state in result.states]
    assert states in ([], [1]), f"states after the bad line came out: {states}"
    written = written_markers(kinesalite.endpoint, name)
    assert set(written) <= {"first"}, f"records from the bad line on were written: {written}"
    assert states == [] or written == ["first"], "state 1 came out but its record is not in Kinesis"


def test_last_line_without_newline_is_written(kinesalite: Emulator, sync: Sync) -> None:
    """A complete last line without a newline is a line like any other: written, and its state comes out."""
    name = unique("no_newline")
    lines = [json.dumps(record(name, {"m": i}, EMITTED_AT + i)) for i in range(3)]
    stdin = "\n".join([*lines, json.dumps(stream_state(1, name))]).encode()  # no newline at the end
    assert_synced(kinesalite.endpoint, stdin, sync([(None, name)], stdin))


def test_duplicate_keys_keep_the_last_value(kinesalite: Emulator, sync: Sync) -> None:
    """Duplicate keys, in ``data`` and in the message itself (``stream``, ``data``), on the fast path and on the
    exact path (a 30-digit number sends a line there): the sync succeeds and a consumer that reads JSON the usual
    way (the last of duplicate keys wins, as json, orjson and JavaScript do) reads what the source meant."""
    name = unique("dup_keys")
    big = "123456789012345678901234567890"
    lines = [
        f'{{"type": "RECORD", "record": {{"stream": "{name}", "emitted_at": {EMITTED_AT + 1}, '
        f'"data": {{"a": 1, "a": 2, "b": {{"c": 1, "c": [3]}}}}}}}}',
        f'{{"type": "RECORD", "record": {{"stream": "{name}", "emitted_at": {EMITTED_AT + 2}, '
        f'"data": {{"a": {big}, "a": 2, "b": {{"c": 1, "c": [3]}}}}}}}}',
        f'{{"type": "RECORD", "record": {{"stream": "ghost", "stream": "{name}", "emitted_at": {EMITTED_AT + 3}, '
        f'"data": {{"x": 1}}, "data": {{"x": 2}}}}}}',
        f'{{"type": "RECORD", "record": {{"stream": "ghost", "stream": "{name}", "emitted_at": {EMITTED_AT + 4}, '
        f'"data": {{"x": {big}}}, "data": {{"x": 2}}}}}}',
        json.dumps(stream_state(1, name)),
    ]
    stdin = "\n".join(lines).encode() + b"\n"
    assert_synced(kinesalite.endpoint, stdin, sync([(None, name)], stdin))


def run_write(tmp_path: Path, config_path: Path, catalog_path: Path, name: str) -> SyncResult:
    stdin = (json.dumps(record(name, {"m": 1}, EMITTED_AT)) + "\n" + json.dumps(stream_state(1, name)) + "\n").encode()
    process = run_connector(["write", "--config", str(config_path), "--catalog", str(catalog_path)], stdin)
    return SyncResult(process, parse_messages(process.stdout))


FILE_CASES = {
    # case: (what goes wrong, failure_type, patterns the message must match; {path} is the bad file)
    "catalog_missing": ("catalog", "system_error", [r"catalog file '{path}'", "No such file"]),
    "catalog_not_json": ("catalog", "system_error", [r"catalog file '{path}'", "not valid JSON"]),
    "catalog_not_a_catalog": ("catalog", "system_error", [r"catalog file '{path}'", r"streams\.0\.stream\.name"]),
    "config_not_json": ("config", "config_error", [r"config file '{path}'", "JSON"]),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_bad_file(kinesalite: Emulator, tmp_path: Path, case: str) -> None:
    """A catalog file that is missing, not JSON or not a catalog, or a config file that is not JSON: exit code 1, one
    TRACE of the right failure type naming the file and the problem, no state, no stream created, no secret."""
    name = unique("bad_file")
    config = connector_config(kinesalite.endpoint)
    config_path = write_json(tmp_path / "config.json", config)
    catalog_path = write_json(tmp_path / "catalog.json", catalog([(None, name)]))
    which, failure_type, patterns = FILE_CASES[case]
    bad = config_path if which == "config" else catalog_path
    if case == "catalog_missing":
        bad.unlink()
    elif case == "catalog_not_a_catalog":
        write_json(bad, {"streams": [{"stream": {"namespace": None}, "destination_sync_mode": "append"}]})
    else:
        bad.write_text(bad.read_text()[:-1])  # cut the closing brace; for the config, the secrets are still in it

    result = run_write(tmp_path, config_path, catalog_path, name)

    assert result.process.returncode == 1, result.describe()
    traces = error_traces(result.messages)
    assert len(traces) == 1, result.describe()
    error = traces[0]["error"]
    assert error["failure_type"] == failure_type, error
    for pattern in patterns:
        assert re.search(pattern.format(path=re.escape(str(bad))), error["message"]), (pattern, error["message"])
    assert not result.states
    streams = kinesis_client(kinesalite.endpoint).list_streams(Limit=10_000)["StreamNames"]
    assert kinesis_stream_name(None, name) not in streams
    output = result.process.stdout + result.process.stderr
    for key in ("accessKey", "privateKey"):
        assert config[key].encode() not in output, f"{key} leaked"
