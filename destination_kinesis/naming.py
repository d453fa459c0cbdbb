"""Airbyte stream (namespace, name) → Kinesis stream name, as the Java destination-kinesis 0.1.5 named them.

0.1.5 wrote stream ``name`` of namespace ``ns`` to ``{ns}_{name}`` reduced to ``[A-Za-z0-9_]``: Unicode NFKD with
combining marks dropped, each run of ASCII whitespace to ``_``, every other character outside ``[A-Za-z0-9_]`` to
``_``, cut to 128 characters. Users moving from it keep their streams. Unlike 0.1.5, two Airbyte streams that reduce
to the same name do not share a Kinesis stream: all but one get a short hash suffix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator

from destination_kinesis.limits import MAX_STREAM_NAME_CHARS

logger = logging.getLogger("airbyte")

StreamKey = tuple[str | None, str]
"""An Airbyte stream: (namespace or None, name)."""

# Java's \s and \p{Alnum} (what 0.1.5 used) are ASCII-only; Python's would match Unicode, so spell them out.
_WHITESPACE_RUN = re.compile(r"[ \t\n\x0b\f\r]+")
_NOT_ALNUM_OR_UNDERSCORE = re.compile(r"[^A-Za-z0-9_]")
_SUFFIX_HEX_CHARS = 8


def display_name(key: StreamKey) -> str:
    """How logs and errors name an Airbyte stream: ``namespace.name``, or ``name`` without a namespace."""
    namespace, name = key
    return f"{namespace}.{name}" if namespace else name


def unreduced_name(key: StreamKey) -> str:
    """``{namespace}_{name}``, with an empty namespace when there is none: the name before any reduction."""
    namespace, name = key
    return f"{namespace or ''}_{name}"


def reduced_name(key: StreamKey) -> str:
    """The Kinesis stream name 0.1.5 gave this Airbyte stream."""
    decomposed = unicodedata.normalize("NFKD", unreduced_name(key))
    without_marks = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    underscored = _WHITESPACE_RUN.sub("_", without_marks)
    return _NOT_ALNUM_OR_UNDERSCORE.sub("_", underscored)[:MAX_STREAM_NAME_CHARS]


def _suffixed_names(key: StreamKey) -> Iterator[str]:
    """Ever longer suffixes of one hash of the stream (None and "" namespaces hash apart), for a name not yet taken."""
    digest = hashlib.sha256(json.dumps([key[0], key[1]]).encode("ascii")).hexdigest()
    for length in range(_SUFFIX_HEX_CHARS, len(digest) + 1, 4):
        yield f"{reduced_name(key)[: MAX_STREAM_NAME_CHARS - length - 1]}_{digest[:length]}"


def _order(key: StreamKey) -> tuple[bool, str, str]:
    return (key[0] is not None, key[0] or "", key[1])


def kinesis_stream_names(keys: Iterable[StreamKey]) -> dict[StreamKey, str]:
    """Map each Airbyte stream to a distinct Kinesis stream name.

    Streams whose reduced names collide are told apart deterministically, whatever the catalog's order: the stream
    whose name needed no reduction keeps the plain name (else the first by namespace, None first, and name does),
    and the others get ``_`` plus 8 hex digits of a SHA-256 of their namespace and name, more digits in the
    unlikely case that this name is taken too. Each such rename is logged.
    """
    by_name: dict[str, list[StreamKey]] = defaultdict(list)
    for key in dict.fromkeys(keys):
        by_name[reduced_name(key)].append(key)
    names: dict[StreamKey, str] = {}
    renamed: list[tuple[StreamKey, StreamKey]] = []
    for plain, group in by_name.items():
        group.sort(key=_order)
        keeper = next((k for k in group if unreduced_name(k) == plain), group[0])
        names[keeper] = plain
        renamed.extend((key, keeper) for key in group if key != keeper)
    taken = set(names.values())
    for key, keeper in sorted(renamed, key=lambda pair: _order(pair[0])):
        names[key] = next(name for name in _suffixed_names(key) if name not in taken)
        taken.add(names[key])
        logger.warning(
            "Airbyte streams %r and %r both reduce to the Kinesis stream name %r; %r writes to %r instead.",
            display_name(keeper), display_name(key), names[keeper], display_name(key), names[key],
        )
    return names
