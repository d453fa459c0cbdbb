"""The IAM permissions docs/kinesis.md lists are exactly the AWS actions the connector needs.

Every request the connector signs is recorded through botocore's event system (``aws_calls/sitecustomize.py`` on
PYTHONPATH registers a ``before-sign`` handler on every botocore session), while check and write run with every
option that adds a call: an assumed role (STS AssumeRole), one fixed stream name (check describes it), a stream to
create with tags. A call the page does not list, or a listed action no call needs, fails the test, so a new call
(a shard map, say) cannot ship without its row in the permissions table.

moto serves both STS and Kinesis here (its Kinesis with one writer at a time).
"""

from __future__ import annotations

from pathlib import Path

from unit_tests.test_docs import documented_actions

from .connector import aws_environment, check_connection, connector_config, run_write, unique
from .inputs import EMITTED_AT, record, stream_state, to_lines
from .kinesis_emulator import Emulator

RECORDER = Path(__file__).parent / "aws_calls"
ROLE_ARN = "arn:aws:iam::123456789012:role/kinesis-writer"


def test_documented_permissions_are_the_calls_the_connector_makes(moto: Emulator, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    env = aws_environment(tmp_path, AWS_ENDPOINT_URL_STS=moto.endpoint, PYTHONPATH=str(RECORDER),
                          RECORD_AWS_CALLS=str(calls))
    stream = unique("permissions")
    options = {"roleArn": ROLE_ARN, "streamTags": [{"key": "team", "value": "data"}], "shardCount": 1,
               "maxInFlightRequests": 1}

    status = check_connection(connector_config(moto.endpoint, streamNameTemplate=stream, **options), tmp_path, env)
    assert status.status == "SUCCEEDED", status.message
    messages = [*(record(stream, {"id": i}, EMITTED_AT + i) for i in range(5)), stream_state(1, stream, cursor=5)]
    result = run_write(connector_config(moto.endpoint, **options), [(None, stream)], to_lines(messages), tmp_path,
                       env=env)
    assert result.process.returncode == 0, result.describe()

    called = set(calls.read_text().split())
    assert called == documented_actions(), (
        f"called but not in docs/kinesis.md's permissions: {sorted(called - documented_actions())}; "
        f"listed but never called: {sorted(documented_actions() - called)}")
