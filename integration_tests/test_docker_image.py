"""The image of this repository's Dockerfile, built with the docker SDK and run as the Airbyte platform runs a
connector: its configuration, then spec, check and a small write against kinesalite with every record read back.

Every test here is skipped, with the reason, when no Docker engine answers (the ``docker_client`` fixture). The
containers use the host's network, so the emulator on the host's 127.0.0.1 is reachable from them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .connector import REPO_ROOT, SyncResult, catalog, connector_config, of_type, parse_messages, unique, write_json
from .inputs import record, stream_state, to_lines
from .kinesis_emulator import Emulator
from .readback import assert_synced

SCRIPT = "/airbyte/integration_code/entrypoint.sh"
MOUNT = "/secrets"
CONTAINER_TIMEOUT_S = 300


def run_image(
    docker_client: Any, image: str, command: list[str], mount: Path | None = None, entrypoint: list[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``image`` to completion on the host's network, with ``mount`` read-only at /secrets; its exit code,
    stdout and stderr."""
    volumes = {}
    if mount is not None:
        # The container runs as airbyte (uid 1000), not as the owner of pytest's private temporary directories.
        mount.chmod(0o755)
        for path in mount.iterdir():
            path.chmod(0o644)
        volumes = {str(mount): {"bind": MOUNT, "mode": "ro"}}
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


def test_image_configuration(docker_client: Any, connector_image: str) -> None:
    """Runs as airbyte, enters through the script that AIRBYTE_ENTRYPOINT names, carries the metadata's labels."""
    config = docker_client.images.get(connector_image).attrs["Config"]
    assert config["User"] == "airbyte"
    assert config["Entrypoint"] == [SCRIPT]
    assert f"AIRBYTE_ENTRYPOINT={SCRIPT}" in config["Env"]
    assert config["Labels"]["io.airbyte.name"] == "airbyte/destination-kinesis"


def test_image_holds_the_installed_package_and_no_test_dependencies(docker_client: Any, connector_image: str) -> None:
    probe = (
        "import importlib.util, json, os, destination_kinesis; "
        "print(json.dumps({'uid': os.getuid(), 'package': destination_kinesis.__file__, "
        "'absent': [m for m in ('pytest', 'moto', 'docker', 'pip') if importlib.util.find_spec(m) is None]}))"
    )
    process = run_image(docker_client, connector_image, ["-c", probe], entrypoint=["python"])
    assert process.returncode == 0, process.stderr.decode(errors="replace")[-2000:]
    found = json.loads(process.stdout)
    assert found["uid"] != 0
    assert found["package"].startswith("/opt/destination-kinesis/lib/"), "installed from the wheel, not editable"
    assert found["absent"] == ["pytest", "moto", "docker", "pip"]


def test_spec_in_the_image(docker_client: Any, connector_image: str) -> None:
    process = run_image(docker_client, connector_image, ["spec"])
    assert process.returncode == 0, process.stderr.decode(errors="replace")[-2000:]
    specs = of_type(parse_messages(process.stdout), "SPEC")
    assert len(specs) == 1
    assert specs[0]["spec"] == json.loads((REPO_ROOT / "spec.json").read_text())


def test_check_in_the_image(docker_client: Any, connector_image: str, kinesalite: Emulator, tmp_path: Path) -> None:
    config = connector_config(kinesalite.endpoint)
    write_json(tmp_path / "config.json", config)
    process = run_image(docker_client, connector_image, ["check", "--config", f"{MOUNT}/config.json"], tmp_path)
    statuses = of_type(parse_messages(process.stdout), "CONNECTION_STATUS")
    assert [status["connectionStatus"]["status"] for status in statuses] == ["SUCCEEDED"], process.stdout[-2000:]
    for key in ("accessKey", "privateKey"):
        assert config[key].encode() not in process.stdout + process.stderr, f"{key} leaked"


def test_write_in_the_image_through_airbyte_entrypoint(
    docker_client: Any, connector_image: str, kinesalite: Emulator, tmp_path: Path
) -> None:
    """The platform starts ``$AIRBYTE_ENTRYPOINT write ...`` in a shell with stdin redirected; so does this test."""
    name = unique("docker_image")
    messages = [record(name, {"id": i, "big": 10**30 + i}, 1_700_000_000_000 + i) for i in range(50)]
    messages.append(stream_state(1, name, cursor=49))
    stdin_bytes = to_lines(messages)
    (tmp_path / "input.jsonl").write_bytes(stdin_bytes)
    write_json(tmp_path / "config.json", connector_config(kinesalite.endpoint))
    write_json(tmp_path / "catalog.json", catalog([(None, name)]))
    shell = (f'exec "$AIRBYTE_ENTRYPOINT" write --config {MOUNT}/config.json --catalog {MOUNT}/catalog.json'
             f" < {MOUNT}/input.jsonl")
    process = run_image(docker_client, connector_image, ["-c", shell], tmp_path, entrypoint=["/bin/sh"])
    assert_synced(kinesalite.endpoint, stdin_bytes, SyncResult(process, parse_messages(process.stdout)))
