"""catalog: the configured catalog read leniently (every client's catalog loads) with clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from destination_kinesis.catalog import load_catalog
from destination_kinesis.errors import ConnectorError


def _stream(name: str, namespace: str | None = None, mode: str | None = "append", **extra: Any) -> dict[str, Any]:
    return {"stream": {"name": name, "namespace": namespace, "json_schema": {}, "supported_sync_modes":
                       ["full_refresh"]}, "sync_mode": "full_refresh", "destination_sync_mode": mode, **extra}


def _write(tmp_path: Path, content: Any) -> str:
    path = tmp_path / "catalog.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_streams_and_keys(tmp_path: Path) -> None:
    """Each configured stream's key is (namespace or None, name), in catalog order."""
    catalog = load_catalog(_write(tmp_path, {"streams": [_stream("users", "crm"), _stream("orders")]}))
    assert [s.key for s in catalog.streams] == [("crm", "users"), (None, "orders")]


def test_pyairbyte_style_nulls_and_new_fields_load(tmp_path: Path) -> None:
    """Explicit nulls, unknown sync modes and fields newer than the CDK do not stop the catalog from loading."""
    raw: dict[str, Any] = {"streams": [_stream("a", None, None, primary_key=None, cursor_field=None, generation_id=None,
                                                 minimum_generation_id=None, sync_id=None)], "extra": True}
    raw["streams"][0]["stream"]["source_defined_primary_key"] = None
    catalog = load_catalog(_write(tmp_path, raw))
    assert catalog.streams[0].key == (None, "a")


@pytest.mark.parametrize(("mode", "meaning"), [("overwrite", "stay"), ("append_dedup", "deduplicate"),
                                               ("soft_delete", "appended")])
def test_non_append_modes_are_written_as_append_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           mode: str, meaning: str) -> None:
    """Kinesis is append-only: other sync modes load, and the log says what they mean here."""
    with caplog.at_level(logging.INFO, logger="airbyte"):
        load_catalog(_write(tmp_path, {"streams": [_stream("users", "crm", mode)]}))
    (message,) = [r.getMessage() for r in caplog.records if r.name == "airbyte"]
    assert "'crm.users'" in message and f"'{mode}'" in message and meaning in message


def _fails(path: str) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        load_catalog(path)
    assert caught.value.failure_type == "system_error"
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    """A catalog file that cannot be read is named."""
    path = str(tmp_path / "nope.json")
    assert path in _fails(path).message


def test_invalid_json(tmp_path: Path) -> None:
    """A catalog that is not JSON is named as such."""
    path = _write(tmp_path, "{not json")
    error = _fails(path)
    assert path in error.message and "not valid JSON" in error.message


@pytest.mark.parametrize(("content", "where"), [({}, "streams"),
                                                ({"streams": [{"stream": {}}]}, "streams.0.stream.name"),
                                                ({"streams": "x"}, "streams")])
def test_not_a_catalog_names_the_problem(tmp_path: Path, content: Any, where: str) -> None:
    """A JSON document that is not a configured catalog names the file and the path of what is wrong."""
    path = _write(tmp_path, content)
    error = _fails(path)
    assert path in error.message and where in error.message


def test_primary_key_paths(tmp_path: Path) -> None:
    """The configured primary key as paths into data; none (null, missing or empty) is an empty tuple."""
    raw = {"streams": [_stream("a", None, "append_dedup", primary_key=[["id"], ["meta", "region"]]),
                       _stream("b", None, None, primary_key=None), _stream("c", None, "append")]}
    a, b, c = load_catalog(_write(tmp_path, raw)).streams
    assert a.primary_key_paths == (("id",), ("meta", "region")) and a.mode == "append_dedup"
    assert b.primary_key_paths == () == c.primary_key_paths and b.mode == "append"
