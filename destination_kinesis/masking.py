"""The registry of secrets that no output line may contain, and the masking of text with it.

Secrets are registered as soon as they are known (the config's secret fields when the file is read, temporary
credentials when a role is assumed); every LOG, TRACE and check message is masked on its way out.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

_secrets: list[str] = []


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values (non-empty strings) in every message written from now on, in every form an error message
    may quote them: as they are, without surrounding whitespace, line by line, and escaped as in JSON or a Python
    repr. A key pasted with a trailing newline shows up in an HTTP client's error as ``b'...AKIA...\\n/...'``,
    which the raw value does not match."""
    for value in values:
        text = str(value)
        forms = (text, text.strip(), orjson.dumps(text).decode()[1:-1], repr(text)[1:-1],
                 *(line.strip() for line in text.splitlines()))
        _secrets.extend(form for form in forms if form.strip() and form not in _secrets)
    _secrets.sort(key=len, reverse=True)  # a longer form is masked whole before a shorter one it contains


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    _secrets.clear()


def masked(text: str | None) -> str | None:
    """``text`` with every registered secret replaced by ``****``."""
    if text:
        for secret in _secrets:
            text = text.replace(secret, "****")
    return text
