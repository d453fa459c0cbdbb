"""What an AWS error means for the sync: retry it, or fail with a message and failure type the user can act on."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, NoCredentialsError

from destination_kinesis.errors import ConnectorError, config_error, system_error

#: Whole-call errors worth retrying: throttling, limits and server-side failures.
RETRYABLE_CODES = frozenset({
    "ProvisionedThroughputExceededException", "KMSThrottlingException", "LimitExceededException",
    "InternalFailure", "InternalFailureException", "InternalServerError", "ServiceUnavailable",
    "ServiceUnavailableException", "ThrottlingException", "Throttling", "RequestLimitExceeded", "SlowDown",
    "RequestTimeout", "RequestTimeoutException",
})
#: Codes that mean "slow down": the request rate, not the request, is the problem.
THROTTLING_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "RequestLimitExceeded", "SlowDown",
    "KMSThrottlingException", "LimitExceededException",
})
#: Errors the user fixes in the configuration, IAM or KMS.
_CREDENTIAL_CODES = frozenset({
    "UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "IncompleteSignature", "IncompleteSignatureException", "ExpiredTokenException", "ExpiredToken",
    "MissingAuthenticationToken",
})
_PERMISSION_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
#: A missing stream; STS not activated in the region.
_OTHER_CONFIG_CODES = frozenset({"ResourceNotFoundException", "RegionDisabledException"})
_STS_OPERATIONS = frozenset({"AssumeRole", "GetCallerIdentity"})
_KMS_CODES = frozenset({
    "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException", "KMSNotFoundException",
    "KMSOptInRequired",
})


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def _http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_retryable(exc: BaseException) -> bool:
    """True for errors that a later attempt of the same call may not see: throttling, 5xx, timeouts, connections."""
    if isinstance(exc, ClientError):
        return error_code(exc) in RETRYABLE_CODES or _http_status(exc) >= 500
    return isinstance(exc, (ConnectionError, HTTPClientError))


def describe(exc: BaseException) -> str:
    """A one-line explanation of a failed AWS call, with what to do about it."""
    code = error_code(exc)
    if isinstance(exc, ClientError):
        aws_message = exc.response.get("Error", {}).get("Message") or ""
        detail = f"{code}: {aws_message}".rstrip(": ")
        if code in _CREDENTIAL_CODES:
            return (f"AWS did not accept the credentials ({detail}). Check accessKey and privateKey, or the "
                    f"credentials the AWS default chain provides when they are empty.")
        if code in _PERMISSION_CODES:
            return f"AWS denied the request ({detail}). Grant the missing permission to these credentials (or role)."
        if code == "ResourceNotFoundException":
            return f"The Kinesis stream was not found ({detail}). Check the region and that the stream exists."
        if code in _KMS_CODES:
            return f"The stream's KMS key cannot be used ({detail}). Fix the key or the credentials' KMS permissions."
        return f"{_service(exc)} answered {detail or 'an error'} (HTTP {_http_status(exc)})."
    if isinstance(exc, NoCredentialsError):
        return ("No AWS credentials were found. Set accessKey and privateKey, or provide credentials through the AWS "
                "default chain (environment variables, shared config or profile, web identity, ECS or EC2 role).")
    if isinstance(exc, ConnectionError):
        return f"Could not connect to the AWS endpoint ({exc}). Check the endpoint, the region and the network."
    if isinstance(exc, HTTPClientError):  # read timeouts, connections closed mid-request
        return f"The AWS endpoint did not answer ({exc}). Check the endpoint, the region and the network."
    if isinstance(exc, BotoCoreError):
        return f"The AWS client failed: {exc}."
    return f"{type(exc).__name__}: {exc}"


def _service(exc: ClientError) -> str:
    """Which service answered: STS errors come from assuming a role, everything else from Kinesis."""
    return "AWS STS" if exc.operation_name in _STS_OPERATIONS else "Kinesis"


def traced(exc: BaseException, action: str) -> ConnectorError:
    """A non-retryable AWS error while doing ``action`` as a config_error (credentials, IAM, KMS, missing stream,
    STS region, unreachable endpoint) or a system_error (anything else)."""
    message = f"Could not {action}: {describe(exc)}"
    code = error_code(exc)
    user_fixable = (
        code in _CREDENTIAL_CODES or code in _PERMISSION_CODES or code in _KMS_CODES or code in _OTHER_CONFIG_CODES
        or isinstance(exc, (NoCredentialsError, ConnectionError))
    )
    return (config_error if user_fixable else system_error)(message, internal=repr(exc))
