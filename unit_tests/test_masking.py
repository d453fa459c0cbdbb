"""masking: every registered secret is masked in every form an error may quote it."""

from __future__ import annotations

import json

from destination_kinesis.masking import MIN_ANYWHERE_CHARS, masked, register_secrets


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


def test_short_dummy_keys_are_masked_only_as_whole_tokens(clear_secrets: None) -> None:
    """test/test, local, x (emulator keys) do not garble names and words, but are masked where they stand alone."""
    register_secrets(["test", "local", "x"])
    for text in ("Stream 'test.test_orders' → Kinesis stream 'test_test_orders'.", "expected a JSON object",
                 "endpoint http://localhost:4567", "ProvisionedThroughputExceededException x3", "test-1", "max_x"):
        assert masked(text) == text
    assert masked("Credential=test/20261206/us-east-1/kinesis/aws4_request") == (
        "Credential=****/20261206/us-east-1/kinesis/aws4_request")
    assert masked("the key 'local' and x, and (test)") == "the key '****' and ****, and (****)"
    assert masked("the access key is test. Then") == "the access key is ****. Then"


def test_secrets_of_16_characters_and_more_are_masked_anywhere(clear_secrets: None) -> None:
    """AWS keys are 16 characters or longer: masked inside words and names too."""
    assert MIN_ANYWHERE_CHARS == 16
    register_secrets(["AKIAIOSFODNN7EXAM", "short-external"])
    assert masked("xAKIAIOSFODNN7EXAMy and role-short-external-id") == "x****y and role-short-external-id"
    assert masked("id short-external.") == "id ****."
