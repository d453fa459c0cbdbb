"""The one writer of stdout: Airbyte messages (STATE, LOG, TRACE, and spec/check results), one per line, each
flushed at once, with the registered secrets masked (:mod:`destination_kinesis.masking`).

A state that sits in a pipe buffer is a state the platform has not seen, so nothing here is buffered. Logs from any
thread go through the same lock, so lines never interleave. Messages are built here as plain JSON rather than with
airbyte-cdk's models, so that ``write`` does not pay for importing the CDK.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from typing import Any, BinaryIO

import orjson

from destination_kinesis.errors import SYSTEM_ERROR, ConnectorError
from destination_kinesis.masking import masked
from destination_kinesis.sigterm import deferred

_LOG_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}


class Output:
    """Writes whole lines to a binary stream under a lock, flushing after each call."""

    def __init__(self, stream: BinaryIO | None = None):
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._lock = threading.Lock()

    def write_line(self, line: bytes) -> None:
        self.write_lines([line])

    def write_lines(self, lines: list[bytes]) -> None:
        """Write the lines and flush. A SIGTERM waits for the end (:func:`~destination_kinesis.sigterm.deferred`):
        interrupted, a write to a full pipe could leave part of a line, which the next message would then corrupt."""
        with deferred(), self._lock:
            self._stream.write(b"\n".join(lines) + b"\n")
            self._stream.flush()

    def message(self, message: dict[str, Any]) -> None:
        """Emit an Airbyte message given as a JSON-ready dict (the caller masks any text that may hold secrets)."""
        self.write_line(orjson.dumps(message))

    def trace(self, exc: BaseException) -> None:
        """Emit ``exc`` as a TRACE error message, every registered secret masked in its texts (stack trace too).

        A :class:`ConnectorError` keeps its message and failure type; anything else is an unexpected system_error.
        Masking the texts rather than the serialised line keeps the line valid JSON whatever the secrets are.
        """
        if isinstance(exc, ConnectorError):
            message, internal, failure_type = exc.message, exc.internal_message, exc.failure_type
        else:
            message, internal, failure_type = f"Unexpected error: {exc}", repr(exc), SYSTEM_ERROR
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        error = {"message": masked(message), "internal_message": masked(internal), "stack_trace": masked(stack),
                 "failure_type": failure_type}
        emitted_at = time.time_ns() // 1_000_000
        self.message({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": emitted_at, "error": error}})


class _Handler(logging.Handler):
    def __init__(self, output: Output):
        super().__init__()
        self._output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = _LOG_LEVELS.get(record.levelname, record.levelname)
            self._output.message({"type": "LOG", "log": {"level": level, "message": masked(self.format(record))}})
        except Exception:
            self.handleError(record)


def send_logs_to(output: Output, level: int = logging.INFO) -> None:
    """Route every log record to ``output`` as an Airbyte LOG message, secrets masked."""
    root = logging.getLogger()
    root.handlers = [_Handler(output)]
    logging.getLogger("airbyte").setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
