"""What the input's lines become: a record to write or a state to echo, and the Airbyte stream each belongs to.

A leaf: these types are shared by every layer (reading, encoding, batching, the checkpoint), so this module imports
nothing of the connector. Lines become them in :mod:`destination_kinesis.reader` (the fast path) and
:mod:`destination_kinesis.parser` (every line, exactly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

StreamKey = tuple[str | None, str]
"""An Airbyte stream: (namespace or None, name)."""

ALL_STREAMS = None
"""The scope of a GLOBAL or LEGACY state: every stream."""


def display_name(key: StreamKey) -> str:
    """How logs and errors name an Airbyte stream: ``namespace.name``, or ``name`` without a namespace."""
    namespace, name = key
    return f"{namespace}.{name}" if namespace else name


@dataclass(slots=True)
class Record:
    """A RECORD to write. Exactly one of ``data`` (orjson re-serialises it exactly) and ``raw_data`` is set.

    ``line`` is the input line it came from, for :func:`~destination_kinesis.parser.parse_exact` to read again when
    orjson cannot write ``data``.
    """

    key: StreamKey
    emitted_at: int
    data: dict[str, Any] | None
    raw_data: bytes | None
    line_no: int
    line: bytes = field(default=b"", compare=False, repr=False)


# gc=False: a state holds only bytes, strings and numbers, so it cannot be in a cycle. A sync with a state after each
# record holds thousands waiting for their records; tracked, they cost a garbage collection every few hundred states,
# and each full collection scanned them all again.
class State(msgspec.Struct, gc=False):
    """A STATE to echo once every earlier record in its scope is written.

    ``scope`` is the stream of a STREAM state, or :data:`ALL_STREAMS`. ``text`` is the original message (trailing
    whitespace removed, and any old ``destinationStats`` value left out), echoed as ``text[:cut] + insert``, then
    the value of ``state.destinationStats``, then ``text[cut:]``: ``text[:cut] + insert`` ends with the member's name
    (and the comma it needs). The text is cut only when rendered: a state waiting for its records costs no copy of it.
    """

    scope: StreamKey | None
    line_no: int
    text: bytes
    cut: int
    insert: bytes = b""

    def render(self, record_count: int, rejected_count: int = 0) -> bytes:
        """The original message with ``state.destinationStats = {"recordCount": record_count}`` set, plus
        ``"rejectedRecordCount": rejected_count`` when that is above 0 (records counted in but not written)."""
        # Counts are written as the protocol's doubles, N.0 (what repr(float(N)) gives below 10**16, and the same
        # number above).
        text, cut = self.text, self.cut
        if rejected_count:
            return b'%b%b{"recordCount":%d.0,"rejectedRecordCount":%d.0}%b' % (
                text[:cut], self.insert, record_count, rejected_count, text[cut:])
        return b'%b%b{"recordCount":%d.0}%b' % (text[:cut], self.insert, record_count, text[cut:])
