"""The fixtures of the unit tests. The helpers the tests call are plain modules: :mod:`.fakes` (a scripted Kinesis
client, AWS errors, a clock), :mod:`.inputs` (Airbyte message lines and the pipe they arrive through),
:mod:`.jsoncheck` (exact JSON comparison) and :mod:`.paths` (the repository's files)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from destination_kinesis import dispatcher, masking


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the dispatcher's backoff (0.1 s doubling to 10 s) to milliseconds, so retry tests run fast."""
    monkeypatch.setattr(dispatcher, "BACKOFF_BASE_SECONDS", 0.001)
    monkeypatch.setattr(dispatcher, "BACKOFF_MAX_SECONDS", 0.004)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo send_logs_to (root handlers, logger levels) after a test that calls it."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in ("airbyte", "botocore", "boto3", "urllib3")}
    yield
    root.handlers = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def clear_secrets() -> Iterator[None]:
    """Forget the secrets a test registered for masking."""
    yield
    masking.clear_secrets()
