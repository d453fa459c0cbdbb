"""The failures the connector reports, each with a message a user can act on and an Airbyte failure type.

Messages never carry record content or secrets: they name the stream, the input line and the field instead. The
write path does not import airbyte-cdk (its import alone costs about a second of CPU), so these are plain exceptions
that :mod:`destination_kinesis.output` turns into Airbyte TRACE messages.
"""

from __future__ import annotations

CONFIG_ERROR = "config_error"
TRANSIENT_ERROR = "transient_error"
SYSTEM_ERROR = "system_error"


class ConnectorError(Exception):
    """A failure to report as an Airbyte TRACE error: ``message`` for the user, ``internal_message`` for support."""

    def __init__(self, message: str, internal_message: str | None = None, failure_type: str = SYSTEM_ERROR):
        super().__init__(message)
        self.message = message
        self.internal_message = internal_message
        self.failure_type = failure_type


def config_error(message: str, internal: str | None = None) -> ConnectorError:
    """The user must fix the configuration or the AWS permissions; retrying as it is will fail again."""
    return ConnectorError(message, internal, CONFIG_ERROR)


def transient_error(message: str, internal: str | None = None) -> ConnectorError:
    """Retrying the sync later may succeed (throttling or an outage outlasted the retry time)."""
    return ConnectorError(message, internal, TRANSIENT_ERROR)


def system_error(message: str, internal: str | None = None) -> ConnectorError:
    """Neither the configuration nor time will fix it: bad input from the source, or a bug."""
    return ConnectorError(message, internal, SYSTEM_ERROR)


class InputError(ConnectorError):
    """A line of the input cannot be written (a system_error: the source sent it)."""


def input_error(line_no: int, problem: str, stream: str | None = None) -> InputError:
    """A line of the input cannot be written: the message names the line and, when known, the stream."""
    # A stream name from the input may hold escaped lone surrogates, which no UTF-8 output can carry.
    shown = stream.encode("utf-8", "backslashreplace").decode("utf-8") if stream else None
    where = f"line {line_no}" + (f" (stream '{shown}')" if shown else "")
    return InputError(f"Input {where}: {problem}. Nothing from this line on was written or acknowledged.",
                      None, SYSTEM_ERROR)
