"""The catalog's Parquet schemas are a contract: golden files pin them.

Each ``golden/{table}.txt`` holds the base and the delta schema of one state
table (``str(schema)`` and every field's nullability, nested fields included).
Regenerate after an intended change with ``ARCO_UPDATE_GOLDEN=1``; the contract
(see state.py) allows only *adding nullable columns*.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arco.catalog import Catalog
from arco.catalog.state import CatalogState
from arco.core import open_store
from arco.domain import tableset

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("ARCO_UPDATE_GOLDEN") == "1"
TABLE_NAMES = sorted(CatalogState.TABLES)


def _fields(field: pa.Field, prefix: str = "") -> list[str]:
    """``path: type nullable=...`` for a field and every field nested inside it."""
    path = f"{prefix}{field.name}"
    lines = [f"{path}: {field.type} nullable={field.nullable}"]
    t = field.type
    if pa.types.is_map(t):
        lines += _fields(t.key_field, path + ".")
        lines += _fields(t.item_field, path + ".")
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        lines += _fields(t.value_field, path + ".")
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            lines += _fields(t.field(i), path + ".")
    return lines


def render_schema(schema: pa.Schema) -> str:
    """A stable text form of a schema: ``str(schema)`` then nullability per field."""
    schema = schema.remove_metadata()
    lines = [str(schema), "-- nullability --"]
    for field in schema:
        lines += _fields(field)
    return "\n".join(lines)


def render_table(name: str) -> str:
    tdef = CatalogState.TABLES[name]
    return (
        f"# state table {name!r}; key {list(tdef.key)}\n"
        f"== base ==\n{render_schema(tdef.schema)}\n"
        f"== delta ==\n{render_schema(tdef.delta_schema)}\n"
    )


def golden_text(name: str) -> str:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(render_table(name), encoding="utf-8")
    if not path.exists():
        pytest.fail(f"{path} is missing; run with ARCO_UPDATE_GOLDEN=1 to create it")
    return path.read_text(encoding="utf-8")


def golden_section(name: str, kind: str) -> str:
    """The base or delta part of a golden file."""
    text = golden_text(name)
    base_part, delta_part = text.split("== delta ==\n", 1)
    return (base_part.split("== base ==\n", 1)[1] if kind == "base" else delta_part).rstrip("\n")


def test_every_state_table_has_a_golden_file() -> None:
    assert {"namespaces", "tables", "idempotency"} <= set(TABLE_NAMES)
    for name in TABLE_NAMES:
        golden_text(name)  # writes it when ARCO_UPDATE_GOLDEN=1
    on_disk = sorted(p.stem for p in GOLDEN.glob("*.txt"))
    assert on_disk == TABLE_NAMES


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_schema_matches_golden(name: str) -> None:
    assert render_table(name) == golden_text(name)


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_delta_schema_is_base_plus_op_and_version(name: str) -> None:
    tdef = CatalogState.TABLES[name]
    delta = tdef.delta_schema
    assert delta.names == [*tdef.schema.names, "_op", "_version"]
    assert delta.field("_op") == pa.field("_op", pa.int8(), nullable=False)
    assert delta.field("_version") == pa.field("_version", pa.int64(), nullable=False)
    assert set(tdef.key) <= set(tdef.schema.names)
    for key in tdef.key:
        assert not tdef.schema.field(key).nullable, f"key column {key} must not be nullable"


def test_renderer_sees_nullability_changes() -> None:
    # A nullability flip inside a map must change the rendered text.
    a = pa.schema([pa.field("p", pa.map_(pa.string(), pa.string()))])
    b = pa.schema(
        [pa.field("p", pa.map_(pa.string(), pa.field("value", pa.string(), nullable=False)))]
    )
    assert render_schema(a) != render_schema(b)
    c = pa.schema([pa.field("p", pa.string(), nullable=False)])
    assert render_schema(c) != render_schema(pa.schema([pa.field("p", pa.string())]))


def _canonical_type(t: pa.DataType) -> pa.DataType:
    """``t`` with map entries and list items renamed to Arrow's defaults.

    A Parquet round trip renames them (a map's entries struct after the column, a
    list's item to ``element``, as the Parquet spec's compliant nesting asks);
    these names carry no meaning, so the comparison ignores them. Types and
    nullability are compared in full.
    """
    if pa.types.is_map(t):
        key = t.key_field.with_type(_canonical_type(t.key_type))
        item = t.item_field.with_type(_canonical_type(t.item_type))
        return pa.map_(key, item, keys_sorted=t.keys_sorted)
    if pa.types.is_list(t):
        item = t.value_field.with_name("item")
        return pa.list_(item.with_type(_canonical_type(t.value_type)))
    if pa.types.is_large_list(t):
        item = t.value_field.with_name("item")
        return pa.large_list(item.with_type(_canonical_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_canonical_type(f.type)) for f in t])
    return t


def _canonical(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(_canonical_type(f.type)) for f in schema])


def _written_files(cat: Catalog) -> dict[tuple[str, str, int], pa.Schema]:
    """(table, kind, level) -> schema of the Parquet file as stored, from every manifest."""
    found: dict[tuple[str, str, int], pa.Schema] = {}
    for _key, manifest in cat.domain.history(limit=1000):
        for entry in manifest.files:
            data, _ = cat.store.get(entry.path)
            schema = _canonical(pq.read_schema(io.BytesIO(data)))
            found.setdefault((entry.table, entry.kind, entry.level), schema)
            assert pq.read_table(io.BytesIO(data)).num_rows == entry.rows
    return found


def _exercise(cat: Catalog) -> None:
    cat.create_namespace("n", properties={"a": "b"}, idempotency_key="k0")
    for i in range(tableset.FANOUT + 1):  # enough to merge level-0 deltas into level 1
        cat.create_table("n", f"t{i}", ["a:int", "b:string"], properties={"p": "q"})
    cat.create_table("n", "idem", ["a:int"], idempotency_key="k1")
    cat.update_table("n", "t0", drop_columns=["b"])


def test_written_parquet_files_match_golden_deltas() -> None:
    cat = Catalog(open_store("memory://"))
    _exercise(cat)
    found = _written_files(cat)
    kinds = {(t, k) for t, k, _ in found}
    assert kinds == {(t, "delta") for t in TABLE_NAMES}
    assert ("tables", "delta", 1) in found  # a merged file was written too
    for (table, kind, _level), schema in found.items():
        assert render_schema(schema) == golden_section(table, kind), (table, kind)
        tdef = CatalogState.TABLES[table]
        assert schema.equals(tdef.schema if kind == "base" else tdef.delta_schema)


def test_written_base_files_match_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    # Make every commit rewrite the base of each table it touches.
    monkeypatch.setattr(tableset, "BASE_MIN_DELTA_ROWS", 0)
    monkeypatch.setattr(tableset, "BASE_REWRITE_RATIO", 0.0)
    cat = Catalog(open_store("memory://"))
    _exercise(cat)
    found = _written_files(cat)
    assert {(t, k) for t, k, _ in found} >= {(t, "base") for t in TABLE_NAMES}
    for (table, kind, _level), schema in found.items():
        assert render_schema(schema) == golden_section(table, kind), (table, kind)
        tdef = CatalogState.TABLES[table]
        assert schema.equals(tdef.schema if kind == "base" else tdef.delta_schema)
    # Base files fold back into the same state.
    reopened = Catalog(cat.store)
    assert [t.name for t in reopened.list_tables().items] == [
        t.name for t in cat.list_tables().items
    ]
