"""Pages of tables as JSON texts (``list_tables_json``, the API's listing) are exactly
the JSON of ``list_tables``'s ``Table.to_dict()``, page for page and token for token."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pyarrow as pa
import pytest

from arco.catalog import pointread
from arco.catalog.catalog import Catalog
from arco.catalog.models import Page, Table
from arco.catalog.reads import CatalogView
from arco.catalog.state import TABLES
from arco.catalog.tablejson import iso_texts, table_json_texts
from arco.core.errors import InvalidArgumentError, NotFoundError
from arco.core.storage import open_store
from arco.domain import tableset

NAMESPACES = ("a", "b", "a.x", "z-9")


def _texts(page: Page[Table]) -> list[str]:
    return [json.dumps(t.to_dict(), ensure_ascii=False, separators=(",", ":")) for t in page.items]


def _description(rng: random.Random, i: int) -> str | None:
    return rng.choice(
        [None, "", f"plain {i}", f'say "hi"\\ \u00e9\u6f22 {i}\n\t\x01', "\U0001f600 \u2028"]
    )


def _catalog(rng: random.Random) -> Catalog:
    """A catalog whose tables live in a sorted base and in deltas that rename, drop,
    alter and re-create them, with unicode, quotes and control characters in text."""
    cat = Catalog(open_store("memory://"))
    for ns in NAMESPACES:
        cat.create_namespace(ns)
    live: list[tuple[str, str]] = []
    with cat.transaction() as tx:
        for i in range(2200):  # past BASE_MIN_DELTA_ROWS: the next commit writes a base
            ns = rng.choice(NAMESPACES)
            tx.create_table(
                ns,
                f"t{i:05d}",
                [f"c{j}:int64" for j in range(i % 4)],
                description=_description(rng, i),
                location=None if i % 2 else f"s3://b/\u00fc/{i}",
                properties={"k": "v", "\u00fc": '"\\'} if i % 5 == 0 else None,
            )
            live.append((ns, f"t{i:05d}"))
    cat.create_table("b", "trigger", ["x:int64"])
    live.append(("b", "trigger"))
    files = cat.snapshot().manifest.files  # type: ignore[union-attr]
    assert any(f.table == "tables" and f.kind == "base" and f.index for f in files)
    for step in range(80):
        ns, name = live[rng.randrange(len(live))]
        op = rng.random()
        if op < 0.25:
            new = (rng.choice(NAMESPACES), f"r{step:03d}-x")
            cat.rename_table(ns, name, new[1], new_namespace=new[0])
            live.remove((ns, name))
            live.append(new)
        elif op < 0.45:
            cat.drop_table(ns, name)
            live.remove((ns, name))
            if rng.random() < 0.5:  # the same name again, as a new table
                cat.create_table(ns, name, ["y:string"], description="again \u00e9")
                live.append((ns, name))
        elif op < 0.8:
            table = cat.get_table(ns, name)
            cat.update_table(
                ns,
                name,
                description=_description(rng, step),
                add_columns=[f"z{step}:int32"],
                drop_columns=[table.columns[0].name] if table.columns else [],
                set_properties={"step": str(step), "\u6f22": "\u00e9\n"},
            )
            cat.update_table(ns, name, column_descriptions={f"z{step}": f"col \u00e9 {step}"})
        else:
            cat.create_table(ns, f"n{step:03d}", ["z:date"], properties={"a": "b"})
            live.append((ns, f"n{step:03d}"))
    return cat


@pytest.fixture(scope="module")
def catalogs() -> tuple[Catalog, Catalog]:
    """(folded, cold) catalogs of one store, with row groups of 8 rows."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tableset, "GROUP_ROWS", 8)
        folded = _catalog(random.Random(7))
    folded.view()
    return folded, Catalog(folded.store)


@pytest.mark.parametrize("size", [1, 7, 100, 1000])
@pytest.mark.parametrize("namespace", [None, *NAMESPACES])
def test_every_page_is_the_json_of_list_tables(
    catalogs: tuple[Catalog, Catalog], size: int, namespace: str | None
) -> None:
    folded, cold = catalogs
    for prefix in (None, "t0", "r", "r0", "nothing"):
        if prefix is not None and (namespace is None or size == 1):
            continue
        tokens: tuple[str | None, str | None] = (None, None)
        pages = 0
        while True:
            old = cold.list_tables(namespace, prefix=prefix, page_size=size, page_token=tokens[0])
            new = cold.list_tables_json(
                namespace, prefix=prefix, page_size=size, page_token=tokens[1]
            )
            full = folded.list_tables_json(
                namespace, prefix=prefix, page_size=size, page_token=tokens[1]
            )
            assert new.items == _texts(old) == full.items
            assert new.next_page_token == old.next_page_token == full.next_page_token
            tokens = (old.next_page_token, new.next_page_token)
            pages += 1
            if tokens[0] is None or (size == 1 and pages > 40):
                break
    assert not cold.domain.folded, "a cold catalog must not fold the state to answer"


def test_time_travel_and_errors_answer_as_list_tables(catalogs: tuple[Catalog, Catalog]) -> None:
    folded, cold = catalogs
    view = folded.at_version(5)
    assert isinstance(view, CatalogView)
    assert view.list_tables_json("a", page_size=5).items == _texts(
        view.list_tables("a", page_size=5)
    )
    for source in (folded, cold):
        with pytest.raises(NotFoundError):
            source.list_tables_json("missing")
        with pytest.raises(InvalidArgumentError):
            source.list_tables_json("a", page_token="not a token!")
        token = source.list_namespaces(page_size=1).next_page_token  # one part, not two
        with pytest.raises(InvalidArgumentError):
            source.list_tables_json("a", page_token=token)
        with pytest.raises(InvalidArgumentError):
            source.list_tables_json("a", page_size=0)


def test_texts_of_rows_the_catalog_cannot_write_still_match_table() -> None:
    """Null column lists (even spanning child values), unordered ordinals, a file
    without ``metadata_location``: as ``table_from_row`` reads them."""
    from arco.catalog.pointread import table_from_row

    stamp = datetime.fromisoformat("2024-05-01T12:00:00.250+00:00")
    column = {"column_id": 1, "name": "x", "data_type": "int64", "nullable": True}
    rows = [
        {"id": "1", "namespace": "n", "name": "a", "format": "csv", "schema_version": 1,
         "created_at": stamp, "updated_at": stamp, "properties": [("k", "1"), ("k", "2")],
         "columns": [{**column, "ordinal": 2, "description": "\u00e9"},
                     {**column, "ordinal": 0, "name": "y", "description": None}]},
        {"id": "2", "namespace": "n", "name": "b", "format": "csv", "schema_version": 2,
         "created_at": stamp, "updated_at": stamp, "columns": None},
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=TABLES.schema)
    nested = table.column("columns").chunk(0)
    # The null list of row 2 spans the child values of row 1 (Arrow allows that).
    spanning = pa.ListArray.from_arrays(
        pa.array([0, 2, 4], pa.int32()),
        pa.concat_arrays([nested.values] * 2),
        mask=pa.array([False, True]),
    ).cast(nested.type)
    table = table.set_column(table.schema.get_field_index("columns"), "columns", spanning)
    old = table.drop_columns(["metadata_location"])
    for batch in (table, old, pa.concat_tables([table.slice(1), table.slice(0, 1)])):
        expected = [table_from_row(r).to_dict() for r in tableset.to_rows(batch)]
        for compact, seps in ((True, (",", ":")), (False, (", ", ": "))):
            texts = table_json_texts(batch, compact=compact)
            assert texts == [json.dumps(d, ensure_ascii=False, separators=seps) for d in expected]


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_iso_texts_are_the_json_of_isoformat(unit: str) -> None:
    rng = random.Random(unit)
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
    lo, hi = -62_135_596_800 * per_second, 253_402_300_799 * per_second  # years 1 to 9999
    values = [rng.randrange(lo, hi) for _ in range(5000)] + [0, 1, -1, None, per_second]
    for tz in ("UTC", None):
        array = pa.array(values, pa.timestamp(unit, tz=tz))
        expected = ["null" if v is None else json.dumps(v.isoformat()) for v in array.to_pylist()]
        assert iso_texts(array) == expected
        assert iso_texts(pa.chunked_array([array.slice(0, 7), array.slice(7)])) == expected


def test_a_page_reads_only_the_rows_it_needs(
    catalogs: tuple[Catalog, Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of 3 turns 4 rows into Python (one more: is there a next page), not a
    slice of a group per batch and each delta row apart."""
    _, cold = catalogs
    converted: list[int] = []
    real = tableset.to_rows

    def counting(table: pa.Table) -> list[dict[str, object]]:
        converted.append(table.num_rows)
        return real(table)

    cold.list_tables("a", page_size=3)  # the namespace row and the overlay, read once
    monkeypatch.setattr(tableset, "to_rows", counting)
    monkeypatch.setattr(pointread, "_SCAN_ROWS", 128)
    page = cold.list_tables("a", page_size=3)
    assert len(page.items) == 3
    assert page.next_page_token is not None
    assert converted[-1] == 4
    assert len(converted) <= 2  # and maybe the namespace's row


@pytest.mark.parametrize("scans", [0, 10**9])
def test_point_reads_answer_alike_whether_delta_keys_are_scanned_or_mapped(
    catalogs: tuple[Catalog, Catalog], monkeypatch: pytest.MonkeyPatch, scans: int
) -> None:
    """A reader maps a delta's key column to rows after a few lookups; renamed,
    dropped and re-created tables are found (or not) as the fold finds them."""
    folded, _ = catalogs
    monkeypatch.setattr(pointread, "_SCANS_BEFORE_MAP", scans)
    cold = Catalog(folded.store)
    names = [(t.namespace, t.name) for t in folded.list_tables().items]
    names += [(ns, f"t{i:05d}") for ns in NAMESPACES for i in range(0, 2200, 41)]
    for ns, name in names:
        try:
            expected: object = folded.get_table(ns, name)
        except NotFoundError as exc:
            expected = str(exc)
        try:
            got: object = cold.get_table(ns, name)
        except NotFoundError as exc:
            got = str(exc)
        assert got == expected, (ns, name)
    reader = cold._reader()
    assert reader is not None
    assert bool(reader.tables._where_maps) == (scans == 0)
