"""Credentials and region against a moto server that checks every request against IAM: an assumed role, the
environment's credentials, the chain's region, and no credentials at all.

The installed console script runs in an environment without AWS settings except those each test gives it; its STS
calls go to moto through AWS_ENDPOINT_URL_STS. Every sync writes one small batch to one shard (moto's Kinesis is
used with a single writer only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from .connector import SyncResult, aws_environment, check_connection, connector_config, error_traces, run_write, unique
from .inputs import EMITTED_AT, loads, record, stream_state, to_lines
from .kinesis_emulator import Emulator, enforce_iam, read_stream
from .readback import assert_records_written, assert_states_echoed, kinesis_stream_name

EXTERNAL_ID = "ext-id-4711-not-for-logs"
ALLOW_KINESIS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}]}
ALLOW_ASSUME_ROLE = {"Version": "2012-10-17",
                     "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
TRUST_ANYONE = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}


@dataclass
class Keys:
    access_key: str
    secret_key: str


@dataclass
class Iam:
    """Identities in moto: ``writer`` may use Kinesis; ``assumer`` may only assume ``role_arn``, which may use
    Kinesis."""

    writer: Keys
    assumer: Keys
    role_arn: str


def _user(iam: Any, name: str, policy: dict[str, Any]) -> Keys:
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Keys(key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def iam(moto: Emulator) -> Iam:
    """The identities, created before moto starts checking credentials and policies."""
    client = boto3.client("iam", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="setup",
                          aws_secret_access_key="setup")
    writer = _user(client, "writer", ALLOW_KINESIS)
    assumer = _user(client, "assumer", ALLOW_ASSUME_ROLE)
    role = client.create_role(RoleName="kinesis-writer", AssumeRolePolicyDocument=json.dumps(TRUST_ANYONE))["Role"]
    client.put_role_policy(RoleName="kinesis-writer", PolicyName="kinesis", PolicyDocument=json.dumps(ALLOW_KINESIS))
    enforce_iam(moto)
    return Iam(writer, assumer, role["Arn"])


def _config(moto: Emulator, keys: Keys | None, **overrides: Any) -> dict[str, Any]:
    config = connector_config(moto.endpoint, shardCount=1, **overrides)
    del config["accessKey"], config["privateKey"]
    if keys is not None:
        config.update(accessKey=keys.access_key, privateKey=keys.secret_key)
    return config


def _messages(stream: str, count: int) -> list[dict[str, Any]]:
    records = [record(stream, {"id": i, "name": f"row {i}"}, EMITTED_AT + i) for i in range(count)]
    return [*records, stream_state(1, stream, cursor=count)]


def _output(result: SyncResult) -> bytes:
    return result.process.stdout + result.process.stderr


def test_assumed_role_is_used_for_check_and_write(moto: Emulator, iam: Iam, tmp_path: Path) -> None:
    """Keys that may only assume a role: check and write succeed with roleArn (so every Kinesis call used the role's
    credentials) and check fails without it. The keys and the external ID appear in no output."""
    env = aws_environment(tmp_path, AWS_ENDPOINT_URL_STS=moto.endpoint)
    role = {"roleArn": iam.role_arn, "externalId": EXTERNAL_ID, "roleSessionName": "integration-test"}

    without_role = check_connection(_config(moto, iam.assumer), tmp_path, env)
    assert without_role.status == "FAILED" and "not authorized" in without_role.message, without_role.message

    status = check_connection(_config(moto, iam.assumer, **role), tmp_path, env)
    assert status.status == "SUCCEEDED", status.message

    stream = unique("assumed")
    messages = _messages(stream, 20)
    result = run_write(_config(moto, iam.assumer, **role), [(None, stream)], to_lines(messages), tmp_path, env=env)
    assert result.process.returncode == 0, result.describe()
    assert_states_echoed(messages, result)
    logs = [m["log"]["message"] for m in result.messages if m["type"] == "LOG"]
    assert any(f"Assumed the role '{iam.role_arn}'" in line for line in logs), logs
    for output in (_output(result), status.output, without_role.output):
        for secret in (iam.assumer.secret_key, EXTERNAL_ID):
            assert secret.encode() not in output
    enforce_iam(moto, enforced=False)  # read back with the emulator's dummy keys
    assert_records_written(moto.endpoint, messages)


def test_role_that_may_not_be_assumed_fails_check_saying_so(moto: Emulator, iam: Iam, tmp_path: Path) -> None:
    """Keys without sts:AssumeRole: check fails naming the role and the refusal; write fails the same way as a
    config_error before reading input."""
    env = aws_environment(tmp_path, AWS_ENDPOINT_URL_STS=moto.endpoint)
    config = _config(moto, iam.writer, roleArn=iam.role_arn)
    status = check_connection(config, tmp_path, env)
    assert status.status == "FAILED"
    assert f"Could not assume the role '{iam.role_arn}'" in status.message and "sts:AssumeRole" in status.message
    result = run_write(config, [(None, "never")], b"not even JSON\n", tmp_path, env=env)
    (trace,) = error_traces(result.messages)
    assert result.process.returncode == 1 and trace["error"]["failure_type"] == "config_error"
    assert "Could not assume the role" in trace["error"]["message"]


def test_environment_credentials_and_region_are_used_without_keys(moto: Emulator, iam: Iam, tmp_path: Path) -> None:
    """No keys and no region in the config: the environment's credentials and AWS_DEFAULT_REGION are used, so the
    stream is created and written in eu-west-1."""
    env = aws_environment(tmp_path, AWS_ACCESS_KEY_ID=iam.writer.access_key,
                          AWS_SECRET_ACCESS_KEY=iam.writer.secret_key, AWS_DEFAULT_REGION="eu-west-1")
    config = _config(moto, None)
    del config["region"]
    assert check_connection(config, tmp_path, env).status == "SUCCEEDED"

    stream = unique("from_env")
    messages = _messages(stream, 10)
    result = run_write(config, [(None, stream)], to_lines(messages), tmp_path, env=env)
    assert result.process.returncode == 0, result.describe()
    assert_states_echoed(messages, result)
    assert iam.writer.secret_key.encode() not in _output(result)

    enforce_iam(moto, enforced=False)
    name = kinesis_stream_name(None, stream)
    written = read_stream(moto.endpoint, name, region="eu-west-1")
    assert sorted(loads(item["data"])["_airbyte_data"]["id"] for item in written) == list(range(10))
    assert name not in boto3.client("kinesis", endpoint_url=moto.endpoint, region_name="us-east-1",
                                    aws_access_key_id="x", aws_secret_access_key="x").list_streams()["StreamNames"]


def test_no_credentials_anywhere_fails_saying_where_to_put_them(moto: Emulator, tmp_path: Path) -> None:
    """No keys in the config and none in the chain: check fails saying how to provide credentials."""
    status = check_connection(_config(moto, None), tmp_path, aws_environment(tmp_path))
    assert status.status == "FAILED"
    assert "No AWS credentials were found" in status.message and "accessKey" in status.message
