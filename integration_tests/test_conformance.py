"""airbyte-cdk's standard destination suite, driven by acceptance-test-config.yml, against kinesalite.

In process: ``check`` reports the declared status with exactly one CONNECTION_STATUS and no secret in its output,
and each config matches the spec. The suite's Docker tests run against the image of this repository's Dockerfile
(the one scripts/image builds on an engine of its own, which CI does) when a Docker engine answers, and are skipped
with that reason otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import DestinationTestSuiteBase

from destination_kinesis.destination import DestinationKinesis

from .connector import REPO_ROOT, connector_config, write_json
from .kinesis_emulator import Emulator

EMULATOR_CONFIG = Path("integration_tests/acceptance/emulator_config.json")


@pytest.fixture(scope="module", autouse=True)
def emulator_config(kinesalite: Emulator) -> Any:
    """acceptance-test-config.yml names this file; it can only be written once the emulator's port is known."""
    path = write_json(REPO_ROOT / EMULATOR_CONFIG, connector_config(kinesalite.endpoint))
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def connector_image_override(connector_image: str) -> str:
    """Replaces the suite's fixture of the same name. The suite would build its image from Airbyte's Dockerfile
    template (fetched from GitHub) and only skips when no ``docker`` command exists; here the image comes from this
    repository's Dockerfile, and the tests are skipped, saying why, when no Docker engine answers."""
    return connector_image


class TestDestinationKinesis(DestinationTestSuiteBase):
    connector = DestinationKinesis
    # The suite names the connector after the checkout's directory, which need not be called destination-kinesis.
    connector_name = "destination-kinesis"

    def test_docker_image_build_and_check(
        self,
        scenario: ConnectorTestScenario,
        connector_image_override: str | None,
        connector_base_image_override: str | None,
    ) -> None:
        """As the suite's, except for the emulator config: the suite runs the image on Docker's default network,
        where 127.0.0.1 is the container itself and not the emulator. test_docker_image.py runs check and write in
        the image on the host's network instead."""
        if scenario.config_path == EMULATOR_CONFIG:
            pytest.skip("the emulator listens on the host's 127.0.0.1, which a container on Docker's default "
                        "network (a bridge, or loopback only under scripts/image) cannot reach; test_docker_image.py "
                        "checks this config in the image on the host's network")
        super().test_docker_image_build_and_check(scenario, connector_image_override, connector_base_image_override)
