"""Virtual environments for tests that must not run in the test environment: the connector's wheel on its own
(test_wheel.py), and PyAirbyte with a real source (test_pyairbyte.py), whose dependencies conflict with ours.

Plain library code: no pytest here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

PIP_TIMEOUT_S = 900.0
STAMP = "pinned-requirements.txt"


class VenvError(RuntimeError):
    """A virtual environment could not be created or a pip command failed."""


def bytecode_env(**extra: str) -> dict[str, str]:
    """This process's environment with bytecode caching on (whatever PYTHONDONTWRITEBYTECODE said), for programs
    run from these environments: installed with ``--no-compile``, they compile only the modules they import, once."""
    return {**{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}, **extra}


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def pip(python: Path | str, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pip`` with ``args``; raise VenvError with pip's error output if it fails and ``check``."""
    command = [str(python), "-m", "pip", "--disable-pip-version-check", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    if check and result.returncode != 0:
        raise VenvError(f"{' '.join(command)} failed:\n{result.stderr[-5000:]}")
    return result


def create(venv: Path) -> Path:
    """A new virtual environment without the test environment's packages; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=PIP_TIMEOUT_S)
    return python_of(venv)


def pinned(venv: Path, requirements: list[str]) -> Path:
    """The python of a virtual environment at ``venv`` that holds ``requirements`` (pinned versions).

    The environment is kept between runs and made anew only when the requirements change; a stamp file written
    after a successful install records them, so an install that failed halfway is redone.
    """
    wanted = "".join(f"{requirement}\n" for requirement in requirements)
    stamp = venv / STAMP
    if stamp.exists() and stamp.read_text() == wanted and python_of(venv).exists():
        return python_of(venv)
    shutil.rmtree(venv, ignore_errors=True)
    python = create(venv)
    pip(python, "install", "--no-compile", *requirements)
    stamp.write_text(wanted)
    return python


def kept_dir(config: pytest.Config, factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory kept between runs in pytest's cache, or a fresh temporary one when the cache plugin is off
    (``-p no:cacheprovider``: then ``config`` has no ``cache`` at all)."""
    cache = getattr(config, "cache", None)
    return cache.mkdir(name) if cache is not None else factory.mktemp(name)
