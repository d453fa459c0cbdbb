"""The registry of secrets that no output line may contain, and the masking of text with it.

Secrets are registered as soon as they are known (the config's secret fields when the file is read, temporary
credentials when a role is assumed); every LOG, TRACE and check message is masked on its way out.

**The rule.** A secret of :data:`MIN_ANYWHERE_CHARS` characters or more is masked wherever it occurs, inside a word
too: every real AWS credential is that long (access key IDs have at least 16 characters, secret access keys 40,
session tokens hundreds). A shorter one (a dummy key such as ``test`` or ``x`` for an emulator, a short external ID)
is masked only where it stands as a whole token, not touching a letter, a digit, ``_`` or ``-``, nor a ``.`` that
joins it to one (a full stop after it is no join): so ``Credential=test/…``, ``'test'`` and ``is test.`` are masked,
but the stream ``test.test_orders``, the host ``localhost`` and the word ``expected`` keep their letters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

#: Secrets at least this long are masked anywhere; shorter ones only as whole tokens (see the module's docstring).
MIN_ANYWHERE_CHARS = 16
#: What a short secret must not touch to be masked: a character of a word or a name, or a dot joining it to one.
_WORD = r"[A-Za-z0-9_\-]"
MASK = "****"

_secrets: list[str] = []  # every registered form, longest first
_long: list[str] = []
_short: re.Pattern[str] | None = None


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values (non-empty strings) in every message written from now on, in every form an error message
    may quote them: as they are, without surrounding whitespace, line by line, and escaped as in JSON or a Python
    repr. A key pasted with a trailing newline shows up in an HTTP client's error as ``b'...AKIA...\\n/...'``,
    which the raw value does not match."""
    global _short
    for value in values:
        text = str(value)
        forms = (text, text.strip(), orjson.dumps(text).decode()[1:-1], repr(text)[1:-1],
                 *(line.strip() for line in text.splitlines()))
        _secrets.extend(form for form in forms if form.strip() and form not in _secrets)
    _secrets.sort(key=len, reverse=True)  # a longer form is masked whole before a shorter one it contains
    _long[:] = [form for form in _secrets if len(form) >= MIN_ANYWHERE_CHARS]
    short = [re.escape(form) for form in _secrets if len(form) < MIN_ANYWHERE_CHARS]
    _short = re.compile(f"(?<!{_WORD})(?<!{_WORD}\\.)(?:{'|'.join(short)})(?!{_WORD}|\\.{_WORD})") if short else None


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _short
    _secrets.clear()
    _long.clear()
    _short = None


def masked(text: str | None) -> str | None:
    """``text`` with every registered secret replaced by ``****`` (see the module's docstring for where)."""
    if text:
        for secret in _long:
            text = text.replace(secret, MASK)
        if _short is not None:
            text = _short.sub(MASK, text)
    return text
