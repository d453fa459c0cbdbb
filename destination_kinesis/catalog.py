"""The configured catalog: which Airbyte streams the sync writes, read leniently but with clear errors.

Parsed here rather than with airbyte-cdk's dataclasses so that every client's catalog loads (PyAirbyte writes
explicit nulls and sync modes newer than the CDK's enum), and a bad file names what is wrong.
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from destination_kinesis.errors import system_error
from destination_kinesis.messages import StreamKey, display_name

logger = logging.getLogger("airbyte")


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StreamDescriptor(_Model):
    name: str
    namespace: str | None = None


class ConfiguredStream(_Model):
    stream: StreamDescriptor
    destination_sync_mode: str | None = "append"
    primary_key: list[list[str]] | None = None

    @property
    def key(self) -> StreamKey:
        return (self.stream.namespace, self.stream.name)

    @property
    def mode(self) -> str:
        """The destination sync mode asked for (``append`` when missing)."""
        return self.destination_sync_mode or "append"

    @property
    def primary_key_paths(self) -> tuple[tuple[str, ...], ...]:
        """The configured primary key: one path of member names into ``data`` per key field (empty: none)."""
        return tuple(tuple(path) for path in self.primary_key or () if path)


class ConfiguredCatalog(_Model):
    streams: list[ConfiguredStream]


_MODE_MEANINGS = {
    "overwrite": "records already in the Kinesis stream stay; this sync's records are appended after them",
}


def load_catalog(path: str) -> ConfiguredCatalog:
    """Read the configured catalog file; raise a system error naming the file and the problem."""
    try:
        catalog = ConfiguredCatalog.model_validate(orjson.loads(Path(path).read_bytes()))
    except OSError as exc:
        raise system_error(f"Could not read the catalog file '{path}': {exc.strerror}.") from None
    except orjson.JSONDecodeError as exc:
        raise system_error(f"The catalog file '{path}' is not valid JSON: {exc}.") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise system_error(f"The catalog file '{path}' is not a configured catalog: {problems}.") from None
    for stream in catalog.streams:
        mode = stream.mode
        if mode == "append_dedup":
            logger.info("Stream '%s' asks for destination sync mode 'append_dedup': every version of a record is "
                        "appended to Kinesis and consumers deduplicate; unless partitionKey says otherwise, the "
                        "primary key is the partition key, so all versions of a row land on one shard.",
                        display_name(stream.key))
        elif mode != "append":
            meaning = _MODE_MEANINGS.get(mode, "records are appended")
            logger.info("Stream '%s' asks for destination sync mode '%s'. Kinesis is an append-only log, so it is "
                        "written as append: %s.", display_name(stream.key), mode, meaning)
    return catalog
