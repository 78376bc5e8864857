"""Search against a brute-force reference: random catalogs, random queries.

The reference (``expected``) is written from the matching rules of
docs/adr/005-search-index.md, over the catalog's own objects, without any index:

- a query token *matches a field* (name, description, properties) if it equals a
  token of the field, or, being 2-24 characters long, starts one (the name's
  tokens include those of a namespace's full dotted name; the whole lowercased
  name counts as a token for equality);
- a document matches if every query token matches one of its fields or a token of
  its qualified name (tables and columns), and at least one token matches a field;
- or if the whole lowercased query starts its name (two characters at least,
  unless it is the whole name), or, for a table, its qualified name past the
  namespace;
- the score adds up 100/50 (name token whole/start), 10/6 (description), 5/2
  (properties) per query token, plus 1000 for an exact name (or a table's
  qualified name) or 500 + 100 * len(query) / len(name) for a name prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arco.catalog import Catalog
from arco.core import InvalidArgumentError
from arco.discovery.search import MAX_PREFIX, MIN_PREFIX, SearchIndex, tokenize
from arco.discovery.search import query as search_query
from arco.discovery.search import sets as search_sets

from ._support import SCOPE, memory_store

KIND_ORDER = {"namespace": 0, "table": 1, "column": 2}


@dataclass
class RefDoc:
    """One searchable object as the reference sees it."""

    kind: str
    name: str
    qualified: str
    namespace: str
    name_words: list[str]
    description: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    located: bool = False  # tables and columns: qualified-name tokens count too

    def exact_names(self) -> set[str]:
        out = {self.name.lower()}
        if self.kind == "namespace":
            out.add(self.qualified.lower())
        return out


def field_score(token: str, words: list[str], whole: set[str], weights: tuple[int, int]) -> int:
    if token in words or token in whole:
        return weights[0]
    if MIN_PREFIX <= len(token) <= MAX_PREFIX and any(w.startswith(token) for w in words):
        return weights[1]
    return 0


def expected(
    docs: list[RefDoc], query: str, kind: str | None, namespace: str | None
) -> list[tuple[str, str, float]]:
    """(kind, qualified name, score) of every hit, in rank order."""
    q = query.strip().lower()
    q_tokens = tokenize(query.strip())
    out = []
    for doc in docs:
        fields = [
            (doc.name_words, doc.exact_names(), (100, 50)),
            (tokenize(doc.description), set(), (10, 6)),
            (
                [t for k, v in doc.properties.items() for t in tokenize(k) + tokenize(v)],
                set(),
                (5, 2),
            ),
        ]
        located = set(tokenize(doc.qualified)) if doc.located else set()
        per_token = [[field_score(t, w, x, ws) for w, x, ws in fields] for t in q_tokens]
        by_tokens = (
            bool(q_tokens)
            and all(any(s) or t in located for t, s in zip(q_tokens, per_token, strict=True))
            and any(any(s) for s in per_token)
        )
        name = doc.name.lower()
        name_prefix = name.startswith(q) and (len(q) >= MIN_PREFIX or q == name)
        table_prefix = (
            doc.kind == "table"
            and doc.qualified.lower().startswith(q)
            and len(q) > len(doc.namespace) + 1
        )
        if not (by_tokens or name_prefix or table_prefix):
            continue
        if kind is not None and doc.kind != kind:
            continue
        if namespace is not None and not (
            doc.namespace == namespace
            or doc.namespace.startswith(namespace + ".")
            or (doc.kind == "namespace" and doc.qualified == namespace)
        ):
            continue
        score = float(sum(sum(s) for s in per_token))
        if name_prefix or table_prefix:
            exact = q == name or (doc.kind == "table" and q == doc.qualified.lower())
            score += 1000.0 if exact else 500.0 + 100.0 * len(q) / len(name)
        out.append((doc.kind, doc.qualified, score))
    out.sort(key=lambda h: (-h[2], KIND_ORDER[h[0]], h[1]))
    return out


# ------------------------------------------------------------------ catalogs

# A small vocabulary makes shared prefixes, repeated words and exact hits likely.
WORDS = ["ord", "orders", "order", "rev", "revenue", "daily", "customer", "customers", "x", "id"]
LONG = "averyveryverylongnamespacename"  # past MAX_PREFIX characters


@st.composite
def identifiers(draw: st.DrawFn) -> str:
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(WORDS),
                st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,6}", fullmatch=True),
                st.just(LONG),
            ),
            min_size=1,
            max_size=3,
        )
    )
    sep = draw(st.sampled_from(["_", "-", ""]))
    if sep == "":
        parts = [parts[0], *(p[:1].upper() + p[1:] for p in parts[1:])]  # camelCase
    return sep.join(parts)[:60]


free_text = st.one_of(
    st.none(),
    st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=30),
    st.lists(
        st.one_of(
            st.sampled_from(WORDS), st.sampled_from(["für", "Größe", "café2", "ÉTÉ", "日本語"])
        ),
        max_size=4,
    ).map(" ".join),
)
properties = st.dictionaries(
    st.sampled_from(["owner", "source", "tag"]),
    st.one_of(
        st.sampled_from(WORDS),
        st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12),
    ),
    max_size=2,
)


@dataclass
class Spec:
    """What to create: namespaces (dotted names) and tables with columns."""

    namespaces: dict[str, tuple[str | None, dict[str, str]]]
    tables: dict[tuple[str, str], tuple[str | None, dict[str, str], list[tuple[str, str | None]]]]


@st.composite
def catalogs(draw: st.DrawFn) -> Spec:
    namespaces: dict[str, tuple[str | None, dict[str, str]]] = {}
    for _ in range(draw(st.integers(1, 3))):
        name = draw(identifiers())
        if namespaces and draw(st.booleans()):
            nested = f"{draw(st.sampled_from(sorted(namespaces)))}.{name}"
            # Three levels of 60-character names pass the catalog's 128-character limit.
            name = nested if len(nested) <= 128 else name
        if name.lower() not in {n.lower() for n in namespaces}:
            namespaces[name] = (draw(free_text), draw(properties))
    tables: dict[tuple[str, str], tuple[str | None, dict[str, str], list[tuple[str, str | None]]]]
    tables = {}
    for _ in range(draw(st.integers(0, 4))):
        ns = draw(st.sampled_from(sorted(namespaces)))
        name = draw(identifiers())
        if (ns, name.lower()) in {(n, t.lower()) for n, t in tables}:
            continue
        columns: dict[str, str | None] = {}
        for _ in range(draw(st.integers(0, 3))):
            col = draw(identifiers())
            if col.lower() not in {c.lower() for c in columns}:
                columns[col] = draw(free_text)
        tables[(ns, name)] = (draw(free_text), draw(properties), list(columns.items()))
    return Spec(namespaces, tables)


def build(cat: Catalog, spec: Spec) -> None:
    with cat.transaction() as tx:
        for ns in sorted(spec.namespaces, key=lambda n: n.count(".")):
            description, props = spec.namespaces[ns]
            tx.create_namespace(ns, description, props)
        for (ns, name), (description, props, columns) in spec.tables.items():
            cols = [{"name": c, "type": "bigint", "description": d} for c, d in columns]
            tx.create_table(ns, name, cols, description=description, properties=props)


def reference_docs(spec: Spec) -> list[RefDoc]:
    docs = []
    for ns, (description, props) in spec.namespaces.items():
        short = ns.rsplit(".", 1)[-1]
        docs.append(
            RefDoc(
                "namespace",
                short,
                ns,
                ns.rsplit(".", 1)[0] if "." in ns else "",
                list(dict.fromkeys(tokenize(short) + tokenize(ns))),
                description,
                props,
            )
        )
    for (ns, name), (description, props, columns) in spec.tables.items():
        qualified = f"{ns}.{name}"
        docs.append(
            RefDoc("table", name, qualified, ns, tokenize(name), description, props, located=True)
        )
        for col, col_description in columns:
            docs.append(
                RefDoc(
                    "column",
                    col,
                    f"{qualified}.{col}",
                    ns,
                    tokenize(col),
                    col_description,
                    located=True,
                )
            )
    return docs


# ------------------------------------------------------------------- queries


@st.composite
def queries(draw: st.DrawFn, spec: Spec) -> str:
    names = sorted(spec.namespaces) + [f"{ns}.{t}" for ns, t in spec.tables]
    names += [c for (_, _, cols) in spec.tables.values() for c, _ in cols]
    text = st.text(
        st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
        min_size=1,
        max_size=12,
    )
    source = draw(st.sampled_from(names))
    start = draw(st.integers(0, len(source)))
    end = draw(st.integers(start, len(source)))
    query = draw(
        st.one_of(
            st.just(source[:end]),  # a prefix (of a qualified name, too)
            st.just(source[start:end]),  # a substring
            st.sampled_from(WORDS).flatmap(lambda w: st.integers(1, len(w)).map(lambda n: w[:n])),
            st.sampled_from(["für", "Größe", "ÉTÉ", "日本", "\uff2frders", "..", "_", "-x-", "K"]),
            text,  # anything, unicode and punctuation included
            st.lists(st.sampled_from(WORDS), min_size=2, max_size=3).map(" ".join),
        )
    )
    if draw(st.booleans()):
        query = query.upper() if draw(st.booleans()) else f"  {query} "
    return query


def check(
    index: SearchIndex, docs: list[RefDoc], spec: Spec, data: st.DataObject, twice: bool = False
) -> None:
    for _ in range(6):
        query = data.draw(queries(spec))
        kind = data.draw(st.sampled_from([None, "namespace", "table", "column"]))
        namespace = data.draw(st.sampled_from([None, *sorted(spec.namespaces)]))
        if not query.strip() or len(query) > 512:
            with pytest.raises(InvalidArgumentError):
                index.search(query)
            continue
        result = index.search(query, kind=kind, namespace=namespace, limit=1000)
        got = [(h.kind, h.qualified_name, pytest.approx(h.score)) for h in result.hits]
        want = expected(docs, query, kind, namespace)
        assert got == want, (query, kind, namespace)
        assert result.total == len(want)
        if twice:  # answered again from the lookups the first query kept
            again = index.search(query, kind=kind, namespace=namespace, limit=1000)
            assert [h.to_dict() for h in again.hits] == [h.to_dict() for h in result.hits]
            assert again.total == result.total


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=catalogs(), data=st.data())
def test_search_equals_the_brute_force_reference(spec: Spec, data: st.DataObject) -> None:
    store = memory_store()
    cat = Catalog(store, SCOPE)
    build(cat, spec)
    index = SearchIndex(store, SCOPE)
    check(index, reference_docs(spec), spec, data)

    # After a change, the incrementally refreshed index (and its caches) still agree.
    if spec.tables:
        ns, name = data.draw(st.sampled_from(sorted(spec.tables)))
        _, props, columns = spec.tables[(ns, name)]
        if data.draw(st.booleans()):
            cat.drop_table(ns, name)
            del spec.tables[(ns, name)]
        else:
            new_description = data.draw(free_text)
            cat.update_table(ns, name, description=new_description)
            spec.tables[(ns, name)] = (new_description, props, columns)
        check(index, reference_docs(spec), spec, data)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=catalogs(), data=st.data())
def test_kept_lookups_agree_with_the_reference_across_changes(
    spec: Spec, data: st.DataObject
) -> None:
    """Every lookup kept (however rare), every query asked twice, and a change in
    between: what a query kept for one index version never answers for the next."""
    # Every kept set a mask; every name prefix grouped, every query scored and every
    # page labelled by Arrow (the other test takes the Python paths for small sets).
    knobs = [
        (search_query, "MEMO_MIN_DOCS"),
        (search_query, "_FEW_ROWS"),
        (search_query, "FEW_CANDIDATES"),
        (search_sets, "MASK_MIN_DOCS"),
        (search_sets, "FEW_IN_PYTHON"),
    ]
    saved = [getattr(module, name) for module, name in knobs]
    for module, name in knobs:
        setattr(module, name, 0)
    try:
        store = memory_store()
        cat = Catalog(store, SCOPE)
        build(cat, spec)
        index = SearchIndex(store, SCOPE)
        check(index, reference_docs(spec), spec, data, twice=True)
        if spec.tables:
            ns, name = data.draw(st.sampled_from(sorted(spec.tables)))
            _, props, columns = spec.tables[(ns, name)]
            if data.draw(st.booleans()):
                cat.drop_table(ns, name)
                del spec.tables[(ns, name)]
            else:
                new_description = data.draw(free_text)
                cat.update_table(ns, name, description=new_description)
                spec.tables[(ns, name)] = (new_description, props, columns)
            check(index, reference_docs(spec), spec, data, twice=True)
    finally:
        for (module, name), value in zip(knobs, saved, strict=True):
            setattr(module, name, value)


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_a_blank_query_is_refused(query: str) -> None:
    store = memory_store()
    Catalog(store, SCOPE).create_namespace("sales")
    with pytest.raises(InvalidArgumentError, match="must not be empty"):
        SearchIndex(store, SCOPE).search(query)
