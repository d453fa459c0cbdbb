"""The failures the connector reports, as Airbyte traced exceptions with a message a user can act on.

Messages never carry record content or secrets: they name the stream, the input line and the field instead.
"""

from __future__ import annotations

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException


def config_error(message: str, internal: str | None = None) -> AirbyteTracedException:
    """The user must fix the configuration or the AWS permissions; retrying as it is will fail again."""
    return AirbyteTracedException(message=message, internal_message=internal, failure_type=FailureType.config_error)


def transient_error(message: str, internal: str | None = None) -> AirbyteTracedException:
    """Retrying the sync later may succeed (throttling or an outage outlasted the retry time)."""
    return AirbyteTracedException(message=message, internal_message=internal, failure_type=FailureType.transient_error)


def system_error(message: str, internal: str | None = None) -> AirbyteTracedException:
    """Neither the configuration nor time will fix it: bad input from the source, or a bug."""
    return AirbyteTracedException(message=message, internal_message=internal, failure_type=FailureType.system_error)


def input_error(line_no: int, problem: str, stream: str | None = None) -> AirbyteTracedException:
    """A line of the input cannot be written: the message names the line and, when known, the stream."""
    # A stream name from the input may hold escaped lone surrogates, which no UTF-8 output can carry.
    shown = stream.encode("utf-8", "backslashreplace").decode("utf-8") if stream else None
    where = f"line {line_no}" + (f" (stream '{shown}')" if shown else "")
    return system_error(f"Input {where}: {problem}. Nothing from this line on was written or acknowledged.")
