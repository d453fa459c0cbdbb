"""naming: Airbyte (namespace, stream) → Kinesis stream name by the template; by default as 0.1.5 named them."""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata

import pytest

from destination_kinesis.errors import ConnectorError
from destination_kinesis.naming import NameTemplate, kinesis_stream_names, shared_streams

VALID_KINESIS_NAME = re.compile(r"[A-Za-z0-9_]{1,128}")
SUFFIXED = re.compile(r"(?P<base>.*)_(?P<hex>[0-9a-f]{8})")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (("public", "users"), "public_users"),
        ((None, "users"), "_users"),
        (("", "users"), "_users"),
        (("café", "crème brûlée"), "cafe_creme_brulee"),
        ((None, "Ärger"), "_Arger"),
        ((None, "a \t\n\r\x0b\f b"), "_a_b"),  # one run of ASCII whitespace → one '_'
        ((None, "a  b c"), "_a_b_c"),
        ((None, "a--b.c/d"), "_a__b_c_d"),  # other characters: one '_' each, never merged
        ((None, "ﬁle"), "_file"),  # NFKD compatibility decomposition of the ligature
        ((None, "Ⅻ"), "_XII"),
        ((None, "a\u00a0\u3000b"), "_a_b"),  # NFKD turns these spaces into ASCII spaces, then one run
        ((None, "a\u200bb"), "_a_b"),  # no decomposition: replaced
        ((None, "日本"), "___"),
        ((None, "x😀y"), "_x_y"),  # one code point, one '_'
        (("ns.v1", "Stream-Name_2"), "ns_v1_Stream_Name_2"),
    ],
)
def test_reduced_name_follows_0_1_5(key: tuple[str | None, str], expected: str) -> None:
    """The 0.1.5 mapping: {namespace}_{stream}, NFKD without marks, whitespace runs and other characters to '_'."""
    assert NameTemplate().reduced(key) == expected


def test_reduced_name_is_cut_to_128_characters() -> None:
    """Names longer than Kinesis allows are cut to 128 characters, after the reduction."""
    assert NameTemplate().reduced(("ns", "x" * 300)) == ("ns_" + "x" * 300)[:128]
    assert len(NameTemplate().reduced((None, "é" * 500))) == 128


def test_unreduced_names() -> None:
    """The unreduced name joins with '_' (empty namespace when None)."""
    assert NameTemplate().unreduced((None, "a b")) == "_a b"
    assert NameTemplate().unreduced(("n", "s")) == "n_s"


def test_streams_without_collisions_keep_their_plain_names(caplog: pytest.LogCaptureFixture) -> None:
    """Distinct reduced names are used as they are, and nothing is logged about renames."""
    keys = [("public", "users"), (None, "orders"), ("crm", "café")]
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        names = kinesis_stream_names(keys)
    assert names == {("public", "users"): "public_users", (None, "orders"): "_orders", ("crm", "café"): "crm_cafe"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_repeated_keys_are_one_stream() -> None:
    """The same Airbyte stream listed twice is one stream, not a collision."""
    assert kinesis_stream_names([(None, "a"), (None, "a")]) == {(None, "a"): "_a"}


def test_collision_unreduced_stream_keeps_plain_name_and_others_get_suffix(caplog: pytest.LogCaptureFixture) -> None:
    """Of two streams reducing to the same name, the one whose name needed no reduction keeps it; the other gets
    '_' plus 8 hex digits, and a warning names both streams and the new name."""
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        names = kinesis_stream_names([("s", "a b"), ("s", "a_b")])
    assert names[("s", "a_b")] == "s_a_b"
    suffixed = SUFFIXED.fullmatch(names[("s", "a b")])
    assert suffixed is not None and suffixed["base"] == "s_a_b"
    warnings = [r.getMessage() for r in caplog.records if r.name == "airbyte" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'s.a b'" in warnings[0] and "'s.a_b'" in warnings[0] and names[("s", "a b")] in warnings[0]


def test_collisions_resolve_the_same_whatever_the_catalog_order(caplog: pytest.LogCaptureFixture) -> None:
    """Every order of a colliding group gives the same mapping, with distinct valid names, one warning per rename."""
    group = [(None, "a b"), (None, "a-b"), (None, "a.b"), (None, "a_b"), ("", "a\tb"), ("x", "y")]
    expected = kinesis_stream_names(group)
    assert expected[(None, "a_b")] == "_a_b"  # the one that needed no reduction
    assert len(set(expected.values())) == len(group)
    for order in itertools.permutations(group):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="airbyte"):
            assert kinesis_stream_names(order) == expected
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 4
    for name in expected.values():
        assert VALID_KINESIS_NAME.fullmatch(name)


def test_collision_without_unreduced_member_keeps_first_by_namespace_and_name() -> None:
    """When every colliding stream needed reduction, the first by (namespace, name) keeps the plain name."""
    names = kinesis_stream_names([(None, "a.b"), (None, "a-b"), (None, "a b")])
    assert names[(None, "a b")] == "_a_b"  # ' ' < '-' < '.'
    assert SUFFIXED.fullmatch(names[(None, "a-b")]) and SUFFIXED.fullmatch(names[(None, "a.b")])


def test_suffixed_names_of_long_streams_stay_within_128_characters() -> None:
    """A suffix on a name already cut to 128 characters shortens the base, so the name stays valid."""
    long_plain, long_accented = ("n", "x" * 300), ("n", "x" * 299 + "é")
    names = kinesis_stream_names([long_accented, long_plain])
    assert names == kinesis_stream_names([long_plain, long_accented])
    assert len(set(names.values())) == 2
    for name in names.values():
        assert VALID_KINESIS_NAME.fullmatch(name), name
    renamed = next(name for name in names.values() if SUFFIXED.fullmatch(name))
    assert len(renamed) == 128
    assert renamed.startswith(("n_" + "x" * 300)[:119] + "_")


def test_suffix_is_a_stable_function_of_the_stream() -> None:
    """The suffix depends only on the stream itself, not on which other streams are in the catalog."""
    alone = kinesis_stream_names([(None, "a b"), (None, "a_b")])[(None, "a b")]
    with_more = kinesis_stream_names([(None, "a b"), (None, "a_b"), (None, "a-b")])[(None, "a b")]
    assert alone == with_more


def test_none_and_empty_namespace_resolve_independently_of_order() -> None:
    """(None, 'x') and ('', 'x') both reduce to '_x'; the mapping must not depend on the catalog order."""
    keys = [(None, "x"), ("", "x")]
    assert kinesis_stream_names(keys) == kinesis_stream_names(list(reversed(keys)))


def test_none_and_empty_namespace_both_renamed_get_distinct_names() -> None:
    """Two streams differing only by None vs '' namespace, both needing a suffix, still get distinct names."""
    keys = [(None, "é"), ("", "é"), (None, "e")]  # all reduce to '_e'; (None, 'e') keeps it
    names = kinesis_stream_names(keys)
    assert len(set(names.values())) == 3


def test_suffixed_name_never_clashes_with_another_streams_plain_name() -> None:
    """If a stream is literally named like another stream's suffixed name, all three still get distinct names."""
    renamed = kinesis_stream_names([(None, "a b"), (None, "a_b")])[(None, "a b")]
    clash = (None, renamed[1:])  # its plain name '_' + name equals the suffixed name
    names = kinesis_stream_names([(None, "a b"), (None, "a_b"), clash])
    assert len(set(names.values())) == 3


# --------------------------------------------------------------------------------------------------------------------
# streamNameTemplate
# --------------------------------------------------------------------------------------------------------------------


def _java_0_1_5_name(namespace: str | None, name: str) -> str:
    """0.1.5's rule written out on the whole '{ns}_{name}' string, as a reference for the default template."""
    decomposed = unicodedata.normalize("NFKD", f"{namespace or ''}_{name}")
    without_marks = "".join(char for char in decomposed if not unicodedata.category(char).startswith("M"))
    return re.sub(r"[^A-Za-z0-9_]", "_", re.sub(r"[ \t\n\r\x0b\x0c]+", "_", without_marks))[:128]


def test_default_template_reduces_exactly_as_0_1_5_on_the_whole_name() -> None:
    """The default template reduces each placeholder on its own; for every mix of edge characters at the borders
    (whitespace runs, combining marks, compatibility forms, None and empty namespaces) that equals 0.1.5's
    reduction of the whole '{ns}_{name}'."""
    pieces = ["", " ", "\t\n", "a", "é", "e\u0301", "\u0301", "ﬁ", "\u00a0", "日", "_", ".", "x" * 70]
    template = NameTemplate()
    compared = 0
    for namespace in [None, *("".join(p) for p in itertools.product(pieces, repeat=2))]:
        for name in ("".join(p) for p in itertools.product(pieces, repeat=2)):
            assert template.reduced((namespace, name)) == _java_0_1_5_name(namespace, name), (namespace, name)
            compared += 1
    assert compared > 20_000


def test_literal_text_is_kept_and_values_are_reduced() -> None:
    """'prod.{stream}' keeps 'prod.' as written (a '.' 0.1.5 would have replaced) and reduces the stream name."""
    template = NameTemplate("prod.{stream}")
    assert template.reduced(("shop", "café orders")) == "prod.cafe_orders"
    assert NameTemplate("{namespace}-{stream}").reduced((None, "a b")) == "-a_b"
    assert NameTemplate("x-{stream}").reduced((None, "y" * 300)) == ("x-" + "y" * 300)[:128]


def test_adjacent_placeholders_are_reduced_as_one_string() -> None:
    """With nothing between them, a whitespace run spanning both values becomes one '_', as in one string."""
    assert NameTemplate("{namespace}{stream}").reduced(("a ", " b")) == "a_b"


def test_template_without_namespace_merges_streams_of_the_same_name() -> None:
    """Streams that differ only in their namespace share the Kinesis stream of 'prod.{stream}', without a rename
    warning, and shared_streams lists them."""
    keys = [("crm", "users"), ("erp", "users"), (None, "orders")]
    names = kinesis_stream_names(keys, NameTemplate("prod.{stream}"))
    assert names == {("crm", "users"): "prod.users", ("erp", "users"): "prod.users",
                           (None, "orders"): "prod.orders"}
    assert shared_streams(names) == {"prod.users": [("crm", "users"), ("erp", "users")]}


def test_fixed_name_sends_every_stream_to_one_kinesis_stream(caplog: pytest.LogCaptureFixture) -> None:
    """A template without placeholders is one fixed stream for all, and says so."""
    template = NameTemplate("airbyte-events")
    assert template.fixed_name == "airbyte-events" and NameTemplate().fixed_name is None
    keys = [(None, "a b"), ("x", "a_b"), ("", "c")]
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        names = kinesis_stream_names(keys, template)
    assert set(names.values()) == {"airbyte-events"} and set(names) == set(keys)
    assert shared_streams(names) == {"airbyte-events": [(None, "a b"), ("", "c"), ("x", "a_b")]}
    assert not caplog.records


def test_distinct_streams_whose_values_reduce_alike_still_get_a_suffix() -> None:
    """Under '{stream}', 'a b' and 'a_b' are different streams the template tells apart: the reduced clash is
    resolved with a suffix as under the default template, and nothing is shared."""
    names = kinesis_stream_names([("n1", "a b"), ("n2", "a_b")], NameTemplate("{stream}"))
    assert names[("n2", "a_b")] == "a_b"
    suffixed = SUFFIXED.fullmatch(names[("n1", "a b")])
    assert suffixed is not None and suffixed["base"] == "a_b"
    assert shared_streams(names) == {}


def test_default_template_shares_nothing() -> None:
    """Under the default template every Airbyte stream has a Kinesis stream of its own (0.1.5's reduced clashes
    included), so no envelope needs the stream's name."""
    keys = [("s", "a b"), ("s", "a_b"), (None, "x"), ("", "x")]
    assert shared_streams(kinesis_stream_names(keys)) == {}


def test_identity_is_what_the_template_uses() -> None:
    """Only the parts a template uses tell streams apart."""
    assert NameTemplate().identity(("a", "x")) == ("a", "x")
    assert NameTemplate("{stream}").identity(("a", "x")) == (None, "x")
    assert NameTemplate("p.{namespace}").identity(("a", "x")) == ("a", "")
    assert NameTemplate("fixed").identity(("a", "x")) == (None, "")


@pytest.mark.parametrize(("text", "words"), [
    ("{name}", ["{name}", "{namespace}", "{stream}"]),
    ("{Stream}", ["{Stream}"]),
    ("a b{stream}", ["' '"]),
    ("prod/{stream}", ["'/'"]),
    ("{namespace", ["'{'"]),
    ("{stream}}", ["'}'"]),
    ("x" * 129, ["128"]),
])
def test_bad_templates_are_refused_saying_why(text: str, words: list[str]) -> None:
    """Unknown placeholders, characters Kinesis does not allow and fixed names over 128 characters fail parsing."""
    with pytest.raises(ValueError) as caught:
        NameTemplate(text)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_template_giving_an_empty_name_is_a_config_error_naming_the_streams() -> None:
    """'{namespace}' for a stream without namespace would be an empty Kinesis name: a config error names it."""
    with pytest.raises(ConnectorError) as caught:
        kinesis_stream_names([(None, "users"), ("crm", "orders")], NameTemplate("{namespace}"))
    assert caught.value.failure_type == "config_error"
    assert "'users'" in caught.value.message and "{namespace}" in caught.value.message
    assert "orders" not in caught.value.message
