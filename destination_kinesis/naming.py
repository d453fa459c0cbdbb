"""Airbyte stream (namespace, name) → Kinesis stream name, by the ``streamNameTemplate``.

The default template ``{namespace}_{stream}`` names streams exactly as the Java destination-kinesis 0.1.5 did:
``{ns}_{name}`` reduced to ``[A-Za-z0-9_]``: Unicode NFKD with combining marks dropped, each run of ASCII
whitespace to ``_``, every other character outside ``[A-Za-z0-9_]`` to ``_``, cut to 128 characters. Users moving
from it keep their streams. Other templates keep their literal text as written (``[A-Za-z0-9_.-]``, so
``prod.{stream}`` stays ``prod.…``) and reduce only the values filled in, the same way.

Airbyte streams that differ only in a part the template leaves out (``{stream}`` alone, or a fixed name) share one
Kinesis stream on purpose. Unlike 0.1.5, streams the template tells apart but whose values reduce to the same name
do not share one: all but one get a short hash suffix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping

from destination_kinesis.errors import config_error
from destination_kinesis.limits import MAX_STREAM_NAME_CHARS
from destination_kinesis.messages import StreamKey, display_name

logger = logging.getLogger("airbyte")

DEFAULT_TEMPLATE = "{namespace}_{stream}"
PLACEHOLDERS = ("namespace", "stream")

# Java's \s and \p{Alnum} (what 0.1.5 used) are ASCII-only; Python's would match Unicode, so spell them out.
_WHITESPACE_RUN = re.compile(r"[ \t\n\x0b\f\r]+")
_NOT_ALNUM_OR_UNDERSCORE = re.compile(r"[^A-Za-z0-9_]")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_SUFFIX_HEX_CHARS = 8


def _reduce(text: str) -> str:
    """0.1.5's reduction of a name to ``[A-Za-z0-9_]`` (not yet cut to length)."""
    decomposed = unicodedata.normalize("NFKD", text)
    without_marks = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return _NOT_ALNUM_OR_UNDERSCORE.sub("_", _WHITESPACE_RUN.sub("_", without_marks))


class NameTemplate:
    """A parsed ``streamNameTemplate``: literal text and the placeholders ``{namespace}`` and ``{stream}``.

    Raises ValueError, saying what is wrong, for an unknown placeholder, a character Kinesis does not allow in
    stream names, or a fixed name longer than 128 characters.
    """

    def __init__(self, text: str = DEFAULT_TEMPLATE):
        self.text = text
        #: (is a placeholder, literal text or placeholder name), in template order.
        self._parts: list[tuple[bool, str]] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            self._add_literal(text[position:match.start()])
            if match[1] not in PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {match[0]}; the placeholders are {{namespace}} and {{stream}}")
            self._parts.append((True, match[1]))
            position = match.end()
        self._add_literal(text[position:])
        used = {value for is_placeholder, value in self._parts if is_placeholder}
        self.uses_namespace = "namespace" in used
        self.uses_stream = "stream" in used
        if not used and len(text) > MAX_STREAM_NAME_CHARS:
            raise ValueError(f"a fixed stream name has at most {MAX_STREAM_NAME_CHARS} characters, not {len(text)}")

    def _add_literal(self, literal: str) -> None:
        bad = _NOT_NAME_CHAR.search(literal)
        if bad:
            raise ValueError(f"'{bad[0]}' is not allowed: besides {{namespace}} and {{stream}}, a template may hold "
                             f"only letters, digits, '_', '.' and '-' (the characters of Kinesis stream names)")
        if literal:
            self._parts.append((False, literal))

    @property
    def fixed_name(self) -> str | None:
        """The one Kinesis stream every Airbyte stream goes to, when the template has no placeholder."""
        return None if self.uses_namespace or self.uses_stream else self.text

    def identity(self, key: StreamKey) -> StreamKey:
        """What of ``key`` the template uses: streams with the same identity share one Kinesis stream."""
        namespace, name = key
        return (namespace if self.uses_namespace else None, name if self.uses_stream else "")

    def _values(self, key: StreamKey) -> dict[str, str]:
        return {"namespace": key[0] or "", "stream": key[1]}

    def unreduced(self, key: StreamKey) -> str:
        """The template filled in with the stream's namespace ("" when None) and name, before any reduction."""
        values = self._values(key)
        return "".join(values[text] if is_placeholder else text for is_placeholder, text in self._parts)

    def reduced(self, key: StreamKey) -> str:
        """The Kinesis stream name for ``key`` before collisions are resolved.

        Each run of adjacent placeholders is filled in and reduced as one string, literal text is kept, and the
        whole is cut to 128 characters. Literal text is ASCII and never whitespace, so for the default template this
        equals 0.1.5's reduction of the whole ``{ns}_{name}``.
        """
        values = self._values(key)
        pieces: list[str] = []
        run: list[str] = []
        for is_placeholder, text in self._parts:
            if is_placeholder:
                run.append(values[text])
            else:
                pieces.extend((_reduce("".join(run)), text))
                run = []
        pieces.append(_reduce("".join(run)))
        return "".join(pieces)[:MAX_STREAM_NAME_CHARS]

def _suffixed_names(template: NameTemplate, identity: StreamKey) -> Iterator[str]:
    """Ever longer suffixes of one hash of the identity (None and "" namespaces hash apart)."""
    digest = hashlib.sha256(json.dumps([identity[0], identity[1]]).encode("ascii")).hexdigest()
    for length in range(_SUFFIX_HEX_CHARS, len(digest) + 1, 4):
        yield f"{template.reduced(identity)[: MAX_STREAM_NAME_CHARS - length - 1]}_{digest[:length]}"


def _order(key: StreamKey) -> tuple[bool, str, str]:
    return (key[0] is not None, key[0] or "", key[1])


def _shown(keys: list[StreamKey]) -> str:
    return ", ".join(repr(display_name(key)) for key in sorted(keys, key=_order))


def kinesis_stream_names(keys: Iterable[StreamKey], template: NameTemplate | None = None) -> dict[StreamKey, str]:
    """Map each Airbyte stream to its Kinesis stream name by ``template`` (default ``{namespace}_{stream}``).

    Streams with the same identity under the template share their name. Identities whose reduced names collide are
    told apart deterministically, whatever the catalog's order: the one whose name needed no reduction keeps the
    plain name (else the first by namespace, None first, and name), and the others get ``_`` plus 8 hex digits of
    a SHA-256 of their namespace and name, more digits in the unlikely case that this name is taken too. Each
    such rename is logged. Raises a config error naming the streams for which the template gives an empty name.
    """
    template = template or NameTemplate()
    members: dict[StreamKey, list[StreamKey]] = defaultdict(list)
    for key in dict.fromkeys(keys):
        members[template.identity(key)].append(key)
    by_name: dict[str, list[StreamKey]] = defaultdict(list)
    for identity in members:
        by_name[template.reduced(identity)].append(identity)
    if "" in by_name:
        empty = [key for identity in by_name[""] for key in members[identity]]
        raise config_error(f"streamNameTemplate '{template.text}' gives an empty Kinesis stream name for the Airbyte "
                           f"streams {_shown(empty)}: add {{stream}} or fixed text to the template.")
    names: dict[StreamKey, str] = {}
    renamed: list[tuple[StreamKey, StreamKey]] = []
    for plain, group in by_name.items():
        group.sort(key=_order)
        keeper = next((k for k in group if template.unreduced(k) == plain), group[0])
        names[keeper] = plain
        renamed.extend((identity, keeper) for identity in group if identity != keeper)
    taken = set(names.values())
    for identity, keeper in sorted(renamed, key=lambda pair: _order(pair[0])):
        names[identity] = next(name for name in _suffixed_names(template, identity) if name not in taken)
        taken.add(names[identity])
        logger.warning("Airbyte streams %s and %s both map to the Kinesis stream name %r; %s write to %r instead.",
                       _shown(members[keeper]), _shown(members[identity]), names[keeper], _shown(members[identity]),
                       names[identity])
    return {key: names[identity] for identity, group in members.items() for key in group}


def shared_streams(names: Mapping[StreamKey, str]) -> dict[str, list[StreamKey]]:
    """The Kinesis streams that receive records of more than one Airbyte stream, each with those streams."""
    by_name: dict[str, list[StreamKey]] = defaultdict(list)
    for key, name in names.items():
        by_name[name].append(key)
    return {name: sorted(keys, key=_order) for name, keys in by_name.items() if len(keys) > 1}
