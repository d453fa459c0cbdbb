"""The connector's configuration, parsed once at the edge into a typed model that mirrors ``spec.json``.

Every configuration Airbyte's Java destination-kinesis 0.1.5 accepted is accepted here with the same meaning; the
fields added since are optional and their defaults keep 0.1.5's behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from destination_kinesis.errors import config_error
from destination_kinesis.limits import MAX_RECORD_BYTES, MAX_RECORDS_PER_REQUEST
from destination_kinesis.naming import DEFAULT_TEMPLATE, NameTemplate

DEFAULT_REGION = "us-east-1"
DEFAULT_ROLE_SESSION_NAME = "destination-kinesis"
DEFAULT_RETRY_TIMEOUT_SECONDS = 300
DEFAULT_MAX_IN_FLIGHT = 16
#: The KPL's default AggregationMaxSize: exactly 2 PUT payload units.
DEFAULT_AGGREGATE_BYTES = 51_200
#: IAM role ARNs (any partition); the same pattern is in spec.json.
ROLE_ARN_PATTERN = r"^arn:[a-z-]+:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$"
#: STS RoleSessionName: 2-64 characters of these.
ROLE_SESSION_NAME_PATTERN = r"^[A-Za-z0-9_+=,.@-]{2,64}$"
#: STS ExternalId length.
MIN_EXTERNAL_ID_CHARS = 2
MAX_EXTERNAL_ID_CHARS = 1224
#: Tags a Kinesis stream can carry.
MAX_STREAM_TAGS = 50
MAX_TAG_KEY_CHARS = 128
MAX_TAG_VALUE_CHARS = 256
#: The characters Kinesis allows in tag keys and values: Unicode letters, digits, white space and _ . : / = + - % @.
TAG_PATTERN = r"^[\w\s.:/=+\-%@]*$"
#: Most paths in ``partitionKeyFields``.
MAX_PARTITION_KEY_FIELDS = 20

PartitionKeyKind = Literal["random", "primary_key", "fields"]


_DEFAULT_WHEN_BLANK = {"role_session_name": DEFAULT_ROLE_SESSION_NAME, "stream_name_template": DEFAULT_TEMPLATE}


class StreamTag(BaseModel):
    """One tag for the streams the connector creates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=MAX_TAG_KEY_CHARS, pattern=TAG_PATTERN)
    value: str = Field("", max_length=MAX_TAG_VALUE_CHARS, pattern=TAG_PATTERN)

    @field_validator("key")
    @classmethod
    def _not_reserved(cls, key: str) -> str:
        if key.lower().startswith("aws:"):
            raise ValueError("tag keys starting with 'aws:' are reserved for AWS")
        return key


class KinesisConfig(BaseModel):
    """What ``spec.json`` describes, with defaults applied and empty strings read as "not set"."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    endpoint: str | None = None
    #: None: the region of the AWS default chain (AWS_DEFAULT_REGION, the profile), else us-east-1 (see client).
    region: str | None = None
    #: Shards for streams the connector creates in provisioned mode. 0.1.5 set no minimum, and a stream that already
    #: exists never needs it, so a value below 1 is refused only when a stream has to be created.
    shard_count: int = Field(5, alias="shardCount")
    #: Static keys; both None means the AWS default credential chain. An empty string is "not set", as boto3 read it.
    access_key: SecretStr | None = Field(None, alias="accessKey")
    private_key: SecretStr | None = Field(None, alias="privateKey")
    buffer_size: int = Field(100, alias="bufferSize", ge=1, le=MAX_RECORDS_PER_REQUEST)
    role_arn: str | None = Field(None, alias="roleArn", pattern=ROLE_ARN_PATTERN)
    external_id: SecretStr | None = Field(None, alias="externalId")
    role_session_name: str = Field(DEFAULT_ROLE_SESSION_NAME, alias="roleSessionName",
                                   pattern=ROLE_SESSION_NAME_PATTERN)
    stream_mode: Literal["provisioned", "on_demand"] = Field("provisioned", alias="streamMode")
    create_streams: bool = Field(True, alias="createStreams")
    stream_name_template: str = Field(DEFAULT_TEMPLATE, alias="streamNameTemplate")
    stream_tags: tuple[StreamTag, ...] = Field((), alias="streamTags", max_length=MAX_STREAM_TAGS)
    #: How long entries may keep failing, sent again by the dispatcher, before the sync fails.
    retry_timeout_seconds: int = Field(DEFAULT_RETRY_TIMEOUT_SECONDS, alias="retryTimeoutSeconds", ge=1)
    #: PutRecords requests in flight at most; throttling lowers the number for a while (see pressure.py).
    max_in_flight_requests: int = Field(DEFAULT_MAX_IN_FLIGHT, alias="maxInFlightRequests", ge=1, le=128)
    #: None: ``primary_key`` for append_dedup streams with a primary key, ``random`` for the others (see partition).
    partition_key: PartitionKeyKind | None = Field(None, alias="partitionKey")
    #: Paths into ``data`` for ``partitionKey: fields``, each a tuple of member names (written "a.b" in the config).
    partition_key_fields: tuple[tuple[str, ...], ...] = Field((), alias="partitionKeyFields",
                                                             max_length=MAX_PARTITION_KEY_FIELDS)
    partition_key_missing: Literal["fallback", "fail"] = Field("fallback", alias="partitionKeyMissing")
    data_format: Literal["object", "string"] = Field("object", alias="dataFormat")
    compression: Literal["none", "gzip", "zstd"] = "none"
    oversize_records: Literal["fail", "skip"] = Field("fail", alias="oversizeRecords")
    #: The share of each shard's write limits the connector paces itself to (see pacing.py).
    shard_write_share: float = Field(1.0, alias="shardWriteShare", gt=0, le=1)
    #: None: ``per_key`` for streams whose partition key comes from the data, ``none`` for random keys (see sync.py).
    ordering: Literal["none", "per_key"] | None = None
    aggregation: Literal["none", "kpl"] = "none"
    #: With aggregation kpl: the bounds of an aggregated Kinesis record (bytes as Kinesis counts them, user records).
    aggregation_max_bytes: int = Field(DEFAULT_AGGREGATE_BYTES, alias="aggregationMaxBytes", ge=1024,
                                       le=MAX_RECORD_BYTES)
    aggregation_max_records: int = Field(1000, alias="aggregationMaxRecords", ge=1, le=100_000)

    @property
    def name_template(self) -> NameTemplate:
        return NameTemplate(self.stream_name_template)

    @property
    def tags(self) -> dict[str, str]:
        return {tag.key: tag.value for tag in self.stream_tags}

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if "://" not in value:
                return f"https://{value}"
        return value

    @field_validator("shard_count", "retry_timeout_seconds", mode="before")
    @classmethod
    def _integral_float(cls, value: Any) -> Any:
        # JSON schema's "integer" admits 5.0 and 1e30; pydantic refuses floats beyond 64 bits.
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @field_validator("partition_key", "ordering", mode="before")
    @classmethod
    def _blank_choice_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("partition_key_fields", mode="before")
    @classmethod
    def _dotted_paths(cls, value: Any) -> Any:
        """Each path is a string of member names separated by '.' ("customer.id"); none may be empty."""
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of field paths such as [\"id\", \"customer.id\"]")
        paths = []
        for path in value:
            if not isinstance(path, str):
                raise ValueError("each field path is a string such as \"id\" or \"customer.id\"")
            parts = tuple(path.strip().split("."))
            if not all(parts):
                raise ValueError(f"the field path {path.strip()!r} has an empty member name")
            paths.append(parts)
        return tuple(paths)

    @field_validator("region", "role_arn", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("access_key", "private_key", "external_id", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("external_id")
    @classmethod
    def _external_id_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not MIN_EXTERNAL_ID_CHARS <= len(value.get_secret_value()) <= MAX_EXTERNAL_ID_CHARS:
            raise ValueError(f"must have {MIN_EXTERNAL_ID_CHARS} to {MAX_EXTERNAL_ID_CHARS} characters")
        return value

    @field_validator("role_session_name", "stream_name_template", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return _DEFAULT_WHEN_BLANK[str(info.field_name)]
        return value.strip() if isinstance(value, str) else value

    @field_validator("stream_name_template")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        NameTemplate(value)  # raises ValueError saying what is wrong
        return value

    @field_validator("stream_tags")
    @classmethod
    def _unique_tag_keys(cls, tags: tuple[StreamTag, ...]) -> tuple[StreamTag, ...]:
        keys = [tag.key for tag in tags]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"each tag key may appear once; repeated: {', '.join(repeated)}")
        return tags

    @model_validator(mode="after")
    def _fields_for_fields_key(self) -> KinesisConfig:
        if self.partition_key == "fields" and not self.partition_key_fields:
            raise ValueError("partitionKey 'fields' needs partitionKeyFields: the paths of the fields in each "
                             "record's data to build the key from, e.g. [\"customer.id\"]")
        return self

    @model_validator(mode="after")
    def _external_id_needs_role(self) -> KinesisConfig:
        if self.external_id is not None and self.role_arn is None:
            raise ValueError("externalId is used only when assuming a role: set roleArn too, or remove externalId")
        return self


def parse_config(raw: Mapping[str, Any]) -> KinesisConfig:
    """Parse a config mapping; a bad value raises a config error naming each field and why, never the values."""
    try:
        return KinesisConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'config'}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise config_error(f"The configuration is not valid: {problems}.") from None


def load_spec() -> dict[str, Any]:
    """The connector's specification, as shipped in the package (``spec.json``)."""
    return orjson.loads(resources.files("destination_kinesis").joinpath("spec.json").read_bytes())  # type: ignore[no-any-return]


def secret_values(raw: Mapping[str, Any]) -> list[str]:
    """The values in ``raw`` of every top-level property the spec marks ``airbyte_secret``."""
    properties = load_spec()["connectionSpecification"].get("properties", {})
    return [value for key, schema in properties.items()
            if schema.get("airbyte_secret") and isinstance(value := raw.get(key), str) and value]
