"""config: the typed configuration, its defaults, its errors, and compatibility with the Java 0.1.5 spec."""

from __future__ import annotations

import itertools
import json
from typing import Any

import jsonschema
import pytest

from destination_kinesis.config import DEFAULT_REGION, KinesisConfig, parse_config
from destination_kinesis.errors import ConnectorError
from unit_tests.conftest import REPO_ROOT, RESOURCES

ACCESS_KEY = "AKIA-TEST-ACCESS-KEY-7Q"
SECRET_KEY = "s3cr3t/PRIVATE+key-value-9Z"
CREDENTIALS = {"accessKey": ACCESS_KEY, "privateKey": SECRET_KEY}


def _spec(path: str) -> dict[str, Any]:
    return json.loads((REPO_ROOT / path).read_text())


def _connection_spec(path: str) -> dict[str, Any]:
    return _spec(path)["connectionSpecification"]


JAVA_SPEC = json.loads((RESOURCES / "java-0.1.5-spec.json").read_text())["connectionSpecification"]
OUR_SPEC = _connection_spec("destination_kinesis/spec.json")


def _config_error(raw: dict[str, Any]) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        parse_config(raw)
    assert caught.value.failure_type == "config_error"
    return caught.value


def test_defaults_when_optional_fields_are_missing() -> None:
    """Only the keys are required: shardCount 5, bufferSize 100, region us-east-1 and no endpoint by default."""
    config = parse_config(CREDENTIALS)
    assert config.shard_count == 5
    assert config.buffer_size == 100
    assert config.region == DEFAULT_REGION == "us-east-1"
    assert config.endpoint is None
    assert config.access_key.get_secret_value() == ACCESS_KEY
    assert config.private_key.get_secret_value() == SECRET_KEY


@pytest.mark.parametrize("region", ["", "   ", None])
def test_empty_region_means_us_east_1(region: str | None) -> None:
    """An empty (or blank, or null) region is read as "not set"."""
    assert parse_config({**CREDENTIALS, "region": region}).region == "us-east-1"


def test_region_is_trimmed() -> None:
    """Whitespace around a region name is dropped."""
    assert parse_config({**CREDENTIALS, "region": " eu-west-1 "}).region == "eu-west-1"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("", None),
        ("   ", None),
        ("localhost:4567", "https://localhost:4567"),
        ("kinesis.eu-west-1.amazonaws.com", "https://kinesis.eu-west-1.amazonaws.com"),
        ("http://localhost:4567", "http://localhost:4567"),
        (" https://vpce-1.kinesis.us-east-1.vpce.amazonaws.com ", "https://vpce-1.kinesis.us-east-1.vpce.amazonaws.com"),
    ],
)
def test_endpoint_normalisation(endpoint: str, expected: str | None) -> None:
    """An empty endpoint means AWS's own; one without a scheme gets https://."""
    assert parse_config({**CREDENTIALS, "endpoint": endpoint}).endpoint == expected


def test_explicit_values_are_kept_and_unknown_keys_ignored() -> None:
    """Values given are used as they are; keys the spec does not know are ignored, not refused."""
    config = parse_config({**CREDENTIALS, "shardCount": 0, "bufferSize": 500, "region": "ap-south-1",
                           "tunnel_method": {"tunnel_method": "NO_TUNNEL"}, "unknown": [1, 2]})
    assert (config.shard_count, config.buffer_size, config.region) == (0, 500, "ap-south-1")


@pytest.mark.parametrize("buffer_size", [0, -1, 501, 10_000, "abc", 1.5, None])
def test_bad_buffer_size_is_a_config_error_naming_the_field_and_no_secret(buffer_size: Any) -> None:
    """bufferSize outside 1..500 (or not a number) fails as config_error naming bufferSize, never the secrets."""
    error = _config_error({**CREDENTIALS, "bufferSize": buffer_size})
    for text in (error.message, str(error), error.internal_message or ""):
        assert ACCESS_KEY not in text and SECRET_KEY not in text
    assert "bufferSize" in error.message


@pytest.mark.parametrize("missing", ["accessKey", "privateKey"])
def test_missing_key_is_a_config_error_naming_it(missing: str) -> None:
    """A missing access key or private key is named in the config_error."""
    raw = dict(CREDENTIALS)
    del raw[missing]
    error = _config_error(raw)
    assert missing in error.message
    assert ACCESS_KEY not in error.message and SECRET_KEY not in error.message


def test_every_problem_is_named() -> None:
    """Several bad fields are all reported in one message."""
    error = _config_error({"privateKey": SECRET_KEY, "bufferSize": 0, "shardCount": "many"})
    assert all(field in error.message for field in ("accessKey", "bufferSize", "shardCount"))
    assert SECRET_KEY not in error.message


def test_config_is_frozen() -> None:
    """The parsed config cannot be changed after parsing."""
    config = parse_config(CREDENTIALS)
    with pytest.raises(Exception):  # noqa: B017 (pydantic's ValidationError for frozen instances)
        config.buffer_size = 7  # type: ignore[misc]
    assert config.buffer_size == 100


# --------------------------------------------------------------------------------------------------------------------
# spec.json
# --------------------------------------------------------------------------------------------------------------------


def test_top_level_spec_equals_packaged_spec() -> None:
    """spec.json at the repository top is the same document as the one shipped in the package."""
    assert _spec("spec.json") == _spec("destination_kinesis/spec.json")


def test_spec_properties_are_exactly_the_config_fields() -> None:
    """Every spec property is a KinesisConfig field (by alias) and every field is a spec property."""
    aliases = {field.alias or name for name, field in KinesisConfig.model_fields.items()}
    assert set(OUR_SPEC["properties"]) == aliases


def test_spec_defaults_and_bounds_match_the_model() -> None:
    """The defaults and bufferSize bounds the UI shows are those the parser applies."""
    props = OUR_SPEC["properties"]
    parsed = parse_config(CREDENTIALS)
    assert props["shardCount"]["default"] == parsed.shard_count
    assert props["bufferSize"]["default"] == parsed.buffer_size
    parse_config({**CREDENTIALS, "bufferSize": props["bufferSize"]["minimum"]})
    parse_config({**CREDENTIALS, "bufferSize": props["bufferSize"]["maximum"]})
    _config_error({**CREDENTIALS, "bufferSize": props["bufferSize"]["minimum"] - 1})
    _config_error({**CREDENTIALS, "bufferSize": props["bufferSize"]["maximum"] + 1})


def test_spec_keeps_the_java_spec_shape() -> None:
    """Every 0.1.5 property with its type and secrecy, the same required list, and new properties only optional
    ones with a default, so saved configs and UIs keep working."""
    assert set(JAVA_SPEC["properties"]) <= set(OUR_SPEC["properties"])
    assert OUR_SPEC["required"] == JAVA_SPEC["required"]
    for name in set(OUR_SPEC["properties"]) - set(JAVA_SPEC["properties"]):
        assert "default" in OUR_SPEC["properties"][name], name
    assert OUR_SPEC.get("additionalProperties", True) is True
    for name, java_prop in JAVA_SPEC["properties"].items():
        ours = OUR_SPEC["properties"][name]
        assert ours["type"] == java_prop["type"], name
        assert ours.get("airbyte_secret", False) == java_prop.get("airbyte_secret", False), name


# --------------------------------------------------------------------------------------------------------------------
# Compatibility: every config 0.1.5 accepted is accepted here, with the same meaning
# --------------------------------------------------------------------------------------------------------------------

ABSENT = object()
_ENDPOINTS = [ABSENT, "", " ", "localhost:4567", "http://localhost:4567"]
_REGIONS = [ABSENT, "", "us-east-1", " eu-west-1 "]
_SHARD_COUNTS = [ABSENT, 0, -1, -(2**31), 1, 5, 5.0, 2**31 - 1, 10**12, "5"]
_CREDENTIAL_PAIRS = [(ACCESS_KEY, SECRET_KEY), ("", ""), ABSENT]
_BUFFER_SIZES = [ABSENT, 1, 100, 500, 1.0, 500.0, 0, 501, "100"]
_EXTRAS: list[dict[str, Any]] = [{}, {"unknown": 1}, {"tunnel_method": {"tunnel_method": "NO_TUNNEL"}, "x": [None]}]


def _generated_configs() -> list[dict[str, Any]]:
    configs = []
    for endpoint, region, shards, creds, buffer, extra in itertools.product(
        _ENDPOINTS, _REGIONS, _SHARD_COUNTS, _CREDENTIAL_PAIRS, _BUFFER_SIZES, _EXTRAS
    ):
        raw: dict[str, Any] = dict(extra)
        for key, value in (("endpoint", endpoint), ("region", region), ("shardCount", shards), ("bufferSize", buffer)):
            if value is not ABSENT:
                raw[key] = value
        if creds is not ABSENT:
            raw["accessKey"], raw["privateKey"] = creds
        configs.append(raw)
    return configs


def test_every_java_0_1_5_config_is_valid_under_our_spec_and_parses() -> None:
    """Generated configs (optional fields present/absent, boundary and odd values, extra keys): each one the 0.1.5
    spec accepts is accepted by our spec.json and by parse_config, with the value it gave."""
    java, ours = jsonschema.Draft7Validator(JAVA_SPEC), jsonschema.Draft7Validator(OUR_SPEC)
    java_valid = 0
    for raw in _generated_configs():
        if not java.is_valid(raw):
            continue
        java_valid += 1
        assert ours.is_valid(raw), raw
        config = parse_config(raw)
        assert config.shard_count == raw["shardCount"] and isinstance(config.shard_count, int)
        assert config.buffer_size == raw["bufferSize"] and isinstance(config.buffer_size, int)
        assert config.access_key.get_secret_value() == raw["accessKey"]
        assert config.private_key.get_secret_value() == raw["privateKey"]
        region = raw.get("region", "").strip()
        assert config.region == (region or "us-east-1")
        endpoint = raw.get("endpoint", "").strip()
        assert config.endpoint == (None if not endpoint else endpoint if "://" in endpoint else f"https://{endpoint}")
    assert java_valid >= 1000  # the generator really produced many valid configs (not a vacuous pass)


def test_configs_the_java_spec_refuses_are_also_refused_by_ours() -> None:
    """Our spec is not looser than 0.1.5 on the fields it declares: a bufferSize out of range fails both."""
    java, ours = jsonschema.Draft7Validator(JAVA_SPEC), jsonschema.Draft7Validator(OUR_SPEC)
    for buffer_size in (0, 501, "100", 1.5):
        raw = {**CREDENTIALS, "shardCount": 1, "bufferSize": buffer_size}
        assert not java.is_valid(raw) and not ours.is_valid(raw)


def test_huge_integral_float_shard_count_from_a_java_config_parses() -> None:
    """1e30 is an integer for draft-07 JSON Schema, so 0.1.5's spec accepts it; parsing must not fail the sync."""
    raw = {**CREDENTIALS, "shardCount": 1e30, "bufferSize": 100}
    assert jsonschema.Draft7Validator(JAVA_SPEC).is_valid(raw)
    assert parse_config(raw).shard_count >= 1
