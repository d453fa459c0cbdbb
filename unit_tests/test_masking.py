"""masking: every registered secret is masked in every form an error may quote it."""

from __future__ import annotations

import json

from destination_kinesis.masking import masked, register_secrets


def test_a_secret_is_masked_as_written_stripped_escaped_and_line_by_line(clear_secrets: None) -> None:
    value = "  wJalrXUtnFEMI/K7MDENG\nbPxRfiCYEXAMPLEKEY\n"
    register_secrets([value])
    assert masked(f"[{value}]") == "[****]"
    assert masked(f"key {value.strip()}.") == "key ****."
    assert masked("key wJalrXUtnFEMI/K7MDENG and bPxRfiCYEXAMPLEKEY") == "key **** and ****"
    assert masked(repr(value)) == "'****'"
    assert masked(repr(value.encode())) == "b'****'"
    assert masked(f"{{\"k\": {json.dumps(value)}}}") == '{"k": "****"}'


def test_a_longer_secret_is_masked_whole_before_a_shorter_one_inside_it(clear_secrets: None) -> None:
    register_secrets(["AKIAEXAMPLE", "AKIAEXAMPLE-LONGER"])
    assert masked("id AKIAEXAMPLE-LONGER") == "id ****"


def test_nothing_to_mask(clear_secrets: None) -> None:
    assert masked(None) is None
    assert masked("") == ""
    register_secrets(["   "])  # blank values are not secrets
    assert masked("a   b") == "a   b"
