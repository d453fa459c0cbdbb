"""PutRecords on the wire: the request body joined from entries encoded once per record, signed and sent by botocore.

boto3's ``put_records`` validates every parameter and serialises every entry again (base64 and JSON) on each call,
and parses the answer through its shape model: together about 16 µs per record, three times the rest of the work.
Here each entry is JSON text built once (:func:`open_entry`), left open so that a call can close it with or without
an ``ExplicitHashKey`` (see :mod:`~destination_kinesis.outbox`), a call's records are joined once, and the answer is
read with orjson.
botocore still does what it is for: the client's request signer (SigV4, refreshing credentials, region) and its
HTTP session (TLS, proxies, connection pool, timeouts, and the same connection errors as the client raises).
"""

from __future__ import annotations

from http.client import responses
from typing import Any

import orjson
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, ResponseStreamingError
from pybase64 import b64encode

_HEADERS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords"}


#: ``ENTRY % (base64 of the data, quoted partition key)`` is :func:`open_entry`, for loops that cannot afford the call.
ENTRY = b'{"Data":"%b","PartitionKey":%b'


def open_entry(data: bytes, quoted_partition_key: bytes) -> bytes:
    """One PutRecords entry as JSON text without its closing brace (a call closes it with :func:`closing`);
    ``quoted_partition_key`` is the key as a JSON string, quotes included."""
    return ENTRY % (b64encode(data), quoted_partition_key)


def closing(explicit_hash_key: bytes | None = None) -> bytes:
    """What closes an entry of :func:`open_entry`: ``}``, or its ``ExplicitHashKey`` member (the decimal digits
    given) and ``}``."""
    return b"}" if explicit_hash_key is None else b',"ExplicitHashKey":"%b"}' % explicit_hash_key


class PutRecords:
    """Sends PutRecords calls through a boto3 Kinesis client's signer and HTTP session.

    Calling it with a stream name, the content of the Records array (closed entries joined with ``,``) and the number
    of entries returns None when the answer shows every entry accepted and ``results`` is false, else the response's
    ``Records`` (one result per entry, in order). It raises botocore's ClientError
    for an AWS error answer (with its code, message and HTTP status, as boto3 would), ResponseStreamingError (an
    HTTPClientError, so retried) for a 200 without a readable Records list, and lets the HTTP session's connection
    and timeout errors through. The client's ``_request_signer`` and ``_endpoint`` are private to botocore
    but have kept their shape across its releases; a unit test pins what is used.
    """

    def __init__(self, client: Any):
        self._client = client  # the signer reaches the client's event hooks through weak references
        self._signer = client._request_signer
        self._http = client._endpoint.http_session
        self._url = client._endpoint.host.rstrip("/") + "/"

    def __call__(self, stream_name: str, records: bytes, count: int,
                 results: bool = False) -> list[dict[str, Any]] | None:
        body = b'{"StreamName":%b,"Records":[%b]}' % (orjson.dumps(stream_name), records)
        request = AWSRequest(method="POST", url=self._url, data=body, headers=dict(_HEADERS))
        self._signer.sign("PutRecords", request)
        response = self._http.send(request.prepare())
        if response.status_code != 200:
            raise error_from_response(response.status_code, response.headers, response.content)
        content = response.content
        if not results and all_accepted(content, count):
            return None
        try:
            parsed = orjson.loads(content)["Records"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            parsed = None
        if type(parsed) is not list:
            # Most likely an answer cut off mid-body: the records may or may not be written. Like a lost answer,
            # that is retried (the dispatcher resends every entry; duplicates are possible, loss is not).
            raise ResponseStreamingError(error="a PutRecords answer (HTTP 200) without a readable Records list")
        return parsed


def all_accepted(content: bytes, entries: int) -> bool:
    """Whether a PutRecords answer shows each of ``entries`` entries accepted, read without parsing it.

    A JSON key ends at an unescaped quote, so ``"SequenceNumber"`` cannot occur inside a string of the answer and
    counts the results that carry one; an answer without ``"ErrorCode"`` and with one per entry accepted them all
    (even if cut off after its last ``"SequenceNumber"``: the server wrote what it says it wrote).
    Parsing 500 results costs more than the rest of the call's own work; any other answer is parsed.
    """
    return b'"ErrorCode"' not in content and content.count(b'"SequenceNumber"') == entries


def error_from_response(status: int, headers: Any, content: bytes) -> ClientError:
    """The ClientError boto3 raises for an AWS JSON-protocol error answer: the code from ``x-amzn-ErrorType`` or
    ``__type`` (without its namespace), the message from ``message``/``Message``; an answer with neither (an empty
    body, a proxy's error page) gets the HTTP status as its code and the reason phrase as its message."""
    try:
        parsed = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        parsed = {}
    if type(parsed) is not dict:
        parsed = {}
    code = str(headers.get("x-amzn-ErrorType") or parsed.get("__type") or "").split(":")[0].split("#")[-1]
    message = str(parsed.get("message") or parsed.get("Message") or "")
    if not code:
        code, message = str(status), message or responses.get(status, "")
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutRecords")
