"""Random DDL against the catalog and a plain Python model of it (hypothesis stateful).

After every step the catalog's listings, versions and errors must match the
model's; ``reopen`` swaps in a new Catalog on the same store, so the state must
also survive being folded back from its files.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from arco.catalog import Catalog, ColumnSpec
from arco.core import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    ObjectStore,
    Scope,
    open_store,
)
from arco.domain.verify import verify

NS_NAMES = ["a", "b", "a.x", "a.x.y", "b.z", "c"]
TABLE_NAMES = ["t1", "t2", "t3"]
COL_NAMES = ["c1", "c2", "c3", "c4"]
PROP_KEYS = ["k1", "k2"]
PROP_VALUES = ["", "v", "w x"]

tables = st.sampled_from(TABLE_NAMES)
columns = st.sampled_from(COL_NAMES)

Expected = type[BaseException] | tuple[type[BaseException], ...] | None


@dataclass
class ModelTable:
    id: str
    columns: list[str]
    properties: dict[str, str] = field(default_factory=dict)
    schema_version: int = 1


@dataclass
class Model:
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    tables: dict[tuple[str, str], ModelTable] = field(default_factory=dict)
    version: int = 0

    def descendants(self, name: str) -> list[str]:
        return [n for n in self.namespaces if n.startswith(name + ".")]

    def tables_under(self, names: list[str]) -> list[tuple[str, str]]:
        return [k for k in self.tables if k[0] in names]


class CatalogMachine(RuleBasedStateMachine):
    """Catalog on ``memory://`` vs. :class:`Model`."""

    def make_store(self) -> ObjectStore:
        return open_store("memory://")

    @initialize(seed=st.booleans())
    def start(self, seed: bool) -> None:
        self.store = self.make_store()
        self.scope = Scope("sm", "main")
        self.cat = Catalog(self.store, self.scope)
        self.model = Model()
        if seed:  # start most runs from a populated catalog, so table rules have targets
            for ns in ("a", "a.x", "b"):
                self.run(None, lambda ns=ns: self.cat.create_namespace(ns))
                self.model.namespaces[ns] = {}
            for ns, name, cols in (("a", "t1", ["c1", "c2"]), ("a.x", "t2", ["c1"])):
                specs = [ColumnSpec(c, "int64") for c in cols]
                table = self.run(
                    None,
                    lambda ns=ns, name=name, specs=specs: self.cat.create_table(ns, name, specs),
                )
                self.model.tables[(ns, name)] = ModelTable(table.id, list(cols))

    # ------------------------------------------------------------ helpers
    def run(self, expected: Expected, fn: Callable[[], Any]) -> Any:
        """Run one catalog call; it must raise ``expected`` or succeed with one new version."""
        before = self.cat.version
        if expected is None:
            result = fn()
            self.model.version += 1
            assert self.cat.version == before + 1
            return result
        with pytest.raises(expected):
            fn()
        assert self.cat.version == before
        return None

    @staticmethod
    def pick(data: st.DataObject, likely: list[Any], pool: list[Any]) -> Any:
        """Mostly one of ``likely`` (valid targets), sometimes anything from ``pool``."""
        if likely and data.draw(st.sampled_from([True, True, True, False]), label="valid?"):
            return data.draw(st.sampled_from(sorted(likely)))
        return data.draw(st.sampled_from(pool))

    def pick_table(self, data: st.DataObject) -> tuple[str, str]:
        pool = [(ns, t) for ns in NS_NAMES for t in TABLE_NAMES]
        result: tuple[str, str] = self.pick(data, list(self.model.tables), pool)
        return result

    def table_error(self, ns: str, name: str) -> Expected:
        if ns not in self.model.namespaces or (ns, name) not in self.model.tables:
            return NotFoundError
        return None

    # -------------------------------------------------------------- rules
    @rule(data=st.data())
    def create_namespace(self, data: st.DataObject) -> None:
        fresh = [
            n
            for n in NS_NAMES
            if n not in self.model.namespaces
            and ("." not in n or n.rsplit(".", 1)[0] in self.model.namespaces)
        ]
        name = self.pick(data, fresh, NS_NAMES)
        expected: Expected = None
        if name in self.model.namespaces:
            expected = AlreadyExistsError
        elif "." in name and name.rsplit(".", 1)[0] not in self.model.namespaces:
            expected = NotFoundError
        self.run(expected, lambda: self.cat.create_namespace(name))
        if expected is None:
            self.model.namespaces[name] = {}

    @rule(data=st.data(), cascade=st.booleans())
    def drop_namespace(self, data: st.DataObject, cascade: bool) -> None:
        # Prefer namespaces with something inside: that is where cascade matters.
        busy = [
            n
            for n in self.model.namespaces
            if self.model.descendants(n) or self.model.tables_under([n])
        ]
        name = self.pick(data, busy or list(self.model.namespaces), NS_NAMES)
        expected: Expected = None
        doomed = [name, *self.model.descendants(name)]
        doomed_tables = self.model.tables_under(doomed)
        if name not in self.model.namespaces:
            expected = NotFoundError
        elif (len(doomed) > 1 or doomed_tables) and not cascade:
            expected = ConflictError
        self.run(expected, lambda: self.cat.drop_namespace(name, cascade=cascade))
        if expected is None:
            for ns in doomed:
                del self.model.namespaces[ns]
            for key in doomed_tables:
                del self.model.tables[key]

    @rule(data=st.data(), key=st.sampled_from(PROP_KEYS), value=st.sampled_from(PROP_VALUES))
    def set_namespace_property(self, data: st.DataObject, key: str, value: str) -> None:
        name = self.pick(data, list(self.model.namespaces), NS_NAMES)
        expected = None if name in self.model.namespaces else NotFoundError
        self.run(expected, lambda: self.cat.update_namespace(name, set_properties={key: value}))
        if expected is None:
            self.model.namespaces[name][key] = value

    @rule(data=st.data(), name=tables, cols=st.lists(columns, max_size=3, unique=True))
    def create_table(self, data: st.DataObject, name: str, cols: list[str]) -> None:
        ns = self.pick(data, list(self.model.namespaces), NS_NAMES)
        expected: Expected = None
        if ns not in self.model.namespaces:
            expected = NotFoundError
        elif (ns, name) in self.model.tables:
            expected = AlreadyExistsError
        specs = [ColumnSpec(c, "int64") for c in cols]
        created = self.run(expected, lambda: self.cat.create_table(ns, name, specs))
        if expected is None:
            assert [c.name for c in created.columns] == cols
            self.model.tables[(ns, name)] = ModelTable(created.id, list(cols))

    @rule(data=st.data())
    def drop_table(self, data: st.DataObject) -> None:
        ns, name = self.pick_table(data)
        expected = self.table_error(ns, name)
        self.run(expected, lambda: self.cat.drop_table(ns, name))
        if expected is None:
            del self.model.tables[(ns, name)]

    @rule(data=st.data(), new_name=tables)
    def rename_table(self, data: st.DataObject, new_name: str) -> None:
        ns, name = self.pick_table(data)
        new_ns = self.pick(data, list(self.model.namespaces), NS_NAMES)
        expected = self.table_error(ns, name)
        if expected is None and new_ns not in self.model.namespaces:
            expected = NotFoundError
        elif expected is None and (new_ns, new_name) in self.model.tables:
            expected = AlreadyExistsError  # includes renaming a table onto itself
        renamed = self.run(
            expected, lambda: self.cat.rename_table(ns, name, new_name, new_namespace=new_ns)
        )
        if expected is None:
            table = self.model.tables.pop((ns, name))
            assert renamed.id == table.id
            self.model.tables[(new_ns, new_name)] = table

    @rule(data=st.data(), col=columns)
    def add_column(self, data: st.DataObject, col: str) -> None:
        ns, name = self.pick_table(data)
        expected = self.table_error(ns, name)
        if expected is None and col in self.model.tables[(ns, name)].columns:
            expected = AlreadyExistsError
        self.run(
            expected,
            lambda: self.cat.update_table(ns, name, add_columns=[ColumnSpec(col, "string")]),
        )
        if expected is None:
            table = self.model.tables[(ns, name)]
            table.columns.append(col)
            table.schema_version += 1

    def existing_columns(self, ns: str, name: str) -> list[str]:
        table = self.model.tables.get((ns, name))
        return list(table.columns) if table else []

    @rule(data=st.data())
    def drop_column(self, data: st.DataObject) -> None:
        ns, name = self.pick_table(data)
        col = self.pick(data, self.existing_columns(ns, name), COL_NAMES)
        expected = self.table_error(ns, name)
        if expected is None and col not in self.model.tables[(ns, name)].columns:
            expected = NotFoundError
        self.run(expected, lambda: self.cat.update_table(ns, name, drop_columns=[col]))
        if expected is None:
            table = self.model.tables[(ns, name)]
            table.columns.remove(col)
            table.schema_version += 1

    @rule(data=st.data(), new=columns)
    def rename_column(self, data: st.DataObject, new: str) -> None:
        ns, name = self.pick_table(data)
        old = self.pick(data, self.existing_columns(ns, name), COL_NAMES)
        expected = self.table_error(ns, name)
        if expected is None:
            current = self.model.tables[(ns, name)].columns
            if old not in current:
                expected = NotFoundError
            elif new != old and new in current:
                # a clash: either error class is a fair answer
                expected = (AlreadyExistsError, InvalidArgumentError)
        self.run(expected, lambda: self.cat.update_table(ns, name, rename_columns={old: new}))
        if expected is None:
            table = self.model.tables[(ns, name)]
            table.columns[table.columns.index(old)] = new
            table.schema_version += 1

    @rule(data=st.data(), key=st.sampled_from(PROP_KEYS), value=st.sampled_from(PROP_VALUES))
    def set_table_property(self, data: st.DataObject, key: str, value: str) -> None:
        ns, name = self.pick_table(data)
        expected = self.table_error(ns, name)
        self.run(expected, lambda: self.cat.update_table(ns, name, set_properties={key: value}))
        if expected is None:
            self.model.tables[(ns, name)].properties[key] = value

    @rule()
    def reopen(self) -> None:
        self.cat = Catalog(self.store, self.scope)

    # --------------------------------------------------------- invariants
    @invariant()
    def listings_match_model(self) -> None:
        if not hasattr(self, "cat"):
            return
        view = self.cat.view()
        assert view.version == self.model.version
        got_ns = {n.name: n.properties for n in view.list_namespaces().items}
        assert got_ns == self.model.namespaces
        got_tables = {
            (t.namespace, t.name): (
                t.id,
                [c.name for c in t.columns],
                t.properties,
                t.schema_version,
                [c.ordinal for c in t.columns],
            )
            for t in view.list_tables().items
        }
        want_tables = {
            key: (t.id, t.columns, t.properties, t.schema_version, list(range(len(t.columns))))
            for key, t in self.model.tables.items()
        }
        assert got_tables == want_tables
        for ns in self.model.namespaces:
            in_ns = sorted(name for (n, name) in self.model.tables if n == ns)
            assert [t.name for t in view.list_tables(ns).items] == in_ns

    def teardown(self) -> None:
        if hasattr(self, "store"):
            report = verify(self.store, self.scope)
            assert report.ok, report.problems
            # A cold reader folds the files into the same state.
            cold = Catalog(self.store, self.scope)
            assert cold.version == self.model.version
            assert len(cold.list_tables().items) == len(self.model.tables)


class FileCatalogMachine(CatalogMachine):
    """The same machine on a ``file://`` store."""

    def make_store(self) -> ObjectStore:
        self.tmpdir = tempfile.mkdtemp(prefix="arco-sm-")
        return open_store(f"file://{self.tmpdir}")

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            if hasattr(self, "tmpdir"):
                shutil.rmtree(self.tmpdir, ignore_errors=True)


TestCatalogStateMachine = CatalogMachine.TestCase
TestCatalogStateMachine.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestFileCatalogStateMachine = FileCatalogMachine.TestCase
TestFileCatalogStateMachine.settings = settings(
    max_examples=8,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
