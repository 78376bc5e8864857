"""The index build's vectorised tokenizer against :func:`tokenize`, value by value.

The build splits ASCII values with Arrow and camel-splits each distinct word once;
other values go through ``tokenize``. Queries are always split by ``tokenize``, so
any difference would make a word findable in one place and not the other.
"""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from arco.discovery.search import build
from arco.discovery.search.tokens import tokenize

#: Letters of several scripts, digits, separators, camel humps and marks.
_ALPHABET = st.sampled_from(
    [*"abcXYZ019_-. /:@", "Größe", "İ", "ß", "é", "\u0301", "日本", "٣", "Ⅻ", "ǅ", "ﬁ"]
)
_VALUES = st.lists(
    st.one_of(st.none(), st.lists(_ALPHABET, max_size=8).map("".join), st.text(max_size=12)),
    max_size=30,
)


def _grouped(tokens: pa.Array, owners: pa.Array, n: int) -> list[set[str]]:
    out: list[set[str]] = [set() for _ in range(n)]
    for token, owner in zip(tokens.to_pylist(), owners.to_pylist(), strict=True):
        out[owner].add(token)
    return out


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_token_pairs_give_each_value_the_tokens_of_tokenize(values: list[str | None]) -> None:
    tokens, owners = build._token_pairs(pa.array(values, pa.string()))
    assert _grouped(tokens, owners, len(values)) == [set(tokenize(v)) for v in values]


@settings(max_examples=300, deadline=None)
@given(_VALUES.map(lambda vs: [v or "x" for v in vs]))
def test_name_postings_are_the_words_and_the_whole_name_unless_it_is_one(
    names: list[str],
) -> None:
    nums = pa.array(range(100, 100 + len(names)), pa.int32())
    tokens, docs = build._explode_names(pa.array(names, pa.string()), nums)
    got = _grouped(tokens, pa.array([d - 100 for d in docs.to_pylist()]), len(names))
    for name, mine in zip(names, got, strict=True):
        words = tokenize(name)
        whole = name.lower()
        expected = {f"n:{w}" for w in words} | (set() if whole in words else {f"n={whole}"})
        assert mine == expected, name


def test_lists_of_pairs_keep_each_values_tokens_including_empty_ones() -> None:
    values = pa.array(["ordersByDay", None, "", "a.b_c", "Größe"], pa.string())
    tokens, owners = build._token_pairs(values)
    lists = build._pair_lists(tokens, owners, len(values)).to_pylist()
    assert [sorted(x) for x in lists] == [
        ["by", "day", "orders"],
        [],
        [],
        ["a", "b", "c"],
        ["größe"],
    ]
