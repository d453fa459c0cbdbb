"""What an AWS error means for the sync: retry it, or fail with a message and failure type the user can act on.

:data:`CODES` is the one table of the error codes the connector tells apart: each code's kind, whether a later
attempt may pass (retryable), whether it means "slow down" (throttling, which lowers the requests in flight), and
what the user is told. A code not in the table is retried when its HTTP status is 5xx, else it fails the sync as a
system error.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, NoCredentialsError

from destination_kinesis.errors import ConnectorError, config_error, system_error


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """What a group of error codes means.

    ``retryable``: a later attempt of the same call may pass. ``throttling``: the request rate, not the request, is
    the problem. ``user_fixable``: when not retried (or retried in vain), the user fixes it in the configuration,
    IAM or KMS (a config_error), else it is a system_error. ``meaning`` and ``hint`` make the message: ``meaning
    (code: AWS message). hint``; without a meaning the message is ``<service> answered code: AWS message (HTTP n).``
    """

    name: str
    retryable: bool = False
    throttling: bool = False
    user_fixable: bool = False
    meaning: str = ""
    hint: str = ""


THROTTLED = ErrorKind("throttling", retryable=True, throttling=True)
SERVER = ErrorKind("server", retryable=True)
CREDENTIALS = ErrorKind(
    "credentials", user_fixable=True, meaning="AWS did not accept the credentials",
    hint="Check accessKey and privateKey, or the credentials the AWS default chain provides when they are empty.")
PERMISSION = ErrorKind("permission", user_fixable=True, meaning="AWS denied the request",
                       hint="Grant the missing permission to these credentials (or role).")
NOT_FOUND = ErrorKind("not_found", user_fixable=True, meaning="The Kinesis stream was not found",
                      hint="Check the region and that the stream exists.")
KMS = ErrorKind("kms", user_fixable=True, meaning="The stream's KMS key cannot be used",
                hint="Fix the key or the credentials' KMS permissions.")
#: STS is not activated in the region.
REGION = ErrorKind("region", user_fixable=True)


def _each(kind: ErrorKind, *codes: str) -> dict[str, ErrorKind]:
    return dict.fromkeys(codes, kind)


#: Error code → what it means. Kinesis and STS spell some codes with and without ``Exception``; both are listed.
CODES: dict[str, ErrorKind] = {
    **_each(THROTTLED, "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
            "RequestLimitExceeded", "SlowDown", "KMSThrottlingException",
            # Kinesis's control plane (DescribeStreamSummary, CreateStream) answers its rate limits with this one.
            "LimitExceededException"),
    **_each(SERVER, "InternalFailure", "InternalFailureException", "InternalServerError", "ServiceUnavailable",
            "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException"),
    **_each(CREDENTIALS, "UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId",
            "SignatureDoesNotMatch", "IncompleteSignature", "IncompleteSignatureException", "ExpiredTokenException",
            "ExpiredToken", "MissingAuthenticationToken"),
    **_each(PERMISSION, "AccessDeniedException", "AccessDenied", "UnauthorizedOperation"),
    **_each(NOT_FOUND, "ResourceNotFoundException"),
    **_each(KMS, "KMSDisabledException", "KMSInvalidStateException", "KMSAccessDeniedException",
            "KMSNotFoundException", "KMSOptInRequired"),
    **_each(REGION, "RegionDisabledException"),
}
#: Codes that mean "slow down": the request rate, not the request, is the problem.
THROTTLING_CODES = frozenset(code for code, kind in CODES.items() if kind.throttling)

_STS_OPERATIONS = frozenset({"AssumeRole", "GetCallerIdentity"})


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def kind_of(exc: BaseException) -> ErrorKind | None:
    """The kind of an AWS error answer whose code is in :data:`CODES`, else None."""
    code = error_code(exc)
    return None if code is None else CODES.get(code)


def _http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_denied(exc: BaseException) -> bool:
    """True for a refusal of the call itself (IAM), also when an endpoint answers HTTP 403 with an unknown code."""
    if not isinstance(exc, ClientError):
        return False
    kind = CODES.get(error_code(exc) or "")
    return kind is PERMISSION or (kind is None and _http_status(exc) == 403)


def is_retryable(exc: BaseException) -> bool:
    """True for errors that a later attempt of the same call may not see: throttling, 5xx, timeouts, connections."""
    if isinstance(exc, ClientError):
        kind = kind_of(exc)
        return kind.retryable if kind is not None else _http_status(exc) >= 500
    return isinstance(exc, (ConnectionError, HTTPClientError))


def describe(exc: BaseException) -> str:
    """A one-line explanation of a failed AWS call, with what to do about it."""
    if isinstance(exc, ClientError):
        aws_message = exc.response.get("Error", {}).get("Message") or ""
        detail = f"{error_code(exc)}: {aws_message}".rstrip(": ")
        kind = kind_of(exc)
        if kind is not None and kind.meaning:
            return f"{kind.meaning} ({detail}). {kind.hint}"
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
    kind = kind_of(exc)
    user_fixable = (kind is not None and kind.user_fixable) or isinstance(exc, (NoCredentialsError, ConnectionError))
    return (config_error if user_fixable else system_error)(message, internal=repr(exc))
