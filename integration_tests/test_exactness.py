"""Scenario 7, data exactness: over a corpus of awkward values, the consumer reads back exactly the source's JSON
value.

"Exactly" is judged by a parser stricter than the usual ones: numbers become Decimals compared by sign, digits and
exponent (so 2.50 is not 2.5, -0 is not 0, and 1e400 keeps every digit), objects keep their members in order
(duplicates included), strings keep every code unit (lone surrogates included).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from .connector import catalog, connector_config, error_traces, parse_messages, run_connector, unique, write_json
from .inputs import EMITTED_AT, stream_state
from .kinesis_emulator import Emulator, read_stream
from .readback import kinesis_stream_name

ALL_CONTROLS = "".join(f"\\u{code:04x}" for code in range(0x20))
C1_CONTROLS = "".join(chr(code) for code in range(0x7F, 0xA0))  # raw: valid unescaped in JSON strings
NINE_HUNDRED_KIB = 900 * 1024

#: id -> the ``data`` of one record, as JSON text exactly as the source writes it.
CORPUS: dict[str, str] = {
    "int_30_digits": '{"v": 123456789012345678901234567890, "neg": -123456789012345678901234567890}',
    "int_beyond_64_bits": '{"u64_plus_1": 18446744073709551616, "i64_min_minus_1": -9223372036854775809}',
    "decimal_40_digits": '{"v": 1.234567890123456789012345678901234567890, '
                         '"neg": -1234567890123456789.012345678901234567890}',
    "decimal_tiny": '{"v": 0.0000000000000000000000000000000000000001234567890123456789012345678901234567890}',
    "exponent_beyond_double": '{"huge": 1e400, "neg_huge": -1.5E+400, "tiny": 1e-400, "capital": 1E400}',
    "exponent_small": '{"v": 6.02214076e23, "w": 2.5e-3, "x": 1E2}',
    "negative_zero_float": '{"v": -0.0, "w": -0e0, "x": -0.0e-5}',
    "negative_zero_integer": '{"v": -0}',
    "trailing_zeros": '{"v": 2.50, "w": 100.000, "x": 0.10}',
    "plain_numbers": '{"zero": 0, "one_point_zero": 1.0, "small": -42, "pi": 3.14159, "max_safe": 9007199254740993}',
    "lone_surrogates": r'{"high": "\ud800", "low": "\udfff", "reversed": "\udc00\ud800", "inside": "a\ud800b"}',
    "paired_surrogates": r'{"escaped": "\ud83d\ude00", "mixed_case": "\uD83D\uDE00", "astral_cjk": "\ud840\udc00"}',
    "emoji": '{"v": "😀👍🏽🇫🇷👩\u200d👩\u200d👧\u200d👦🏳️\u200d🌈", "keycap": "1️⃣"}',
    "all_control_characters": f'{{"escaped": "{ALL_CONTROLS}", "short": "\\b\\f\\n\\r\\t\\"\\\\\\/"}}',
    "raw_del_and_c1_controls": json.dumps({"v": C1_CONTROLS}, ensure_ascii=False),
    "line_and_paragraph_separators": '{"raw": "\u2028\u2029\u0085", "escaped": "\\u2028\\u2029"}',
    "bom_and_noncharacters": '{"bom": "\ufeff", "escaped_bom": "\\ufeff", "nonchar": "\\uffff\\ufffe"}',
    "string_of_900_kib": json.dumps({"v": ("0123456789abcdé€😀" * 60_000)[: NINE_HUNDRED_KIB // 2] + "end"},
                                    ensure_ascii=False),
    "empty_object": "{}",
    "empty_containers": '{"o": {}, "a": [], "nested": [[], [{}], {"x": {}}], "s": ""}',
    "odd_keys": r'{"": "empty key", "ключ": 1, "\ud800": "lone surrogate key", "a b": 2, "\u0000": 3}',
    "deep_but_fine": '{"v": ' + "[" * 300 + "1" + "]" * 300 + "}",
}
def strict(text: str) -> Any:
    """Parse JSON keeping everything that tells two values apart: every digit of every number (as an exact decimal
    value, so 2.50 and 2.5, 1E2 and 100.0 are the same number, as JSON and Decimal have it; the sign of a negative
    zero decimal is kept, -0 as an integer is 0), every code unit of strings, and objects as ordered member lists."""
    def normal(value: Any) -> Any:
        if isinstance(value, Decimal):
            return ("number", value.normalize().as_tuple())
        if isinstance(value, tuple):
            return ("object", [(key, normal(member)) for key, member in value[1]])
        if isinstance(value, list):
            return [normal(item) for item in value]
        return value

    return normal(json.loads(text, parse_float=Decimal, parse_int=lambda digits: Decimal(int(digits)),
                             object_pairs_hook=lambda pairs: ("object", pairs)))


def numeric(text: str) -> Any:
    """The usual Decimal-keeping parse: 2.50 == 2.5 and -0 == 0, big integers kept."""
    return json.loads(text, parse_float=Decimal)


@pytest.fixture(scope="module")
def read_back_corpus(kinesalite: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Sync the corpus, one record per value, and return id -> the ``_airbyte_data`` text the consumer reads."""
    tmp_path = tmp_path_factory.mktemp("exactness")
    name = unique("exact")
    ids = list(CORPUS)
    lines = [f'{{"type": "RECORD", "record": {{"stream": "{name}", "emitted_at": {EMITTED_AT + i}, '
             f'"data": {CORPUS[case]}}}}}' for i, case in enumerate(ids)]
    lines.append(json.dumps(stream_state(1, name)))
    config = write_json(tmp_path / "config.json", connector_config(kinesalite.endpoint))
    catalog_path = write_json(tmp_path / "catalog.json", catalog([(None, name)]))
    process = run_connector(["write", "--config", str(config), "--catalog", str(catalog_path)],
                            "\n".join(lines).encode() + b"\n")
    messages = parse_messages(process.stdout)
    assert process.returncode == 0 and not error_traces(messages), process.stdout[-3000:]
    assert len([m for m in messages if m["type"] == "STATE"]) == 1

    texts: dict[str, str] = {}
    for item in read_stream(kinesalite.endpoint, kinesis_stream_name(None, name)):
        envelope = item["data"].decode("utf-8")
        case = ids[numeric(envelope)["_airbyte_emitted_at"] - EMITTED_AT]
        assert case not in texts, f"{case} written twice"
        texts[case] = data_text(envelope)
    assert set(texts) == set(ids), f"not written: {set(ids) - set(texts)}"
    return texts


def data_text(envelope: str) -> str:
    """The text of the envelope's ``_airbyte_data`` member (the last member, as the connector writes it)."""
    start = envelope.index('"_airbyte_data":') + len('"_airbyte_data":')
    assert envelope.rstrip().endswith("}")
    return envelope[start : envelope.rstrip().rindex("}")]


@pytest.mark.parametrize("case", list(CORPUS))
def test_value_read_back_exactly(read_back_corpus: dict[str, str], case: str) -> None:
    """The consumer reads exactly the source's value (strict parse), and the usual Decimal parse agrees."""
    read = read_back_corpus[case]
    assert strict(read) == strict(CORPUS[case])
    assert numeric(read) == numeric(CORPUS[case])
