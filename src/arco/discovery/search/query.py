"""Answering a query: posting lookups, matching and scoring.

Owns what a query means on one index view: which documents each query token
matches (by field, exactly or by prefix), which match them all, the whole query
as a prefix of names, and the scores; what is kept for the view (common tokens'
sets as masks, see :mod:`.sets`; a one-token query's scored documents in rank
order). The filters and the page of :class:`SearchHit` are :mod:`.page`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .page import (
    RANK_KEYS,
    SearchHit,
    hit_labels,
    in_namespace,
    kinds_of,
    page_hits,
    page_rows,
    top_rows,
)
from .reader import _HIT_SCHEMA, IndexReader, _View
from .sets import EMPTY_GIDS, DocSet, intersect, mask_of, without
from .state import _KIND_ORDER
from .tokens import MAX_PREFIX, MIN_PREFIX, tokenize

#: Field markers of token postings and their weights: a query token equal to a token
#: of the field scores the first weight, one that only starts a token the second
#: (each below the field's whole-token weight, above the next field's).
FIELDS = (("n", 100.0, 50.0), ("d", 10.0, 6.0), ("p", 5.0, 2.0))
_EMPTY_GIDS = EMPTY_GIDS
#: One field match: its label (as a hit's ``matched`` shows it), the documents
#: (without repeats) and its weight.
_Match = tuple[str, DocSet, float]
#: A lookup whose answer holds at least this many documents is kept for the index
#: view (a common token: the costly ones; a rare token is cheaper to look up again
#: than to keep). See docs/adr/024-search-lookups-kept-per-index-version.md.
MEMO_MIN_DOCS = 1_024
#: A name-prefix range of at most this many postings is scored without a grouping plan.
_FEW_ROWS = 512
#: At most this many candidates (and name-prefix documents) are scored in Python.
FEW_CANDIDATES = 64


@dataclass
class SearchResults:
    """A page of hits."""

    hits: list[SearchHit] = field(default_factory=list)
    total: int = 0
    next_page_token: str | None = None
    catalog_version: int = 0


@dataclass(frozen=True)
class _Token:
    """What one query token matches on one index view: its field matches and the
    documents it matches by a field of their own (without repeats)."""

    matches: list[_Match]
    direct: DocSet

    @property
    def nbytes(self) -> int:
        """Memory held (what the cache bound counts)."""
        return self.direct.nbytes + sum(g.nbytes for _, g, _ in self.matches) + 256


@dataclass(frozen=True)
class _Prefix:
    """The whole query as a prefix of names: the documents, each one's best prefix
    score, and those whose name the query is."""

    gids: pa.Array
    scores: pa.Array
    exact: frozenset[int]
    #: ``gids`` again, as a mask when the range is common (to probe a page by).
    members: DocSet

    @property
    def nbytes(self) -> int:
        """Memory held (what the cache bound counts)."""
        held = self.gids.nbytes + self.scores.nbytes + 64 * len(self.exact)
        return int(held) + (self.members.nbytes if self.members.mask is not None else 0) + 256


_NO_PREFIX = _Prefix(_EMPTY_GIDS, pa.array([], pa.float64()), frozenset(), DocSet.of(_EMPTY_GIDS))


def run_query(
    reader: IndexReader,
    view: _View,
    query: str,
    kind: str | None,
    namespace: str | None,
    limit: int,
    offset: int,
    version: int,
) -> SearchResults:
    """Ranked hits of a checked query on one index view: its tokens' matches, the
    documents matching them all or the whole query as a name prefix, their scores,
    the kind and namespace filters, then the page from ``offset``."""
    # Tokenize before lowercasing so a camelCase query splits like the names.
    q_tokens = tokenize(query.strip())
    q = query.strip().lower()
    tokens = [_token(reader, view, token) for token in q_tokens]
    matches = [m for found in tokens for m in found.matches]
    prefix = _name_prefix(reader, view, q)
    if len(q_tokens) == 1:
        # One query token: every document it matches is a candidate, and the scored
        # documents are kept in rank order with the view when common.
        if not len(tokens[0].direct) and not len(prefix.gids):
            return SearchResults([], 0, None, version)
        ranked = _ranked_alone(reader, view, q_tokens[0], q, tokens[0], prefix)
        in_order = True
    else:
        # With several, the candidates are those satisfying every token (or the
        # whole query as a name prefix), scored by the matches that hold them.
        required, satisfying = _required(reader, view, q_tokens, tokens)
        if not len(required) and not len(prefix.gids):
            return SearchResults([], 0, None, version)
        candidates = required
        if len(prefix.gids):
            # Both are without repeats: the prefix's documents not already required
            # (found by probing the token's sets, not by hashing the required ones).
            extra = prefix.gids
            if len(required):
                everywhere = [s.member(extra) for s in satisfying]
                extra = extra.filter(pc.invert(_all(everywhere)))
            candidates = pa.concat_arrays([required, extra]) if len(extra) else required
        ranked = _score(matches, prefix, candidates)
        in_order = False
    if kind is not None:
        kinds = kinds_of(reader, view, ranked.column("g").combine_chunks())
        ranked = ranked.filter(pc.equal(kinds, _KIND_ORDER[kind]))
    if namespace is not None and ranked.num_rows:
        ranked = in_namespace(reader, view, ranked, namespace)
    total = ranked.num_rows
    need = offset + limit
    if offset >= total:
        return SearchResults([], total, None, version)
    # Documents numbered past the last full build's exist unless it was the last change.
    late = int(view.meta.get("next_doc", -1)) != view.base_docs
    top = top_rows(ranked, view.base_docs, need, in_order, late)
    order, by_num = page_rows(reader, view, top, offset, need)
    found_by = hit_labels(order, matches, prefix.members, prefix.exact)
    return SearchResults(
        page_hits(order, by_num, found_by), total, str(need) if need < total else None, version
    )


def _lookup(reader: IndexReader, view: _View, token: str, prefix: bool) -> pa.Table:
    """Live postings of ``token`` (or of every token starting with it): ``doc``,
    ``exact`` (the posting's token is ``token`` itself), ``name_len``, ``min_len``."""
    parts = []
    if view.postings is not None:
        for g in view.postings.groups_for(token, token if prefix else None):
            part = reader.posting_runs(view.postings, g).find(token, prefix)
            if part.num_rows:
                parts.append(part)
    if view.delta_postings.num_rows:
        col = view.delta_postings.column("token")
        mask = pc.starts_with(col, token) if prefix else pc.equal(col, token)
        part = view.delta_postings.filter(mask)
        if part.num_rows:
            parts.append(
                pa.table(
                    {
                        "doc": part.column("doc"),
                        "exact": pc.equal(part.column("token"), token),
                        "name_len": part.column("name_len"),
                        "min_len": part.column("min_len"),
                    },
                    schema=_HIT_SCHEMA,
                )
            )
    if not parts:
        return _HIT_SCHEMA.empty_table()
    out = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    if len(view.dead):
        out = out.filter(pc.invert(pc.is_in(out.column("doc"), value_set=view.dead)))
    return out


def _lookup_docs(
    reader: IndexReader, view: _View, token: str, prefix: bool
) -> tuple[pa.Array, pa.Array]:
    """The live documents of ``token``'s postings, and (when ``prefix``) those of the
    tokens starting with it (repeats kept), as :func:`_lookup` finds them without
    building its table: a rare token's field matches take several lookups."""
    if view.delta_postings.num_rows:
        return _split(_lookup(reader, view, token, prefix))
    exact: list[pa.Array] = []
    others: list[pa.Array] = []
    if view.postings is not None:
        for g in view.postings.groups_for(token, token if prefix else None):
            runs = reader.posting_runs(view.postings, g)
            start, mid, end = runs.rows(token, prefix)
            if mid > start:
                exact.append(runs.docs.slice(start, mid - start))
            if end > mid:
                others.append(runs.docs.slice(mid, end - mid))
    out = [_concat(exact), _concat(others)]
    if len(view.dead):
        dead = DocSet.of(view.dead)
        out = [without(docs, dead) for docs in out]
    return out[0], out[1]


def _split(rows: pa.Table) -> tuple[pa.Array, pa.Array]:
    """The documents of :func:`_lookup`'s rows: of the token itself, and the others."""
    is_exact = rows.column("exact")
    docs = rows.column("doc")
    return (
        pc.filter(docs, is_exact).combine_chunks(),
        pc.filter(docs, pc.invert(is_exact)).combine_chunks(),
    )


def _concat(parts: list[pa.Array]) -> pa.Array:
    """The arrays one after the other."""
    if not parts:
        return _EMPTY_GIDS
    return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)


def _token(reader: IndexReader, view: _View, token: str) -> _Token:
    """The field matches of one query token (kept for the view when common, large
    sets as masks)."""

    def make() -> tuple[_Token, int | None]:
        raw = _field_matches(reader, view, token)
        direct = _union([gids for _, gids, _ in raw])
        if len(direct) < MEMO_MIN_DOCS:
            found = _Token([(k, DocSet.of(g), w) for k, g, w in raw], DocSet.of(direct))
            return found, None
        size = _doc_limit(view)
        found = _Token(
            [(k, DocSet.of(g).compact(size), w) for k, g, w in raw],
            DocSet.of(direct).compact(size),
        )
        return found, found.nbytes

    return reader.kept_or_made(view, "token", token, make)


def _located(reader: IndexReader, view: _View, token: str, mine: _Token) -> DocSet:
    """The documents that satisfy ``token`` in a query of several: its own matches
    and what lives in a namespace or table it names (``q:``)."""

    def make() -> tuple[DocSet, int | None]:
        located, _ = _lookup_docs(reader, view, "q:" + token, False)
        if not len(located):
            return mine.direct, None
        own = mine.direct.mask
        if own is not None:
            # A common token: the union bit by bit (hashing ~50,000 numbers for their
            # distinct ones cost ~3 ms).
            theirs = mask_of(located, len(own))
            if len(theirs) == len(own):
                union = pc.or_(own, theirs)
                found = DocSet(int(pc.sum(union).as_py() or 0), mask=union)
                return found, found.nbytes + 256
        found = DocSet.of(_union([mine.direct.ids(), located]))
        if len(found) < MEMO_MIN_DOCS:
            return found, None
        found = found.compact(_doc_limit(view))
        return found, found.nbytes + 256

    return reader.kept_or_made(view, "located", token, make)


def _doc_limit(view: _View) -> int:
    """A bound on the view's document numbers (masks are made this long)."""
    return max(int(view.meta.get("next_doc", 0)), view.base_docs)


def _every(reader: IndexReader, view: _View) -> pa.Array:
    """The numbers ``0 .. _doc_limit(view)-1`` (kept: masks' documents are read from it)."""

    def make() -> tuple[pa.Array, int | None]:
        every = pa.array(range(_doc_limit(view)), pa.int32())
        return every, every.nbytes + 256

    every: pa.Array = reader.kept_or_made(view, "every", "", make)
    return every


def _field_matches(
    reader: IndexReader, view: _View, token: str
) -> list[tuple[str, pa.Array, float]]:
    """The fields ``token`` matches, exactly (a name also by its whole) and, when it
    is long enough, as the start of a longer token."""
    out: list[tuple[str, pa.Array, float]] = []
    can_prefix = MIN_PREFIX <= len(token) <= MAX_PREFIX
    for marker, weight, prefix_weight in FIELDS:
        key = f"{marker}:{token}"
        gids, others = _lookup_docs(reader, view, key, can_prefix)
        if marker == "n":
            whole, _ = _lookup_docs(reader, view, f"n={token}", False)
            gids = _union([gids, whole])
        starts = _EMPTY_GIDS
        if len(others):
            starts = pc.unique(others)
            # A document holding the token itself scores as exact, not also as prefix.
            starts = _without(starts, gids)
        for label, hits, w in ((key, gids, weight), (f"{key}*", starts, prefix_weight)):
            if len(hits):
                out.append((label, hits, w))
    return out


def _required(
    reader: IndexReader, view: _View, q_tokens: Sequence[str], tokens: Sequence[_Token]
) -> tuple[pa.Array, list[DocSet]]:
    """The documents that satisfy every one of several query tokens, some perhaps
    only by where they live.

    Those that match no token by a field of their own drop out in :func:`_score`
    (which sums only field matches and the name prefix), so they are not looked
    for here. Also the sets satisfying each token (they are intersected)."""
    if not any(len(found.direct) for found in tokens):
        return _EMPTY_GIDS, []
    # Where an object lives (``q:``) can satisfy a query token but never makes a
    # hit on its own: "sales orders" finds sales.orders, "sales" alone does not
    # list every column in the namespace.
    satisfying = [
        _located(reader, view, token, found) for token, found in zip(q_tokens, tokens, strict=True)
    ]
    if all(s.mask is not None for s in satisfying):
        return intersect(satisfying, _every(reader, view)), satisfying
    return intersect(satisfying), satisfying


def _all(flags: Sequence[pa.Array]) -> pa.Array:
    """Element-wise and of boolean arrays (at least one)."""
    out = flags[0]
    for more in flags[1:]:
        out = pc.and_(out, more)
    return out


def _name_prefix(reader: IndexReader, view: _View, q: str) -> _Prefix:
    """The whole query ``q`` as a prefix of a name (or of a table's qualified name
    past its namespace and the dot): the ``^`` postings of the range, scored (kept
    for the view when the range is common)."""
    if not q:
        return _NO_PREFIX

    def make() -> tuple[_Prefix, int | None]:
        found = _make_name_prefix(reader, view, q)
        return found, (found.nbytes if len(found.gids) >= MEMO_MIN_DOCS else None)

    return reader.kept_or_made(view, "prefix", q, make)


def _make_name_prefix(reader: IndexReader, view: _View, q: str) -> _Prefix:
    """:func:`_name_prefix` when nothing is kept for ``q``."""
    rows = _lookup(reader, view, "^" + q, True)
    if not rows.num_rows:
        return _NO_PREFIX
    if rows.num_rows <= _FEW_ROWS:
        few = _few_prefix(rows, q)
        if few is not None:
            return few
    rows = rows.filter(pc.less_equal(rows.column("min_len"), len(q)))
    if not rows.num_rows:
        return _NO_PREFIX
    is_exact = rows.column("exact")
    score = pc.add(
        500.0,
        pc.divide(100.0 * len(q), rows.column("name_len").cast(pa.float64())),
    )
    score = pc.if_else(is_exact, 1000.0, score)
    best = (
        pa.table({"g": rows.column("doc"), "s": score})
        .group_by("g", use_threads=False)
        .aggregate([("s", "max")])
    )
    gids = best.column("g").combine_chunks()
    members = DocSet.of(gids)
    if len(gids) >= MEMO_MIN_DOCS:
        members = members.compact(_doc_limit(view))
    exact = frozenset(pc.filter(rows.column("doc"), is_exact).to_pylist())
    return _Prefix(gids, best.column("s_max").combine_chunks(), exact, members)


def _few_prefix(rows: pa.Table, q: str) -> _Prefix | None:
    """:func:`_make_name_prefix` of a rare range, in Python: a dozen Arrow calls and
    a grouping plan cost ~0.3 ms for a handful of rows. The same floating-point
    operations (``500 + 100 * len(q) / name_len``, the best per document); None if
    a row has no name length (left to Arrow's null rules)."""
    cols = rows.to_pydict()
    n = len(q)
    top = 100.0 * n
    best_of: dict[int, float] = {}
    exact: set[int] = set()
    for g, is_exact, name_len, min_len in zip(
        cols["doc"], cols["exact"], cols["name_len"], cols["min_len"], strict=True
    ):
        if min_len is None or min_len > n:
            continue
        if is_exact:
            score = 1000.0
            exact.add(g)
        elif not name_len:
            return None
        else:
            score = 500.0 + top / name_len
        if g not in best_of or score > best_of[g]:
            best_of[g] = score
    if not best_of:
        return _NO_PREFIX
    gids = pa.array(list(best_of), pa.int32())
    scores = pa.array(list(best_of.values()), pa.float64())
    return _Prefix(gids, scores, frozenset(exact), DocSet.of(gids))


def _ranked_alone(
    reader: IndexReader, view: _View, token: str, q: str, mine: _Token, prefix: _Prefix
) -> pa.Table:
    """``g`` and ``score`` of every document a one-token query finds, in rank order
    (score descending, then number): its token's summed field weights plus its
    prefix score, added last (kept for the view when common)."""

    def make() -> tuple[pa.Table, int | None]:
        summed = _sum_weights([(label, s.ids(), w) for label, s, w in mine.matches])
        gids = summed.column("g").combine_chunks()
        scores = summed.column("w_sum").combine_chunks().cast(pa.float64())
        if len(prefix.gids):
            # Documents found only as a name prefix have no field weight.
            extra = without(prefix.gids, mine.direct)
            if len(extra):
                gids = pa.concat_arrays([gids, extra])
                zeros = pa.repeat(pa.scalar(0.0, pa.float64()), len(extra))
                scores = pa.concat_arrays([scores, zeros])
            at = pc.index_in(gids, value_set=prefix.gids)
            scores = pc.add(scores, pc.fill_null(pc.take(prefix.scores, at), 0.0))
        ranked = pa.table({"g": gids, "score": scores}).sort_by(RANK_KEYS)
        return ranked, (ranked.nbytes + 256 if ranked.num_rows >= MEMO_MIN_DOCS else None)

    ranked: pa.Table = reader.kept_or_made(view, "ranked", f"{token}\x00{q}", make)
    return ranked


def _score(matches: list[_Match], prefix: _Prefix, candidates: pa.Array) -> pa.Table:
    """``g`` and ``score`` of the candidates with a field match or a name prefix: their
    field weights (integers, summed exactly) plus their prefix score, added last so
    the float result is the same whatever order the tokens came in."""
    if len(candidates) <= FEW_CANDIDATES and len(prefix.gids) <= FEW_CANDIDATES:
        return _score_few(matches, prefix, candidates)
    summed: pa.Array | None = None
    for _, docs, w in matches:
        part = pc.if_else(docs.member(candidates), int(w), 0)
        summed = part if summed is None else pc.add(summed, part)
    if summed is None:
        summed = pa.repeat(pa.scalar(0, pa.int64()), len(candidates))
    # Field weights are all positive: a candidate matched by no field sums to 0.
    keep = pc.greater(summed, 0)
    if not len(prefix.gids):
        return pa.table(
            {"g": candidates.filter(keep), "score": summed.filter(keep).cast(pa.float64())}
        )
    in_prefix = prefix.members.member(candidates)
    keep = pc.or_(keep, in_prefix)
    gids = candidates.filter(keep)
    scores = summed.filter(keep).cast(pa.float64())
    # The prefix scores, looked up for the few documents that have one.
    in_prefix = in_prefix.filter(keep)
    named = gids.filter(in_prefix)
    at = pc.index_in(named, value_set=prefix.gids)
    added = pc.add(scores.filter(in_prefix), pc.fill_null(pc.take(prefix.scores, at), 0.0))
    return pa.table({"g": gids, "score": pc.replace_with_mask(scores, in_prefix, added)})


def _score_few(matches: list[_Match], prefix: _Prefix, candidates: pa.Array) -> pa.Table:
    """:func:`_score` of a few candidates, summed in Python (the same integer sums,
    and the same float addition of the prefix score): three Arrow calls a match cost
    more than the work for an exact name's handful of candidates."""
    listed = candidates.to_pylist()
    summed = [0] * len(listed)
    for _, docs, w in matches:
        weight = int(w)
        for i, found in enumerate(docs.flags(candidates, listed)):
            if found:
                summed[i] += weight
    named = dict(zip(prefix.gids.to_pylist(), prefix.scores.to_pylist(), strict=True))
    gids: list[int] = []
    scores: list[float] = []
    for g, w in zip(listed, summed, strict=True):
        if g in named:
            gids.append(g)
            p = named[g]
            scores.append(float(w) + (p if p is not None else 0.0))
        elif w:
            gids.append(g)
            scores.append(float(w))
    return pa.table({"g": pa.array(gids, pa.int32()), "score": pa.array(scores, pa.float64())})


def _sum_weights(matches: list[tuple[str, pa.Array, float]]) -> pa.Table:
    """``g`` and ``w_sum``: each matched document's field weights, summed."""
    # Field weights are whole numbers: summed as integers they are exact.
    parts = [
        pa.table({"g": g, "w": pa.repeat(pa.scalar(int(w), pa.int32()), len(g))})
        for _, g, w in matches
    ]
    if not parts:
        return pa.table({"g": _EMPTY_GIDS, "w_sum": pa.array([], pa.int32())})
    summed = (
        pa.concat_tables(parts).group_by("g", use_threads=False).aggregate([("w", "sum")])
    ).combine_chunks()
    return summed.set_column(1, "w_sum", summed.column(1).cast(pa.int32()))


def _union(parts: Sequence[pa.Array]) -> pa.Array:
    """Distinct gids of several arrays."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return _EMPTY_GIDS
    if len(parts) == 1:
        return pc.unique(parts[0])
    return pc.unique(pa.concat_arrays(parts))


def _without(gids: pa.Array, removed: pa.Array) -> pa.Array:
    """The gids not in ``removed``."""
    return without(gids, DocSet.of(removed))
