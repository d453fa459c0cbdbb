"""`destination-kinesis spec` and `destination-kinesis check` run as the installed console script."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .connector import connector_config, error_traces, of_type, parse_messages, run_connector, write_json
from .kinesis_emulator import Emulator, free_port

PROPERTIES = {"endpoint", "region", "shardCount", "accessKey", "privateKey", "bufferSize"}
UNREACHABLE_CHECK_LIMIT_S = 35.0


@dataclass
class CheckResult:
    status: str  # SUCCEEDED, FAILED, or TRACE:<failure_type> when check ended with an ERROR trace
    message: str
    process: subprocess.CompletedProcess[bytes]

    @property
    def output(self) -> bytes:
        return self.process.stdout + self.process.stderr


def check(config_path: Path, timeout: float = 60.0) -> CheckResult:
    """Run `check`: its single CONNECTION_STATUS, or failing that its ERROR trace."""
    process = run_connector(["check", "--config", str(config_path)], timeout=timeout)
    messages = parse_messages(process.stdout)
    statuses = of_type(messages, "CONNECTION_STATUS")
    if statuses:
        assert len(statuses) == 1, statuses
        status = statuses[0]["connectionStatus"]
        return CheckResult(status["status"], status.get("message") or "", process)
    traces = error_traces(messages)
    assert traces, f"neither CONNECTION_STATUS nor ERROR trace; exit {process.returncode}: {process.stdout[-2000:]!r}"
    error = traces[0]["error"]
    return CheckResult(f"TRACE:{error.get('failure_type')}", error.get("message") or "", process)


def assert_no_secrets(config: dict[str, object], output: bytes) -> None:
    for key in ("accessKey", "privateKey"):
        assert str(config[key]).encode() not in output, f"{key} leaked into the output"


def test_spec_lists_the_six_settings() -> None:
    """`spec` prints exactly one SPEC message whose connectionSpecification has the six settings of the
    earlier Java connector (and optional ones added since), the two keys marked as secrets."""
    process = run_connector(["spec"], timeout=60)
    assert process.returncode == 0, process.stderr[-2000:]
    specs = of_type(parse_messages(process.stdout), "SPEC")
    assert len(specs) == 1, specs
    properties = specs[0]["spec"]["connectionSpecification"]["properties"]
    assert PROPERTIES <= set(properties)
    assert properties["accessKey"].get("airbyte_secret") is True
    assert properties["privateKey"].get("airbyte_secret") is True


def test_check_succeeds_against_the_emulator(kinesalite: Emulator, tmp_path: Path) -> None:
    """`check` with a working endpoint and credentials reports SUCCEEDED and prints no secret."""
    config = connector_config(kinesalite.endpoint)
    result = check(write_json(tmp_path / "config.json", config))
    assert result.status == "SUCCEEDED", result.message
    assert_no_secrets(config, result.output)


def test_check_fails_fast_when_nothing_listens(tmp_path: Path) -> None:
    """`check` against an endpoint where nothing listens reports FAILED within 35 s, with a message and without
    a Python traceback on stdout."""
    config = connector_config(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    result = check(write_json(tmp_path / "config.json", config))
    elapsed = time.monotonic() - started
    assert result.status == "FAILED", result.message
    assert result.message.strip()
    assert elapsed < UNREACHABLE_CHECK_LIMIT_S, f"check took {elapsed:.1f} s"
    assert b"Traceback (most recent call last)" not in result.process.stdout
    assert_no_secrets(config, result.output)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param("not_json", r"json|config", id="not_json"),
        pytest.param("buffer_size_zero", "bufferSize", id="buffer_size_zero"),
    ],
)
def test_check_rejects_an_invalid_config(tmp_path: Path, case: str, expected: str) -> None:
    """A config that is not JSON, or with bufferSize 0, fails `check` (FAILED, or a config_error trace) with a
    message naming the problem, and the secret values appear nowhere in stdout or stderr."""
    config = connector_config("http://127.0.0.1:1", bufferSize=0)
    config_path = tmp_path / "config.json"
    if case == "not_json":
        config_path.write_text(json.dumps(config)[:-1])  # no closing brace; both secrets are in the file
    else:
        write_json(config_path, config)

    result = check(config_path)

    assert result.status in ("FAILED", "TRACE:config_error"), (result.status, result.message)
    assert re.search(expected, result.message, re.IGNORECASE), result.message
    assert_no_secrets(config, result.output)
