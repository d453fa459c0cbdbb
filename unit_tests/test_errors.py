"""errors: the connector's failures as Airbyte traced exceptions with the right failure type."""

from __future__ import annotations

import pytest

from destination_kinesis.errors import config_error, input_error, system_error, transient_error


@pytest.mark.parametrize(
    ("make", "failure_type"),
    [(config_error, "config_error"), (transient_error, "transient_error"),
     (system_error, "system_error")],
)
def test_failure_types(make, failure_type: str) -> None:  # type: ignore[no-untyped-def]
    """Each constructor sets its failure type, the user message and the internal message."""
    error = make("for the user", internal="for us")
    assert error.failure_type == failure_type
    assert (error.message, error.internal_message) == ("for the user", "for us")


def test_input_error_names_line_and_stream() -> None:
    """An input error is a system_error naming the line and, when known, the stream, and says nothing was written
    from that line on."""
    error = input_error(42, "the record has no 'data'", "ns.users")
    assert error.failure_type == "system_error"
    assert error.message == ("Input line 42 (stream 'ns.users'): the record has no 'data'. Nothing from this line "
                             "on was written or acknowledged.")
    assert input_error(3, "bad").message.startswith("Input line 3: bad.")


def test_input_error_with_an_unencodable_stream_name_can_be_written_out() -> None:
    """A stream name with an escaped lone surrogate (valid JSON input) still gives a message UTF-8 can carry."""
    error = input_error(5, "this stream is not in the configured catalog", "bad\ud800name")
    error.message.encode("utf-8")
    assert "line 5" in error.message and "bad" in error.message and "name" in error.message
