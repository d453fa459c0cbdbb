"""partition: per-stream key rules from config and catalog."""

from __future__ import annotations

import pytest

from destination_kinesis.catalog import ConfiguredCatalog
from destination_kinesis.config import parse_config
from destination_kinesis.encoder import RANDOM, KeyRule
from destination_kinesis.errors import ConnectorError
from destination_kinesis.partition import key_rules


def _catalog(*streams: tuple[str, str | None, list[list[str]] | None]) -> ConfiguredCatalog:
    return ConfiguredCatalog.model_validate({"streams": [
        {"stream": {"name": name}, "destination_sync_mode": mode, "primary_key": pk} for name, mode, pk in streams]})


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
