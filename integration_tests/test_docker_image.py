"""The image of this repository's Dockerfile, run as the Airbyte platform runs a connector: what it is configured to
run and what it holds, then spec, check, a write of a few thousand records through ``$AIRBYTE_ENTRYPOINT``, a write
that fails on bad input and one stopped by SIGTERM, against kinesalite with every record read back. No container's
``docker logs`` (stdout and stderr) holds a secret of its config.

``scripts/image`` builds the image on a Docker engine of its own (on a stand-in of the base image, so no registry is
needed) and runs these tests against it; without an engine they are skipped, with the reason (the ``docker_client``
fixture). The containers use the host's network, so the emulator on the host's 127.0.0.1 is reachable from them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker.errors import NotFound
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .connector import (
    REPO_ROOT,
    RunningConnector,
    SyncResult,
    catalog,
    connector_config,
    error_traces,
    of_type,
    parse_messages,
    unique,
    write_json,
)
from .fault_proxy import FaultPlan, FaultProxy
from .inputs import StreamKey, numbered_messages, record, to_lines
from .kinesis_emulator import Emulator
from .readback import LiveCoverage, assert_stopped_covered, assert_synced

SCRIPT = "/airbyte/integration_code/entrypoint.sh"
MOUNT = "/secrets"
VENV = "/opt/destination-kinesis"
CONTAINER_TIMEOUT_S = 300
SECRETS = ("accessKey", "privateKey")


def mountable(directory: Path) -> Path:
    """``directory``, readable by the container's user airbyte (uid 1000), who does not own pytest's private
    temporary directories."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def run_image(
    docker_client: Any, image: str, command: list[str], mount: Path | None = None, entrypoint: list[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``image`` to completion on the host's network, with ``mount`` read-only at /secrets; its exit code and
    ``docker logs`` (stdout and stderr)."""
    volumes = {str(mountable(mount)): {"bind": MOUNT, "mode": "ro"}} if mount is not None else {}
    container = docker_client.containers.run(
        image, command, entrypoint=entrypoint, network_mode="host", volumes=volumes, detach=True
    )
    try:
        exit_code = container.wait(timeout=CONTAINER_TIMEOUT_S)["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False)
        stderr = container.logs(stdout=False, stderr=True)
    finally:
        container.remove(force=True)
    return subprocess.CompletedProcess(command, exit_code, stdout, stderr)


def write_through_entrypoint(docker_client: Any, image: str, tmp_path: Path, config: dict[str, Any],
                             streams: list[StreamKey], stdin_bytes: bytes) -> SyncResult:
    """``$AIRBYTE_ENTRYPOINT write ...`` in a shell with stdin redirected from a file, as the platform starts it."""
    (tmp_path / "input.jsonl").write_bytes(stdin_bytes)
    write_json(tmp_path / "config.json", config)
    write_json(tmp_path / "catalog.json", catalog(streams))
    shell = (f'exec "$AIRBYTE_ENTRYPOINT" write --config {MOUNT}/config.json --catalog {MOUNT}/catalog.json'
             f" < {MOUNT}/input.jsonl")
    process = run_image(docker_client, image, ["-c", shell], tmp_path, entrypoint=["/bin/sh"])
    return SyncResult(process, parse_messages(process.stdout))


def assert_no_secret(process: subprocess.CompletedProcess[bytes], config: dict[str, Any]) -> None:
    for key in SECRETS:
        assert config[key].encode() not in process.stdout + process.stderr, f"{key} is in the container's logs"


# ---------------------------------------------------------------------------------------------------- the image


def test_image_configuration(docker_client: Any, connector_image: str) -> None:
    """Runs as airbyte, enters through the script that AIRBYTE_ENTRYPOINT names, carries the metadata's labels."""
    config = docker_client.images.get(connector_image).attrs["Config"]
    assert config["User"] == "airbyte"
    assert config["Entrypoint"] == [SCRIPT]
    assert f"AIRBYTE_ENTRYPOINT={SCRIPT}" in config["Env"]
    assert config["Labels"]["io.airbyte.name"] == "airbyte/destination-kinesis"


PROBE = """
import importlib.metadata, json, os, platform, pwd, shutil, sys
print(json.dumps({
    "user": pwd.getpwuid(os.getuid()).pw_name,
    "uid": os.getuid(),
    "python": platform.python_version(),
    "prefix": sys.prefix,
    "distributions": sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()),
    "tools": [tool for tool in ("gcc", "cc", "make", "git", "poetry") if shutil.which(tool)],
    "wheels": [os.path.join(d, f) for d, _, fs in os.walk(sys.prefix) for f in fs if f.endswith(".whl")],
    "leftovers": [p for p in ("/build", "/root/.cache/pip", "/tmp/pip-req-build") if os.path.exists(p)],
}))
"""


def locked_runtime(python_version: str) -> set[str]:
    """``name==version`` of each requirement of image-requirements.txt that applies on ``python_version`` (Linux)."""
    entries = re.split(r"\n(?=\S)", (REPO_ROOT / "image-requirements.txt").read_text())
    environment = {"python_version": ".".join(python_version.split(".")[:2]), "python_full_version": python_version,
                   "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
    pinned = set()
    for entry in entries:
        if entry.startswith("#"):
            continue
        requirement = Requirement(entry.split(" \\")[0].strip())
        if requirement.marker is None or requirement.marker.evaluate(environment):
            pinned.add(f"{canonicalize_name(requirement.name)}=={next(iter(requirement.specifier)).version}")
    return pinned


def test_image_holds_the_locked_environment_and_nothing_to_build_or_test(docker_client: Any,
                                                                           connector_image: str) -> None:
    """The process runs as the non-root user airbyte (uid 1000) with the environment's Python, which holds exactly
    the connector and the locked dependencies of image-requirements.txt at their versions: no test dependency, no
    pip in it (the base image has its own), no wheels left behind, no compiler or build tool on the PATH, no pip
    cache or build directory."""
    process = run_image(docker_client, connector_image, ["-c", PROBE], entrypoint=["python"])
    assert process.returncode == 0, process.stderr.decode(errors="replace")[-2000:]
    found = json.loads(process.stdout)
    assert (found["user"], found["uid"]) == ("airbyte", 1000)
    assert found["prefix"] == VENV
    distributions = {f"{canonicalize_name(name)}=={version}"
                     for name, version in (item.split("==") for item in found["distributions"])}
    connector = {item for item in distributions if item.startswith("destination-kinesis==")}
    assert len(connector) == 1, "the connector is installed (from its wheel)"
    assert distributions - connector == locked_runtime(found["python"])
    assert (found["tools"], found["wheels"], found["leftovers"]) == ([], [], [])


def test_spec_in_the_image(docker_client: Any, connector_image: str) -> None:
    process = run_image(docker_client, connector_image, ["spec"])
    assert process.returncode == 0, process.stderr.decode(errors="replace")[-2000:]
    specs = of_type(parse_messages(process.stdout), "SPEC")
    assert len(specs) == 1
    assert specs[0]["spec"] == json.loads((REPO_ROOT / "spec.json").read_text())


@pytest.mark.parametrize(("overrides", "status"), [({}, "SUCCEEDED"), ({"bufferSize": 501}, "FAILED")],
                         ids=["good config", "bufferSize over 500"])
def test_check_in_the_image(docker_client: Any, connector_image: str, kinesalite: Emulator, tmp_path: Path,
                            overrides: dict[str, Any], status: str) -> None:
    """check reports one status, exits 0 either way, and a bad config's message names the field."""
    config = connector_config(kinesalite.endpoint, **overrides)
    write_json(tmp_path / "config.json", config)
    process = run_image(docker_client, connector_image, ["check", "--config", f"{MOUNT}/config.json"], tmp_path)
    statuses = [message["connectionStatus"] for message in of_type(parse_messages(process.stdout), "CONNECTION_STATUS")]
    assert [found["status"] for found in statuses] == [status], process.stdout[-2000:]
    assert process.returncode == 0, process.stderr[-2000:]
    if overrides:
        assert "bufferSize" in statuses[0]["message"], statuses[0]["message"]
    assert_no_secret(process, config)


# ---------------------------------------------------------------------------------------------------- write


def test_write_of_thousands_of_records_through_airbyte_entrypoint(
    docker_client: Any, connector_image: str, kinesalite: Emulator, tmp_path: Path
) -> None:
    """3,000 records of two streams, a state (with the platform's id) per stream after every 500: every record is
    read back once, and every state comes out in order with its id and destinationStats.recordCount."""
    streams = [(None, unique("image_a")), ("ns", unique("image_b"))]
    messages = numbered_messages(streams, 3_000, state_every=500)
    stdin_bytes = to_lines(messages)
    config = connector_config(kinesalite.endpoint)
    result = write_through_entrypoint(docker_client, connector_image, tmp_path, config, streams, stdin_bytes)
    assert_synced(kinesalite.endpoint, stdin_bytes, result)
    assert [state["state"]["id"] for state in result.states] == list(range(1, 13))
    assert_no_secret(result.process, config)


def test_write_of_bad_input_fails_in_the_image(
    docker_client: Any, connector_image: str, kinesalite: Emulator, tmp_path: Path
) -> None:
    """A line cut off after two good records: exit code 1 and one TRACE error naming the line, as outside."""
    name = unique("image_bad_input")
    good = [record(name, {"id": i}, 1_700_000_000_000 + i) for i in range(2)]
    stdin_bytes = to_lines([*good, '{"type": "RECORD", "record": {"stream": "' + name + '", "data": {"id": 2'])
    config = connector_config(kinesalite.endpoint)
    result = write_through_entrypoint(docker_client, connector_image, tmp_path, config, [(None, name)], stdin_bytes)
    assert result.process.returncode == 1, result.describe()
    traces = error_traces(result.messages)
    assert len(traces) == 1 and "line 3" in traces[0]["error"]["message"], result.describe()
    assert_no_secret(result.process, config)


@pytest.fixture
def container_name(docker_client: Any) -> Iterator[str]:
    """A name for one container started by ``docker run``; the container is removed afterwards."""
    name = unique("destination-kinesis-test")
    yield name
    try:
        docker_client.containers.get(name).remove(force=True)
    except NotFound:
        pass


def test_sigterm_to_the_container_during_a_write(
    docker_client: Any, connector_image: str, kinesalite: Emulator, tmp_path: Path, container_name: str
) -> None:
    """SIGTERM to the container (``docker kill --signal SIGTERM``, what ``docker stop`` and the platform send first)
    1 s after the first state, while PutRecords calls are in flight (each takes 3 s at the proxy) and stdin is still
    open: as outside the container (test_sigterm.py), the connector exits 1 with a TRACE saying the sync was
    interrupted, stops reading, and every state it printed covered only records Kinesis had accepted."""
    if shutil.which("docker") is None:
        pytest.skip("no docker command to run the container with stdin attached")
    streams: list[StreamKey] = [(None, unique("image_sigterm"))]
    messages = numbered_messages(streams, 20_000, state_every=100)
    live = LiveCoverage(messages)
    plan = FaultPlan(seed=703, calls={"slow": 1.0}, slow_seconds=3.0)
    with FaultProxy(kinesalite.endpoint, plan, live.on_written).start() as proxy:
        config = connector_config(proxy.endpoint)
        write_json(tmp_path / "config.json", config)
        write_json(tmp_path / "catalog.json", catalog(streams))
        command = ["docker", "run", "--interactive", "--name", container_name, "--network", "host",
                   "--volume", f"{mountable(tmp_path)}:{MOUNT}:ro", connector_image]
        args = ["write", "--config", f"{MOUNT}/config.json", "--catalog", f"{MOUNT}/catalog.json"]
        with RunningConnector(args, to_lines(messages), keep_stdin_open=True, on_message=live.on_message,
                              command=command) as running:
            if not any(message["type"] == "STATE" for message in running.messages(timeout=120)):
                pytest.fail("the connector ended before printing a state")
            time.sleep(1.0)
            docker_client.containers.get(container_name).kill(signal="SIGTERM")
            result = running.wait(timeout=180)
    container = docker_client.containers.get(container_name)
    assert container.attrs["State"]["ExitCode"] == result.process.returncode == 1, result.describe()
    traces = error_traces(result.messages)
    assert len(traces) == 1 and result.messages[-1]["type"] == "TRACE", result.describe()
    assert traces[0]["error"]["failure_type"] == "transient_error"
    assert re.search(r"interrupted.*SIGTERM", traces[0]["error"]["message"]), traces[0]["error"]["message"]
    assert_stopped_covered(kinesalite.endpoint, messages, result, live)
    logs = subprocess.CompletedProcess([], 0, container.logs(stdout=True, stderr=False),
                                       container.logs(stdout=False, stderr=True))
    assert_no_secret(logs, config)
