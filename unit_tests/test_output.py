"""output: whole lines to stdout under a lock, flushed at once; TRACE errors with secrets masked; logs as lines."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading

import pytest

from destination_kinesis.errors import config_error
from destination_kinesis.masking import register_secrets
from destination_kinesis.output import Output, send_logs_to
from destination_kinesis.sigterm import Interrupted, interrupting


class FlushCountingStream(io.BytesIO):
    """A binary stream that remembers what was written by the time of each flush."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[bytes] = []

    def flush(self) -> None:
        self.flushed.append(self.getvalue())


@pytest.fixture
def secrets(clear_secrets: None) -> None:
    register_secrets(["hunter2-SECRET"])


def test_each_line_is_written_whole_and_flushed() -> None:
    """A line goes out with its newline and is flushed before write_line returns."""
    stream = FlushCountingStream()
    out = Output(stream)
    out.write_line(b'{"type":"STATE"}')
    out.write_line(b"second")
    assert stream.flushed == [b'{"type":"STATE"}\n', b'{"type":"STATE"}\nsecond\n']


class SignalledStream(FlushCountingStream):
    """A stream whose write gets a SIGTERM half-way, as a write to a full pipe can."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        half = len(data) // 2
        written = super().write(data[:half])
        signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns, unless deferred
        return written + super().write(data[half:])


def test_sigterm_during_a_write_is_raised_once_the_lines_are_out_whole() -> None:
    """Interrupted comes only after the lines are written and flushed: no partial line for the TRACE to follow."""
    stream = SignalledStream()
    out = Output(stream)
    with pytest.raises(Interrupted), interrupting():
        out.write_lines([b'{"type":"STATE","id":1}', b'{"type":"STATE","id":2}'])
    assert stream.flushed == [b'{"type":"STATE","id":1}\n{"type":"STATE","id":2}\n']


def test_lines_from_many_threads_never_interleave() -> None:
    """Concurrent writers produce whole lines only."""
    stream = io.BytesIO()
    out = Output(stream)
    lines = {f"{t}:".encode() + bytes([65 + t]) * 5000 for t in range(8)}

    def write(line: bytes) -> None:
        for _ in range(20):
            out.write_line(line)

    threads = [threading.Thread(target=write, args=(line,)) for line in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = stream.getvalue().split(b"\n")
    assert written[-1] == b"" and len(written) == 161
    assert set(written[:-1]) == lines


def test_trace_is_an_airbyte_error_message_with_secrets_masked(secrets: None) -> None:
    """trace() writes one TRACE message of type ERROR with the failure type, with registered secrets masked."""
    stream = io.BytesIO()
    Output(stream).trace(config_error("Key hunter2-SECRET was refused", internal="hunter2-SECRET internal"))
    (line,) = stream.getvalue().splitlines()
    assert b"hunter2-SECRET" not in line
    message = json.loads(line)
    assert message["type"] == "TRACE"
    assert message["trace"]["type"] == "ERROR"
    assert message["trace"]["error"]["failure_type"] == "config_error"
    assert "was refused" in message["trace"]["error"]["message"]


def test_logs_become_airbyte_log_lines(restore_logging: None, secrets: None) -> None:
    """After send_logs_to, log records come out as LOG messages, secrets masked, and noisy libraries quieted."""
    stream = io.BytesIO()
    send_logs_to(Output(stream))
    logging.getLogger("airbyte").info("hello %s", "hunter2-SECRET")
    logging.getLogger("botocore").info("chatter")
    (line,) = stream.getvalue().splitlines()
    message = json.loads(line)
    assert message["type"] == "LOG" and message["log"]["level"] == "INFO"
    assert "hello" in message["log"]["message"] and "hunter2-SECRET" not in message["log"]["message"]
