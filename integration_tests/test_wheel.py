"""The wheel built from this checkout, installed with its dependencies into a fresh virtual environment (no access
to the test environment's packages), runs spec, check and a small write against kinesalite: spec.json and every
module ship in the wheel, and every dependency the code imports is declared."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import venvs
from .connector import REPO_ROOT, SyncResult, catalog, connector_config, of_type, parse_messages, unique, write_json
from .inputs import record, stream_state, to_lines
from .kinesis_emulator import Emulator
from .readback import assert_synced

RUN_TIMEOUT_S = 120

pytestmark = pytest.mark.slow


@dataclass
class InstalledWheel:
    wheel: Path
    venv: Path

    def run(self, args: list[str], cwd: Path, stdin_bytes: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        """Run the venv's ``destination-kinesis`` from ``cwd`` (outside the checkout, so nothing of it is imported)."""
        return subprocess.run([str(self.venv / "bin" / "destination-kinesis"), *args], input=stdin_bytes,
                              capture_output=True, cwd=cwd, timeout=RUN_TIMEOUT_S, env=venvs.bytecode_env())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> InstalledWheel:
    """Build the wheel (no editable install, no source tree) and install it into a new venv.

    The dependencies come from a wheelhouse kept in pytest's cache between runs: the install itself reads only the
    wheelhouse (``--no-index``), and only when that fails, because a dependency or a version is not in it yet, are
    the missing wheels downloaded from the package index and the install repeated.
    """
    dist = tmp_path_factory.mktemp("dist")
    venvs.pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", dist, REPO_ROOT)
    wheels = list(dist.glob("destination_kinesis-*.whl"))
    assert len(wheels) == 1, wheels
    installed = InstalledWheel(wheels[0], tmp_path_factory.mktemp("venv"))
    python = venvs.create(installed.venv)

    wheelhouse = venvs.kept_dir(pytestconfig, tmp_path_factory, "wheelhouse")
    offline = ("install", "--no-compile", "--no-index", "--find-links", wheelhouse, installed.wheel)
    if venvs.pip(python, *offline, check=False).returncode != 0:
        venvs.pip(sys.executable, "download", "--dest", wheelhouse, installed.wheel)
        for own in wheelhouse.glob("destination_kinesis-*.whl"):  # pip download copies the wheel itself too
            own.unlink()
        venvs.pip(python, *offline)
    return installed


def test_wheel_ships_every_module_and_spec_json(installed: InstalledWheel) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        package_files = {name for name in wheel.namelist() if name.startswith("destination_kinesis/")}
    source_files = {f"destination_kinesis/{path.name}" for path in (REPO_ROOT / "destination_kinesis").iterdir()
                    if path.suffix in (".py", ".json")}
    assert package_files == source_files


def test_package_is_imported_from_the_venv(installed: InstalledWheel, tmp_path: Path) -> None:
    probe = "import destination_kinesis, sys; print(destination_kinesis.__file__); print(sys.prefix != sys.base_prefix)"
    result = subprocess.run([str(venvs.python_of(installed.venv)), "-c", probe], capture_output=True, text=True,
                            cwd=tmp_path, timeout=RUN_TIMEOUT_S, check=True)
    module_file, in_venv = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(installed.venv) and in_venv == "True"


def test_spec_from_the_wheel(installed: InstalledWheel, tmp_path: Path) -> None:
    process = installed.run(["spec"], tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    specs = of_type(parse_messages(process.stdout), "SPEC")
    assert [message["spec"] for message in specs] == [json.loads((REPO_ROOT / "spec.json").read_text())]


def test_check_from_the_wheel(installed: InstalledWheel, kinesalite: Emulator, tmp_path: Path) -> None:
    config = write_json(tmp_path / "config.json", connector_config(kinesalite.endpoint))
    process = installed.run(["check", "--config", str(config)], tmp_path)
    statuses = of_type(parse_messages(process.stdout), "CONNECTION_STATUS")
    assert [status["connectionStatus"]["status"] for status in statuses] == ["SUCCEEDED"], process.stderr[-3000:]


def test_write_from_the_wheel(installed: InstalledWheel, kinesalite: Emulator, tmp_path: Path) -> None:
    name = unique("wheel")
    messages = [record(name, {"id": i, "price": "12.50", "big": 10**30 + i}, 1_700_000_000_000 + i, "shop")
                for i in range(200)]
    messages.insert(100, stream_state(1, name, "shop", cursor=99))
    messages.append(stream_state(2, name, "shop", cursor=199))
    stdin_bytes = to_lines(messages)
    config = write_json(tmp_path / "config.json", connector_config(kinesalite.endpoint))
    catalog_path = write_json(tmp_path / "catalog.json", catalog([("shop", name)]))
    process = installed.run(["write", "--config", str(config), "--catalog", str(catalog_path)], tmp_path, stdin_bytes)
    assert_synced(kinesalite.endpoint, stdin_bytes, SyncResult(process, parse_messages(process.stdout)))
