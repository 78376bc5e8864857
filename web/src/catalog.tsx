// Catalog browser: namespaces -> tables -> columns; table page with lineage; search.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, enc, type Asset, type Namespace, type Page, type SearchHit, type SearchResult, type Table, type Traversal } from "./api";
import { messageOf, previewTable } from "./duck";
import { Graph, type GraphEdge, type GraphNode } from "./graph";
import { ColumnLineageCells, ColumnLineageList, hasColumnLineage, useColumnLineage } from "./openlineage";
import { assetPath, lineagePath, Link, namespacePath, navigate, tablePath } from "./router";
import { ErrorBox, Loading, Properties, Show, useAsync, useNarrow, useTitle, when, Wide } from "./util";

async function allPages<T>(path: string, max = 10_000): Promise<T[]> {
  const items: T[] = [];
  let token: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page: Page<T> = await api<Page<T>>(`${path}${sep}page_size=1000${token ? "&page_token=" + enc(token) : ""}`);
    items.push(...page.items);
    token = page.next_page_token;
  } while (token && items.length < max);
  return items;
}

const TABLE_PAGE = 200;

async function tablePages(namespace: string, pages: number): Promise<{ items: Table[]; more: boolean }> {
  const items: Table[] = [];
  let token: string | null = null;
  for (let i = 0; i < pages; i++) {
    const page: Page<Table> = await api<Page<Table>>(
      `/api/v1/namespaces/${enc(namespace)}/tables?page_size=${TABLE_PAGE}${token ? "&page_token=" + enc(token) : ""}`,
    );
    items.push(...page.items);
    token = page.next_page_token;
    if (!token) break;
  }
  return { items, more: token !== null };
}

export function CatalogPage(props: { namespace: string | null }) {
  const namespaces = useAsync(() => allPages<Namespace>("/api/v1/namespaces"), []);
  const [filter, setFilter] = useState("");
  const narrow = useNarrow();
  useTitle(props.namespace ? `${props.namespace} · Catalog` : "Catalog");
  // On a phone the namespace list folds away once a namespace is open (it would fill the screen).
  const [open, setOpen] = useState(!narrow || !props.namespace);
  const list = (
    <>
      <input
        class="filter"
        type="search"
        aria-label="Filter namespaces"
        placeholder="Filter namespaces"
        value={filter}
        onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
      />
      <Show state={namespaces} what="namespaces">
          {(items) => (
            <ul class="nav-list" data-testid="namespace-list">
              {items
                .filter((n) => n.name.toLowerCase().includes(filter.toLowerCase()))
                .map((n) => (
                  <li key={n.name} style={{ paddingLeft: `${(n.name.split(".").length - 1) * 0.9}rem` }}>
                    <Link href={namespacePath(n.name)} class={n.name === props.namespace ? "active" : ""}>
                      {n.name}
                    </Link>
                  </li>
                ))}
              {!items.length && <li class="muted">No namespaces yet.</li>}
            </ul>
          )}
        </Show>
    </>
  );
  return (
    <div class="split">
      <aside class="sidebar" aria-label="Namespaces" data-testid="sidebar">
        {narrow ? (
          <details open={open} onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
            <summary>
              Namespaces{namespaces.data ? ` (${namespaces.data.length})` : ""}
            </summary>
            {list}
          </details>
        ) : (
          <>
            <h2>Namespaces</h2>
            {list}
          </>
        )}
      </aside>
      <section class="main">{props.namespace ? <NamespaceView name={props.namespace} /> : <Welcome namespaces={namespaces.data} />}</section>
    </div>
  );
}

interface Commit {
  version: number;
  commit_id: string;
  committed_at: string;
  writer: string;
  operation: { ops?: { op: string; name?: string }[] };
}

function describeOps(op: Commit["operation"]): string {
  const ops = op.ops ?? [];
  if (!ops.length) return JSON.stringify(op);
  const shown = ops.slice(0, 3).map((o) => `${o.op.replace(/_/g, " ")}${o.name ? " " + o.name : ""}`);
  return shown.join(", ") + (ops.length > 3 ? ` and ${ops.length - 3} more` : "");
}

function Welcome(props: { namespaces: Namespace[] | null }) {
  const history = useAsync(() => api<Commit[]>("/api/v1/catalog/history?limit=10"), []);
  return (
    <div>
      <h1>Catalog</h1>
      <p>
        Pick a namespace, search from the box above, or query the catalog with SQL in the <Link href="/sql">SQL console</Link> (it runs in your browser over signed URLs).
      </p>
      {props.namespaces && props.namespaces.length > 0 && (
        <Wide label="Namespaces">
        <table class="grid" data-testid="namespace-overview">
          <thead>
            <tr>
              <th>Namespace</th>
              <th>Description</th>
              <th>Properties</th>
            </tr>
          </thead>
          <tbody>
            {props.namespaces.slice(0, 100).map((n) => (
              <tr key={n.name}>
                <td>
                  <Link href={namespacePath(n.name)}>{n.name}</Link>
                </td>
                <td>{n.description ?? ""}</td>
                <td class="meta">
                  {Object.entries(n.properties)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(", ")}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </Wide>
      )}
      <h2>Recent changes</h2>
      <Show state={history} what="the catalog history">
        {(commits) =>
          commits.length ? (
            <Wide label="Recent changes">
            <table class="grid" data-testid="history">
              <thead>
                <tr>
                  <th>Version</th>
                  <th>When</th>
                  <th>Change</th>
                  <th>Writer</th>
                </tr>
              </thead>
              <tbody>
                {commits.map((c) => (
                  <tr key={c.commit_id}>
                    <td class="num">{c.version}</td>
                    <td class="nowrap">{when(c.committed_at)}</td>
                    <td>{describeOps(c.operation)}</td>
                    <td class="meta mono">{c.writer}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            </Wide>
          ) : (
            <p class="muted">The catalog is empty: create a namespace with <code>arco namespace create NAME</code>.</p>
          )
        }
      </Show>
    </div>
  );
}

function NamespaceView(props: { name: string }) {
  const ns = useAsync(() => api<Namespace>(`/api/v1/namespaces/${enc(props.name)}`), [props.name]);
  // Tables a page at a time: a namespace can hold tens of thousands.
  const [pages, setPages] = useState(1);
  const tables = useAsync(() => tablePages(props.name, pages), [props.name, pages]);
  return (
    <div>
      <h1 data-testid="namespace-title">{props.name}</h1>
      <Show state={ns} what="the namespace">
        {(n) => (
          <>
            <p class="description">{n.description ?? <span class="muted">No description.</span>}</p>
            <Properties props={n.properties} />
          </>
        )}
      </Show>
      <h2>Tables</h2>
      <Show state={tables} what="tables">
        {({ items, more }) =>
          items.length ? (
            <>
            <Wide label="Tables">
            <table class="grid" data-testid="table-list">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Format</th>
                  <th>Columns</th>
                  <th>Description</th>
                  <th>Updated</th>
                </tr>
              </thead>
              <tbody>
                {items.map((t) => (
                  <tr key={t.id}>
                    <td>
                      <Link href={tablePath(t.namespace, t.name)}>{t.name}</Link>
                    </td>
                    <td>{t.format}</td>
                    <td class="num">{t.columns.length}</td>
                    <td>{t.description ?? ""}</td>
                    <td class="nowrap">{when(t.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            </Wide>
            {more && (
              <p>
                <button class="secondary" data-testid="more-tables" onClick={() => setPages(pages + 1)}>
                  Show more tables
                </button>
              </p>
            )}
            </>
          ) : (
            <p class="muted">No tables in this namespace.</p>
          )
        }
      </Show>
    </div>
  );
}

export function TablePage(props: { namespace: string; name: string; column?: string | null }) {
  const table = useAsync(() => api<Table>(`/api/v1/namespaces/${enc(props.namespace)}/tables/${enc(props.name)}`), [props.namespace, props.name]);
  const qualified = `${props.namespace}.${props.name}`;
  // Column lineage is extra: the grid shows it once loaded, and only when there is some.
  const columnLineage = useColumnLineage(qualified);
  const colLineage = hasColumnLineage(columnLineage.data) ? columnLineage.data : null;
  // On a phone extra grid columns would sit off screen: a list under the grid instead.
  const narrow = useNarrow();
  const gridLineage = narrow ? null : colLineage;
  useTitle(qualified);
  // A search hit on a column opens the table at that column.
  useEffect(() => {
    if (props.column && table.data) document.querySelector("[data-testid=columns] tr.highlight")?.scrollIntoView({ block: "center" });
  }, [props.column, table.data]);
  return (
    <div class="page">
      <p class="crumbs">
        <Link href="/catalog">Catalog</Link> / <Link href={namespacePath(props.namespace)}>{props.namespace}</Link> / {props.name}
      </p>
      <h1 data-testid="table-title">{qualified}</h1>
      <Show state={table} what="the table">
        {(t) => (
          <>
            <p class="description">{t.description ?? <span class="muted">No description.</span>}</p>
            <p class="meta">
              {t.format}
              {t.location ? ` · ${t.location}` : ""} · schema v{t.schema_version} · updated {when(t.updated_at)}
            </p>
            <h2>Columns</h2>
            <Wide label="Columns">
            <table class="grid" data-testid="columns">
              <thead>
                <tr>
                  <th>#</th>
                  <th>Name</th>
                  <th>Type</th>
                  <th>Nullable</th>
                  <th>Description</th>
                  {gridLineage && (
                    <>
                      <th>Upstream columns</th>
                      <th>Downstream columns</th>
                    </>
                  )}
                </tr>
              </thead>
              <tbody>
                {t.columns.map((c) => (
                  <tr key={c.column_id} class={c.name === props.column ? "highlight" : ""} aria-current={c.name === props.column ? "true" : undefined}>
                    <td class="num">{c.ordinal}</td>
                    <td class="mono">{c.name}</td>
                    <td class="mono type">{c.type}</td>
                    <td>{c.nullable ? "yes" : "no"}</td>
                    <td>{c.description ?? ""}</td>
                    {gridLineage && <ColumnLineageCells lineage={gridLineage} column={c.name} />}
                  </tr>
                ))}
              </tbody>
            </table>
            </Wide>
            {colLineage && narrow && <ColumnLineageList lineage={colLineage} columns={t.columns.map((c) => c.name)} highlight={props.column} />}
            <h2>Properties</h2>
            <Properties props={t.properties} />
            {(t.format === "parquet" || t.format === "iceberg") && <DataPreview namespace={props.namespace} name={props.name} />}
          </>
        )}
      </Show>
      <h2>Lineage</h2>
      <Lineage node={qualified} rootLabel="this table" />
      <p>
        <Link href={`/sql?q=${enc(`SELECT * FROM system.columns WHERE namespace = '${props.namespace.replace(/'/g, "''")}' AND table_name = '${props.name.replace(/'/g, "''")}' ORDER BY ordinal`)}`}>
          Query this table's columns in the SQL console
        </Link>
      </p>
    </div>
  );
}

/** The first rows and the row count of a table, read in the browser from its data files (on request). */
function DataPreview(props: { namespace: string; name: string }) {
  const [state, setState] = useState<{ busy: boolean; error: string | null; data: Awaited<ReturnType<typeof previewTable>> | null }>({ busy: false, error: null, data: null });
  const load = async () => {
    setState({ busy: true, error: null, data: null });
    try {
      setState({ busy: false, error: null, data: await previewTable(props.namespace, props.name) });
    } catch (err) {
      setState({ busy: false, error: messageOf(err), data: null });
    }
  };
  const d = state.data;
  return (
    <section data-testid="data-preview" aria-label="Data preview">
      <h2>Data</h2>
      <button class="secondary" data-testid="preview-data" disabled={state.busy} onClick={() => void load()}>
        {state.busy ? "Loading…" : d ? "Reload preview" : "Preview data"}
      </button>
      {state.error && (
        <div class="error" role="alert" data-testid="preview-error">
          {state.error}
        </div>
      )}
      {d && (
        <>
          <p class="meta">
            <span data-testid="preview-count" data-rows={d.count}>
              {d.count} row{d.count === 1 ? "" : "s"}
            </span>
            {d.result.truncated ? ` · first ${d.result.rows.length} shown` : ""}
          </p>
          <Wide label="Data preview">
            <table class="grid results" data-testid="preview-table">
              <thead>
                <tr>
                  {d.result.columns.map((c) => (
                    <th title={c.type}>{c.name}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {d.result.rows.map((r) => (
                  <tr>
                    {r.map((v) => (
                      <td class={v === "NULL" ? "null" : ""}>{v}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </Wide>
        </>
      )}
    </section>
  );
}

/** Open a lineage node: its table page when the catalog has one, else its lineage page. */
export async function openNode(id: string): Promise<void> {
  const cut = id.lastIndexOf(".");
  if (cut > 0) {
    try {
      await api<Table>(`/api/v1/namespaces/${enc(id.slice(0, cut))}/tables/${enc(id.slice(cut + 1))}`);
      navigate(tablePath(id.slice(0, cut), id.slice(cut + 1)));
      return;
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 422)) throw err;
    }
  }
  navigate(lineagePath(id));
}

function Lineage(props: { node: string; rootLabel: string }) {
  const [depth, setDepth] = useState(3);
  const lineage = useAsync(() => api<Traversal>(`/api/v1/lineage/${enc(props.node)}?direction=both&depth=${depth}`), [props.node, depth]);
  if (lineage.error) return <ErrorBox error={lineage.error} what="load lineage" />;
  if (!lineage.data) return <Loading what="lineage" />;
  const t = lineage.data;
  const nodes: GraphNode[] = [{ id: t.root, label: t.root, sublabel: props.rootLabel, kind: "root" }];
  for (const n of t.nodes) {
    if (n.name !== t.root && !nodes.some((x) => x.id === n.name)) {
      nodes.push({ id: n.name, label: n.name, sublabel: `${n.direction} · ${n.depth} hop${n.depth > 1 ? "s" : ""}`, kind: n.direction });
    }
  }
  const edges: GraphEdge[] = t.edges.map((e) => ({ source: e.source, target: e.target, dashed: !e.declared && e.observed }));
  return (
    <div data-testid="lineage">
      <p class="meta">
        {t.nodes.filter((n) => n.direction === "upstream").length} upstream, {t.nodes.filter((n) => n.direction === "downstream").length} downstream · depth{" "}
        <select aria-label="Lineage depth" value={depth} onChange={(e) => setDepth(Number((e.target as HTMLSelectElement).value))}>
          {[1, 2, 3, 5, 10].map((d) => (
            <option value={d}>{d}</option>
          ))}
        </select>{" "}
        · solid: declared, dashed: observed only
      </p>
      {t.nodes.length === 0 ? (
        <p class="muted">No lineage recorded for {props.rootLabel} yet.</p>
      ) : (
        <Graph
          testid="lineage-graph"
          label={`Lineage of ${t.root}`}
          nodes={nodes}
          edges={edges}
          selected={t.root}
          onSelect={(id) => {
            if (id !== t.root) void openNode(id);
          }}
        />
      )}
    </div>
  );
}

/** What a search hit matched, in words: the index's field markers are not for people. */
export function describeMatched(matched: string[]): string {
  const fields: [string, string][] = [
    ["n:", "name"],
    ["d:", "description"],
    ["p:", "property"],
  ];
  const parts: string[] = [];
  if (matched.includes("exact")) parts.push("exact name");
  else if (matched.includes("prefix")) parts.push("name starts with your query");
  for (const [marker, field] of fields) {
    const words = matched.filter((m) => m.startsWith(marker)).map((m) => m.slice(marker.length));
    if (words.length) parts.push(`${field} (${words.join(", ")})`);
  }
  const known = new Set(["exact", "prefix"]);
  const other = matched.filter((m) => !known.has(m) && !fields.some(([marker]) => m.startsWith(marker)));
  if (other.length) parts.push(other.join(", "));
  return parts.join(" · ");
}

export function SearchPage(props: { q: string }) {
  useTitle(props.q.trim() ? `“${props.q.trim()}” · Search` : "Search");
  const result = useAsync(
    () => (props.q.trim() ? api<SearchResult>(`/api/v1/search?q=${enc(props.q)}&limit=50`) : Promise.resolve(null as SearchResult | null)),
    [props.q],
  );
  return (
    <div class="page">
      <h1>Search</h1>
      {!props.q.trim() ? (
        <p class="muted">Type in the search box above.</p>
      ) : result.error ? (
        <ErrorBox error={result.error} what="search" />
      ) : !result.data ? (
        <Loading what="results" />
      ) : (
        <>
          <p class="meta" data-testid="search-total">
            {result.data.total} result{result.data.total === 1 ? "" : "s"} for “{props.q}” (catalog v{result.data.catalog_version})
          </p>
          <ol class="hits" data-testid="search-results">
            {result.data.hits.map((h) => (
              <li key={h.kind + h.qualified_name}>
                <span class={`kind kind-${h.kind}`}>{h.kind}</span> <Link href={hitPath(h)}>{h.qualified_name}</Link>
                {h.description && <div class="description">{h.description}</div>}
                {h.matched.length > 0 && <div class="matched muted">Matched: {describeMatched(h.matched)}</div>}
              </li>
            ))}
          </ol>
        </>
      )}
    </div>
  );
}

/** The page of a search hit; a column hit opens its table with the column highlighted. */
export function hitPath(hit: SearchHit): string {
  const { kind, qualified_name: qualified, namespace } = hit;
  if (kind === "namespace") return namespacePath(qualified);
  const rest = qualified.startsWith(namespace + ".") ? qualified.slice(namespace.length + 1) : qualified;
  if (kind !== "column") return tablePath(namespace, rest);
  // A column hit is "<namespace>.<table>.<column>".
  const cut = rest.lastIndexOf(".");
  return cut > 0 ? tablePath(namespace, rest.slice(0, cut), rest.slice(cut + 1)) : tablePath(namespace, rest);
}

/** The page of any lineage node: its graph, and its table and asset when they exist. */
export function LineagePage(props: { name: string }) {
  useTitle(`${props.name} · Lineage`);
  const cut = props.name.lastIndexOf(".");
  const table = useAsync(
    () =>
      cut > 0
        ? api<Table>(`/api/v1/namespaces/${enc(props.name.slice(0, cut))}/tables/${enc(props.name.slice(cut + 1))}`).catch((err: unknown) => {
            if (err instanceof ApiError && (err.status === 404 || err.status === 422)) return null;
            throw err;
          })
        : Promise.resolve(null),
    [props.name],
  );
  // A server without a project has no assets: that is not an error here.
  const asset = useAsync(
    () =>
      api<{ assets: Asset[] }>("/api/v1/assets").then(
        (a) => a.assets.find((x) => x.key === props.name) ?? null,
        () => null,
      ),
    [props.name],
  );
  return (
    <div class="page">
      <p class="crumbs">
        <Link href="/catalog">Catalog</Link> / lineage
      </p>
      <h1 data-testid="node-title">{props.name}</h1>
      {table.error ? (
        <ErrorBox error={table.error} what="look the node up in the catalog" />
      ) : table.loading && !table.data ? (
        <Loading what="the node" />
      ) : (
        <ul class="facts" data-testid="node-facts">
          <li>
            {table.data ? (
              <Link href={tablePath(table.data.namespace, table.data.name)}>Open the table {props.name} in the catalog</Link>
            ) : (
              <span class="muted">Not a table in the catalog (a lineage node only).</span>
            )}
          </li>
          {asset.data && (
            <li>
              Asset of the project: <Link href={assetPath(asset.data.key)}>{asset.data.key} in the asset graph</Link>
            </li>
          )}
        </ul>
      )}
      <h2>Lineage</h2>
      <Lineage node={props.name} rootLabel="this node" />
    </div>
  );
}
