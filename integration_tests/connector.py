"""The installed ``destination-kinesis`` console script as the platform runs it: config and catalog files, a run to
the end (:func:`run_write`, :func:`check_connection`) or in the background (:class:`RunningConnector`), and its
stdout read as Airbyte messages."""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .inputs import Message, StreamKey, loads

REPO_ROOT = Path(__file__).resolve().parent.parent

CONNECTOR = Path(sys.executable).parent / "destination-kinesis"

REGION = "us-east-1"

SHARD_COUNT = 3

DEFAULT_TIMEOUT_S = 120.0

STOP_READERS_S = 10.0

TIMED_OUT: Message = {"type": "timed out"}



def unique(prefix: str) -> str:
    """``prefix`` plus a random hex fragment: a stream name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"



def aws_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """This process's environment without AWS settings (no variables, no config or credentials files, no instance
    metadata), plus ``variables``: what the connector sees is only what a test gives it."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
                "AWS_EC2_METADATA_DISABLED": "true", **variables})
    return env



def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path



def connector_config(endpoint: str, **overrides: Any) -> dict[str, Any]:
    config = {
        "endpoint": endpoint,
        "region": REGION,
        "shardCount": SHARD_COUNT,
        "accessKey": unique("test-access-key"),
        "privateKey": unique("test-private-key"),
        "bufferSize": 100,
    }
    config.update(overrides)
    return config



def configured_stream(
    name: str, namespace: str | None = None, destination_sync_mode: str = "append", **extra: Any
) -> dict[str, Any]:
    return {
        "stream": {
            "name": name,
            "namespace": namespace,
            "json_schema": {},
            "supported_sync_modes": ["full_refresh", "incremental"],
        },
        "sync_mode": "incremental",
        "destination_sync_mode": destination_sync_mode,
        **extra,
    }



def catalog(streams: Iterable[StreamKey | dict[str, Any]]) -> dict[str, Any]:
    """A ConfiguredAirbyteCatalog; each item is (namespace, name) or an already built configured stream."""
    return {"streams": [item if isinstance(item, dict) else configured_stream(item[1], item[0]) for item in streams]}



def run_connector(
    args: list[str], stdin_bytes: bytes = b"", timeout: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``destination-kinesis`` console script and wait for it (killing it after ``timeout``); in
    ``env`` when given, else in this process's environment."""
    if not CONNECTOR.exists():
        pytest.fail(f"{CONNECTOR} is missing: install the connector with `pip install -e .`", pytrace=False)
    return subprocess.run([str(CONNECTOR), *args], input=stdin_bytes, capture_output=True, timeout=timeout, env=env)



def parse_messages(stdout: bytes) -> list[Message]:
    """Every stdout line as an Airbyte message; a line that is not a JSON object fails the test."""
    messages = []
    # bytes.splitlines splits at \n and \r only; str.splitlines would also split inside JSON at U+2028.
    for number, line in enumerate(stdout.splitlines(), start=1):
        try:
            message = loads(line)
        except ValueError:  # includes UnicodeDecodeError
            pytest.fail(f"stdout line {number} is not JSON: {line[:500]!r}")
        if not isinstance(message, dict) or "type" not in message:
            pytest.fail(f"stdout line {number} is not an Airbyte message: {line[:500]!r}")
        messages.append(message)
    return messages



def of_type(messages: list[Message], message_type: str) -> list[Message]:
    return [message for message in messages if message["type"] == message_type]



def error_traces(messages: list[Message]) -> list[dict[str, Any]]:
    """The ``trace`` bodies of the TRACE messages of type ERROR."""
    return [m["trace"] for m in of_type(messages, "TRACE") if m.get("trace", {}).get("type") == "ERROR"]



@dataclass
class SyncResult:
    process: subprocess.CompletedProcess[bytes]
    messages: list[Message]

    @property
    def states(self) -> list[Message]:
        return of_type(self.messages, "STATE")

    def describe(self) -> str:
        """Exit code, stderr tail and error traces, for assertion messages."""
        stderr = self.process.stderr.decode(errors="replace")[-3000:]
        return f"exit code {self.process.returncode}; traces {error_traces(self.messages)}; stderr tail:\n{stderr}"



Sync = Callable[..., SyncResult]
"""The ``sync`` fixture: runs the console script's write on given input and returns what it did."""



def run_write(config: dict[str, Any], streams: Iterable[StreamKey | dict[str, Any]], stdin_bytes: bytes,
              tmp_path: Path, timeout: float = DEFAULT_TIMEOUT_S, env: dict[str, str] | None = None) -> SyncResult:
    """Run ``write`` with ``config`` and a catalog of ``streams`` (files in ``tmp_path``), ``stdin_bytes`` as input."""
    config_path = write_json(tmp_path / "config.json", config)
    catalog_path = write_json(tmp_path / "catalog.json", catalog(streams))
    args = ["write", "--config", str(config_path), "--catalog", str(catalog_path)]
    process = run_connector(args, stdin_bytes, timeout, env)
    return SyncResult(process, parse_messages(process.stdout))



@dataclass
class CheckStatus:
    status: str  # SUCCEEDED or FAILED
    message: str
    process: subprocess.CompletedProcess[bytes]

    @property
    def output(self) -> bytes:
        return self.process.stdout + self.process.stderr



def check_connection(config: dict[str, Any], tmp_path: Path, env: dict[str, str] | None = None) -> CheckStatus:
    """Run ``check`` with ``config``: its one CONNECTION_STATUS (a check that ends otherwise fails the test)."""
    process = run_connector(["check", "--config", str(write_json(tmp_path / "check-config.json", config))], env=env)
    statuses = of_type(parse_messages(process.stdout), "CONNECTION_STATUS")
    assert len(statuses) == 1, f"exit {process.returncode}: {process.stdout[-2000:]!r} {process.stderr[-2000:]!r}"
    status = statuses[0]["connectionStatus"]
    return CheckStatus(status["status"], status.get("message") or "", process)



def write_args(tmp_path: Path, endpoint: str, streams: Iterable[StreamKey | dict[str, Any]],
               **config_overrides: Any) -> list[str]:
    """The ``write`` arguments, with a config for ``endpoint`` and a catalog of ``streams`` written to ``tmp_path``."""
    config = write_json(tmp_path / "config.json", connector_config(endpoint, **config_overrides))
    catalog_path = write_json(tmp_path / "catalog.json", catalog(streams))
    return ["write", "--config", str(config), "--catalog", str(catalog_path)]



class RunningConnector:
    """``destination-kinesis`` as a child process whose stdout is read line by line while it runs.

    A thread feeds ``stdin_bytes`` (and closes stdin after them unless ``keep_stdin_open``); another reads stdout and
    calls ``on_message`` with each Airbyte message the moment its line arrives, so a check made there sees the world
    as it was when the connector printed the line (give or take the pipe). :meth:`messages` yields the same messages
    to the test thread. Every wait is bounded; :meth:`close` kills the process if it still runs.
    """

    def __init__(self, args: list[str], stdin_bytes: bytes, keep_stdin_open: bool = False,
                 on_message: Callable[[Message], None] | None = None, command: Sequence[str] = ()):
        """``command``, when given, runs instead of the console script, with ``args`` after it (a ``docker run``)."""
        if not command and not CONNECTOR.exists():
            pytest.fail(f"{CONNECTOR} is missing: install the connector with `pip install -e .`", pytrace=False)
        self.args = [*(command or [str(CONNECTOR)]), *args]
        self.process = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.started = time.monotonic()
        self.stdin_done = threading.Event()  # every stdin byte was written (the connector may not have read them)
        self._keep_stdin_open = keep_stdin_open
        self._on_message = on_message
        self._queue: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._stdout = bytearray()
        self._stderr = bytearray()
        self.messages_seen: list[Message] = []
        self.callback_errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._feed, args=(stdin_bytes,), daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _feed(self, stdin_bytes: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            view = memoryview(stdin_bytes)
            for start in range(0, len(view), 1 << 16):
                stdin.write(view[start : start + (1 << 16)])
            stdin.flush()
            self.stdin_done.set()
            if not self._keep_stdin_open:
                stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the connector exited (or was killed) before reading everything

    def _read_stdout(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        for line in stdout:
            self._stdout += line
            if not line.strip():
                continue
            message = loads(line)
            if self._on_message is not None:
                try:
                    self._on_message(message)
                except BaseException as error:  # reported to the test by result()
                    self.callback_errors.append(error)
            self._queue.put(message)
        self._queue.put(None)

    def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert isinstance(stderr, io.BufferedReader)  # Popen's default buffering
        for chunk in iter(lambda: stderr.read1(1 << 16), b""):
            self._stderr += chunk

    def messages(self, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[Message]:
        """Each stdout message as it arrives, until stdout closes; fails the test if that takes over ``timeout``
        seconds from the start."""
        deadline = self.started + timeout
        while True:
            try:
                message = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                message = TIMED_OUT
            if message is TIMED_OUT:
                self.close()
                pytest.fail(f"the connector did not finish within {timeout:.0f} s; stderr tail: "
                            f"{bytes(self._stderr[-2000:]).decode(errors='replace')}", pytrace=False)
            if message is None:
                return
            self.messages_seen.append(message)
            yield message

    def send_signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = DEFAULT_TIMEOUT_S) -> SyncResult:
        """Read every message, wait for the exit (bounded by ``timeout`` from the start), return the result."""
        for _ in self.messages(timeout):
            pass
        try:
            self.process.wait(timeout=max(1.0, self.started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"the connector closed stdout but did not exit within {timeout:.0f} s", pytrace=False)
        for thread in self._threads[1:]:
            thread.join(STOP_READERS_S)
        self.close()
        if self.callback_errors:
            raise self.callback_errors[0]
        completed = subprocess.CompletedProcess(self.args, self.process.returncode, bytes(self._stdout),
                                                bytes(self._stderr))
        return SyncResult(completed, list(self.messages_seen))

    def close(self) -> None:
        """Kill the process if it still runs and close its pipes. Safe to call twice."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_READERS_S)
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def __enter__(self) -> RunningConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def beside(task: Callable[[], object] | None) -> Iterator[None]:
    """Run ``task`` (if any) on a daemon thread while the block runs (a reshard during a sync, say); wait up to 30 s
    for it after the block."""
    thread = threading.Thread(target=task, daemon=True) if task is not None else None
    if thread is not None:
        thread.start()
    try:
        yield
    finally:
        if thread is not None:
            thread.join(30)
