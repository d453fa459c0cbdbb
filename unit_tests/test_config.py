"""config: the typed configuration, its defaults, its errors, and compatibility with the Java 0.1.5 spec."""

from __future__ import annotations

import itertools
import json
from typing import Any

import jsonschema
import pytest
from pydantic import SecretStr

from destination_kinesis.config import (
    DEFAULT_RETRY_TIMEOUT_SECONDS,
    ROLE_ARN_PATTERN,
    ROLE_SESSION_NAME_PATTERN,
    KinesisConfig,
    parse_config,
)
from destination_kinesis.errors import ConnectorError
from unit_tests.paths import REPO_ROOT, RESOURCES

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
    """Nothing is required: shardCount 5, bufferSize 100, no region (the chain's, see client), no endpoint, the
    default credential chain, no role, provisioned streams created when missing, 0.1.5's names, no tags, and
    batches retried for 300 s."""
    config = parse_config({})
    assert (config.shard_count, config.buffer_size, config.region, config.endpoint) == (5, 100, None, None)
    assert (config.access_key, config.private_key) == (None, None)
    assert (config.role_arn, config.external_id, config.role_session_name) == (None, None, "destination-kinesis")
    assert (config.stream_mode, config.create_streams) == ("provisioned", True)
    assert config.stream_name_template == "{namespace}_{stream}" and config.name_template.fixed_name is None
    assert config.tags == {}
    assert config.retry_timeout_seconds == DEFAULT_RETRY_TIMEOUT_SECONDS == 300
    assert (config.partition_key, config.partition_key_fields, config.partition_key_missing) == (None, (), "fallback")
    assert (config.data_format, config.compression, config.oversize_records) == ("object", "none", "fail")


def test_keys_are_kept_as_given() -> None:
    """Static keys are used as they are."""
    config = parse_config(CREDENTIALS)
    assert config.access_key is not None and config.access_key.get_secret_value() == ACCESS_KEY
    assert config.private_key is not None and config.private_key.get_secret_value() == SECRET_KEY


@pytest.mark.parametrize("region", ["", "   ", None])
def test_empty_region_means_not_set(region: str | None) -> None:
    """An empty (or blank, or null) region is read as "not set" (the client then takes the chain's or us-east-1)."""
    assert parse_config({**CREDENTIALS, "region": region}).region is None


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


@pytest.mark.parametrize("keys", [{}, {"accessKey": "", "privateKey": ""}, {"accessKey": None, "privateKey": None}])
def test_without_keys_the_default_chain_is_used(keys: dict[str, Any]) -> None:
    """Absent, empty or null keys are "not set": the AWS default chain provides credentials (boto3 read empty keys
    that way under 0.1.5's config too)."""
    config = parse_config(keys)
    assert config.access_key is None and config.private_key is None


def test_every_problem_is_named() -> None:
    """Several bad fields are all reported in one message."""
    error = _config_error({"privateKey": SECRET_KEY, "bufferSize": 0, "shardCount": "many", "streamMode": "fast"})
    assert all(field in error.message for field in ("streamMode", "bufferSize", "shardCount"))
    assert SECRET_KEY not in error.message


def test_config_is_frozen() -> None:
    """The parsed config cannot be changed after parsing."""
    config = parse_config(CREDENTIALS)
    with pytest.raises(Exception):  # noqa: B017 (pydantic's ValidationError for frozen instances)
        config.buffer_size = 7
    assert config.buffer_size == 100


ROLE_ARN = "arn:aws:iam::123456789012:role/path/airbyte-writer"
EXTERNAL_ID = "ext-id-secret-4711"


def test_assume_role_settings() -> None:
    """roleArn, externalId (a secret) and roleSessionName are read as given; blank ones are "not set"."""
    config = parse_config({"roleArn": f" {ROLE_ARN} ", "externalId": EXTERNAL_ID, "roleSessionName": "nightly.sync"})
    assert config.role_arn == ROLE_ARN and config.role_session_name == "nightly.sync"
    assert config.external_id is not None and config.external_id.get_secret_value() == EXTERNAL_ID
    assert EXTERNAL_ID not in repr(config)
    blank = parse_config({"roleArn": "", "externalId": "", "roleSessionName": " "})
    assert (blank.role_arn, blank.external_id, blank.role_session_name) == (None, None, "destination-kinesis")


@pytest.mark.parametrize(("raw", "field"), [
    ({"roleArn": "arn:aws:iam::123:role/short-account"}, "roleArn"),
    ({"roleArn": "arn:aws:iam::123456789012:user/not-a-role"}, "roleArn"),
    ({"roleArn": ROLE_ARN, "roleSessionName": "x"}, "roleSessionName"),
    ({"roleArn": ROLE_ARN, "roleSessionName": "has space"}, "roleSessionName"),
    ({"roleArn": ROLE_ARN, "externalId": "x"}, "externalId"),
    ({"roleArn": ROLE_ARN, "externalId": "x" * 1225}, "externalId"),
    ({"externalId": EXTERNAL_ID}, "roleArn"),
])
def test_bad_role_settings_are_named(raw: dict[str, Any], field: str) -> None:
    """A malformed role ARN or session name, an external ID of the wrong length, or an external ID without a role
    fails naming the field, never the external ID's value."""
    error = _config_error(raw)
    assert field in error.message
    assert EXTERNAL_ID not in error.message and "x" * 20 not in error.message


def test_stream_options() -> None:
    """streamMode, createStreams, streamNameTemplate, streamTags and retryTimeoutSeconds are read as given."""
    config = parse_config({"streamMode": "on_demand", "createStreams": False, "streamNameTemplate": " prod.{stream} ",
                           "streamTags": [{"key": "team", "value": "data"}, {"key": "cost-center"}],
                           "retryTimeoutSeconds": 45.0})
    assert (config.stream_mode, config.create_streams) == ("on_demand", False)
    assert config.stream_name_template == "prod.{stream}"
    assert config.name_template.reduced(("x", "a b")) == "prod.a_b"
    assert config.tags == {"team": "data", "cost-center": ""}
    assert config.retry_timeout_seconds == 45 and isinstance(config.retry_timeout_seconds, int)
    assert parse_config({"streamNameTemplate": ""}).stream_name_template == "{namespace}_{stream}"


@pytest.mark.parametrize(("raw", "field", "words"), [
    ({"streamMode": "ON-DEMAND"}, "streamMode", ["on_demand"]),
    ({"createStreams": "maybe"}, "createStreams", []),
    ({"streamNameTemplate": "{table}"}, "streamNameTemplate", ["{table}"]),
    ({"streamNameTemplate": "a/b"}, "streamNameTemplate", ["'/'"]),
    ({"streamTags": [{"key": ""}]}, "streamTags.0.key", []),
    ({"streamTags": [{"key": "k" * 129}]}, "streamTags.0.key", []),
    ({"streamTags": [{"key": "k", "value": "v" * 257}]}, "streamTags.0.value", []),
    ({"streamTags": [{"key": "k", "value": "<script>"}]}, "streamTags.0.value", []),
    ({"streamTags": [{"key": "aws:created-by"}]}, "streamTags.0.key", ["reserved"]),
    ({"streamTags": [{"key": "a"}, {"key": "b"}, {"key": "a"}]}, "streamTags", ["repeated: a"]),
    ({"streamTags": [{"key": f"k{i}"} for i in range(51)]}, "streamTags", ["50"]),
    ({"streamTags": [{"key": "k", "colour": "red"}]}, "streamTags.0.colour", []),
    ({"retryTimeoutSeconds": 0}, "retryTimeoutSeconds", ["1"]),
    ({"retryTimeoutSeconds": 1.5}, "retryTimeoutSeconds", []),
])
def test_bad_stream_options_are_named(raw: dict[str, Any], field: str, words: list[str]) -> None:
    """Each bad value fails parsing with the field's path and what is wrong."""
    error = _config_error(raw)
    assert f"{field}:" in error.message, error.message
    assert "Value error," not in error.message
    for word in words:
        assert word in error.message, (word, error.message)


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
    """The defaults, bounds, choices and patterns the UI shows are those the parser applies."""
    props = OUR_SPEC["properties"]
    parsed = parse_config(CREDENTIALS)
    for field_name, field in KinesisConfig.model_fields.items():
        if "default" in props[field.alias or field_name]:
            assert props[field.alias or field_name]["default"] == getattr(parsed, field_name), field_name
    assert props["streamMode"]["enum"] == ["provisioned", "on_demand"]
    assert props["roleArn"]["pattern"] == ROLE_ARN_PATTERN
    assert props["roleSessionName"]["pattern"] == ROLE_SESSION_NAME_PATTERN
    assert props["externalId"].get("airbyte_secret") is True
    parse_config({"retryTimeoutSeconds": props["retryTimeoutSeconds"]["minimum"]})
    _config_error({"retryTimeoutSeconds": props["retryTimeoutSeconds"]["minimum"] - 1})
    parse_config({"streamTags": [{"key": str(i)} for i in range(props["streamTags"]["maxItems"])]})
    _config_error({"streamTags": [{"key": str(i)} for i in range(props["streamTags"]["maxItems"] + 1)]})
    parse_config({**CREDENTIALS, "bufferSize": props["bufferSize"]["minimum"]})
    parse_config({**CREDENTIALS, "bufferSize": props["bufferSize"]["maximum"]})
    _config_error({**CREDENTIALS, "bufferSize": props["bufferSize"]["minimum"] - 1})
    _config_error({**CREDENTIALS, "bufferSize": props["bufferSize"]["maximum"] + 1})


def test_spec_requires_what_check_and_write_require() -> None:
    """spec, check and write agree: the spec requires exactly the fields the parser (which check and write share)
    cannot do without, and a config without any one optional property parses. Today that is none: shardCount and
    bufferSize have their defaults (0.1.5 required them, so every 0.1.5 config still has them)."""
    required = {field.alias or name for name, field in KinesisConfig.model_fields.items() if field.is_required()}
    assert set(OUR_SPEC["required"]) == required == set()
    for key in OUR_SPEC["properties"]:
        parse_config({k: v for k, v in {**CREDENTIALS, "shardCount": 2, "bufferSize": 7}.items() if k != key})


def test_spec_keeps_the_java_spec_shape() -> None:
    """0.1.5's properties with their types and secrets, nothing required that 0.1.5 did not require, and only
    optional properties added, so saved configs and UIs keep working."""
    assert set(JAVA_SPEC["properties"]) <= set(OUR_SPEC["properties"])
    assert set(OUR_SPEC["required"]) <= set(JAVA_SPEC["required"])
    assert OUR_SPEC.get("additionalProperties", True) is True
    for name, java_prop in JAVA_SPEC["properties"].items():
        ours = OUR_SPEC["properties"][name]
        assert ours["type"] == java_prop["type"], name
        assert ours.get("airbyte_secret", False) == java_prop.get("airbyte_secret", False), name


# --------------------------------------------------------------------------------------------------------------------
# Compatibility: every config 0.1.5 accepted is accepted here, with the same meaning
# --------------------------------------------------------------------------------------------------------------------

ABSENT = object()
NEW_FIELDS = {"role_arn", "external_id", "role_session_name", "stream_mode", "create_streams", "stream_name_template",
              "stream_tags", "retry_timeout_seconds"}
NEW_DEFAULTS = {"role_arn": None, "external_id": None, "role_session_name": "destination-kinesis",
                "stream_mode": "provisioned", "create_streams": True, "stream_name_template": "{namespace}_{stream}",
                "stream_tags": (), "retry_timeout_seconds": 300}
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
        # Empty keys were "no static keys" for boto3 already; they still are.
        assert config.access_key == (SecretStr(raw["accessKey"]) if raw.get("accessKey") else None)
        assert config.private_key == (SecretStr(raw["privateKey"]) if raw.get("privateKey") else None)
        assert config.region == (raw.get("region", "").strip() or None)  # None: the chain's region, else us-east-1
        assert config.model_dump(include=NEW_FIELDS) == NEW_DEFAULTS  # the added options keep 0.1.5's behaviour
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


def test_record_options_are_parsed() -> None:
    """partitionKeyFields are dotted paths; the enums take their documented values."""
    config = parse_config({"partitionKey": "fields", "partitionKeyFields": ["id", " customer.address.zip "],
                           "partitionKeyMissing": "fail", "dataFormat": "string", "compression": "zstd",
                           "oversizeRecords": "skip"})
    assert config.partition_key == "fields" and config.partition_key_fields == (("id",), ("customer", "address", "zip"))
    assert (config.partition_key_missing, config.data_format, config.compression, config.oversize_records) == (
        "fail", "string", "zstd", "skip")
    assert parse_config({"partitionKey": "", "partitionKeyFields": None}).partition_key is None


@pytest.mark.parametrize(("raw", "named"), [
    ({"partitionKey": "fields"}, "partitionKeyFields"),
    ({"partitionKey": "fields", "partitionKeyFields": []}, "partitionKeyFields"),
    ({"partitionKeyFields": ["a..b"]}, "partitionKeyFields"),
    ({"partitionKeyFields": "id"}, "partitionKeyFields"),
    ({"partitionKeyFields": [["id"]]}, "partitionKeyFields"),
    ({"partitionKey": "hash"}, "partitionKey"),
    ({"compression": "lz4"}, "compression"),
    ({"dataFormat": "bytes"}, "dataFormat"),
    ({"oversizeRecords": "truncate"}, "oversizeRecords"),
    ({"partitionKeyMissing": "drop"}, "partitionKeyMissing"),
])
def test_bad_record_options_are_config_errors_naming_the_field(raw: dict[str, Any], named: str) -> None:
    assert named in _config_error(raw).message
