"""Airbyte message lines as a source writes them, the pipe they arrive through, and the figures read back from the
state lines the connector emits."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

EMITTED_AT = 1700000000000


def record_line(data: str | dict[str, Any] = "{}", stream: str = "users", namespace: str | None = None,
                emitted_at: str | int = EMITTED_AT) -> bytes:
    """A RECORD line; ``data`` is JSON text (kept verbatim) or a dict; a None namespace is left out."""
    data_text = data if isinstance(data, str) else json.dumps(data)
    ns = "" if namespace is None else f'"namespace":{json.dumps(namespace)},'
    return (f'{{"type":"RECORD","record":{{{ns}"stream":{json.dumps(stream)},"emitted_at":{emitted_at},'
            f'"data":{data_text}}}}}').encode()


def stream_state_line(name: str, namespace: str | None = None, state_id: int | None = None,
                      stream_state: str = '{"cursor":1}') -> bytes:
    """A STREAM STATE line for ``namespace.name``; ``stream_state`` is JSON text kept verbatim."""
    descriptor = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    state_id_text = "" if state_id is None else f',"id":{state_id}'
    return (f'{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{json.dumps(descriptor)},'
            f'"stream_state":{stream_state}}}{state_id_text}}}}}').encode()


def global_state_line(state_id: int | None = None, shared_state: str = '{"lsn":1}') -> bytes:
    """A GLOBAL STATE line."""
    state_id_text = "" if state_id is None else f',"id":{state_id}'
    return (f'{{"type":"STATE","state":{{"type":"GLOBAL","global":{{"shared_state":{shared_state},'
            f'"stream_states":[]}}{state_id_text}}}}}').encode()


def legacy_state_line(state_id: int | None = None) -> bytes:
    """A LEGACY STATE line (no state type, only ``data``)."""
    state_id_text = "" if state_id is None else f',"id":{state_id}'
    return f'{{"type":"STATE","state":{{"data":{{"cursor":1}}{state_id_text}}}}}'.encode()


def lines(*items: bytes) -> bytes:
    """Newline-terminated input lines."""
    return b"\n".join(items) + b"\n"


Feed = bytes | list[bytes] | Callable[[int], None]


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_on_pipe(consume: Callable[[int], None], feed: Feed) -> None:
    """Call ``consume(read_fd)`` while a thread feeds the pipe (bytes, a list of chunks, or a function writing to
    the fd) and then closes it. If ``consume`` stops reading early, the feeder gives up instead of hanging."""
    read_fd, write_fd = os.pipe()

    def feeder() -> None:
        try:
            if callable(feed):
                feed(write_fd)
            else:
                for chunk in [feed] if isinstance(feed, bytes) else feed:
                    write_all(write_fd, chunk)
        except OSError:
            pass  # the reader stopped (it failed): nothing more to feed
        finally:
            os.close(write_fd)

    thread = threading.Thread(target=feeder, daemon=True)
    thread.start()
    try:
        consume(read_fd)
    finally:
        os.close(read_fd)
        thread.join(10)


def state_id(rendered: bytes) -> int:
    """The ``state.id`` of an emitted state line."""
    return json.loads(rendered)["state"]["id"]


def record_count(rendered: bytes) -> Any:
    """The ``state.destinationStats.recordCount`` of an emitted state line."""
    return json.loads(rendered)["state"]["destinationStats"]["recordCount"]
