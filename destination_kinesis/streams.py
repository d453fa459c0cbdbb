"""The only place that manages Kinesis streams: create the missing ones (when allowed), wait until every stream takes
writes, and read what the sync needs to know of each (its largest record)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from destination_kinesis import aws_errors
from destination_kinesis.config import DEFAULT_RETRY_TIMEOUT_SECONDS, KinesisConfig
from destination_kinesis.errors import ConnectorError, config_error, transient_error
from destination_kinesis.limits import MAX_RECORD_BYTES

logger = logging.getLogger("airbyte")

DEFAULT_READY_TIMEOUT_SECONDS = 300.0
#: An endpoint that has answered no call at all for this long fails the sync: it is most likely wrong (a typo, a
#: closed port, no route), and waiting out the whole ready timeout would only hide that.
NEVER_ANSWERED_SECONDS = 60.0
_WRITABLE = ("ACTIVE", "UPDATING")
_FIRST_POLL_SECONDS = 0.1
_MAX_POLL_SECONDS = 2.0
KIB = 1024


@dataclass(frozen=True)
class NewStreams:
    """How the connector creates a Kinesis stream that does not exist."""

    mode: Literal["provisioned", "on_demand"] = "provisioned"
    shard_count: int = 5
    tags: Mapping[str, str] = field(default_factory=dict)

    def problem(self, name: str) -> str | None:
        """Why ``name`` cannot be created with these settings, or None."""
        if self.mode == "provisioned" and self.shard_count < 1:
            return (f"Kinesis stream '{name}' does not exist and cannot be created with shardCount "
                    f"{self.shard_count}: set shardCount to 1 or more, or streamMode to on_demand.")
        return None

    def create(self, client: Any, name: str) -> None:
        """Send CreateStream; a stream created meanwhile by someone else is fine. Other errors are raised."""
        problem = self.problem(name)
        if problem:
            raise config_error(problem)
        request: dict[str, Any] = {"StreamName": name}
        if self.mode == "on_demand":
            request["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
            how = "in on-demand mode"
        else:
            request["ShardCount"] = self.shard_count  # provisioned is CreateStream's default mode, as in 0.1.5
            how = f"with {self.shard_count} shards"
        if self.tags:
            request["Tags"] = dict(self.tags)
            how += f" and {len(self.tags)} tags"
        try:
            client.create_stream(**request)
            logger.info("Creating Kinesis stream '%s' %s.", name, how)
        except Exception as exc:
            if aws_errors.error_code(exc) != "ResourceInUseException":
                raise


def _warn_if_shards_differ(name: str, summary: Mapping[str, Any], new: NewStreams) -> None:
    """An existing provisioned stream with another shard count than configured: say that shardCount does not apply
    to it, since the user may expect the configured throughput."""
    mode = (summary.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED")
    shards = summary.get("OpenShardCount")
    if new.mode == "provisioned" and mode == "PROVISIONED" and type(shards) is int and shards != new.shard_count:
        logger.warning("Kinesis stream '%s' exists with %d open shards, not the %d of shardCount, which applies only "
                       "to streams the connector creates. Each shard takes 1,000 records or 1 MiB per second: "
                       "reshard the stream if it throttles.", name, shards, new.shard_count)


def new_streams(config: KinesisConfig) -> NewStreams | None:
    """How to create missing streams under ``config``; None when ``createStreams`` is off."""
    if not config.create_streams:
        return None
    return NewStreams(config.stream_mode, config.shard_count, config.tags)


@dataclass(frozen=True)
class StreamInfo:
    """What the sync needs to know of a writable stream."""

    created: bool
    #: The stream's MaxRecordSizeInKiB in bytes (data plus partition key), 1 MiB when the endpoint does not say.
    max_record_bytes: int


def describe_summary(client: Any, name: str) -> dict[str, Any] | None:
    """The stream's DescribeStreamSummary, or None when it does not exist."""
    try:
        return dict(client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"])
    except Exception as exc:
        if aws_errors.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def stream_status(client: Any, name: str) -> str | None:
    """The stream's status (CREATING, ACTIVE, UPDATING, DELETING), or None when it does not exist."""
    summary = describe_summary(client, name)
    return None if summary is None else str(summary["StreamStatus"])


def max_record_bytes(summary: Mapping[str, Any]) -> int:
    """The largest record the stream takes: its MaxRecordSizeInKiB, else Kinesis's long-standing 1 MiB."""
    kib = summary.get("MaxRecordSizeInKiB")
    return kib * KIB if isinstance(kib, int) and kib > 0 else MAX_RECORD_BYTES


def check_stream(client: Any, name: str, new: NewStreams | None) -> str | None:
    """Why a sync could not write to ``name``, or None when it exists or can be created.

    Creation is judged from the settings alone (Kinesis has no dry run, and check must not create streams): the
    CreateStream permission is tried only by a sync. AWS errors are raised.
    """
    status = stream_status(client, name)
    if status not in (None, "DELETING"):
        return None
    if new is None:
        gone = "is being deleted" if status == "DELETING" else "does not exist"
        return f"Kinesis stream '{name}' {gone} and createStreams is off: create it, or turn createStreams on."
    return new.problem(name)


def _endpoint(client: Any) -> str:
    """The client's endpoint URL, for messages."""
    return str(getattr(getattr(client, "meta", None), "endpoint_url", None) or "of the region")


def ensure_streams(
    client: Any,
    names: Sequence[str],
    new: NewStreams | None,
    timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    retry_seconds: float = DEFAULT_RETRY_TIMEOUT_SECONDS,
) -> dict[str, StreamInfo]:
    """Make every stream of ``names`` writable and describe it.

    Missing streams are created as ``new`` says; streams being deleted are created again once they are gone;
    retryable errors (LimitExceeded, throttling, 5xx, connections) are retried for up to ``retry_seconds``
    (retryTimeoutSeconds) in a row per stream. With ``new`` None (createStreams off) nothing is created: missing
    streams, and streams being deleted, raise one config error naming every one of them, after one describe of each.
    Raises a config error when a stream cannot be created or a call is refused (a CreateStream still refused with
    LimitExceeded after ``retry_seconds``: most likely the account's shard limit), or when the endpoint has answered
    nothing at all for :data:`NEVER_ANSWERED_SECONDS` or ``retry_seconds``, whichever comes first (it is most likely
    wrong); and a transient error when a call keeps failing for ``retry_seconds``, or ``timeout`` seconds pass before
    every stream is writable.
    """
    deadline = time.monotonic() + timeout
    pending = list(dict.fromkeys(names))
    readiness = _Readiness(client, new, deadline, retry_seconds)
    poll = _FIRST_POLL_SECONDS
    while True:
        statuses = {name: readiness.look(name) for name in pending}
        missing = [name for name, status in statuses.items() if status == _MISSING]
        if missing:
            listed = ", ".join(f"'{name}'" for name in missing)
            raise config_error(f"createStreams is off and these Kinesis streams do not exist (or are being deleted): "
                               f"{listed}. Create them, or turn createStreams on.")
        waiting = [(name, status) for name, status in statuses.items() if status not in _WRITABLE]
        if not waiting:
            return {name: readiness.ready[name] for name in dict.fromkeys(names)}
        if time.monotonic() + poll > deadline:
            states = "; ".join(f"'{name}': {status}" for name, status in waiting)
            raise transient_error(f"Kinesis streams were not ready to write within {timeout:.0f} s. {states}")
        pending = [name for name, _ in waiting]
        sleep(poll)
        poll = min(poll * 2, _MAX_POLL_SECONDS)


#: The status :meth:`_Readiness.look` gives a stream that is missing (or being deleted) while createStreams is off.
_MISSING = "missing"


class _Readiness:
    """What :func:`ensure_streams` knows so far: whether the endpoint has answered at all, the streams it created,
    those that are writable, since when the calls for a stream keep failing, the problems it logged."""

    def __init__(self, client: Any, new: NewStreams | None, deadline: float, retry_seconds: float):
        self._client = client
        self._new = new
        self._started = time.monotonic()
        self._deadline = deadline
        self._answered = False  # the endpoint answered a call (an error answer too)
        self._retry_seconds = retry_seconds
        self.created: set[str] = set()
        self.ready: dict[str, StreamInfo] = {}
        self._failing_since: dict[str, float] = {}
        self._logged: set[str] = set()

    def look(self, name: str) -> str:
        """Describe ``name`` once and move it on (create it when it is missing and may be); return its status, the
        text of a retryable error, or :data:`_MISSING`. Errors that retrying cannot fix are raised."""
        try:
            status = self._advance(name)
        except ConnectorError:
            raise
        except Exception as exc:
            if not aws_errors.is_retryable(exc):
                raise aws_errors.traced(exc, f"create or describe Kinesis stream '{name}'") from None
            return self._retry_later(name, exc)
        self._failing_since.pop(name, None)
        return status

    def _retry_later(self, name: str, exc: Exception) -> str:
        """A retryable error: its text, to try again at the next poll; raised once the stream's calls have been
        failing for ``retry_seconds``."""
        now = time.monotonic()
        failing_for = now - self._failing_since.setdefault(name, now)
        self._answered = self._answered or isinstance(exc, ClientError)
        waited = now - self._started
        if not self._answered and (waited >= NEVER_ANSWERED_SECONDS or failing_for >= self._retry_seconds):
            raise config_error(f"The Kinesis endpoint {_endpoint(self._client)} has not answered any call for "
                               f"{waited:.0f} s ({aws_errors.describe(exc)}) Check the endpoint, the region and "
                               "the network.", internal=repr(exc)) from None
        if failing_for >= self._retry_seconds:
            raise _gave_up(exc, name, self._retry_seconds)
        problem = aws_errors.describe(exc)
        if problem not in self._logged:
            self._logged.add(problem)
            logger.warning("Kinesis stream '%s' is not ready yet: %s Retrying for up to %.0f s.", name, problem,
                           max(0.0, min(self._retry_seconds - failing_for, self._deadline - now)))
        return problem

    def _advance(self, name: str) -> str:
        summary = describe_summary(self._client, name)
        self._answered = True
        if summary is None:
            if self._new is None:
                return _MISSING
            self._new.create(self._client, name)
            self.created.add(name)
            return "CREATING"
        status = str(summary["StreamStatus"])
        if status in _WRITABLE:
            self.ready[name] = StreamInfo(name in self.created, max_record_bytes(summary))
            if name not in self.created and self._new is not None:
                _warn_if_shards_differ(name, summary, self._new)
        elif status == "DELETING" and self._new is None:
            return _MISSING
        return status


def _gave_up(exc: Exception, name: str, retry_seconds: float) -> ConnectorError:
    """The error for a stream whose calls kept failing for ``retry_seconds``."""
    how_long = f"for {retry_seconds:g} s (retryTimeoutSeconds)"
    if aws_errors.error_code(exc) == "LimitExceededException" and getattr(exc, "operation_name", "") == "CreateStream":
        return config_error(
            f"Could not create Kinesis stream '{name}': Kinesis refused it {how_long}, most likely because the shard "
            f"limit of the account in this region is reached (or more streams are being created at once than "
            f"Kinesis allows). {aws_errors.describe(exc)} Delete streams or shards you no longer need, ask AWS for a "
            f"higher shard quota, lower shardCount, or create the stream yourself.", internal=repr(exc))
    return transient_error(f"Could not create or describe Kinesis stream '{name}': it kept failing {how_long}. "
                           f"{aws_errors.describe(exc)}", internal=repr(exc))
