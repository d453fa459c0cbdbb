"""The only place that manages Kinesis streams: create the missing ones and wait until every stream takes writes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from destination_kinesis import aws_errors
from destination_kinesis.errors import ConnectorError, config_error, transient_error

logger = logging.getLogger("airbyte")

DEFAULT_READY_TIMEOUT_SECONDS = 300.0
_WRITABLE = ("ACTIVE", "UPDATING")
_FIRST_POLL_SECONDS = 0.1
_MAX_POLL_SECONDS = 2.0


def stream_status(client: Any, name: str) -> str | None:
    """The stream's status (CREATING, ACTIVE, UPDATING, DELETING), or None when it does not exist."""
    try:
        return str(client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"])
    except Exception as exc:
        if aws_errors.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def ensure_streams(
    client: Any,
    names: Sequence[str],
    shard_count: int,
    timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Create each missing stream with ``shard_count`` shards and wait until all of them are writable.

    Streams being deleted are created again once they are gone; LimitExceeded (at most 5 streams may be CREATING at
    once) and throttled describes are retried. Returns the names it created. Raises a config error when a stream
    must be created and ``shard_count`` is below 1 or a call is refused, and a transient error when ``timeout``
    seconds pass before every stream is writable.
    """
    deadline = time.monotonic() + timeout
    pending = list(dict.fromkeys(names))
    created: list[str] = []
    problems_logged: set[str] = set()
    poll = _FIRST_POLL_SECONDS
    while True:
        waiting = []
        for name in pending:
            try:
                status = stream_status(client, name)
                if status is None:
                    _create(client, name, shard_count)
                    created.append(name)
                    status = "CREATING"
            except ConnectorError:
                raise
            except Exception as exc:
                if not aws_errors.is_retryable(exc):
                    raise aws_errors.traced(exc, f"create or describe Kinesis stream '{name}'") from None
                status = aws_errors.describe(exc)
                if status not in problems_logged:
                    problems_logged.add(status)
                    logger.warning("Kinesis stream '%s' is not ready yet: %s Retrying for up to %.0f s.",
                                   name, status, max(0.0, deadline - time.monotonic()))
            if status not in _WRITABLE:
                waiting.append((name, status))
        if not waiting:
            return created
        if time.monotonic() + poll > deadline:
            states = "; ".join(f"'{name}': {status}" for name, status in waiting)
            raise transient_error(f"Kinesis streams were not ready to write within {timeout:.0f} s. {states}")
        pending = [name for name, _ in waiting]
        sleep(poll)
        poll = min(poll * 2, _MAX_POLL_SECONDS)


def _create(client: Any, name: str, shard_count: int) -> None:
    if shard_count < 1:
        raise config_error(f"Kinesis stream '{name}' does not exist and cannot be created with shardCount "
                           f"{shard_count}: set shardCount to 1 or more.")
    try:
        client.create_stream(StreamName=name, ShardCount=shard_count)
        logger.info("Creating Kinesis stream '%s' with %d shards.", name, shard_count)
    except Exception as exc:
        if aws_errors.error_code(exc) != "ResourceInUseException":  # created meanwhile by someone else: fine
            raise
