"""Airbyte messages as a source sends them, and the JSON lines the connector reads: single records and states, and
numbered inputs whose records can be found again in Kinesis however often they were written."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

EMITTED_AT = 1_700_000_000_000

Message = dict[str, Any]

StreamKey = tuple[str | None, str]  # (namespace, name)



def record(name: str, data: Any, emitted_at: int, namespace: str | None = None) -> Message:
    body: dict[str, Any] = {"stream": name, "data": data, "emitted_at": emitted_at}
    if namespace is not None:
        body["namespace"] = namespace
    return {"type": "RECORD", "record": body}



def stream_state(state_id: int, name: str, namespace: str | None = None, cursor: Any = None) -> Message:
    """A STREAM state as the platform sends it: with an integer ``id`` and ``sourceStats``."""
    descriptor: dict[str, Any] = {"name": name}
    if namespace is not None:
        descriptor["namespace"] = namespace
    return {
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": descriptor, "stream_state": {"cursor": cursor}},
            "id": state_id,
            "sourceStats": {"recordCount": 1.0},
        },
    }



def to_lines(messages: Iterable[Message | str]) -> bytes:
    """JSON lines for stdin; a ``str`` item is taken as an already written line."""
    return b"".join(
        (item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)).encode() + b"\n" for item in messages
    )



def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every digit: big integers stay int, every other number becomes a Decimal."""
    return json.loads(text, parse_float=Decimal)



#: The data member that numbers a record of :func:`numbered_messages`: a record can be found again however often it
#: was written.
SEQ = "seq"



def numbered_messages(streams: list[StreamKey], count: int, state_every: int, pad: int = 100) -> list[Message]:
    """``count`` records spread round-robin over ``streams``, each with data ``{"seq": n, "pad": ...}`` and a unique
    ``emitted_at``; after every ``state_every`` records, a STREAM state (unique integer ``id``) for each stream."""
    messages: list[Message] = []
    state_id = 0
    for seq in range(count):
        namespace, name = streams[seq % len(streams)]
        messages.append(record(name, {SEQ: seq, "pad": "p" * pad}, EMITTED_AT + seq, namespace))
        if seq % state_every == state_every - 1 or seq == count - 1:
            for namespace, name in streams:
                state_id += 1
                messages.append(stream_state(state_id, name, namespace, cursor=seq))
    return messages
