"""JSON compared exactly: every digit kept, and an integer never equal to a non-integer number."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def exact_json(text: str | bytes) -> Any:
    """Parse JSON keeping every digit: non-integer numbers as Decimal, integers as int."""
    return json.loads(text, parse_float=Decimal)


def assert_same_json(actual: Any, expected: Any, path: str = "$") -> None:
    """Values parsed by :func:`exact_json` are equal AND of the same kind at every node: an integer literal (int)
    never stands where a non-integer literal (Decimal) was, nor the other way round (``Decimal("1.0") == 1``)."""
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} instead of {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"{path}: keys differ"
        for key in expected:
            assert_same_json(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), f"{path}: lengths differ"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
