"""partition: per-stream key rules from config and catalog, and deterministic keys from record data."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from decimal import Decimal
from typing import Any

import pytest

from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.config import parse_config
from destination_kinesis.errors import ConnectorError
from destination_kinesis.messages import Record, parse_line
from destination_kinesis.partition import RANDOM, KeyRule, Partitioner, key_rules, key_text
from unit_tests.conftest import record_line

AB_ID = b"0f1e2d3c-4b5a-4968-8776-655443322110"


def _catalog(*streams: tuple[str, str | None, list[list[str]] | None]) -> ConfiguredCatalog:
    return ConfiguredCatalog.model_validate({"streams": [
        {"stream": {"name": name}, "destination_sync_mode": mode, "primary_key": pk} for name, mode, pk in streams]})


def _record(data: str) -> Record:
    parsed = parse_line(record_line(data), 7)
    assert isinstance(parsed, Record)
    return parsed


# ---------------------------------------------------------------- rules


def test_default_is_primary_key_for_append_dedup_with_a_primary_key_and_random_otherwise() -> None:
    catalog = _catalog(("dedup", "append_dedup", [["id"], ["meta", "region"]]), ("plain", "append", [["id"]]),
                       ("dedup_no_pk", "append_dedup", None), ("none", None, None))
    rules = key_rules(parse_config({}), catalog.streams)
    assert rules[(None, "dedup")] == KeyRule("primary_key", (("id",), ("meta", "region")))
    assert {rules[(None, name)] for name in ("plain", "dedup_no_pk", "none")} == {RANDOM}
    assert rules[(None, "dedup")].describe() == "primary key id, meta.region"


def test_explicit_choice_applies_to_every_stream() -> None:
    catalog = _catalog(("dedup", "append_dedup", [["id"]]), ("plain", "append", [["id"]]))
    assert set(key_rules(parse_config({"partitionKey": "random"}), catalog.streams).values()) == {RANDOM}
    fields = parse_config({"partitionKey": "fields", "partitionKeyFields": ["customer.id"],
                           "partitionKeyMissing": "fail"})
    assert set(key_rules(fields, catalog.streams).values()) == {KeyRule("fields", (("customer", "id"),), True)}
    pk = key_rules(parse_config({"partitionKey": "primary_key"}), catalog.streams)
    assert pk[(None, "plain")] == KeyRule("primary_key", (("id",),))


def test_primary_key_without_one_in_the_catalog_is_a_config_error_naming_the_streams() -> None:
    catalog = _catalog(("has", "append", [["id"]]), ("lacks_a", "append", None), ("lacks_b", "append", []))
    with pytest.raises(ConnectorError) as caught:
        key_rules(parse_config({"partitionKey": "primary_key"}), catalog.streams)
    assert caught.value.failure_type == "config_error"
    assert "'lacks_a'" in caught.value.message and "'lacks_b'" in caught.value.message
    assert "'has'" not in caught.value.message


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(("values", "key"), [
    ([17], "17"),
    (["eu", 17], '"eu",17'),
    ([{"b": [True, None], "a": 1}], '{"a":1,"b":[true,null]}'),
    ([2.5, 100.0, -0.0], "2.5,100.0,-0.0"),
    (["a,b", "c"], '"a,b","c"'),  # the separator inside a value stays unambiguous: it is inside a JSON string
    (["é\"\n"], '"é\\"\\n"'),
    ([None], "null"),
])
def test_key_text_joins_json_values(values: list[Any], key: str) -> None:
    assert key_text(values) == key


def test_same_value_different_spelling_same_key_on_both_paths() -> None:
    """The fast path (orjson) and the exact path (big numbers elsewhere on the line) give equal keys for equal
    values, whatever the source's spelling."""
    rule = Partitioner((None, "s"), KeyRule("fields", (("v",),)))
    big = ',"big":123456789012345678901234567890'
    for spelling in ("2.50", "2.5", "25e-1"):
        fast, exact = _record(f'{{"v":{spelling}}}'), _record(f'{{"v":{spelling}{big}}}')
        assert fast.data is not None and exact.raw_data is not None
        assert rule.key(fast, AB_ID) == rule.key(exact, AB_ID) == b"2.5"
    assert rule.key(_record('{"v":1E2}'), AB_ID) == rule.key(_record('{"v":1E2' + big + "}"), AB_ID) == b"100.0"


@pytest.mark.parametrize("spelling", ["2.50", "0.1", "-0.0", "5", "5.0", "-0", "1E2", "25e-1", "123456789012345",
                                      "1234567890123456789", "0.30000000000000004", "[1.5,{\"a\":-2.0}]"])
def test_raw_data_gives_the_key_of_the_exact_parse(spelling: str) -> None:
    """Data copied as written (the writer's fast path for routes with options) is parsed by orjson when that is
    exact, else by the stdlib with Decimals: either way the key is the one the exact parse gives."""
    rule = Partitioner((None, "s"), KeyRule("fields", (("v",),)))
    raw = f'{{"v":{spelling}}}'.encode()
    record = Record((None, "s"), 1, None, raw, 1)
    assert rule.key(record, AB_ID) == key_text([json.loads(raw, parse_float=Decimal)["v"]]).encode()


@pytest.mark.parametrize(("data", "key"), [
    ('{"v":123456789012345678901234567890}', b"123456789012345678901234567890"),
    ('{"v":1e400}', b"1E+400"),
    ('{"v":1234567890.123456789012345678901234567890}', b"1234567890.12345678901234567890123456789"),
    ('{"v":"\\ud800x"}', b'"\\ud800x"'),
])
def test_exact_values_keep_every_digit_and_lone_surrogates_become_escapes(data: str, key: bytes) -> None:
    rule = Partitioner((None, "s"), KeyRule("fields", (("v",),)))
    assert rule.key(_record(data), AB_ID) == key


def test_key_over_256_characters_is_its_sha256() -> None:
    short, long = "x" * 254, "é" * 255  # 256 and 257 characters with the quotes
    assert key_text([short]) == f'"{short}"'
    assert key_text([long]) == hashlib.sha256(f'"{long}"'.encode()).hexdigest()


def test_keys_are_the_same_in_another_process() -> None:
    """No per-process state (hash seeds, dict order) enters a key."""
    data = '{"b":{"y":[1,{"q":2,"p":"z"}],"x":"é"},"a":1e400}'
    script = ("import sys; from unit_tests.test_partition import _record, AB_ID; "
              "from destination_kinesis.partition import Partitioner, KeyRule; "
              "r = Partitioner((None, 's'), KeyRule('fields', (('b',), ('a',)))); "
              f"sys.stdout.write(r.key(_record({data!r}), AB_ID).decode())")
    keys = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert keys == {'{"x":"é","y":[1,{"p":"z","q":2}]},1E+400'}


def test_missing_field_falls_back_to_the_ab_id_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    partitioner = Partitioner((None, "s"), KeyRule("primary_key", (("customer", "id"),)))
    with caplog.at_level(logging.INFO, logger="airbyte"):
        keys = [partitioner.key(_record(data), AB_ID) for data in
                ('{"customer":{"id":5}}', '{"customer":{}}', '{"customer":"SECRETVALUE"}', '{"customer":{"id":null}}')]
    assert keys == [b"5", AB_ID, AB_ID, b"null"]
    assert partitioner.fallbacks == 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert "'s'" in message and "line 7" in message and "customer.id" in message and "SECRETVALUE" not in message


def test_missing_field_fails_when_asked_naming_stream_line_and_field() -> None:
    partitioner = Partitioner((None, "s"), KeyRule("fields", (("id",),), fail_when_missing=True))
    with pytest.raises(ConnectorError) as caught:
        partitioner.key(_record('{"other":"SECRETVALUE"}'), AB_ID)
    message = caught.value.message
    assert "line 7" in message and "'s'" in message and "'id'" in message and "SECRETVALUE" not in message


def test_random_rule_keeps_the_ab_id() -> None:
    assert Partitioner((None, "s"), RANDOM).key(_record('{"id":1}'), AB_ID) == AB_ID


def test_exact_path_key_ignores_json_whitespace() -> None:
    rule = Partitioner((None, "s"), KeyRule("fields", (("a",), ("b",))))
    spaced = _record('{ "b" : [ 1 , 2 ] , "a" : 123456789012345678901234567890 }')
    assert spaced.raw_data is not None
    assert rule.key(spaced, AB_ID) == b"123456789012345678901234567890,[1,2]"
