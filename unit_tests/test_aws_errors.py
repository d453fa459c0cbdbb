"""aws_errors: which AWS errors are retried, and which failure type and message the others become."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from destination_kinesis import aws_errors
from unit_tests.fakes import client_error

RETRYABLE = [
    client_error("ProvisionedThroughputExceededException"),
    client_error("KMSThrottlingException"),
    client_error("LimitExceededException"),
    client_error("InternalFailure", status=500),
    client_error("InternalFailureException", status=500),
    client_error("ServiceUnavailable", status=503),
    client_error("ThrottlingException"),
    client_error("RequestTimeout", status=408),
    client_error("SomethingNew", status=502),  # any 5xx
    EndpointConnectionError(endpoint_url="https://kinesis.invalid"),
    ConnectTimeoutError(endpoint_url="https://kinesis.invalid"),
    ReadTimeoutError(endpoint_url="https://kinesis.invalid"),
]

# (error, failure type, words the message must contain)
NOT_RETRYABLE = [
    (client_error("AccessDeniedException", message="not authorized"), "config_error",
     ["denied", "permission"]),
    (client_error("UnrecognizedClientException"), "config_error", ["credentials", "accessKey"]),
    (client_error("InvalidSignatureException"), "config_error", ["credentials", "privateKey"]),
    (client_error("ExpiredTokenException"), "config_error", ["credentials"]),
    (client_error("ResourceNotFoundException"), "config_error", ["not found", "region"]),
    (client_error("KMSDisabledException"), "config_error", ["KMS"]),
    (client_error("KMSAccessDeniedException"), "config_error", ["KMS"]),
    (client_error("KMSNotFoundException"), "config_error", ["KMS"]),
    (client_error("KMSInvalidStateException"), "config_error", ["KMS"]),
    (client_error("KMSOptInRequired"), "config_error", ["KMS"]),
    (NoCredentialsError(), "config_error", ["accessKey", "default chain"]),
    (client_error("AccessDenied", 403, operation="AssumeRole"), "config_error", ["denied", "permission"]),
    (client_error("RegionDisabledException", 403, operation="AssumeRole"), "config_error",
     ["AWS STS answered RegionDisabledException"]),
    (client_error("InvalidArgumentException"), "system_error", ["InvalidArgumentException", "HTTP 400"]),
    (client_error("ValidationException"), "system_error", ["ValidationException"]),
    (client_error("RequestEntityTooLarge", status=413), "system_error", ["HTTP 413"]),
    (ParamValidationError(report="bad"), "system_error", ["bad"]),
    (ValueError("odd"), "system_error", ["ValueError", "odd"]),
]


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__ + ":" + str(aws_errors.error_code(e)))
def test_retryable_errors(error: Exception) -> None:
    """Throttling, limits, 5xx, timeouts and connection errors may pass on a later attempt."""
    assert aws_errors.is_retryable(error)


@pytest.mark.parametrize(("error", "failure_type", "words"), NOT_RETRYABLE,
                         ids=[type(e).__name__ + ":" + str(aws_errors.error_code(e)) for e, _, _ in NOT_RETRYABLE])
def test_non_retryable_errors_get_failure_type_and_actionable_message(
    error: Exception, failure_type: str, words: list[str]
) -> None:
    """Credentials, IAM, KMS and missing streams are the user's to fix (config_error); the rest are system errors.
    The message says what was being done and what went wrong."""
    assert not aws_errors.is_retryable(error)
    traced = aws_errors.traced(error, "write to Kinesis stream 'orders'")
    assert traced.failure_type == failure_type
    assert traced.message.startswith("Could not write to Kinesis stream 'orders': ")
    for word in words:
        assert word in traced.message, (word, traced.message)
    assert traced.internal_message == repr(error)


def test_unreachable_endpoint_is_a_config_error_when_reported() -> None:
    """An endpoint that cannot be reached points at the endpoint setting."""
    traced = aws_errors.traced(EndpointConnectionError(endpoint_url="https://kinesis.invalid"), "list streams")
    assert traced.failure_type == "config_error"
    assert "endpoint" in traced.message and "https://kinesis.invalid" in traced.message


def test_error_code() -> None:
    """error_code reads a ClientError's code; anything else, or an empty code, has none."""
    assert aws_errors.error_code(client_error("AccessDeniedException")) == "AccessDeniedException"
    assert aws_errors.error_code(client_error("")) is None
    assert aws_errors.error_code(ValueError("x")) is None
    assert aws_errors.error_code(EndpointConnectionError(endpoint_url="x")) is None


def test_describe_includes_code_message_and_status() -> None:
    """Unclassified AWS errors are described with their code, AWS's message and the HTTP status."""
    text = aws_errors.describe(client_error("InvalidArgumentException", message="Records too large", status=400))
    assert text == "Kinesis answered InvalidArgumentException: Records too large (HTTP 400)."


def test_client_error_without_code_or_status_is_not_retryable() -> None:
    """A ClientError that says nothing is not retried blindly."""
    assert not aws_errors.is_retryable(client_error("", status=0))


def test_endpoint_that_does_not_answer_is_described_with_what_to_check() -> None:
    """A read timeout says the endpoint did not answer and what to check, not a generic client failure."""
    text = aws_errors.describe(ReadTimeoutError(endpoint_url="https://kinesis.invalid"))
    assert text.startswith("The AWS endpoint did not answer (")
    assert "Check the endpoint, the region and the network." in text


def test_unclassified_errors_name_the_service_that_answered() -> None:
    """An STS error (assuming a role) is not blamed on Kinesis."""
    assert aws_errors.describe(client_error("Odd", message="m", operation="AssumeRole")).startswith("AWS STS answered")
    assert aws_errors.describe(client_error("Odd", message="m", operation="PutRecords")).startswith("Kinesis answered")


def test_the_code_table_is_consistent() -> None:
    """Throttling is retried; what the user must fix is not; a kind that explains itself says what to do."""
    for code, kind in aws_errors.CODES.items():
        assert not kind.throttling or kind.retryable, code
        assert not (kind.user_fixable and kind.retryable), code
        assert bool(kind.meaning) == bool(kind.hint), code
    assert aws_errors.THROTTLING_CODES == {code for code, kind in aws_errors.CODES.items() if kind.throttling}
    assert "ProvisionedThroughputExceededException" in aws_errors.THROTTLING_CODES
