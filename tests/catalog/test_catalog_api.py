"""Catalog API semantics: namespaces, tables, columns, types, idempotency,
transactions, time travel and reopening a catalog from its files."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from arco.catalog import Catalog, ColumnSpec, parse_column_spec, split_qualified
from arco.core import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    InvalidNameError,
    NotFoundError,
    ObjectStore,
    Scope,
    open_store,
)
from arco.domain.verify import verify

COLS = ["id:bigint:not-null", "name:string", "amount:decimal(10,2)"]


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "memory":
        return open_store(f"memory://{uuid.uuid4().hex}")
    return open_store(f"file://{tmp_path / 'store'}")


@pytest.fixture
def cat(store: ObjectStore) -> Catalog:
    return Catalog(store)


def ns_names(cat: Catalog) -> list[str]:
    return [n.name for n in cat.list_namespaces().items]


def table_names(cat: Catalog, namespace: str | None = None) -> list[str]:
    return [t.qualified_name for t in cat.list_tables(namespace).items]


def full_state(cat: Catalog) -> dict[str, Any]:
    """Everything a reader can see, as plain data (timestamps included)."""
    return {
        "namespaces": [n.to_dict() for n in cat.list_namespaces().items],
        "tables": [t.to_dict() for t in cat.list_tables().items],
    }


# ----------------------------------------------------------------- namespaces
def test_namespace_create_get_update(cat: Catalog) -> None:
    created = cat.create_namespace("sales", "Sales data", {"owner": "ana"})
    assert created.name == "sales"
    assert created.parent is None
    got = cat.get_namespace("sales")
    assert got == created
    assert got.description == "Sales data"
    assert got.properties == {"owner": "ana"}
    with pytest.raises(AlreadyExistsError):
        cat.create_namespace("sales")
    assert cat.create_namespace("sales", exist_ok=True).id == created.id
    updated = cat.update_namespace(
        "sales", description="new", set_properties={"tier": "1"}, remove_properties=["owner"]
    )
    assert updated.description == "new"
    assert updated.properties == {"tier": "1"}
    assert cat.get_namespace("sales").properties == {"tier": "1"}
    # Leaving description unset keeps it; setting None clears it.
    assert cat.update_namespace("sales", set_properties={"x": "y"}).description == "new"
    assert cat.update_namespace("sales", description=None).description is None
    with pytest.raises(NotFoundError):
        cat.get_namespace("nope")
    with pytest.raises(NotFoundError):
        cat.update_namespace("nope", description="x")


def test_nested_namespace_needs_parent(cat: Catalog) -> None:
    version = cat.version
    with pytest.raises(NotFoundError):
        cat.create_namespace("sales.emea")
    assert cat.version == version
    cat.create_namespace("sales")
    child = cat.create_namespace("sales.emea")
    assert child.parent == "sales"
    with pytest.raises(NotFoundError):
        cat.create_namespace("sales.emea.de.berlin")
    cat.create_namespace("sales.emea.de")
    assert ns_names(cat) == ["sales", "sales.emea", "sales.emea.de"]
    # A prefix of a name is not a parent: "sal" has no children.
    cat.create_namespace("sal")
    cat.drop_namespace("sal")
    assert ns_names(cat) == ["sales", "sales.emea", "sales.emea.de"]


def test_drop_non_empty_namespace_needs_cascade(cat: Catalog) -> None:
    cat.create_namespace("a")
    cat.create_namespace("a.b")
    cat.create_namespace("a.b.c")
    cat.create_namespace("ab")  # shares a prefix, not a child
    cat.create_table("a.b.c", "deep", COLS)
    cat.create_table("a", "top", COLS)
    cat.create_table("ab", "other", COLS)
    version = cat.version
    with pytest.raises(ConflictError):
        cat.drop_namespace("a")
    with pytest.raises(ConflictError):
        cat.drop_namespace("a.b")  # only a child namespace, still not empty
    assert cat.version == version
    assert ns_names(cat) == ["a", "a.b", "a.b.c", "ab"]
    cat.drop_namespace("a", cascade=True)
    assert cat.version == version + 1  # one atomic commit
    assert ns_names(cat) == ["ab"]
    assert table_names(cat) == ["ab.other"]
    # The dropped tables are gone from the state, not just from listings.
    state = cat.snapshot().state
    assert [r["name"] for r in state.tables.values()] == ["other"]
    assert verify(cat.store, cat.scope).ok
    # Names can be reused after the drop.
    cat.create_namespace("a")
    assert table_names(cat, "a") == []
    with pytest.raises(NotFoundError):
        cat.drop_namespace("a.b")


def test_drop_empty_namespace(cat: Catalog) -> None:
    cat.create_namespace("x")
    cat.drop_namespace("x")
    assert ns_names(cat) == []
    with pytest.raises(NotFoundError):
        cat.drop_namespace("x")


# --------------------------------------------------------------------- tables
def test_table_create_get(cat: Catalog) -> None:
    cat.create_namespace("sales")
    t = cat.create_table(
        "sales",
        "orders",
        COLS,
        format="delta",
        location="s3://lake/orders",
        description="All orders",
        properties={"owner": "ana"},
    )
    assert t.qualified_name == "sales.orders"
    assert t.format == "delta"
    assert t.location == "s3://lake/orders"
    assert t.schema_version == 1
    assert [(c.name, c.data_type, c.nullable, c.ordinal) for c in t.columns] == [
        ("id", "int64", False, 0),
        ("name", "string", True, 1),
        ("amount", "decimal(10,2)", True, 2),
    ]
    assert [c.column_id for c in t.columns] == [1, 2, 3]
    assert cat.get_table("sales", "orders") == t
    with pytest.raises(AlreadyExistsError):
        cat.create_table("sales", "orders", COLS)
    assert cat.create_table("sales", "orders", ["x:int"], exist_ok=True).id == t.id
    with pytest.raises(NotFoundError):
        cat.create_table("nope", "orders", COLS)
    with pytest.raises(NotFoundError):
        cat.get_table("sales", "missing")
    with pytest.raises(NotFoundError):
        cat.get_table("nope", "orders")
    with pytest.raises(InvalidArgumentError):
        cat.create_table("sales", "bad_format", COLS, format="excel")
    with pytest.raises(InvalidArgumentError):
        cat.create_table("sales", "dup_cols", ["a:int", "A:string"])


def test_column_spec_forms(cat: Catalog) -> None:
    cat.create_namespace("n")
    t = cat.create_table(
        "n",
        "t",
        [
            ColumnSpec("a", "int", nullable=False, description="first"),
            {"name": "b", "type": "bigint", "description": "second"},
            ("c", "text"),
            "d:boolean:not-null",
        ],
    )
    assert [(c.name, c.data_type, c.nullable, c.description) for c in t.columns] == [
        ("a", "int32", False, "first"),
        ("b", "int64", True, "second"),
        ("c", "string", True, None),
        ("d", "bool", False, None),
    ]
    with pytest.raises(InvalidArgumentError):
        cat.create_table("n", "u", [{"name": "a", "type": "int", "color": "red"}])
    with pytest.raises(InvalidArgumentError):
        cat.create_table("n", "u", ["no_type_here"])
    assert parse_column_spec("x:int:required") == ColumnSpec("x", "int", nullable=False)
    assert split_qualified("a.b.t") == ("a.b", "t")
    with pytest.raises(InvalidArgumentError):
        split_qualified("plain")


def test_list_tables_prefix_and_pagination(cat: Catalog) -> None:
    cat.create_namespace("a")
    cat.create_namespace("b")
    with cat.transaction() as tx:
        for i in range(23):
            tx.create_table("a", f"t{i:02d}", ["x:int"])
        for i in range(7):
            tx.create_table("b", f"t{i:02d}", ["x:int"])
        tx.create_table("b", "other", ["x:int"])
    everything = table_names(cat)
    assert everything == sorted(everything)
    assert len(everything) == 31
    assert table_names(cat, "b") == ["b.other"] + [f"b.t{i:02d}" for i in range(7)]
    prefixed = [t.qualified_name for t in cat.list_tables(prefix="t1").items]
    assert prefixed == [f"a.t{i}" for i in range(10, 20)]
    assert [t.name for t in cat.list_tables("b", prefix="o").items] == ["other"]

    for size in (1, 4, 30, 31, 100):
        for namespace, prefix in ((None, None), ("a", None), (None, "t0"), ("b", "t")):
            expected = [t.qualified_name for t in cat.list_tables(namespace, prefix=prefix).items]
            seen: list[str] = []
            token: str | None = None
            pages = 0
            while True:
                page = cat.list_tables(namespace, prefix=prefix, page_size=size, page_token=token)
                assert len(page.items) <= size
                seen += [t.qualified_name for t in page.items]
                pages += 1
                token = page.next_page_token
                if token is None:
                    break
                assert pages <= len(expected) + 1, "pagination does not terminate"
            assert seen == expected, (size, namespace, prefix)
            assert len(set(seen)) == len(seen)

    with pytest.raises(InvalidArgumentError):
        cat.list_tables(page_size=0)
    with pytest.raises(InvalidArgumentError):
        cat.list_tables(page_token="!!not-a-token!!")
    with pytest.raises(NotFoundError):
        cat.list_tables("missing")


def test_list_namespaces_pagination(cat: Catalog) -> None:
    with cat.transaction() as tx:
        for i in range(11):
            tx.create_namespace(f"ns{i:02d}")
    expected = [f"ns{i:02d}" for i in range(11)]
    assert ns_names(cat) == expected
    assert [n.name for n in cat.list_namespaces("ns0").items] == expected[:10]
    seen: list[str] = []
    token = None
    while True:
        page = cat.list_namespaces(page_size=3, page_token=token)
        seen += [n.name for n in page.items]
        token = page.next_page_token
        if token is None:
            break
    assert seen == expected


def test_update_table_fields_and_columns(cat: Catalog) -> None:
    cat.create_namespace("n")
    t = cat.create_table("n", "t", ["a:int", "b:string"], properties={"k1": "v1"})
    v0 = cat.version

    t = cat.update_table("n", "t", description="desc", set_properties={"k2": "v2"})
    assert t.description == "desc"
    assert t.properties == {"k1": "v1", "k2": "v2"}
    assert t.schema_version == 1  # no column change
    assert cat.version == v0 + 1

    t = cat.update_table("n", "t", remove_properties=["k1"], location="file:///x")
    assert t.properties == {"k2": "v2"}
    assert t.location == "file:///x"
    assert t.description == "desc"
    assert t.schema_version == 1

    t = cat.update_table("n", "t", column_descriptions={"a": "the a"})
    assert t.column("a").description == "the a"
    assert t.schema_version == 1

    t = cat.update_table("n", "t", add_columns=["c:timestamp[ms, UTC]"])
    assert [c.name for c in t.columns] == ["a", "b", "c"]
    assert t.column("c").data_type == "timestamp[ms, UTC]"
    assert t.column("c").column_id == 3
    assert t.schema_version == 2

    t = cat.update_table("n", "t", drop_columns=["b"])
    assert [(c.name, c.ordinal, c.column_id) for c in t.columns] == [("a", 0, 1), ("c", 1, 3)]
    assert t.schema_version == 3

    t = cat.update_table("n", "t", rename_columns={"a": "alpha"})
    assert [c.name for c in t.columns] == ["alpha", "c"]
    assert t.column("alpha").column_id == 1  # identity survives a rename
    assert t.column("alpha").description == "the a"
    assert t.schema_version == 4

    version = cat.version
    with pytest.raises(NotFoundError):
        cat.update_table("n", "t", drop_columns=["zzz"])
    with pytest.raises(NotFoundError):
        cat.update_table("n", "t", rename_columns={"zzz": "y"})
    with pytest.raises(AlreadyExistsError):
        cat.update_table("n", "t", add_columns=["c:int"])
    with pytest.raises(InvalidArgumentError):
        cat.update_table("n", "t", add_columns=["d:notatype"])
    with pytest.raises(NotFoundError):
        cat.update_table("n", "missing", description="x")
    assert cat.version == version  # failed updates commit nothing
    assert cat.get_table("n", "t") == t
    assert Catalog(cat.store).get_table("n", "t").to_dict() == t.to_dict()


def test_column_ids_are_never_reused(cat: Catalog) -> None:
    # Like Iceberg field ids: a dropped column's id must not name a new column,
    # or old data files would be read with the new column's meaning.
    cat.create_namespace("n")
    cat.create_table("n", "t", ["a:int", "b:int", "c:int"])
    cat.update_table("n", "t", drop_columns=["c"])
    t = cat.update_table("n", "t", add_columns=["d:string"])
    assert t.column("d").column_id not in (1, 2, 3), [(c.name, c.column_id) for c in t.columns]


def test_rename_and_move_table(cat: Catalog) -> None:
    cat.create_namespace("a")
    cat.create_namespace("b")
    t = cat.create_table("a", "t", COLS)
    cat.create_table("a", "taken", ["x:int"])
    cat.create_table("b", "taken", ["x:int"])

    r = cat.rename_table("a", "t", "t2")
    assert (r.namespace, r.name, r.id) == ("a", "t2", t.id)
    assert r.columns == t.columns
    assert table_names(cat, "a") == ["a.t2", "a.taken"]
    with pytest.raises(NotFoundError):
        cat.get_table("a", "t")

    m = cat.rename_table("a", "t2", "moved", new_namespace="b")
    assert (m.namespace, m.name, m.id) == ("b", "moved", t.id)
    assert table_names(cat, "a") == ["a.taken"]
    assert table_names(cat, "b") == ["b.moved", "b.taken"]

    version = cat.version
    with pytest.raises(AlreadyExistsError):
        cat.rename_table("b", "moved", "taken")
    with pytest.raises(AlreadyExistsError):
        cat.rename_table("b", "moved", "taken", new_namespace="a")
    with pytest.raises(NotFoundError):
        cat.rename_table("b", "moved", "x", new_namespace="nope")
    with pytest.raises(NotFoundError):
        cat.rename_table("b", "ghost", "x")
    assert cat.version == version
    # The old name is free again.
    cat.create_table("a", "t", ["x:int"])
    assert Catalog(cat.store).get_table("b", "moved").id == t.id


def test_drop_table(cat: Catalog) -> None:
    cat.create_namespace("n")
    t = cat.create_table("n", "t", COLS)
    cat.create_table("n", "keep", COLS)
    cat.drop_table("n", "t")
    assert table_names(cat) == ["n.keep"]
    assert t.id not in cat.snapshot().state.tables
    with pytest.raises(NotFoundError):
        cat.drop_table("n", "t")
    with pytest.raises(NotFoundError):
        cat.get_table("n", "t")
    again = cat.create_table("n", "t", ["x:int"])
    assert again.id != t.id
    assert [c.name for c in again.columns] == ["x"]
    cat.drop_namespace("n", cascade=True)
    assert table_names(cat) == []


# ---------------------------------------------------------------------- types
@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("int", "int32"),
        ("INTEGER", "int32"),
        ("bigint", "int64"),
        ("long", "int64"),
        ("smallint", "int16"),
        ("double", "float64"),
        ("float", "float32"),
        ("boolean", "bool"),
        ("varchar", "string"),
        ("timestamp", "timestamp[us]"),
        ("timestamp[ms, UTC]", "timestamp[ms, UTC]"),
        ("timestamp[ms,UTC]", "timestamp[ms, UTC]"),
        ("timestamptz", "timestamp[us, UTC]"),
        ("timestamp[ns, Europe/Berlin]", "timestamp[ns, Europe/Berlin]"),
        ("decimal(10,2)", "decimal(10,2)"),
        ("decimal(10, 2)", "decimal(10,2)"),
        ("numeric(50,3)", "decimal(50,3)"),
        ("list<int>", "list<int32>"),
        ("array<list<bigint>>", "list<list<int64>>"),
        ("struct<a: int, b: string>", "struct<a: int32, b: string>"),
        ("struct<a:list<double>,b:struct<c:bool>>", "struct<a: list<float64>, b: struct<c: bool>>"),
        ("map<string, int>", "map<string, int32>"),
        ("date", "date"),
        ("time[ms]", "time[ms]"),
    ],
)
def test_type_normalisation(cat: Catalog, given: str, canonical: str) -> None:
    cat.create_namespace("n", exist_ok=True)
    t = cat.create_table("n", "t", [ColumnSpec("c", given)])
    assert t.column("c").data_type == canonical
    # The canonical form is a fixed point.
    t2 = cat.update_table("n", "t", add_columns=[ColumnSpec("d", canonical)])
    assert t2.column("d").data_type == canonical


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        "int33",
        "integer extra",
        "decimal(0,0)",
        "decimal(10,11)",
        "decimal(77,2)",
        "decimal(a,b)",
        "list<int",
        "list<>",
        "struct<a int>",
        "struct<a: int, a: string>",
        "map<string>",
        "timestamp[xs]",
        "timestamp[ms, Mars/Phobos]",
        "x" * 5000,
    ],
)
def test_bad_types_are_rejected(cat: Catalog, bad: str) -> None:
    cat.create_namespace("n")
    version = cat.version
    with pytest.raises(InvalidArgumentError):
        cat.create_table("n", "t", [ColumnSpec("c", bad)])
    assert cat.version == version
    assert table_names(cat) == []


# ---------------------------------------------------------------- idempotency
def test_idempotency_key_replays_first_result(cat: Catalog) -> None:
    first_ns = cat.create_namespace("n", idempotency_key="ns-1")
    assert cat.create_namespace("n", idempotency_key="ns-1") == first_ns
    first = cat.create_table("n", "t", COLS, idempotency_key="k-1")
    version = cat.version
    again = cat.create_table("n", "t", COLS, idempotency_key="k-1")
    assert again == first
    assert cat.version == version  # no new version
    # A new Catalog (another process) replays it too.
    other = Catalog(cat.store)
    assert other.create_table("n", "t", COLS, idempotency_key="k-1").id == first.id
    assert other.version == version
    # Drops replay as well: a retried drop does not fail with NotFound.
    cat.drop_table("n", "t", idempotency_key="drop-1")
    v_drop = cat.version
    cat.drop_table("n", "t", idempotency_key="drop-1")
    assert cat.version == v_drop


def test_idempotency_key_reuse_with_other_body_conflicts(cat: Catalog) -> None:
    cat.create_namespace("n", idempotency_key="k")
    version = cat.version
    with pytest.raises(ConflictError):
        cat.create_namespace("m", idempotency_key="k")
    with pytest.raises(ConflictError):
        cat.create_table("n", "t", COLS, idempotency_key="k")
    with pytest.raises(ConflictError):
        cat.create_namespace("n", description="different", idempotency_key="k")
    assert cat.version == version
    assert ns_names(cat) == ["n"]
    with pytest.raises(ConflictError):
        Catalog(cat.store).create_namespace("m", idempotency_key="k")
    with pytest.raises(InvalidArgumentError):
        cat.create_namespace("m", idempotency_key="")


# --------------------------------------------------------- transactions, time
def test_transaction_commits_once(cat: Catalog) -> None:
    cat.create_namespace("n")
    version = cat.version
    with cat.transaction() as tx:
        tx.create_namespace("m")
        tx.create_table("m", "t1", COLS)
        tx.create_table("n", "t2", COLS)
        tx.create_table("m", "t3", ["x:int"])
        tx.drop_table("m", "t3")
    assert tx.version == version + 1
    assert cat.version == version + 1
    assert len(tx.results) == 5
    assert tx.results[1].qualified_name == "m.t1"
    assert table_names(cat) == ["m.t1", "n.t2"]
    assert cat.domain.history(limit=1)[0][1].version == version + 1


def test_transaction_failure_commits_nothing(cat: Catalog) -> None:
    cat.create_namespace("n")
    version = cat.version

    def failing_transaction() -> None:
        with cat.transaction() as tx:
            tx.create_table("n", "ok", COLS)
            tx.create_namespace("n")  # fails: exists

    with pytest.raises(AlreadyExistsError):
        failing_transaction()
    assert cat.version == version
    assert table_names(cat) == []
    with cat.transaction():
        pass  # empty: no commit
    assert cat.version == version


def test_at_version_returns_older_state(cat: Catalog) -> None:
    assert cat.version == 0
    cat.create_namespace("n")  # v1
    v1 = cat.version
    cat.create_table("n", "t", ["a:int"])  # v2
    cat.update_table("n", "t", add_columns=["b:int"])  # v3
    cat.drop_table("n", "t")  # v4
    for _ in range(12):  # enough commits to merge deltas
        cat.update_namespace("n", set_properties={"k": str(cat.version)})
    assert [t.name for t in cat.at_version(v1).list_tables().items] == []
    v2 = cat.at_version(v1 + 1).get_table("n", "t")
    assert [c.name for c in v2.columns] == ["a"]
    v3 = cat.at_version(v1 + 2).get_table("n", "t")
    assert [c.name for c in v3.columns] == ["a", "b"]
    assert v3.schema_version == 2
    with pytest.raises(NotFoundError):
        cat.at_version(v1 + 3).get_table("n", "t")
    assert cat.at_version(v1 + 4).get_namespace("n").properties == {"k": "4"}
    assert cat.at_version(0).list_namespaces().items == []
    with pytest.raises(NotFoundError):
        cat.at_version(cat.version + 1)
    # A reopened catalog reads the same history.
    other = Catalog(cat.store)
    assert [c.name for c in other.at_version(v1 + 2).get_table("n", "t").columns] == ["a", "b"]


# ----------------------------------------------------------------- reopening
def test_writer_and_reader_see_identical_records(cat: Catalog) -> None:
    # The writer's in-memory state and a reader's state folded from Parquet must
    # agree exactly, timestamps included.
    cat.create_namespace("n")
    written = cat.create_table("n", "t", COLS)
    read = Catalog(cat.store).get_table("n", "t")
    assert read.created_at == written.created_at
    assert read.to_dict() == written.to_dict()
    assert cat.get_table("n", "t").to_dict() == read.to_dict()


def test_reopen_sees_same_state(cat: Catalog) -> None:
    cat.create_namespace("a", "d", {"k": "v"})
    cat.create_namespace("a.b")
    cat.create_table("a", "t", COLS, description="x", properties={"p": "q"})
    cat.create_table("a.b", "u", ["x:list<int>"])
    cat.update_table("a", "t", rename_columns={"name": "label"}, drop_columns=["amount"])
    cat.rename_table("a.b", "u", "u2", new_namespace="a")
    reopened = Catalog(cat.store)
    assert reopened.version == cat.version
    assert full_state(reopened) == full_state(cat)


def test_reopen_after_many_commits_merges_deltas(store: ObjectStore) -> None:
    cat = Catalog(store)
    cat.create_namespace("n")
    max_files = 0
    for i in range(210):
        op = i % 7
        if op == 6 and i > 20:
            cat.drop_table("n", f"t{i - 20}")
        elif op == 5 and i > 10:
            cat.update_table("n", f"t{i - 5}", add_columns=[f"c{i}:int"])
        elif op == 4:
            cat.update_namespace("n", set_properties={"i": str(i)})
        else:
            cat.create_table("n", f"t{i}", ["a:int", "b:string"])
        max_files = max(max_files, len(cat.snapshot().files))
    assert cat.version == 211
    assert max_files < 40, max_files
    reopened = Catalog(store)
    assert reopened.version == 211
    assert len(reopened.snapshot().files) < 40
    assert full_state(reopened) == full_state(cat)
    # A reader that follows along commit by commit agrees too.
    follower = Catalog(store)
    follower.list_tables()
    cat.create_table("n", "late", ["z:int"])
    assert full_state(follower) == full_state(cat)
    assert verify(store, cat.scope).ok


def test_scopes_on_one_store_are_separate(store: ObjectStore) -> None:
    a = Catalog(store, Scope("acme", "prod"))
    b = Catalog(store, Scope("acme", "dev"))
    a.create_namespace("n")
    b.create_namespace("m")
    assert ns_names(a) == ["n"]
    assert ns_names(b) == ["m"]


@pytest.mark.parametrize("bad", ["", "a/b", "..", "a..b", ".a", "a.", "1abc", "a b"])
def test_invalid_names_raise_invalid_name(cat: Catalog, bad: str) -> None:
    with pytest.raises(InvalidNameError):
        cat.create_namespace(bad)
    cat.create_namespace("ok", exist_ok=True)
    if "." not in bad:
        with pytest.raises(InvalidNameError):
            cat.create_table("ok", bad, COLS)
    assert cat.version == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda c: c.create_table("a", "t", [("x", "int64")], description="\ud800"),
        lambda c: c.create_namespace("b", properties={"k": "bad \udfff"}),
        lambda c: c.create_namespace("c", properties={"\ud800": "v"}),
        lambda c: c.create_table("a", "t2", [("x", "int64")], location="s3://b/\ud800"),
        lambda c: c.update_namespace("a", description="x\ud800y"),
    ],
)
def test_unpaired_surrogates_are_a_typed_error_and_change_nothing(make: Any) -> None:
    # JSON decoding lets lone surrogates through; they cannot be written as UTF-8.
    catalog = Catalog(open_store("memory://"), Scope("t", "w"))
    catalog.create_namespace("a")
    before = catalog.snapshot(0).version
    with pytest.raises(InvalidArgumentError, match="unpaired surrogate"):
        make(catalog)
    assert catalog.snapshot(0).version == before
