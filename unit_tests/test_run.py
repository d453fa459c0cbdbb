"""run: the console entry point; every outcome is an Airbyte message on stdout, never a secret."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import HTTPClientError

from destination_kinesis import destination, sync
from destination_kinesis.run import run
from unit_tests.fakes import FakeSyncClient
from unit_tests.inputs import lines, record_line, stream_state_line, write_all
from unit_tests.paths import REPO_ROOT

pytestmark = pytest.mark.usefixtures("restore_logging", "clear_secrets")

SECRET = "run-test-SECRET-value-41"


def _messages(out: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


def _file(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _stdin_with_a_record_and_a_state(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Make stdin a pipe holding one record of 'users' and its state (id 7); return both ends."""
    read_fd, write_fd = os.pipe()
    write_all(write_fd, lines(record_line({"a": 1}), stream_state_line("users", state_id=7)))

    class Stdin:
        def fileno(self) -> int:
            return read_fd

    monkeypatch.setattr("sys.stdin", Stdin())
    return read_fd, write_fd


def _write_files(tmp_path: Path) -> tuple[str, str]:
    """A config and a catalog with the stream 'users', as file paths."""
    config = _file(tmp_path, "config.json", {"accessKey": "AKIA-RUN-TEST", "privateKey": SECRET})
    return config, _file(tmp_path, "catalog.json", {"streams": [{"stream": {"name": "users"}}]})


def test_spec(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """spec prints exactly one SPEC message with the packaged connectionSpecification."""
    run(["spec"])
    (message,) = _messages(capsysbinary.readouterr().out)
    assert message["type"] == "SPEC"
    expected = json.loads((REPO_ROOT / "spec.json").read_text())["connectionSpecification"]
    assert message["spec"]["connectionSpecification"] == expected


@pytest.mark.parametrize("args", [[], ["wrte"], ["check"]])
def test_a_bad_command_line_says_what_is_wrong_and_the_usage_once(args: list[str],
                                                                   capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(args)
    assert exited.value.code == 1
    trace = _messages(capsysbinary.readouterr().out)[-1]["trace"]["error"]
    assert trace["failure_type"] == "config_error"
    assert trace["message"].startswith("Invalid command line: ")
    assert "Usage: destination-kinesis " in trace["message"] and trace["message"].lower().count("usage:") == 1


@pytest.mark.parametrize("config", [{"accessKey": "AKIA-RUN-TEST", "privateKey": SECRET, "bufferSize": 0},
                                    "{not json", "[1]"],
                         ids=["invalid config", "not JSON", "not an object"])
def test_check_with_bad_config_prints_one_failed_status(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
                                                        config: Any) -> None:
    """check prints exactly one CONNECTION_STATUS (FAILED) and no secret, whatever is wrong with the config file."""
    run(["check", "--config", _file(tmp_path, "config.json", config)])
    out = capsysbinary.readouterr().out
    assert SECRET.encode() not in out
    statuses = [m for m in _messages(out) if m["type"] == "CONNECTION_STATUS"]
    assert len(statuses) == 1 and statuses[0]["connectionStatus"]["status"] == "FAILED"


def test_write_with_bad_config_exits_1_with_a_config_error_trace(tmp_path: Path,
                                                                 capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """write with an invalid config ends with a TRACE config_error naming the field, exit code 1, no secret."""
    config = _file(tmp_path, "config.json", {"accessKey": SECRET, "privateKey": SECRET, "bufferSize": "abc"})
    catalog = _file(tmp_path, "catalog.json", {"streams": []})
    with pytest.raises(SystemExit) as exited:
        run(["write", "--config", config, "--catalog", catalog])
    assert exited.value.code == 1
    out = capsysbinary.readouterr().out
    assert SECRET.encode() not in out
    (trace,) = [m for m in _messages(out) if m["type"] == "TRACE"]
    assert trace["trace"]["error"]["failure_type"] == "config_error"
    assert "bufferSize" in trace["trace"]["error"]["message"]


def test_write_end_to_end_with_a_fake_kinesis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """write reads stdin, writes to Kinesis and prints the state with destinationStats, logs as LOG messages."""
    client = FakeSyncClient(existing=("_users",))
    monkeypatch.setattr(sync, "kinesis_client", lambda *args, **kwargs: client)
    monkeypatch.setattr(sync, "PutRecords", lambda given: given)
    read_fd, write_fd = _stdin_with_a_record_and_a_state(monkeypatch)
    os.close(write_fd)
    config, catalog = _write_files(tmp_path)
    try:
        run(["write", "--config", config, "--catalog", catalog])
    finally:
        os.close(read_fd)
    messages = _messages(capsysbinary.readouterr().out)
    (state,) = [m for m in messages if m["type"] == "STATE"]
    assert state["state"]["id"] == 7 and state["state"]["destinationStats"]["recordCount"] == 1
    assert any(m["type"] == "LOG" for m in messages)
    assert [name for name, _ in client.calls] == ["_users"]


def test_output_stays_json_whatever_the_secret_values(tmp_path: Path,
                                                      capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Masking secrets must not corrupt the messages: every line stays a valid Airbyte message."""
    run(["check", "--config", _file(tmp_path, "config.json", {"accessKey": "a", "privateKey": SECRET,
                                                               "bufferSize": 0})])
    statuses = [m for m in _messages(capsysbinary.readouterr().out) if m["type"] == "CONNECTION_STATUS"]
    assert statuses[0]["connectionStatus"]["status"] == "FAILED"


def test_check_masks_a_secret_quoted_with_escapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """An access key pasted with a trailing newline, quoted by the HTTP client as ``b'...KEY\\n...'``, is masked."""
    key = "AKIA-RUN-NEWLINE-0042"
    header = ("Credential=" + key + "\n/20261123").encode()
    quoted = f"Invalid header value {header!r}"
    client = FakeSyncClient(list_error=HTTPClientError(error=ValueError(quoted)))
    monkeypatch.setattr(destination, "kinesis_client", lambda *args, **kwargs: client)
    run(["check", "--config", _file(tmp_path, "config.json", {"accessKey": key + "\n", "privateKey": SECRET})])
    out = capsysbinary.readouterr().out
    (status,) = [m for m in _messages(out) if m["type"] == "CONNECTION_STATUS"]
    assert status["connectionStatus"]["status"] == "FAILED" and "****" in status["connectionStatus"]["message"]
    assert key.encode() not in out


def test_sigterm_during_write_ends_with_an_interrupted_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """SIGTERM while a request is in flight and the source is still sending: the request finishes, the state of its
    record comes out, then a transient_error TRACE saying the sync was interrupted; exit code 1; the previous
    SIGTERM handler is back."""
    received: list[int] = []

    def fallback(signum: int, frame: object) -> None:  # if run() installed no handler, the test fails, not pytest
        received.append(signum)

    client = FakeSyncClient(existing=("_users",))
    client.gate = gate = threading.Event()

    def terminate_while_in_flight() -> None:
        assert client.entered.acquire(timeout=10), "no PutRecords call"
        time.sleep(0.2)  # the main thread is back waiting in select, where the platform's SIGTERM finds it
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
        time.sleep(0.2)
        gate.set()

    monkeypatch.setattr(sync, "kinesis_client", lambda *args, **kwargs: client)
    monkeypatch.setattr(sync, "PutRecords", lambda given: given)
    read_fd, write_fd = _stdin_with_a_record_and_a_state(monkeypatch)  # write_fd stays open: the source still sends
    config, catalog = _write_files(tmp_path)
    terminator = threading.Thread(target=terminate_while_in_flight)
    previous = signal.signal(signal.SIGTERM, fallback)
    try:
        terminator.start()
        with pytest.raises(SystemExit) as exited:
            run(["write", "--config", config, "--catalog", catalog])
        assert signal.getsignal(signal.SIGTERM) is fallback
    finally:
        client.gate.set()
        terminator.join(10)
        signal.signal(signal.SIGTERM, previous)
        os.close(read_fd)
        os.close(write_fd)
    assert exited.value.code == 1 and received == []
    messages = _messages(capsysbinary.readouterr().out)
    assert [m["state"]["id"] for m in messages if m["type"] == "STATE"] == [7]
    assert messages[-1]["type"] == "TRACE"
    error = messages[-1]["trace"]["error"]
    assert error["failure_type"] == "transient_error" and "interrupted (SIGTERM)" in error["message"]
