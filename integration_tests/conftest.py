"""The fixtures of the integration tests: the Kinesis emulators, the ``sync`` runner and the Docker image.

The helpers the tests call are plain modules: :mod:`.connector` (running the console script), :mod:`.inputs` (Airbyte
messages) and :mod:`.readback` (what Kinesis holds, checked against the input).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import BuildError

from .connector import DEFAULT_TIMEOUT_S, REPO_ROOT, Sync, SyncResult, connector_config, run_write
from .inputs import StreamKey
from .kinesis_emulator import Emulator, EmulatorError, reset_moto, start_kinesalite, start_kinesis_local, start_moto

# airbyte-cdk's standard suite (test_conformance.py) takes its scenarios and options from these hooks.
pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]


def pytest_configure(config: pytest.Config) -> None:
    # airbyte_cdk.test.standard_tests marks some of its tests with these; importing it (test_secrets.py runs its leak
    # check) needs them known under --strict-markers.
    config.addinivalue_line("markers", "image_tests: airbyte-cdk's tests of a connector's Docker image")
    config.addinivalue_line("markers", "requires_creds: airbyte-cdk's tests that need real credentials")


# ---------------------------------------------------------------- emulator


def _started(start: Callable[[], Emulator]) -> Iterator[Emulator]:
    try:
        emulator = start()
    except EmulatorError as error:
        failure = f"cannot start the emulator: {error}"
    else:
        failure = ""
    if failure:  # outside the except block, so the report shows only the message
        pytest.fail(failure, pytrace=False)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def kinesalite() -> Iterator[Emulator]:
    """One kinesalite for the whole session; tests use distinct stream names, so they never see each other's data."""
    yield from _started(start_kinesalite)


@pytest.fixture(scope="session")
def kinesis_local() -> Iterator[Emulator]:
    """One kinesis-local (ON_DEMAND, tags) for the session, started only by the tests that need it."""
    yield from _started(start_kinesis_local)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Emulator]:
    """One moto server (STS, IAM) for the session; use the ``moto`` fixture, which resets it for each test."""
    yield from _started(start_moto)


@pytest.fixture
def moto(moto_server: Emulator) -> Emulator:
    """The moto server, emptied and not checking credentials, for one test."""
    reset_moto(moto_server)
    return moto_server


# ---------------------------------------------------------------- the sync runner


@pytest.fixture
def sync(kinesalite: Emulator, tmp_path: Path) -> Sync:
    """Run ``write`` against the emulator: ``sync(streams, stdin_bytes, timeout=..., **config_overrides)``."""

    def run(
        streams: Iterable[StreamKey | dict[str, Any]],
        stdin_bytes: bytes,
        timeout: float = DEFAULT_TIMEOUT_S,
        **config_overrides: Any,
    ) -> SyncResult:
        return run_write(connector_config(kinesalite.endpoint, **config_overrides), streams, stdin_bytes, tmp_path,
                         timeout)

    return run


# ---------------------------------------------------------------- Docker


IMAGE_TAG = "airbyte/destination-kinesis:dev-test"
DOCKER_API_TIMEOUT_S = 30  # each API call; an engine that does not answer in this time counts as none
DOCKER_BUILD_TIMEOUT_S = 900
# scripts/image sets these: the tag of the image it built on its own engine (DOCKER_HOST names that engine), or why
# it could not install or start an engine.
IMAGE_VARIABLE = "DESTINATION_KINESIS_IMAGE"
NO_ENGINE_VARIABLE = "DESTINATION_KINESIS_NO_ENGINE"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client whose engine answers a ping (DOCKER_HOST's, else the default socket's).

    Under scripts/image the engine must answer: a failure is a failure. Elsewhere, and when scripts/image could not
    install or start an engine, every test that needs one is skipped with the reason; that a ``docker`` command is
    installed is not enough."""
    if os.environ.get(NO_ENGINE_VARIABLE):
        pytest.skip(f"scripts/image could not install or start a Docker engine: {os.environ[NO_ENGINE_VARIABLE]}")
    try:
        client = docker.from_env(timeout=DOCKER_API_TIMEOUT_S)
        client.ping()
    except Exception as error:  # noqa: BLE001 - whatever the reason, there is no engine to build or run with
        reason = f"no Docker engine answers ({error})"
    else:
        reason = ""
    if reason and os.environ.get(IMAGE_VARIABLE):
        pytest.fail(f"{reason}, though scripts/image started one at {os.environ.get('DOCKER_HOST')}", pytrace=False)
    if reason:  # outside the except block, so the report shows only the reason
        pytest.skip(f"{reason}; scripts/image runs these tests on an engine of its own")
    yield client
    client.close()


@pytest.fixture(scope="session")
def connector_image(docker_client: Any) -> str:
    """The image of this repository's Dockerfile: the one scripts/image built (DESTINATION_KINESIS_IMAGE), else one
    built here with the docker SDK (the classic builder) as IMAGE_TAG, on an engine that can pull the base image."""
    built = os.environ.get(IMAGE_VARIABLE)
    if built:
        docker_client.images.get(built)  # raises ImageNotFound, failing every test that needs it, if it is missing
        return built
    try:
        docker_client.images.build(path=str(REPO_ROOT), tag=IMAGE_TAG, rm=True, forcerm=True,
                                   timeout=DOCKER_BUILD_TIMEOUT_S)
    except BuildError as error:
        log = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in error.build_log)
        pytest.fail(f"docker build failed: {error.msg}\n{log[-5000:]}", pytrace=False)
    return IMAGE_TAG
