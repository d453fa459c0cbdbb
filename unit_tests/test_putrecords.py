"""putrecords: PutRecords entries built once, the request signed and sent through a real boto3 client's signer and
HTTP session, answers read as boto3 would. The endpoint is a small HTTP server on 127.0.0.1 started by the tests.

These tests also pin the botocore internals PutRecords relies on (``_request_signer``, ``_endpoint.http_session``,
``_endpoint.host``): a botocore release that renames them or changes how they are called fails here, with a message
naming that release and the range pyproject.toml allows, not in a sync. ``scripts/botocore_range`` runs this module
against other botocore releases.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import importlib.metadata
import inspect
import json
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore
import orjson
import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, EndpointConnectionError, ResponseStreamingError

from destination_kinesis import aws_errors
from destination_kinesis.client import aws_session, kinesis_client
from destination_kinesis.config import parse_config
from destination_kinesis.putrecords import PutRecords, all_accepted, open_entry
from integration_tests.kinesis_emulator import free_port

ACCESS_KEY = "AKIDPUTRECORDSTEST"
SECRET_KEY = "put-records-test-secret"
REGION = "us-east-1"
STREAM = "orders_kinesis"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<access_key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


# --------------------------------------------------------------------------------------------------------------------
# A scripted endpoint
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Seen:
    """One request as the endpoint received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def records_for(count: int) -> list[dict[str, Any]]:
    """What Kinesis answers for ``count`` accepted entries."""
    return [{"SequenceNumber": f"4960{i:020d}", "ShardId": f"shardId-00000000000{i % 3}"} for i in range(count)]


class Endpoint:
    """An HTTP server on a free 127.0.0.1 port that records each request and answers from a script; once the script
    is used up it accepts every entry. Its socket listens from construction on, so it answers as soon as it exists."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.script: deque[Answer] = deque()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool uses it

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.seen.append(Seen(self.command, self.path,
                                          {name.lower(): value for name, value in self.headers.items()}, body))
                if endpoint.script:
                    answer = endpoint.script.popleft()
                else:
                    count = len(json.loads(body)["Records"])
                    answer = Answer(200, json.dumps({"FailedRecordCount": 0, "Records": records_for(count)}).encode())
                self.send_response(answer.status)
                headers = dict(answer.headers)
                headers.setdefault("Content-Type", "application/x-amz-json-1.1")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[Endpoint]:
    running = Endpoint()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def endpoint(server: Endpoint) -> Endpoint:
    """The module's endpoint, with no requests seen and no answers scripted yet."""
    server.seen.clear()
    server.script.clear()
    return server


def make_client(url: str) -> Any:
    """The data-path client a sync builds (one attempt per call), pointed at ``url``."""
    config = parse_config({"accessKey": ACCESS_KEY, "privateKey": SECRET_KEY, "region": REGION, "endpoint": url})
    return kinesis_client(aws_session(config), data_path=True)


@pytest.fixture(scope="module")
def client(server: Endpoint) -> Any:
    return make_client(server.url)


@pytest.fixture
def put(endpoint: Endpoint, client: Any) -> PutRecords:
    require_botocore_internals(client)
    return PutRecords(client)


# --------------------------------------------------------------------------------------------------------------------
# The botocore internals PutRecords uses
# --------------------------------------------------------------------------------------------------------------------


def botocore_range() -> str:
    """The botocore releases the connector declares (pyproject.toml, as installed): those these tests passed on."""
    return next(requirement for requirement in importlib.metadata.requires("destination-kinesis") or []
                if requirement.startswith("botocore"))


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def changed_internals(client: Any) -> list[str]:
    """What PutRecords uses of a botocore client and is missing here or takes other arguments: the signer's
    ``sign(operation_name, request)``, the endpoint's ``host`` (a URL) and ``http_session.send(request)``, and
    ``AWSRequest(method, url, headers, data)`` with ``prepare()``."""
    changed = []
    sign = getattr(getattr(client, "_request_signer", None), "sign", None)
    if not callable(sign):
        changed.append("client._request_signer.sign is missing")
    elif _parameters(sign)[:2] != ["operation_name", "request"]:
        changed.append(f"client._request_signer.sign takes {_parameters(sign)}")
    endpoint = getattr(client, "_endpoint", None)
    if not isinstance(getattr(endpoint, "host", None), str):
        changed.append("client._endpoint.host is not a URL string")
    send = getattr(getattr(endpoint, "http_session", None), "send", None)
    if not callable(send):
        changed.append("client._endpoint.http_session.send is missing")
    elif _parameters(send) != ["request"]:
        changed.append(f"client._endpoint.http_session.send takes {_parameters(send)}")
    if not {"method", "url", "headers", "data"} <= set(_parameters(AWSRequest)):
        changed.append(f"AWSRequest takes {_parameters(AWSRequest)}")
    if not callable(getattr(AWSRequest, "prepare", None)):
        changed.append("AWSRequest.prepare is missing")
    return changed


def require_botocore_internals(client: Any) -> None:
    """Fail the test, naming this botocore and the range the connector declares, when the internals changed."""
    changed = changed_internals(client)
    if changed:
        pytest.fail(f"botocore {botocore.__version__} changed what destination_kinesis/putrecords.py uses: "
                    f"{'; '.join(changed)}. The wire-format tests passed on {botocore_range()} (pyproject.toml); "
                    "adapt PutRecords to this release before allowing it.", pytrace=False)


def test_botocore_internals_keep_the_shape_putrecords_uses(client: Any) -> None:
    require_botocore_internals(client)


def test_a_changed_internal_fails_naming_the_botocore_release() -> None:
    """A client whose endpoint lost its HTTP session (as a botocore release could make it) fails the check with the
    installed botocore's version and the declared range in the message."""

    class Renamed:
        def __init__(self, real: Any) -> None:
            self._request_signer = real._request_signer
            self._endpoint = type("Endpoint", (), {"host": real._endpoint.host})()

    with pytest.raises(pytest.fail.Exception) as failed:
        require_botocore_internals(Renamed(make_client("http://127.0.0.1:1")))
    message = str(failed.value)
    assert f"botocore {botocore.__version__} changed" in message
    assert "client._endpoint.http_session.send is missing" in message
    assert botocore_range() in message


ENTRIES = [
    (b'{"_airbyte_ab_id":"1","_airbyte_data":{"a":1}}', "11111111-1111-4111-8111-111111111111"),
    (bytes(range(256)), "key with \"quotes\", \\ and \u00e9\n"),
    (b"", "k"),
]


def encoded(data: bytes, key: str) -> bytes:
    return open_entry(data, orjson.dumps(key))


def send(put: PutRecords, stream: str, entries: list[bytes], close: bytes = b"}") -> Any:
    """Call ``put`` with these open entries, each closed by ``close``, as the sender's calls do."""
    return put(stream, b",".join(entry + close for entry in entries), len(entries))


def expected_signature(seen: Seen, signed_headers: str, date: str) -> str:
    """SigV4 computed by hand from what the server received (AWS's documented algorithm, no botocore)."""
    canonical_headers = "".join(f"{name}:{' '.join(seen.headers[name].split())}\n"
                                for name in signed_headers.split(";"))
    canonical_request = "\n".join([seen.method, seen.path, "", canonical_headers, signed_headers,
                                   hashlib.sha256(seen.body).hexdigest()])
    scope = f"{date}/{REGION}/kinesis/aws4_request"
    string_to_sign = "\n".join(["AWS4-HMAC-SHA256", seen.headers["x-amz-date"], scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = f"AWS4{SECRET_KEY}".encode()
    for part in (date, REGION, "kinesis", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------------------------------
# open_entry()
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "key"), ENTRIES, ids=["envelope", "every byte, key needing escapes", "empty data"])
def test_entry_is_json_with_base64_data_and_the_quoted_key(data: bytes, key: str) -> None:
    """open_entry() is a JSON object, once closed with ``}``, with exactly Data (standard base64, no newline) and
    PartitionKey (the key passed pre-quoted as a JSON string)."""
    text = encoded(data, key)
    assert not text.endswith(b"}")
    parsed = json.loads(text + b"}")
    assert list(parsed) == ["Data", "PartitionKey"]
    assert base64.b64decode(parsed["Data"], validate=True) == data
    assert parsed["PartitionKey"] == key
    assert b"\n" not in text


# --------------------------------------------------------------------------------------------------------------------
# The request on the wire
# --------------------------------------------------------------------------------------------------------------------


def test_request_is_a_signed_putrecords_post(endpoint: Endpoint, put: PutRecords) -> None:
    """One POST to / with Kinesis's target and JSON 1.1 content type, signed with SigV4 for the configured key,
    region and kinesis, over exactly the body sent; the body is the stream name and the entries, in order."""
    send(put, STREAM, [encoded(data, key) for data, key in ENTRIES])
    (seen,) = endpoint.seen
    assert (seen.method, seen.path) == ("POST", "/")
    assert seen.headers["x-amz-target"] == "Kinesis_20131202.PutRecords"
    assert seen.headers["content-type"] == "application/x-amz-json-1.1"
    assert re.fullmatch(r"\d{8}T\d{6}Z", seen.headers["x-amz-date"])
    authorization = seen.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    match = AUTHORIZATION.match(authorization)
    assert match is not None, authorization
    assert match["date"] == seen.headers["x-amz-date"][:8]
    assert f"/{match['date']}/{REGION}/kinesis/aws4_request" in authorization
    assert {"host", "x-amz-date", "x-amz-target", "content-type"} <= set(match["signed"].split(";"))
    assert match["signature"] == expected_signature(seen, match["signed"], match["date"])
    assert json.loads(seen.body) == {
        "StreamName": STREAM,
        "Records": [{"Data": base64.b64encode(data).decode(), "PartitionKey": key} for data, key in ENTRIES],
    }


def test_an_entry_closed_with_an_explicit_hash_key_sends_it(endpoint: Endpoint, put: PutRecords) -> None:
    send(put, STREAM, [encoded(b"x", "k")], close=b',"ExplicitHashKey":"12345"}')
    assert json.loads(endpoint.seen[0].body)["Records"] == [{"Data": "eA==", "PartitionKey": "k",
                                                             "ExplicitHashKey": "12345"}]


def test_results_are_returned_when_asked_for_even_if_all_were_accepted(endpoint: Endpoint, put: PutRecords) -> None:
    records = [{"SequenceNumber": "49600000000000000000000000001", "ShardId": "shardId-000000000002"}]
    endpoint.script.append(Answer(200, json.dumps({"FailedRecordCount": 0, "Records": records}).encode()))
    assert put(STREAM, encoded(b"a", "1") + b"}", 1, True) == records


def test_stream_name_is_json_quoted(endpoint: Endpoint, put: PutRecords) -> None:
    """The stream name goes into the body as a JSON string (a name with a quote stays valid JSON)."""
    send(put, 'odd"name', [encoded(b"x", "k")])
    assert json.loads(endpoint.seen[0].body)["StreamName"] == 'odd"name'


def test_same_body_and_signature_as_boto3(endpoint: Endpoint, client: Any) -> None:
    """boto3's own put_records, on the same client, sends a body equal in JSON and the same signed headers."""
    send(PutRecords(client), STREAM, [encoded(data, key) for data, key in ENTRIES])
    client.put_records(StreamName=STREAM, Records=[{"Data": data, "PartitionKey": key} for data, key in ENTRIES])
    ours, boto3s = endpoint.seen
    assert json.loads(ours.body) == json.loads(boto3s.body)
    for name in ("x-amz-target", "content-type", "host"):
        assert ours.headers[name] == boto3s.headers[name]
    ours_signed = AUTHORIZATION.match(ours.headers["authorization"])
    boto3s_signed = AUTHORIZATION.match(boto3s.headers["authorization"])
    assert ours_signed is not None and boto3s_signed is not None
    assert ours_signed["signed"] == boto3s_signed["signed"]


def test_returns_the_records_of_the_answer(endpoint: Endpoint, put: PutRecords) -> None:
    """The result is the answer's Records, one per entry, failed entries included, as the server sent them."""
    records = [{"SequenceNumber": "49600000000000000000000000001", "ShardId": "shardId-000000000002"},
               {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}]
    endpoint.script.append(Answer(200, json.dumps({"FailedRecordCount": 1, "Records": records}).encode()))
    assert send(put, STREAM, [encoded(b"a", "1"), encoded(b"b", "2")]) == records


_OK = {"SequenceNumber": "49600000000000000000000000001", "ShardId": "shardId-000000000002"}
_THROTTLED = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}


@pytest.mark.parametrize(("records", "entries", "expected"), [
    ([_OK, _OK, _OK], 3, True),
    ([_OK, _OK], 3, False),  # fewer results than entries
    ([_OK, _THROTTLED, _OK], 3, False),
    ([_OK, {"ShardId": "shardId-000000000001"}, _OK], 3, False),  # a result without a SequenceNumber
    ([_OK, {"ShardId": 'say "SequenceNumber"'}], 2, False),  # the key's text inside a string does not count
])
def test_all_accepted_counts_sequence_numbers_and_looks_for_errors(records: list[dict[str, str]], entries: int,
                                                                   expected: bool) -> None:
    """The unparsed check says "all accepted" only for an answer with one SequenceNumber per entry and no error
    (whatever FailedRecordCount claims); spacing and member order do not matter."""
    for answer in (json.dumps({"FailedRecordCount": 0, "Records": records}),
                   json.dumps({"Records": records, "FailedRecordCount": 5}, indent=2)):
        assert all_accepted(answer.encode(), entries) is expected


def test_all_accepted_refuses_an_answer_cut_off_before_its_last_result() -> None:
    answer = json.dumps({"FailedRecordCount": 0, "Records": [_OK, _OK]}).encode()
    assert all_accepted(answer, 2)
    assert not all_accepted(answer[: answer.rindex(b'"SequenceNumber"')], 2)


def test_all_accepted_answer_returns_none(endpoint: Endpoint, put: PutRecords) -> None:
    endpoint.script.append(Answer(200, json.dumps({"FailedRecordCount": 0, "Records": [_OK, _OK]}).encode()))
    assert send(put, STREAM, [encoded(b"a", "1"), encoded(b"b", "2")]) is None


def test_many_calls_reuse_the_client(endpoint: Endpoint, put: PutRecords) -> None:
    """Calls one after another each get their own answer (the connection is reused by the pool)."""
    for i in range(5):
        assert send(put, STREAM, [encoded(b"x", str(j)) for j in range(i + 1)]) is None  # every entry accepted
    assert [len(json.loads(seen.body)["Records"]) for seen in endpoint.seen] == [1, 2, 3, 4, 5]


def test_keeps_working_after_the_caller_drops_the_client(endpoint: Endpoint) -> None:
    """The signer reaches the client's event hooks through weak references: PutRecords keeps the client alive."""
    put = PutRecords(make_client(endpoint.url))
    gc.collect()
    assert send(put, STREAM, [encoded(b"x", "k")]) is None
    assert AUTHORIZATION.match(endpoint.seen[0].headers["authorization"])


# --------------------------------------------------------------------------------------------------------------------
# Error answers
# --------------------------------------------------------------------------------------------------------------------

THROTTLED = Answer(400, b'{"__type":"com.amazonaws.kinesis#ProvisionedThroughputExceededException",'
                        b'"message":"Rate exceeded"}')


def _error(put: PutRecords) -> ClientError:
    with pytest.raises(ClientError) as caught:
        send(put, STREAM, [encoded(b"x", "k")])
    return caught.value


def _summary(error: ClientError) -> tuple[Any, Any, Any]:
    return (error.response["Error"]["Code"], error.response["Error"]["Message"],
            error.response["ResponseMetadata"]["HTTPStatusCode"])


def test_error_answer_raises_client_error_with_code_message_and_status(endpoint: Endpoint, put: PutRecords) -> None:
    """A 400 with a namespaced __type becomes the ClientError boto3 raises: the bare code, the message, the status;
    for throttling it is retryable."""
    endpoint.script.append(THROTTLED)
    error = _error(put)
    assert _summary(error) == ("ProvisionedThroughputExceededException", "Rate exceeded", 400)
    assert error.operation_name == "PutRecords"
    assert aws_errors.is_retryable(error)
    assert aws_errors.error_code(error) in aws_errors.THROTTLING_CODES


def test_server_error_without_body_is_retryable(endpoint: Endpoint, put: PutRecords) -> None:
    """A 500 with an empty body is a ClientError with status 500, which is retried."""
    endpoint.script.append(Answer(500))
    error = _error(put)
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert aws_errors.is_retryable(error)


def test_error_type_header_wins_over_the_body(endpoint: Endpoint, put: PutRecords) -> None:
    """The x-amzn-ErrorType header (without what follows ':') names the error even when the body says otherwise."""
    endpoint.script.append(Answer(
        400, b'{"__type":"com.amazonaws.kinesis#InvalidArgumentException","Message":"from the body"}',
        (("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral/"),)))
    assert _summary(_error(put)) == ("ThrottlingException", "from the body", 400)


def test_non_json_error_body_still_raises_with_the_status(endpoint: Endpoint, put: PutRecords) -> None:
    """A proxy's HTML error page is an error with its HTTP status, never a parse failure."""
    endpoint.script.append(Answer(502, b"<html>Bad Gateway</html>", (("Content-Type", "text/html"),)))
    error = _error(put)
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    assert aws_errors.is_retryable(error)


def _boto3s_error(client: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        client.put_records(StreamName=STREAM, Records=[{"Data": b"x", "PartitionKey": "k"}])
    return caught.value


@pytest.mark.parametrize("answer", [
    THROTTLED,
    Answer(400, b'{"__type":"AccessDeniedException","Message":"User is not authorized"}'),
    Answer(400, b'{"__type":"ResourceNotFoundException","message":"Stream orders_kinesis not found"}'),
    Answer(400, b'{"__type":"com.amazon.coral.service#UnrecognizedClientException:http://internal.amazon.com/",'
                b'"message":"The security token included in the request is invalid."}'),
    Answer(500, b'{"__type":"InternalFailure"}'),
], ids=["throttled", "access denied", "not found", "code with namespace and suffix", "internal failure"])
def test_errors_match_boto3s(endpoint: Endpoint, client: Any, answer: Answer) -> None:
    """For the same error answer, the ClientError carries the same code, message and status as boto3's own
    put_records raises, so aws_errors treats both alike. (Where the body and an x-amzn-ErrorType header disagree,
    PutRecords follows the header, as the AWS JSON protocol says; botocore reads only the body. Kinesis sends both
    alike.)"""
    endpoint.script.extend([answer, answer])
    ours = _error(PutRecords(client))
    boto3s = _boto3s_error(client)
    assert _summary(ours) == _summary(boto3s)
    assert aws_errors.is_retryable(ours) == aws_errors.is_retryable(boto3s)


@pytest.mark.parametrize("answer", [Answer(503), Answer(502, b"<html>Bad Gateway</html>",
                                                          (("Content-Type", "text/html"),))], ids=["empty", "html"])
def test_server_error_without_json_matches_boto3s(endpoint: Endpoint, client: Any, answer: Answer) -> None:
    """A 5xx without a JSON body (empty, or a proxy's page): boto3 gives the status as the code and the HTTP
    reason as the message ('Service Unavailable'), so the log says more than a bare '503'."""
    endpoint.script.extend([answer, answer])
    ours = _error(PutRecords(client))
    assert _summary(ours) == _summary(_boto3s_error(client))


@pytest.mark.parametrize("body", [b'{"FailedRecordCount":0}', b"", b"not json", b'{"Records":null}', b"[]"],
                         ids=["no Records", "empty", "not JSON", "Records null", "not an object"])
def test_ok_answer_without_records_raises(endpoint: Endpoint, put: PutRecords, body: bytes) -> None:
    """A 200 that does not carry a Records list (an answer cut off mid-body) cannot say what was written: it raises
    a retryable error, never returns, so the dispatcher resends every entry."""
    endpoint.script.append(Answer(200, body))
    with pytest.raises(ResponseStreamingError) as caught:
        send(put, STREAM, [encoded(b"x", "k")])
    assert "Records" in str(caught.value)
    assert aws_errors.is_retryable(caught.value)


def test_unreachable_endpoint_raises_the_clients_connection_error() -> None:
    """Nothing listening: the HTTP session's connection error comes through, as boto3's would, and is retried."""
    put = PutRecords(make_client(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(EndpointConnectionError) as caught:
        send(put, STREAM, [encoded(b"x", "k")])
    assert aws_errors.is_retryable(caught.value)
