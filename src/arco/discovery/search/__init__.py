"""Search over namespace, table and column names, descriptions and properties.

The index is the ``search`` domain (docs/adr/005-search-index.md, layout of
docs/adr/021-search-postings-by-row-group.md). Its ``postings`` base is sorted by
``(token, doc)`` in row groups whose token ranges, byte ranges and SHA-256 the
manifest indexes, so a query fetches only the groups that hold its tokens (one
token, or a range of tokens for a prefix) by ranged reads and checks each
against its hash. Documents are numbered in rank order (kind, then qualified
name, then id); their details live in the ``docs`` table (sorted by number) and
are read only for the page of hits. An incremental refresh writes small delta
files: postings and documents of new document numbers, the numbers that are no
longer live (``dead``) and the id -> number map (``ids``); queries consult them
too, and a refresh rebuilds the index in full once they grow.

Posting tokens carry a field marker: ``n:`` a word of the name, ``n=`` the whole
lowercased name (matched exactly only), ``d:`` a word of the description, ``p:``
of a property, ``q:`` of the qualified name, ``^`` the whole lowercased name (or
a table's qualified name), matched by prefix. A query token's prefix matches are
the tokens of the range ``{marker}:{token}...``; no prefix is posted.

The modules, each with one job:

* :mod:`.tokens` - the tokenizer (names, texts and queries into words);
* :mod:`.state` - the domain's tables, schemas and index revision;
* :mod:`.build` - documents and postings from catalog rows; the incremental change;
* :mod:`.runs` - the full rebuild, its postings kept compact and sorted as written;
* :mod:`.reader` - ranged, verified, cached reads of the index's row groups;
* :mod:`.query` - posting lookups, matching, ranking and the page of hits;
* :mod:`.index` - :class:`SearchIndex`: refresh and search wired together.
"""

from __future__ import annotations

from .build import REBUILD_DELTA_POSTINGS, name_len_of
from .index import SEARCH_LOCK_WAIT, SearchIndex
from .page import SearchHit
from .query import FIELDS, SearchResults
from .reader import CACHE_BYTES, KEPT_BYTES
from .state import DEAD, DOCS, IDS, INDEX_REVISION, KINDS, POSTINGS, Kind, SearchState
from .tokens import MAX_PREFIX, MIN_PREFIX, name_tokens, token_prefixes, tokenize

__all__ = [
    "CACHE_BYTES",
    "DEAD",
    "DOCS",
    "FIELDS",
    "IDS",
    "INDEX_REVISION",
    "KEPT_BYTES",
    "KINDS",
    "MAX_PREFIX",
    "MIN_PREFIX",
    "POSTINGS",
    "REBUILD_DELTA_POSTINGS",
    "SEARCH_LOCK_WAIT",
    "Kind",
    "SearchHit",
    "SearchIndex",
    "SearchResults",
    "SearchState",
    "name_len_of",
    "name_tokens",
    "token_prefixes",
    "tokenize",
]
