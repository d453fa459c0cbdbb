"""The console entry point ``destination-kinesis``: spec, check and write, every outcome an Airbyte message.

``write`` imports nothing from airbyte-cdk: importing it costs about a second of CPU, which a sync of a million
records would feel as a microsecond per record. ``check`` runs through the CDK's Destination class, which PyAirbyte
and the CDK's test suites also use.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import orjson

from destination_kinesis.catalog import load_catalog
from destination_kinesis.config import load_spec, parse_config, secret_values
from destination_kinesis.errors import ConnectorError, config_error, transient_error
from destination_kinesis.masking import masked, register_secrets
from destination_kinesis.output import Output, send_logs_to
from destination_kinesis.sigterm import Interrupted, interrupting

logger = logging.getLogger("airbyte")


class _Arguments(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        usage = self.format_usage().strip().removeprefix("usage: ")  # argparse starts it with its own "usage: "
        raise config_error(f"Invalid command line: {message}. Usage: {usage}")


def _parser() -> argparse.ArgumentParser:
    parser = _Arguments(prog="destination-kinesis", description="Airbyte destination for Amazon Kinesis Data Streams")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Arguments)
    commands.add_parser("spec", help="print the connector's specification")
    check = commands.add_parser("check", help="check the configuration and the connection to Kinesis")
    check.add_argument("--config", required=True)
    write = commands.add_parser("write", help="write Airbyte messages from stdin into Kinesis")
    write.add_argument("--config", required=True)
    write.add_argument("--catalog", required=True)
    return parser


def run(args: list[str] | None = None) -> None:
    """Run one command; exit 0 on success, 1 after a TRACE error message on failure."""
    output = Output()
    send_logs_to(output)
    try:
        parsed = _parser().parse_args(sys.argv[1:] if args is None else args)
        if parsed.command == "spec":
            output.message({"type": "SPEC", "spec": load_spec()})
        elif parsed.command == "check":
            output.message({"type": "CONNECTION_STATUS", "connectionStatus": _check(parsed.config)})
        else:
            from destination_kinesis.sync import write_sync

            config = parse_config(_read_config(parsed.config))
            with interrupting():
                write_sync(config, load_catalog(parsed.catalog), sys.stdin.fileno(), output)
    except Interrupted:
        logger.error("Interrupted by SIGTERM: stopped reading; states of records Kinesis accepted were emitted.")
        output.trace(transient_error(
            "The sync was interrupted (SIGTERM) before it finished. Every state emitted covers only records Kinesis "
            "accepted; the next sync resumes from the last of them."))
        sys.exit(1)
    except ConnectorError as exc:  # its TRACE carries the stack trace; the log line only says what failed
        logger.error("Failed: %s", exc.message)
        output.trace(exc)
        sys.exit(1)
    except Exception as exc:
        logger.error("Failed with an unexpected error: %s", exc)
        output.trace(exc)
        sys.exit(1)


def _read_config(path: str) -> Mapping[str, Any]:
    """Read the config file and register its secrets for masking before anything can print them."""
    try:
        raw = orjson.loads(Path(path).read_bytes())
    except Exception as exc:
        raise config_error(f"Could not read the config file '{path}': it must be a JSON object ({exc}).") from None
    if not isinstance(raw, Mapping):
        raise config_error(f"The config file '{path}' must hold a JSON object.")
    register_secrets(secret_values(raw))
    return raw


def _check(path: str) -> dict[str, Any]:
    """The CONNECTION_STATUS for the config at ``path``: SUCCEEDED, or FAILED with what to fix (secrets masked)."""
    try:
        raw = _read_config(path)
    except ConnectorError as exc:
        return {"status": "FAILED", "message": masked(exc.message)}
    from destination_kinesis.destination import DestinationKinesis

    status = DestinationKinesis().check(logger, raw)
    result: dict[str, Any] = {"status": status.status.value}
    if status.message is not None:
        result["message"] = masked(status.message)
    return result
