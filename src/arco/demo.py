"""Build a small demo catalog in ``./.arco`` (run by ``make dev`` as ``python -m arco.demo``).

One story with the project ``arco init`` scaffolds (``arco.flow.project``): the shop's
orders and customers land in ``raw``, ``analytics`` derives revenue and lifetime value
from them. The lineage between the tables is declared here, and the project's runs
materialize ``raw.orders``, ``raw.customers``, ``analytics.daily_revenue`` and
``analytics.customer_lifetime_value`` (observing the same edges), so the first table a
new user opens has a lineage graph and runs behind it.

Idempotent: every namespace and table is created with ``exist_ok=True`` and declaring
an edge twice changes nothing, so running it again commits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from arco.catalog import Catalog, ColumnSpec
from arco.core.scope import Scope
from arco.discovery.lineage import LineageGraph

DEMO_STORE = "file://./.arco"


@dataclass(frozen=True)
class DemoNamespace:
    """A namespace of the demo catalog."""

    name: str
    description: str
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoTable:
    """A table of the demo catalog."""

    namespace: str
    name: str
    columns: tuple[ColumnSpec, ...]
    description: str
    format: str = "parquet"
    properties: dict[str, str] = field(default_factory=dict)


def _col(name: str, data_type: str, description: str, *, nullable: bool = True) -> ColumnSpec:
    return ColumnSpec(name=name, data_type=data_type, nullable=nullable, description=description)


TS = "timestamp[us, UTC]"

NAMESPACES: tuple[DemoNamespace, ...] = (
    DemoNamespace("raw", "Data as it lands from source systems", {"owner": "data-platform"}),
    DemoNamespace("analytics", "Curated, modelled data for reporting", {"owner": "analytics"}),
    DemoNamespace(
        "analytics.marketing",
        "Marketing attribution and campaign performance",
        {"owner": "growth", "pii": "false"},
    ),
)

TABLES: tuple[DemoTable, ...] = (
    DemoTable(
        "raw",
        "orders",
        (
            _col("order_id", "string", "Order id from the shop backend", nullable=False),
            _col("customer_id", "string", "Customer who placed the order", nullable=False),
            _col("ordered_at", TS, "When the order was placed", nullable=False),
            _col("currency", "string", "ISO 4217 currency code"),
            _col("total", "decimal(12,2)", "Order total in its currency"),
            _col(
                "items",
                "list<struct<sku: string, quantity: int32, unit_price: decimal(10,2)>>",
                "Line items",
            ),
        ),
        "Orders exported hourly from the shop database",
        properties={"source": "shop-postgres", "refresh": "hourly"},
    ),
    DemoTable(
        "raw",
        "customers",
        (
            _col("customer_id", "string", "Customer id", nullable=False),
            _col("email", "string", "Contact e-mail (PII)"),
            _col("signed_up_at", TS, "Account creation time"),
            _col("tags", "list<string>", "CRM tags"),
            _col(
                "address",
                "struct<street: string, city: string, postcode: string, country: string>",
                "Billing address",
            ),
        ),
        "Customer master data from the CRM",
        properties={"source": "crm", "pii": "true"},
    ),
    DemoTable(
        "raw",
        "web_events",
        (
            _col("event_id", "string", "Client-generated event id", nullable=False),
            _col("session_id", "string", "Browser session"),
            _col("event_type", "string", "page_view, add_to_cart, checkout, ..."),
            _col("occurred_at", TS, "Client timestamp, normalised to UTC", nullable=False),
            _col("attributes", "map<string, string>", "Free-form event attributes"),
        ),
        "Clickstream events collected by the web tracker",
        format="json",
        properties={"source": "tracker", "retention_days": "90"},
    ),
    DemoTable(
        "analytics",
        "daily_revenue",
        (
            _col("day", "date", "Calendar day (UTC)", nullable=False),
            _col("country", "string", "Billing country"),
            _col("orders", "int64", "Number of orders"),
            _col("revenue", "decimal(18,2)", "Revenue in EUR"),
            _col("avg_order_value", "decimal(12,2)", "revenue / orders"),
        ),
        "Revenue per day and country, in EUR",
        format="delta",
        properties={"owner": "finance-analytics", "refresh": "daily", "tier": "gold"},
    ),
    DemoTable(
        "analytics",
        "customer_lifetime_value",
        (
            _col("customer_id", "string", "Customer id", nullable=False),
            _col("first_order_at", TS, "First order"),
            _col("last_order_at", TS, "Most recent order"),
            _col("lifetime_value", "decimal(18,2)", "Sum of all order totals in EUR"),
            _col("segments", "list<string>", "Marketing segments"),
        ),
        "Lifetime value per customer",
        properties={"owner": "analytics", "tier": "silver"},
    ),
    DemoTable(
        "analytics.marketing",
        "campaign_attribution",
        (
            _col("campaign_id", "string", "Campaign id", nullable=False),
            _col("channel", "string", "email, paid_search, social, ..."),
            _col("attributed_revenue", "decimal(18,2)", "Revenue credited to the campaign"),
            _col(
                "touchpoints",
                f"list<struct<channel: string, at: {TS}>>",
                "Touchpoints before conversion",
            ),
            _col("window", "struct<start: date, end: date>", "Attribution window"),
        ),
        "Last-touch revenue attribution per campaign",
        format="iceberg",
        properties={"owner": "growth", "model": "last-touch"},
    ),
)


#: Declared lineage (source, target): every demo table is on one connected graph.
EDGES: tuple[tuple[str, str], ...] = (
    ("raw.orders", "analytics.daily_revenue"),
    ("raw.orders", "analytics.customer_lifetime_value"),
    ("raw.customers", "analytics.customer_lifetime_value"),
    ("raw.orders", "analytics.marketing.campaign_attribution"),
    ("raw.web_events", "analytics.marketing.campaign_attribution"),
)


def build(catalog: Catalog) -> None:
    """Create the demo namespaces, tables and lineage in ``catalog``'s scope (existing
    ones are kept)."""
    for ns in NAMESPACES:
        catalog.create_namespace(ns.name, ns.description, ns.properties, exist_ok=True)
    for t in TABLES:
        catalog.create_table(
            t.namespace,
            t.name,
            t.columns,
            format=t.format,
            description=t.description,
            properties=t.properties,
            exist_ok=True,
        )
    lineage = LineageGraph(catalog.store, catalog.scope)
    for source, target in EDGES:
        lineage.add_edge(source, target)


def main() -> None:
    """Build the demo catalog in ``./.arco`` and say how to look at it."""
    catalog = Catalog(DEMO_STORE, Scope("default", "default"))
    build(catalog)
    print(
        f"Demo catalog ready in {DEMO_STORE} "
        f"(tenant default, workspace default, catalog version {catalog.version}):"
    )
    for ns in NAMESPACES:
        print(f"  namespace {ns.name}")
        for t in TABLES:
            if t.namespace == ns.name:
                print(f"    table {t.namespace}.{t.name} ({len(t.columns)} columns, {t.format})")
    print(f"  lineage: {len(EDGES)} edges, e.g. raw.orders -> analytics.daily_revenue")
    print()
    print("Look at it with:")
    for command in (
        "arco namespace list",
        "arco table list",
        "arco table show analytics.daily_revenue",
        "arco lineage show analytics.daily_revenue",
        "arco verify",
        "arco log",
    ):
        print(f"  .venv/bin/{command}")


if __name__ == "__main__":
    main()
