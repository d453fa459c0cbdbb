"""metadata.yaml: valid against Airbyte's metadata schema, complete for a destination, and in agreement with
pyproject.toml and spec.json."""

from __future__ import annotations

import json
import re
import sys
import uuid
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml

from unit_tests.paths import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the standard library has no TOML reader before 3.11
    import tomli as tomllib

METADATA = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text())
DATA: dict[str, Any] = METADATA["data"]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
DEFINITION_ID = "bb6f3663-ab33-4976-b60b-cf6ff1dfa73e"
JAVA_0_1_5_DEFINITION_ID = "6d1d66d4-26ab-4602-8d32-f85894b04955"
# What issue 6 asks a destination's metadata to hold.
REQUIRED_KEYS = {
    "name", "definitionId", "connectorType", "connectorSubtype", "dockerRepository", "dockerImageTag", "license",
    "documentationUrl", "githubIssueLabel", "releaseStage", "supportLevel", "tags", "connectorBuildOptions",
    "connectorTestSuitesOptions", "registryOverrides",
}


def metadata_schema() -> dict[str, Any]:
    """ConnectorMetadataDefinitionV0, the JSON schema Airbyte's registry validates metadata.yaml with."""
    pytest.importorskip("airbyte_connector_models", reason="airbyte-connector-models is published for Python < 3.13")
    schema_file = files("airbyte_connector_models.metadata.v0").joinpath("ConnectorMetadataDefinitionV0.json")
    return json.loads(schema_file.read_text())


def test_metadata_is_valid_against_airbytes_schema() -> None:
    errors = sorted(jsonschema.Draft7Validator(metadata_schema()).iter_errors(METADATA), key=str)
    assert not errors, "\n".join(f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)


def test_schema_check_rejects_a_broken_metadata() -> None:
    """The schema check above can fail: a destination without a license and with an unknown subtype is refused."""
    broken = {**METADATA, "data": {key: value for key, value in DATA.items() if key != "license"}}
    broken["data"]["connectorSubtype"] = "queue"
    messages = {error.message for error in jsonschema.Draft7Validator(metadata_schema()).iter_errors(broken)}
    assert "'license' is a required property" in messages
    assert any(message.startswith("'queue' is not one of") for message in messages)


def test_metadata_is_complete_for_a_destination() -> None:
    assert METADATA["metadataSpecVersion"] == "1.0"
    assert REQUIRED_KEYS <= set(DATA), f"missing: {sorted(REQUIRED_KEYS - set(DATA))}"
    assert DATA["connectorType"] == "destination"
    assert DATA["connectorSubtype"] == "message_queue"
    assert DATA["dockerRepository"] == "airbyte/destination-kinesis"
    assert DATA["githubIssueLabel"] == "destination-kinesis"
    assert {"language:python", "cdk:python"} <= set(DATA["tags"])
    assert [suite["suite"] for suite in DATA["connectorTestSuitesOptions"]] == ["unitTests", "integrationTests"]
    assert set(DATA["registryOverrides"]) == {"cloud", "oss"}
    assert all(isinstance(registry["enabled"], bool) for registry in DATA["registryOverrides"].values())


def test_definition_id_is_ours() -> None:
    assert DATA["definitionId"] == DEFINITION_ID
    assert uuid.UUID(DATA["definitionId"]).version == 4
    assert DATA["definitionId"] != JAVA_0_1_5_DEFINITION_ID


def test_image_tag_is_a_release_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", DATA["dockerImageTag"]), DATA["dockerImageTag"]


def test_base_image_is_airbytes_python_connector_base_pinned_by_digest() -> None:
    base_image = DATA["connectorBuildOptions"]["baseImage"]
    assert re.fullmatch(r"docker\.io/airbyte/python-connector-base:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", base_image)


def test_pyproject_version_and_license_agree_with_metadata() -> None:
    project = PYPROJECT["project"]
    assert project["version"] == DATA["dockerImageTag"]
    assert project["license"] == DATA["license"]


def test_pyproject_builds_with_poetry_core() -> None:
    """airbyte-ci builds Python connectors with Poetry."""
    build_system = PYPROJECT["build-system"]
    assert build_system["build-backend"] == "poetry.core.masonry.api"
    assert [requirement.split(">")[0].split("=")[0] for requirement in build_system["requires"]] == ["poetry-core"]


def test_documentation_url_agrees_with_spec() -> None:
    for spec_path in ("spec.json", "destination_kinesis/spec.json"):
        spec = json.loads((REPO_ROOT / spec_path).read_text())
        assert spec["documentationUrl"] == DATA["documentationUrl"], spec_path
