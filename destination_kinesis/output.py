"""The one writer of stdout: Airbyte messages (STATE, LOG, TRACE), one per line, each flushed at once.

A state that sits in a pipe buffer is a state the platform has not seen, so nothing here is buffered. Logs from any
thread go through the same lock, so lines never interleave.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import BinaryIO

import orjson
from airbyte_cdk.logger import AirbyteLogFormatter
from airbyte_cdk.models import AirbyteMessage, AirbyteMessageSerializer
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException


class Output:
    """Writes whole lines to a binary stream under a lock, flushing after each."""

    def __init__(self, stream: BinaryIO | None = None):
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._lock = threading.Lock()

    def write_line(self, line: bytes) -> None:
        with self._lock:
            self._stream.write(line + b"\n")
            self._stream.flush()

    def message(self, message: AirbyteMessage) -> None:
        """Emit an Airbyte message built by the CDK's dataclasses."""
        self.write_line(orjson.dumps(AirbyteMessageSerializer.dump(message)))

    def trace(self, exc: AirbyteTracedException) -> None:
        """Emit ``exc`` as a TRACE error message, every registered secret masked in its texts (stack trace too).

        Masking the texts rather than the serialised line keeps the line valid JSON whatever the secrets are.
        """
        message = exc.as_airbyte_message()
        error = message.trace.error  # type: ignore[union-attr]  # a TRACE of type ERROR always has one
        error.message = masked(error.message)
        error.internal_message = masked(error.internal_message)
        error.stack_trace = masked(error.stack_trace)
        self.message(message)


def masked(text: str | None) -> str | None:
    """``text`` with every registered secret replaced by ``****``."""
    return filter_secrets(text) if text else text


class _Handler(logging.Handler):
    def __init__(self, output: Output):
        super().__init__()
        self._output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._output.write_line(self.format(record).encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)


def send_logs_to(output: Output, level: int = logging.INFO) -> None:
    """Route every log record to ``output`` as an Airbyte LOG message (secrets masked by the CDK's formatter)."""
    handler = _Handler(output)
    handler.setFormatter(AirbyteLogFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    logging.getLogger("airbyte").setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
