"""The console entry point ``destination-kinesis``: spec, check and write, every outcome an Airbyte message."""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

from airbyte_cdk.models import AirbyteConnectionStatus, AirbyteMessage, Status, Type
from airbyte_cdk.utils.airbyte_secrets_utils import get_secrets, update_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from destination_kinesis.catalog import load_catalog
from destination_kinesis.config import parse_config
from destination_kinesis.destination import DestinationKinesis, write_sync
from destination_kinesis.errors import config_error, transient_error
from destination_kinesis.output import Output, masked, send_logs_to

logger = logging.getLogger("airbyte")


def run(args: list[str] | None = None) -> None:
    """Run one command; exit 0 on success, 1 after a TRACE error message on failure."""
    output = Output()
    send_logs_to(output)
    destination = DestinationKinesis()
    try:
        parsed = destination.parse_args(sys.argv[1:] if args is None else args)
        if parsed.command == "spec":
            output.message(AirbyteMessage(type=Type.SPEC, spec=destination.spec(logger)))
        elif parsed.command == "check":
            status = _check(destination, parsed.config)
            status.message = masked(status.message)
            output.message(AirbyteMessage(type=Type.CONNECTION_STATUS, connectionStatus=status))
        else:
            config = parse_config(_read_config(destination, parsed.config))
            with _interrupted_by_sigterm():
                write_sync(config, load_catalog(parsed.catalog), sys.stdin.fileno(), output)
    except Interrupted:
        logger.error("Interrupted by SIGTERM: stopped reading; states of records Kinesis accepted were emitted.")
        output.trace(transient_error(
            "The sync was interrupted (SIGTERM) before it finished. Every state emitted covers only records Kinesis "
            "accepted; the next sync resumes from the last of them."))
        sys.exit(1)
    except AirbyteTracedException as exc:  # its TRACE carries the stack trace; the log line only says what failed
        logger.error("Failed: %s", exc.message)
        output.trace(exc)
        sys.exit(1)
    except Exception as exc:
        logger.error("Failed with an unexpected error: %s", exc)
        output.trace(AirbyteTracedException.from_exception(exc, message=f"Unexpected error: {exc}"))
        sys.exit(1)


class Interrupted(BaseException):
    """SIGTERM arrived during ``write``.

    Raised in the main thread wherever it is, so the writer's failure path runs: stop reading, cut retries short, let
    the requests in flight finish (each within the client's timeouts), emit the states they cover. A BaseException,
    so that no ``except Exception`` on the way mistakes it for an AWS or input error.
    """


@contextmanager
def _interrupted_by_sigterm() -> Iterator[None]:
    """Within the block, the first SIGTERM raises :class:`Interrupted`; later ones are ignored so that they cannot
    cut short the orderly stop the first one started."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _read_config(destination: DestinationKinesis, path: str) -> Mapping[str, Any]:
    """Read the config file and register its secrets for masking before anything can print them."""
    try:
        raw = destination.read_config(path)
    except Exception as exc:
        raise config_error(f"Could not read the config file '{path}': it must be a JSON object ({exc}).") from None
    if not isinstance(raw, Mapping):
        raise config_error(f"The config file '{path}' must hold a JSON object.")
    update_secrets(_secret_forms(get_secrets(destination.spec(logger).connectionSpecification, raw)))
    return raw


def _secret_forms(secrets: list[Any]) -> list[str]:
    """Each secret in every form an error message may quote it: as it is, without surrounding whitespace, line by
    line, and escaped as in JSON or a Python repr. A key pasted with a trailing newline shows up in an HTTP client's
    error as ``b'...Credential=AKIA...\\n/...'``, which the raw value does not match. Longest first, so a longer form
    is masked whole before a shorter one it contains."""
    forms: set[str] = set()
    for secret in secrets:
        text = str(secret)
        forms.update(form for form in (text, text.strip(), json.dumps(text)[1:-1], repr(text)[1:-1],
                                       *(line.strip() for line in text.splitlines())) if form.strip())
    return sorted(forms, key=len, reverse=True)


def _check(destination: DestinationKinesis, path: str) -> AirbyteConnectionStatus:
    try:
        raw = _read_config(destination, path)
    except AirbyteTracedException as exc:
        return AirbyteConnectionStatus(status=Status.FAILED, message=exc.message)
    return destination.check(logger, raw)

