"""The connector's configuration, parsed once at the edge into a typed model that mirrors ``spec.json``.

Every configuration Airbyte's Java destination-kinesis 0.1.5 accepted is accepted here with the same meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from destination_kinesis.errors import config_error
from destination_kinesis.limits import MAX_RECORDS_PER_REQUEST

DEFAULT_REGION = "us-east-1"


class KinesisConfig(BaseModel):
    """What ``spec.json`` describes, with defaults applied and empty strings read as "not set"."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    endpoint: str | None = None
    region: str = DEFAULT_REGION
    #: Shards for streams the connector creates. 0.1.5 set no minimum, and a stream that already exists never needs
    #: it, so a value below 1 is refused only when a stream has to be created.
    shard_count: int = Field(5, alias="shardCount")
    access_key: SecretStr = Field(alias="accessKey")
    private_key: SecretStr = Field(alias="privateKey")
    buffer_size: int = Field(100, alias="bufferSize", ge=1, le=MAX_RECORDS_PER_REQUEST)
    #: PutRecords requests in flight at most; throttling lowers the number for a while (see pressure.py).
    max_in_flight_requests: int = Field(16, alias="maxInFlightRequests", ge=1, le=128)

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

    @field_validator("shard_count", mode="before")
    @classmethod
    def _integral_float(cls, value: Any) -> Any:
        # JSON schema's "integer" admits 5.0 and 1e30; pydantic refuses floats beyond 64 bits.
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @field_validator("region", mode="before")
    @classmethod
    def _region_or_default(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return DEFAULT_REGION
        return value.strip() if isinstance(value, str) else value


def parse_config(raw: Mapping[str, Any]) -> KinesisConfig:
    """Parse a config mapping; a bad value raises a config error naming each field and why, never the values."""
    try:
        return KinesisConfig.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'config'}: {error['msg']}" for error in exc.errors()
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
