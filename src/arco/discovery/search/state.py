"""The search domain's layout: its tables, their schemas and the index revision.

Owns what a reader and a writer of the index must agree on: the ``postings``,
``docs``, ``ids`` and ``dead`` tables (schemas, sort keys, row-group sizes), the
bucket tables of older revisions (still declared so their manifests read), the
document kinds and which revision built an index snapshot.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import pyarrow as pa

from arco.domain.store import Snapshot
from arco.domain.tableset import TableDef
from arco.ledger.folds import RowMapState

Kind = Literal["namespace", "table", "column"]
KINDS = ("namespace", "table", "column")
_KIND_ORDER = {"namespace": 0, "table": 1, "column": 2}
#: What the index was built by: an index built by another revision (tokenizer,
#: posting kinds, layout) is rebuilt in full by the next refresh. Revision 3:
#: one postings table sorted by token, read by row group (ADR 021).
INDEX_REVISION = 3

POSTINGS, DOCS, IDS, DEAD = "postings", "docs", "ids", "dead"
POSTING_SCHEMA = pa.schema(
    [
        pa.field("token", pa.string(), nullable=False),
        pa.field("doc", pa.int32(), nullable=False),
        # ``^`` postings only: the length of the lowercased name (the prefix score's
        # denominator) and the shortest query that may match by this posting.
        pa.field("name_len", pa.int16()),
        pa.field("min_len", pa.int16()),
    ]
)
DOC_SCHEMA = pa.schema(
    [
        pa.field("doc", pa.int32(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("name", pa.string()),
        pa.field("qualified_name", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("description", pa.string()),
    ]
)
ID_SCHEMA = pa.schema(
    [pa.field("doc_id", pa.string(), nullable=False), pa.field("doc", pa.int32(), nullable=False)]
)
DEAD_SCHEMA = pa.schema([pa.field("doc", pa.int32(), nullable=False)])

_LEGACY_POSTING_SCHEMA = pa.schema(
    [
        pa.field("token", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        pa.field("name", pa.string()),
        pa.field("qualified_name", pa.string()),
        pa.field("namespace", pa.string()),
        pa.field("description", pa.string()),
    ]
)
_LEGACY_DOC_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("tokens", pa.list_(pa.string())),
        pa.field("children", pa.list_(pa.string())),
    ]
)


class SearchState(RowMapState):
    """The search domain keeps nothing resident; row groups are read on demand.

    The bucket tables of revisions 1 and 2 stay declared so their manifests can
    still be read; the next refresh replaces them (a full rebuild)."""

    TABLES: ClassVar[dict[str, TableDef]] = {
        POSTINGS: TableDef(
            POSTINGS,
            POSTING_SCHEMA,
            ("token", "doc"),
            resident=False,
            sort_key=("token", "doc"),
            group_rows=8_192,
            own_footers=False,
        ),
        # The search reader reads groups through the file's footer (ADR 029).
        DOCS: TableDef(
            DOCS,
            DOC_SCHEMA,
            ("doc",),
            resident=False,
            sort_key=("doc",),
            group_rows=1_024,
            own_footers=False,
        ),
        IDS: TableDef(
            IDS,
            ID_SCHEMA,
            ("doc_id",),
            resident=False,
            sort_key=("doc_id",),
            group_rows=4_096,
            own_footers=False,
        ),
        DEAD: TableDef(DEAD, DEAD_SCHEMA, ("doc",), resident=False),
        **{
            f"postings_{i:02d}": TableDef(
                f"postings_{i:02d}", _LEGACY_POSTING_SCHEMA, ("token", "doc_id"), resident=False
            )
            for i in range(64)
        },
        **{
            f"docs_{i:02d}": TableDef(
                f"docs_{i:02d}", _LEGACY_DOC_SCHEMA, ("doc_id",), resident=False
            )
            for i in range(16)
        },
    }


def _indexed(snap: Snapshot[SearchState]) -> int:
    """The catalog version an index snapshot reflects (0 if another revision built it:
    its postings cannot answer this revision's queries, so it is rebuilt in full)."""
    meta = snap.manifest.meta if snap.manifest else {}
    if meta.get("revision", 1) != INDEX_REVISION:
        return 0
    return int(meta.get("catalog_version", 0))
