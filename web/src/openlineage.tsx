// OpenLineage in the UI: column lineage on the table page, external runs beside Arco's
// runs (list and run page), and the lineage-coverage figure (issue #14).
import { useState } from "preact/hooks";
import { api, ApiError, enc, type Page, type Traversal } from "./api";
import { lineagePath, Link, navigate, tablePath } from "./router";
import { ErrorBox, Loading, StateBadge, duration, spanMs, useAsync, useNarrow, useTitle, when, Wide } from "./util";

// ----------------------------------------------------------------- API shapes

export interface ColumnEdge {
  source: string;
  source_column: string;
  target: string;
  target_column: string;
  transformation: string | null;
  declared: boolean;
  observations: number;
  last_seen: string | null;
  run_id: string | null;
}
interface ColumnUpstream {
  table: string;
  columns: { column: string; upstream: ColumnEdge[] }[];
}
export interface ExternalRun {
  run_id: string;
  job_namespace: string;
  job_name: string;
  parent_run_id: string | null;
  state: string;
  producer: string | null;
  started_at: string | null;
  finished_at: string | null;
  error_message: string | null;
  inputs: string[];
  outputs: string[];
  events: number;
}
interface Dataset {
  namespace: string;
  name: string;
  qualified_name: string | null;
  registered: boolean;
  row_count: number | null;
}
interface Coverage {
  source: string;
  finished: number;
  with_io: number;
  share: number | null;
}

/** Every page of a paged listing (at most `max` items). */
async function allItems<T>(path: string, max = 10_000): Promise<T[]> {
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

function split(qualified: string): [string, string] | null {
  const cut = qualified.lastIndexOf(".");
  return cut > 0 ? [qualified.slice(0, cut), qualified.slice(cut + 1)] : null;
}

/** Which of these lineage nodes are catalog tables (so a link can open the table page). */
async function catalogTables(nodes: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  await Promise.all(
    [...new Set(nodes)].slice(0, 100).map(async (n) => {
      const parts = split(n);
      if (!parts) return;
      try {
        await api(`/api/v1/namespaces/${enc(parts[0])}/tables/${enc(parts[1])}`);
        found.add(n);
      } catch (err) {
        if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 422)) throw err;
      }
    }),
  );
  return found;
}

// ----------------------------------------------------------- column lineage

export interface ColumnLineage {
  upstream: Map<string, ColumnEdge[]>;
  downstream: Map<string, ColumnEdge[]>;
  tables: Set<string>;
}

/** A table's column lineage: each column's upstream columns (the column-lineage API) and
 * its downstream ones (read from the upstreams of the tables one hop downstream). */
export function useColumnLineage(table: string) {
  return useAsync(async (): Promise<ColumnLineage> => {
    const [up, down] = await Promise.all([
      api<ColumnUpstream>(`/api/v1/lineage/${enc(table)}/columns`),
      api<Traversal>(`/api/v1/lineage/${enc(table)}?direction=downstream&depth=1`),
    ]);
    const upstream = new Map(up.columns.map((c) => [c.column, c.upstream]));
    const downstream = new Map<string, ColumnEdge[]>();
    const targets = [...new Set(down.nodes.filter((n) => n.name !== table).map((n) => n.name))].slice(0, 50);
    const theirs = await Promise.all(targets.map((t) => api<ColumnUpstream>(`/api/v1/lineage/${enc(t)}/columns`)));
    for (const t of theirs)
      for (const c of t.columns)
        for (const e of c.upstream)
          if (e.source === table) downstream.set(e.source_column, [...(downstream.get(e.source_column) ?? []), e]);
    const others: string[] = [];
    upstream.forEach((edges) => edges.forEach((e) => others.push(e.source)));
    downstream.forEach((edges) => edges.forEach((e) => others.push(e.target)));
    return { upstream, downstream, tables: await catalogTables(others) };
  }, [table]);
}

/** A column of another table: opens its table page with the column highlighted (or the
 * lineage node's page when the catalog has no such table). */
function ColumnRef(props: { table: string; column: string; tables: Set<string>; title?: string }) {
  const parts = split(props.table);
  const href = parts && props.tables.has(props.table) ? tablePath(parts[0], parts[1], props.column) : lineagePath(props.table);
  return (
    <li>
      <Link href={href} class="mono" title={props.title} testid="column-ref">
        {props.table}.{props.column}
      </Link>
    </li>
  );
}

function edgeTitle(e: ColumnEdge): string {
  const how = [e.transformation, e.declared ? "declared" : null, e.observations ? `observed ${e.observations}×` : null].filter(Boolean);
  return how.join(" · ");
}

/** The cells of one column's row: its upstream and downstream columns. */
export function ColumnLineageCells(props: { lineage: ColumnLineage; column: string }) {
  const up = props.lineage.upstream.get(props.column) ?? [];
  const down = props.lineage.downstream.get(props.column) ?? [];
  return (
    <>
      <td data-testid="column-upstream">
        {up.length > 0 && (
          <ul class="col-refs" aria-label={`Upstream of ${props.column}`}>
            {up.map((e) => (
              <ColumnRef key={e.source + "\0" + e.source_column} table={e.source} column={e.source_column} tables={props.lineage.tables} title={edgeTitle(e)} />
            ))}
          </ul>
        )}
      </td>
      <td data-testid="column-downstream">
        {down.length > 0 && (
          <ul class="col-refs" aria-label={`Downstream of ${props.column}`}>
            {down.map((e) => (
              <ColumnRef key={e.target + "\0" + e.target_column} table={e.target} column={e.target_column} tables={props.lineage.tables} title={edgeTitle(e)} />
            ))}
          </ul>
        )}
      </td>
    </>
  );
}

/** On a phone: each column with lineage as a short block under the columns grid (extra
 * grid columns would sit off screen). */
export function ColumnLineageList(props: { lineage: ColumnLineage; columns: string[]; highlight?: string | null }) {
  const l = props.lineage;
  const shown = props.columns.filter((c) => l.upstream.has(c) || l.downstream.has(c));
  const refs = (edges: ColumnEdge[], up: boolean) => (
    <ul class="col-refs">
      {edges.map((e) =>
        up ? (
          <ColumnRef key={e.source + "\0" + e.source_column} table={e.source} column={e.source_column} tables={l.tables} title={edgeTitle(e)} />
        ) : (
          <ColumnRef key={e.target + "\0" + e.target_column} table={e.target} column={e.target_column} tables={l.tables} title={edgeTitle(e)} />
        ),
      )}
    </ul>
  );
  return (
    <section aria-labelledby="column-lineage-h" data-testid="column-lineage-list">
      <h2 id="column-lineage-h">Column lineage</h2>
      {shown.map((c) => (
        <div key={c} class={`col-lineage${c === props.highlight ? " highlight" : ""}`} data-column={c}>
          <h3 class="mono">{c}</h3>
          {l.upstream.has(c) && (
            <div data-testid="column-upstream">
              <span class="meta">upstream</span>
              {refs(l.upstream.get(c)!, true)}
            </div>
          )}
          {l.downstream.has(c) && (
            <div data-testid="column-downstream">
              <span class="meta">downstream</span>
              {refs(l.downstream.get(c)!, false)}
            </div>
          )}
        </div>
      ))}
    </section>
  );
}

/** True when the table has any column edge (the grid shows lineage columns only then). */
export function hasColumnLineage(l: ColumnLineage | null): l is ColumnLineage {
  return !!l && (l.upstream.size > 0 || l.downstream.size > 0);
}

// ------------------------------------------------------------- runs: sources

const pct = (c: Coverage) => (c.share === null ? "none finished" : `${c.with_io} of ${c.finished} (${Math.round(c.share * 100)} %)`);
const SOURCE_LABEL: Record<string, string> = { arco: "Arco runs", openlineage: "external runs", all: "all" };

/** Lineage coverage: how many finished runs recorded an input or an output. */
function CoverageLine() {
  const cov = useAsync(() => api<{ items: Coverage[] }>("/api/v1/lineage-coverage"), []);
  if (cov.error) return <ErrorBox error={cov.error} what="load the lineage coverage" />;
  if (!cov.data) return null;
  return (
    <p class="meta" data-testid="lineage-coverage">
      Lineage coverage (finished runs that recorded an input or output):{" "}
      {cov.data.items.map((c, i) => (
        <span key={c.source} data-source={c.source}>
          {i > 0 ? " · " : ""}
          {SOURCE_LABEL[c.source] ?? c.source}: {pct(c)}
        </span>
      ))}
    </p>
  );
}

/** The runs page's header: Arco's runs or external (OpenLineage) runs, and the coverage. */
export function RunSources(props: { current: "arco" | "openlineage" }) {
  const tab = (to: "arco" | "openlineage", href: string, label: string) => (
    <a
      href={href}
      class={props.current === to ? "active" : ""}
      aria-current={props.current === to ? "page" : undefined}
      data-testid={`runs-${to}`}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {label}
    </a>
  );
  return (
    <>
      <nav class="segmented" aria-label="Run sources">
        {tab("arco", "/runs", "Arco runs")}
        {tab("openlineage", "/runs?source=openlineage", "External runs (OpenLineage)")}
      </nav>
      <CoverageLine />
    </>
  );
}

const OL_STATES = ["START", "RUNNING", "COMPLETE", "FAIL", "ABORT"];
export const externalRunPath = (id: string) => `/runs/external/${enc(id)}`;

/** External (OpenLineage) runs, newest first, with a state filter. */
export function ExternalRunsPage() {
  const [tokens, setTokens] = useState<string[]>([]);
  const [state, setState] = useState("");
  const token = tokens[tokens.length - 1] ?? null;
  const runs = useAsync(
    () => api<Page<ExternalRun>>(`/api/v1/openlineage/runs?page_size=50${state ? "&state=" + state : ""}${token ? "&page_token=" + enc(token) : ""}`),
    [token, state],
    5000,
  );
  useTitle("External runs");
  return (
    <div class="page">
      <h1>Runs</h1>
      <RunSources current="openlineage" />
      <p class="toolbar">
        <label for="ol-state">State</label>
        <select
          id="ol-state"
          data-testid="external-state"
          value={state}
          onChange={(e) => {
            setState((e.target as HTMLSelectElement).value);
            setTokens([]);
          }}
        >
          <option value="">any</option>
          {OL_STATES.map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </p>
      {runs.error ? (
        <ErrorBox error={runs.error} what="load external runs" />
      ) : !runs.data ? (
        <Loading what="external runs" />
      ) : runs.data.items.length === 0 ? (
        <p class="muted" data-testid="no-external-runs">
          No {state ? state + " " : ""}external runs. Point an OpenLineage producer (dbt, Airflow, Spark) at <code>POST /api/v1/lineage</code>; its runs show up here after the next
          compaction.
        </p>
      ) : (
        <ExternalRunList runs={runs.data.items} />
      )}
      <p class="pager">
        {tokens.length > 0 && (
          <button class="secondary" onClick={() => setTokens(tokens.slice(0, -1))}>
            Newer
          </button>
        )}
        {runs.data?.next_page_token && (
          <button class="secondary" onClick={() => setTokens([...tokens, runs.data!.next_page_token!])}>
            Older
          </button>
        )}
      </p>
    </div>
  );
}

/** The runs as a table, or on a phone as a list of cards (a seven-column table would
 * need sideways scrolling to reach the error message). */
function ExternalRunList(props: { runs: ExternalRun[] }) {
  const narrow = useNarrow();
  const jobs = new Map(props.runs.map((r) => [r.run_id, r.job_name]));
  const parentLink = (r: ExternalRun) =>
    r.parent_run_id ? (
      <Link href={externalRunPath(r.parent_run_id)} class="mono" title={`parent run ${r.parent_run_id}`}>
        {jobs.get(r.parent_run_id) ?? r.parent_run_id.slice(0, 8) + "…"}
      </Link>
    ) : null;
  const job = (r: ExternalRun) => (
    <Link href={externalRunPath(r.run_id)} class="mono" title={`run ${r.run_id}`}>
      {r.job_name}
    </Link>
  );
  if (narrow)
    return (
      <ul class="run-cards" data-testid="external-run-list" aria-label="External runs">
        {props.runs.map((r) => (
          <li key={r.run_id} data-run={r.run_id}>
            <div>
              {job(r)} <StateBadge state={r.state} />
            </div>
            <div class="meta">
              {r.job_namespace} · started {when(r.started_at)} · {duration(spanMs(r.started_at, r.finished_at))}
              {r.parent_run_id && <> · parent {parentLink(r)}</>}
            </div>
            {r.error_message && <div class="run-error">{r.error_message}</div>}
          </li>
        ))}
      </ul>
    );
  return (
    <Wide label="External runs">
      <table class="grid" data-testid="external-run-list">
        <thead>
          <tr>
            <th>Job</th>
            <th>State</th>
            <th>Started</th>
            <th>Duration</th>
            <th>Parent</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {props.runs.map((r) => (
            <tr key={r.run_id} data-run={r.run_id}>
              <td>
                <span class="meta">{r.job_namespace}</span>
                <br />
                {job(r)}
              </td>
              <td>
                <StateBadge state={r.state} />
              </td>
              <td class="nowrap">{when(r.started_at)}</td>
              <td class="num">{duration(spanMs(r.started_at, r.finished_at))}</td>
              <td>{parentLink(r)}</td>
              <td class="run-error">{r.error_message ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Wide>
  );
}

/** A dataset of an external run (`namespace::name`): a link to its table when mapped. */
function DatasetItem(props: { id: string; datasets: Map<string, Dataset>; tables: Set<string> }) {
  const cut = props.id.indexOf("::");
  const [ns, name] = cut >= 0 ? [props.id.slice(0, cut), props.id.slice(cut + 2)] : ["", props.id];
  const d = props.datasets.get(props.id);
  const q = d?.qualified_name ?? null;
  const parts = q ? split(q) : null;
  return (
    <li data-dataset={props.id}>
      <span class="mono">{name}</span> <span class="meta">in {ns}</span>
      {q && (
        <>
          {" → "}
          <Link href={parts && props.tables.has(q) ? tablePath(parts[0], parts[1]) : lineagePath(q)} class="mono">
            {q}
          </Link>
        </>
      )}
      {!q && <span class="meta"> (not mapped to a table)</span>}
      {d?.row_count != null && <span class="meta"> · {d.row_count} rows</span>}
    </li>
  );
}

/** One external run: job, state, times, parent and child runs, error, inputs and outputs. */
export function ExternalRunPage(props: { id: string }) {
  const found = useAsync(async () => {
    const [runs, datasets] = await Promise.all([allItems<ExternalRun>("/api/v1/openlineage/runs"), allItems<Dataset>("/api/v1/openlineage/datasets")]);
    const run = runs.find((r) => r.run_id === props.id) ?? null;
    const byId = new Map(datasets.map((d) => [`${d.namespace}::${d.name}`, d]));
    const mapped = run ? [...run.inputs, ...run.outputs].map((x) => byId.get(x)?.qualified_name).filter((x): x is string => !!x) : [];
    return {
      run,
      parent: run?.parent_run_id ? (runs.find((r) => r.run_id === run.parent_run_id) ?? null) : null,
      children: runs.filter((r) => r.parent_run_id === props.id),
      datasets: byId,
      tables: await catalogTables(mapped),
    };
  }, [props.id]);
  useTitle(`External run ${props.id}`);
  if (found.error) return <ErrorBox error={found.error} what="load the external run" />;
  if (!found.data) return <Loading what="the external run" />;
  const { run, parent, children, datasets, tables } = found.data;
  if (!run)
    return (
      <div class="page">
        <p class="crumbs">
          <Link href="/runs?source=openlineage">External runs</Link> / {props.id}
        </p>
        <h1>External run not found</h1>
        <p data-testid="external-run-missing">
          No OpenLineage producer reported run <code>{props.id}</code> to this workspace (or it has not been compacted yet).
        </p>
      </div>
    );
  const list = (ids: string[], what: string, testid: string) =>
    ids.length ? (
      <ul class="datasets" data-testid={testid}>
        {ids.map((x) => (
          <DatasetItem key={x} id={x} datasets={datasets} tables={tables} />
        ))}
      </ul>
    ) : (
      <p class="muted">No {what}.</p>
    );
  return (
    <div class="page">
      <p class="crumbs">
        <Link href="/runs?source=openlineage">External runs</Link> / {run.run_id}
      </p>
      <h1 class="ext-title" data-testid="external-run-title">
        <span class="mono">{run.job_name}</span> <StateBadge state={run.state} />
      </h1>
      <dl class="props run-facts" data-testid="external-run-facts">
        <dt>Job namespace</dt>
        <dd class="mono">{run.job_namespace}</dd>
        <dt>Run id</dt>
        <dd class="mono">{run.run_id}</dd>
        <dt>Started</dt>
        <dd>{when(run.started_at)}</dd>
        <dt>Finished</dt>
        <dd>{when(run.finished_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration(spanMs(run.started_at, run.finished_at))}</dd>
        <dt>Parent run</dt>
        <dd data-testid="external-parent">
          {run.parent_run_id ? (
            parent ? (
              <Link href={externalRunPath(parent.run_id)}>
                <span class="mono">{parent.job_name}</span> ({parent.state.toLowerCase()}, {parent.run_id})
              </Link>
            ) : (
              <span class="mono">{run.parent_run_id} (not reported here)</span>
            )
          ) : (
            "none"
          )}
        </dd>
        <dt>Producer</dt>
        <dd class="mono">{run.producer ?? "—"}</dd>
        <dt>Events</dt>
        <dd>{run.events}</dd>
      </dl>
      {run.error_message && (
        <>
          <h2>Error</h2>
          <pre class="run-error-box" data-testid="external-error">
            {run.error_message}
          </pre>
        </>
      )}
      <h2>Inputs</h2>
      {list(run.inputs, "inputs reported", "external-inputs")}
      <h2>Outputs</h2>
      {list(run.outputs, "outputs reported", "external-outputs")}
      {children.length > 0 && (
        <>
          <h2>Child runs</h2>
          <ul data-testid="external-children">
            {children.map((c) => (
              <li key={c.run_id}>
                <Link href={externalRunPath(c.run_id)} class="mono">
                  {c.job_name}
                </Link>{" "}
                <StateBadge state={c.state} /> <span class="meta">{when(c.started_at)}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
