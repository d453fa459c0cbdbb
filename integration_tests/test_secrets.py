"""Scenario 8, secrets: spec, check and write, succeeding and failing, with recognisable values in ``accessKey`` and
``privateKey``; no line on stdout or stderr may contain them, in any form (raw, JSON- or repr-escaped, line by line).

The failures include an AWS error that echoes the request (the Authorization header holds the access key) and an
exception raised deep in the HTTP client (an access key pasted with a trailing newline makes http.client refuse
the header and quote it). airbyte-cdk's own leak check (the one its conformance suite runs for ``check``) is run on
the same output.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.models import ConnectorSpecification
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput
from airbyte_cdk.test.standard_tests._spec_lint import assert_no_secrets_in_output, assert_spec_is_valid

from .connector import (
    RunningConnector,
    catalog,
    connector_config,
    error_traces,
    of_type,
    parse_messages,
    run_connector,
    unique,
    write_json,
)
from .fault_proxy import FaultPlan, FaultProxy
from .inputs import EMITTED_AT, record, stream_state, to_lines
from .kinesis_emulator import Emulator

Run = Callable[[Emulator, Path, dict[str, Any]], subprocess.CompletedProcess[bytes]]


def secret_config(endpoint: str, pasted_with_newline: bool = False) -> dict[str, Any]:
    """A config whose secrets are easy to spot: AWS-like keys with a unique part (and digits, which the CDK's leak
    check needs to search for a value)."""
    access_key = unique("AKIA7SECRET").upper() + ("\n" if pasted_with_newline else "")
    return connector_config(endpoint, accessKey=access_key, privateKey=unique("wJalr/SECRET+Key0042"))


def secret_forms(secret: str) -> set[str]:
    """Every form in which ``secret`` could show up: raw, stripped, each line, JSON- and repr-escaped."""
    forms = {secret, secret.strip(), json.dumps(secret)[1:-1], repr(secret)[1:-1], *secret.splitlines()}
    return {form for form in forms if len(form.strip()) >= 8}


def write_args_for(tmp_path: Path, config: dict[str, Any], name: str) -> list[str]:
    config_path = write_json(tmp_path / "config.json", config)
    catalog_path = write_json(tmp_path / "catalog.json", catalog([(None, name)]))
    return ["write", "--config", str(config_path), "--catalog", str(catalog_path)]


def small_input(name: str) -> bytes:
    return to_lines([record(name, {"i": i}, EMITTED_AT + i) for i in range(20)] + [stream_state(1, name)])


def check(tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    return run_connector(["check", "--config", str(write_json(tmp_path / "config.json", config))], timeout=90)


def run_spec(kinesalite: Emulator, tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    return run_connector(["spec"], timeout=60)


def check_succeeds(kinesalite: Emulator, tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    return check(tmp_path, config)


def check_fails_with_echoing_aws_error(kinesalite: Emulator, tmp_path: Path,
                                       config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    with FaultProxy(kinesalite.endpoint, FaultPlan(seed=801, reject_signature_of=("ListStreams",))).start() as proxy:
        return check(tmp_path, {**config, "endpoint": proxy.endpoint})


def check_fails_deep_in_http_client(kinesalite: Emulator, tmp_path: Path,
                                    config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    return check(tmp_path, config)


def write_succeeds(kinesalite: Emulator, tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    name = unique("secrets")
    return run_connector(write_args_for(tmp_path, config, name), small_input(name))


def write_fails_with_echoing_aws_error(kinesalite: Emulator, tmp_path: Path,
                                       config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    name = unique("secrets")
    with FaultProxy(kinesalite.endpoint, FaultPlan(seed=802, reject_signature_of=("PutRecords",))).start() as proxy:
        return run_connector(write_args_for(tmp_path, {**config, "endpoint": proxy.endpoint}, name), small_input(name))


def write_fails_deep_in_http_client(kinesalite: Emulator, tmp_path: Path,
                                    config: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    """Every call fails in http.client; the connector retries stream setup (for minutes), so once it has said so
    in a log line it is stopped with SIGTERM."""
    name = unique("secrets")
    with RunningConnector(write_args_for(tmp_path, config, name), small_input(name)) as connector:
        for message in connector.messages(timeout=60):
            if message["type"] == "LOG" and message["log"]["level"] == "WARN":
                break
        connector.send_signal(signal.SIGTERM)
        return connector.wait(timeout=time.monotonic() - connector.started + 60).process


# case: (how to run it, whether the access key carries a trailing newline, what the outcome must be)
CASES: dict[str, tuple[Run, bool, str]] = {
    "spec": (run_spec, False, "SPEC"),
    "check_succeeds": (check_succeeds, False, "SUCCEEDED"),
    "check_fails_with_echoing_aws_error": (check_fails_with_echoing_aws_error, False, "FAILED"),
    "check_fails_deep_in_http_client": (check_fails_deep_in_http_client, True, "FAILED"),
    "write_succeeds": (write_succeeds, False, "exit 0"),
    "write_fails_with_echoing_aws_error": (write_fails_with_echoing_aws_error, False, "TRACE"),
    "write_fails_deep_in_http_client": (write_fails_deep_in_http_client, True, "TRACE"),
}


@pytest.fixture(scope="module")
def spec() -> ConnectorSpecification:
    """The connector's spec, which tells airbyte-cdk's leak check which config values are secrets."""
    process = run_connector(["spec"], timeout=60)
    (message,) = EntrypointOutput(messages=process.stdout.decode().splitlines()).spec_messages
    assert message.spec is not None
    return message.spec


def test_spec_marks_every_secret(spec: ConnectorSpecification) -> None:
    """airbyte-cdk's spec lint: every property that looks like a credential is marked ``airbyte_secret`` (true, or
    false explicitly when it holds none), where the CDK's masking finds it."""
    assert_spec_is_valid(spec, connector_name="destination-kinesis")


@pytest.mark.parametrize("case", list(CASES))
def test_no_secret_in_any_output(kinesalite: Emulator, tmp_path: Path, spec: ConnectorSpecification,
                                 case: str) -> None:
    """The run ends as expected, and neither our search nor airbyte-cdk's leak check finds a secret in stdout or
    stderr."""
    run, pasted_with_newline, outcome = CASES[case]
    config = secret_config(kinesalite.endpoint, pasted_with_newline)
    process = run(kinesalite, tmp_path, config)

    output = process.stdout + process.stderr
    for key in ("accessKey", "privateKey"):
        leaked = [form for form in secret_forms(config[key]) if form.encode() in output]
        assert not leaked, f"{key} appears in the output of {case} ({len(leaked)} forms)"
    lines = process.stdout.decode().splitlines()
    assert lines, f"{case} printed nothing"
    assert_no_secrets_in_output(EntrypointOutput(messages=lines, stderr=process.stderr.decode()), spec=spec,
                                config=config, verb=case, connector_name="destination-kinesis")

    messages = parse_messages(process.stdout)
    if outcome == "SPEC":
        assert len(of_type(messages, "SPEC")) == 1
    elif outcome in ("SUCCEEDED", "FAILED"):
        (status,) = of_type(messages, "CONNECTION_STATUS")
        assert status["connectionStatus"]["status"] == outcome, status
    elif outcome == "exit 0":
        assert process.returncode == 0 and not error_traces(messages), process.stdout[-2000:]
    else:
        assert process.returncode == 1 and len(error_traces(messages)) == 1, process.stdout[-2000:]


def test_short_dummy_keys_keep_names_readable_and_are_masked_where_they_stand_alone(kinesalite: Emulator,
                                                                                   tmp_path: Path) -> None:
    """Keys like test/test (what emulators take) do not turn names and words into stars: the stream 'test.<name>'
    is named as it is in the logs. Where a key stands alone, as in the Authorization header an AWS error echoes
    (Credential=test/...), it is still masked."""
    name = unique("test_orders")
    config = connector_config(kinesalite.endpoint, accessKey="test", privateKey="test")
    stdin = to_lines([record(name, {"i": 1}, EMITTED_AT, "test"), stream_state(1, name, "test")])
    config_path = write_json(tmp_path / "config.json", config)
    catalog_path = write_json(tmp_path / "catalog.json", catalog([("test", name)]))
    process = run_connector(["write", "--config", str(config_path), "--catalog", str(catalog_path)], stdin)
    logs = [message["log"]["message"] for message in of_type(parse_messages(process.stdout), "LOG")]
    assert process.returncode == 0, logs[-3:]
    assert any(f"Stream 'test.{name}' → Kinesis stream 'test_{name}'" in log for log in logs), logs
    assert not any("****" in log for log in logs), [log for log in logs if "****" in log]

    echoing = write_fails_with_echoing_aws_error(kinesalite, tmp_path, config)
    (trace,) = error_traces(parse_messages(echoing.stdout))
    assert "Credential=****/" in trace["error"]["message"] and "Credential=test/" not in echoing.stdout.decode()
