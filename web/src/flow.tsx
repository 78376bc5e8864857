// Assets graph, run list and run page (Gantt timeline + logs): the flow API (contract 2).
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { CheckResults } from "./checks";
import { api, ApiError, enc, type Asset, type LogLine, type Run, type RunSummary } from "./api";
import { Graph, type GraphNode } from "./graph";
import { RunSources } from "./openlineage";
import { assetPath, lineagePath, Link, navigate, tablePath } from "./router";
import { ErrorBox, Loading, NoProject, StateBadge, duration, spanMs, useAsync, useTitle, when, Wide } from "./util";

const ACTIVE = new Set(["QUEUED", "RUNNING"]);

function assetKind(a: Asset): string {
  if (!a.last_materialization) return "never";
  return a.stale ? "stale" : "fresh";
}

/** Fresh or overdue under the asset's freshness policy. */
export function FreshnessBadge(props: { state: "fresh" | "overdue" }) {
  return <span class={`badge freshness-${props.state}`}>{props.state}</span>;
}


interface PlanPreview {
  selection: string;
  partitions: string[];
  tasks: { task_id: string; asset: string; partition: string | null; reason: string }[];
}

/** Confirm a run before queueing it: what will run, and (partitioned assets) which partitions. */
function MaterializeDialog(props: { selection: string; partitioned: boolean; onClose: () => void }) {
  const [partition, setPartition] = useState<string>("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const plan = useAsync(() => api<PlanPreview>("/api/v1/plans", { method: "POST", json: { selection: props.selection } }), [props.selection]);
  const chosen = plan.data ? plan.data.tasks.filter((t) => !partition || t.partition === partition || t.partition === null) : [];
  // The plan names no partitions when none were asked for: its tasks have them.
  const partitions = plan.data ? [...new Set(plan.data.tasks.map((t) => t.partition).filter((p): p is string => p !== null))].sort() : [];
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    first.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && props.onClose();
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const body = partition ? { selection: props.selection, partitions: [partition] } : { selection: props.selection };
      const run = await api<{ run_id: string }>("/api/v1/runs", { method: "POST", json: body });
      navigate(`/runs/${enc(run.run_id)}`);
    } catch (err) {
      setError(`Could not start a run: ${err instanceof Error ? err.message : String(err)}`);
      setBusy(false);
    }
  };
  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="materialize-title" data-testid="materialize-dialog">
        <h2 id="materialize-title">
          Materialize <span class="mono">{props.selection}</span>?
        </h2>
        {plan.error ? (
          <ErrorBox error={plan.error} what="plan the run" />
        ) : !plan.data ? (
          <Loading what="the plan" />
        ) : (
          <>
            {partitions.length > 0 && (
              <p>
                <label for="partition-picker">Partitions </label>
                <select id="partition-picker" data-testid="partition-picker" value={partition} onChange={(e) => setPartition((e.target as HTMLSelectElement).value)}>
                  <option value="">all {partitions.length} partitions</option>
                  {partitions.map((p) => (
                    <option value={p}>{p}</option>
                  ))}
                </select>
              </p>
            )}
            <p data-testid="plan-summary">
              {chosen.length} task{chosen.length === 1 ? "" : "s"} will run:
            </p>
            <ul class="plan-tasks">
              {chosen.slice(0, 12).map((t) => (
                <li class="mono">
                  {t.asset}
                  {t.partition ? ` [${t.partition}]` : ""}
                </li>
              ))}
              {chosen.length > 12 && <li class="muted">and {chosen.length - 12} more</li>}
            </ul>
          </>
        )}
        {error && (
          <div class="error" role="alert">
            {error}
          </div>
        )}
        <div class="toolbar">
          <button ref={first} data-testid="confirm-materialize" disabled={busy || !plan.data || chosen.length === 0} onClick={() => void start()}>
            Start run
          </button>
          <button class="secondary" onClick={props.onClose}>
            Cancel
          </button>
        </div>
        {props.partitioned && <p class="muted">A run of one partition leaves the others as they are.</p>}
      </div>
    </div>
  );
}

function AssetPanel(props: { asset: Asset; onClose: () => void }) {
  const a = props.asset;
  const [confirm, setConfirm] = useState<string | null>(null);
  // Only assets that wrote a table have a catalog page; every asset has a lineage page.
  const table = useAsync(
    () =>
      api(`/api/v1/namespaces/${enc(a.namespace)}/tables/${enc(a.name)}`).then(
        () => true,
        (err: unknown) => {
          if (err instanceof ApiError && err.status === 404) return false;
          throw err;
        },
      ),
    [a.key],
  );
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !document.querySelector("[role=dialog]")) props.onClose();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [props.onClose]);
  return (
    <aside class="panel" data-testid="asset-panel" aria-labelledby="asset-panel-title">
      <div class="panel-head">
        <h2 id="asset-panel-title">{a.key}</h2>
        <button class="icon" data-testid="close-panel" aria-label="Close the details of this asset" title="Close (Esc)" onClick={props.onClose}>
          ×
        </button>
      </div>
      <p>{a.description ?? <span class="muted">No description.</span>}</p>
      <dl class="props">
        <dt>group</dt>
        <dd>{a.group ?? "—"}</dd>
        <dt>partitioned</dt>
        <dd>{a.partitioned ? "yes" : "no"}</dd>
        <dt>code version</dt>
        <dd>{a.code_version ?? "—"}</dd>
        <dt>owners</dt>
        <dd>{a.owners.join(", ") || "—"}</dd>
        <dt>upstream</dt>
        <dd>{a.deps.join(", ") || "—"}</dd>
        <dt>last run</dt>
        <dd>{a.last_materialization ? <Link href={`/runs/${enc(a.last_materialization.run_id)}`}>{a.last_materialization.run_id}</Link> : "—"}</dd>
        <dt>rows</dt>
        <dd>{a.last_materialization?.row_count ?? "—"}</dd>
        <dt>freshness</dt>
        <dd data-testid="asset-freshness">{a.freshness ? <FreshnessBadge state={a.freshness} /> : <span class="muted">no policy</span>}</dd>
      </dl>
      <h3>Checks</h3>
      <CheckResults asset={a.key} />
      <ul class="facts">
        {table.data === true && (
          <li>
            <Link href={tablePath(a.namespace, a.name)} testid="open-table">
              Open the table in the catalog
            </Link>
          </li>
        )}
        {table.data === false && <li class="muted">Not a catalog table (this asset writes no table).</li>}
        <li>
          <Link href={lineagePath(a.key)} testid="open-lineage">
            Lineage of this asset
          </Link>
        </li>
      </ul>
      <div class="toolbar">
        <button data-testid="materialize" onClick={() => setConfirm(a.key)} title="Queue a run of this asset">
          Materialize…
        </button>
        <button class="secondary" onClick={() => setConfirm("+" + a.key)} title="This asset and everything upstream of it">
          With upstream…
        </button>
      </div>
      {confirm && <MaterializeDialog selection={confirm} partitioned={a.partitioned} onClose={() => setConfirm(null)} />}
    </aside>
  );
}

export function AssetsPage(props: { selected: string | null }) {
  const assets = useAsync(() => api<{ assets: Asset[] }>("/api/v1/assets"), [], 5000);
  const selected = props.selected;
  useTitle(selected ? `${selected} · Assets` : "Assets");
  // The selection lives in the URL (/assets?asset=KEY): linkable, and Back closes the panel.
  const select = (key: string | null) => navigate(key ? assetPath(key) : "/assets", false, false);
  const close = useCallback(() => {
    select(null);
    // Give the keyboard back to the graph node the panel was opened from.
    if (selected) setTimeout(() => (document.querySelector(`[data-node="${CSS.escape(selected)}"]`) as SVGGElement | null)?.focus(), 0);
  }, [selected]);
  if (assets.error) return <NoProject error={assets.error} what="load the assets" />;
  if (!assets.data) return <Loading what="assets" />;
  const list = assets.data.assets;
  const nodes: GraphNode[] = list.map((a) => ({
    id: a.key,
    label: a.key,
    sublabel:
      (a.last_materialization ? `${a.stale ? "stale" : "fresh"} · ${when(a.last_materialization.materialized_at)}` : "never materialized") +
      (a.freshness === "overdue" ? " · OVERDUE" : ""),
    kind: assetKind(a),
  }));
  const edges = list.flatMap((a) => a.deps.map((d) => ({ source: d, target: a.key })));
  const current = list.find((a) => a.key === selected) ?? null;
  const counts = { fresh: 0, stale: 0, never: 0 } as Record<string, number>;
  list.forEach((a) => counts[assetKind(a)]++);
  const policed = list.filter((a) => a.freshness);
  const overdue = policed.filter((a) => a.freshness === "overdue");
  return (
    <div class="page">
      <h1>Assets</h1>
      <p class="meta legend">
        {list.length} assets · <span class="swatch fresh" /> fresh {counts.fresh} · <span class="swatch stale" /> stale {counts.stale} · <span class="swatch never" /> never
        materialized {counts.never}
        {policed.length > 0 && (
          <>
            {" "}
            · freshness policies: <span data-testid="overdue-count">{overdue.length}</span> of {policed.length} overdue
            {overdue.length > 0 && <span data-testid="overdue-assets"> ({overdue.map((a) => a.key).join(", ")})</span>}
          </>
        )}
      </p>
      {selected && !current && (
        <div class="notice" data-testid="unknown-asset">
          The project has no asset <code>{selected}</code>. <Link href="/assets">Show all assets</Link>.
        </div>
      )}
      <div class="with-panel">
        <Graph testid="asset-graph" label="Asset graph" nodes={nodes} edges={edges} selected={selected} onSelect={(key) => select(key === selected ? null : key)} />
        {current && <AssetPanel asset={current} onClose={close} />}
      </div>
    </div>
  );
}

export function RunsPage() {
  const [tokens, setTokens] = useState<string[]>([]);
  const token = tokens[tokens.length - 1] ?? null;
  const runs = useAsync(
    () => api<{ runs: RunSummary[]; next_page_token: string | null }>(`/api/v1/runs?page_size=50${token ? "&page_token=" + enc(token) : ""}`),
    [token],
    5000,
  );
  useTitle("Runs");
  if (runs.error) return <ErrorBox error={runs.error} what="load runs" />;
  if (!runs.data) return <Loading what="runs" />;
  return (
    <div class="page">
      <h1>Runs</h1>
      <RunSources current="arco" />
      {runs.data.runs.length === 0 ? (
        <p class="muted">No runs yet. Start one with <code>arco run '*'</code>.</p>
      ) : (
        <Wide label="Runs">
        <table class="grid" data-testid="run-list">
          <thead>
            <tr>
              <th>Run</th>
              <th>State</th>
              <th>Selection</th>
              <th>Created</th>
              <th>Duration</th>
              <th>Tasks</th>
            </tr>
          </thead>
          <tbody>
            {runs.data.runs.map((r) => (
              <tr key={r.run_id}>
                <td class="mono">
                  <Link href={`/runs/${enc(r.run_id)}`}>{r.run_id}</Link>
                </td>
                <td>
                  <StateBadge state={r.state} />
                </td>
                <td class="mono">{r.selection}</td>
                <td class="nowrap">{when(r.created_at)}</td>
                <td class="num">{duration(spanMs(r.started_at, r.ended_at))}</td>
                <td>
                  {Object.entries(r.task_counts)
                    .filter(([, n]) => n > 0)
                    .map(([s, n]) => (
                      <span class={`count state-${s.toLowerCase()}`}>
                        {s.toLowerCase()} {n}
                      </span>
                    ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        </Wide>
      )}
      <p class="pager">
        {tokens.length > 0 && <button class="secondary" onClick={() => setTokens(tokens.slice(0, -1))}>Newer</button>}
        {runs.data.next_page_token && <button class="secondary" onClick={() => setTokens([...tokens, runs.data!.next_page_token!])}>Older</button>}
      </p>
    </div>
  );
}

/** The run's time axis: from its start to its end (now while it runs), as "ran N" says. */
export function runWindow(run: Run, now = Date.now()): { t0: number; t1: number } | null {
  const starts = run.tasks.map((t) => t.started_at).filter((x): x is string => !!x).map(Date.parse);
  const ends = run.tasks.map((t) => t.ended_at).filter((x): x is string => !!x).map(Date.parse);
  const t0 = run.started_at ? Date.parse(run.started_at) : Math.min(...starts);
  if (!Number.isFinite(t0)) return null;
  const t1 = run.ended_at ? Date.parse(run.ended_at) : ACTIVE.has(run.state) ? now : Math.max(...ends, t0);
  return { t0, t1: Math.max(t1, t0) };
}

/** Width of an element, following resizes (the Gantt fits its box, phone or desktop). */
function useWidth(): [(el: HTMLDivElement | null) => void, number] {
  const [width, setWidth] = useState(0);
  const observer = useRef<ResizeObserver | null>(null);
  const ref = useCallback((el: HTMLDivElement | null) => {
    observer.current?.disconnect();
    if (!el) return;
    setWidth(el.clientWidth);
    observer.current = new ResizeObserver(() => setWidth(el.clientWidth));
    observer.current.observe(el);
  }, []);
  return [ref, width];
}

function Gantt(props: { run: Run }) {
  const [ref, box] = useWidth();
  const tasks = props.run.tasks;
  const frame = runWindow(props.run);
  if (!tasks.length || !frame) return <p class="muted">No task has started yet.</p>;
  const { t0, t1 } = frame;
  const span = Math.max(1, t1 - t0);
  const running = ACTIVE.has(props.run.state);
  // Wide: labels in a column left of the bars. Narrow (a phone): each label above its bar.
  const width = Math.max(280, box - 2);
  const stacked = width < 560;
  const labelW = stacked ? 0 : Math.min(320, Math.round(width * 0.32));
  const left = labelW + 6;
  const chartW = width - left - 8;
  const rowH = stacked ? 40 : 24;
  const barY = stacked ? 19 : 3;
  const barH = stacked ? 15 : 16;
  const x = (ms: number) => left + ((Math.min(Math.max(ms, t0), t1) - t0) / span) * chartW;
  const ordered = [...tasks].sort((a, b) => (Date.parse(a.started_at ?? a.queued_at ?? "") || Infinity) - (Date.parse(b.started_at ?? b.queued_at ?? "") || Infinity) || a.task_id.localeCompare(b.task_id));
  const height = ordered.length * rowH + 30;
  const ticks = stacked ? 3 : 5;
  const maxChars = stacked ? Math.floor(width / 7) : Math.floor(labelW / 7);
  return (
    <>
      <p class="meta gantt-legend" data-testid="gantt-legend">
        <span class="key-bar" /> running, coloured by the task's final state · <span class="key-line" /> waiting to start (for upstream tasks or a free slot) · axis: time since the run started
      </p>
      <div class="gantt" data-testid="gantt" ref={ref} tabIndex={0} role="region" aria-label="Timeline of the run's tasks">
        {box > 0 && (
          <svg width={width} height={height} role="img" aria-label={`${ordered.length} tasks over ${duration(span)}`}>
            {Array.from({ length: ticks + 1 }, (_, i) => {
              const px = left + (i / ticks) * chartW;
              return (
                <g key={i}>
                  <line x1={px} x2={px} y1={0} y2={height - 18} class="tick" />
                  <text x={px} y={height - 4} class="tick-label" data-tick={i} text-anchor={i === 0 ? "start" : i === ticks ? "end" : "middle"}>
                    {duration((i / ticks) * span)}
                  </text>
                </g>
              );
            })}
            {ordered.map((t, i) => {
              const y = i * rowH + 2;
              const start = t.started_at ? Date.parse(t.started_at) : null;
              const end = t.ended_at ? Date.parse(t.ended_at) : running && start ? Date.now() : start;
              const queued = t.queued_at ? Date.parse(t.queued_at) : null;
              const label = t.partition ? `${t.asset_key} [${t.partition}]` : t.asset_key;
              return (
                <g key={t.task_id} class={`task state-${t.state.toLowerCase()}`} data-task={t.task_id}>
                  <title>
                    {label} · {t.state} · attempt {t.attempt} · {duration(spanMs(t.started_at, t.ended_at))}
                    {t.error ? `\n${t.error}` : ""}
                  </title>
                  <text x={stacked ? 4 : 4} y={y + (stacked ? 12 : 15)} class="task-label">
                    {label.length > maxChars ? label.slice(0, maxChars - 1) + "…" : label}
                  </text>
                  {queued !== null && start !== null && start > t0 && (
                    <rect x={x(queued)} y={y + barY + barH / 2 - 1.5} width={Math.max(0, x(start) - x(queued))} height={3} class="queued" />
                  )}
                  {start !== null && end !== null && <rect x={x(start)} y={y + barY} width={Math.max(2, x(end) - x(start))} height={barH} rx={3} class="bar" />}
                </g>
              );
            })}
          </svg>
        )}
      </div>
    </>
  );
}

export function RunPage(props: { id: string }) {
  const [live, setLive] = useState(true);
  const run = useAsync(() => api<Run>(`/api/v1/runs/${enc(props.id)}`), [props.id], live ? 2000 : undefined);
  const logs = useAsync(() => api<{ lines: LogLine[] }>(`/api/v1/runs/${enc(props.id)}/logs`), [props.id], live ? 2000 : undefined);
  const [action, setAction] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useTitle(`Run ${props.id}`);
  if (run.error) return <ErrorBox error={run.error} what="load the run" />;
  if (!run.data) return <Loading what="the run" />;
  const r = run.data;
  if (live && !ACTIVE.has(r.state) && !run.loading) setTimeout(() => setLive(false), 0);
  // Re-run: the same tasks (selection and partitions); from failure: only those that did not succeed.
  const act = async (what: "cancel" | "rerun" | "rerun-failed") => {
    setBusy(true);
    try {
      const path = what === "cancel" ? "cancel" : "rerun";
      const body = what === "cancel" ? undefined : { from_failure: what === "rerun-failed" };
      const out = await api<{ run_id?: string }>(`/api/v1/runs/${enc(r.run_id)}/${path}`, { method: "POST", json: body });
      setAction(null);
      if (what !== "cancel" && out?.run_id) navigate(`/runs/${enc(out.run_id)}`);
      else run.reload();
    } catch (err) {
      setAction(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const unfinished = r.tasks.filter((t) => t.state !== "SUCCEEDED").length;
  const failed = r.tasks.filter((t) => t.error);
  return (
    <div class="page">
      <p class="crumbs">
        <Link href="/runs">Runs</Link> / {r.run_id}
      </p>
      <h1 data-testid="run-title">
        Run <span class="mono">{r.run_id}</span> <StateBadge state={r.state} />
      </h1>
      <p class="meta">
        selection <code>{r.selection}</code> · created {when(r.created_at)}
        {r.started_at && r.created_at ? ` · waited ${duration(spanMs(r.created_at, r.started_at))} for a worker` : ""} · ran{" "}
        <span data-testid="ran">{duration(spanMs(r.started_at, r.ended_at))}</span> · {r.tasks.length} tasks
      </p>
      <div class="toolbar">
        {ACTIVE.has(r.state) && (
          <button disabled={busy} onClick={() => void act("cancel")}>
            Cancel run
          </button>
        )}
        {!ACTIVE.has(r.state) && r.tasks.length > 0 && (
          <button data-testid="rerun" disabled={busy} onClick={() => void act("rerun")} title="Run the same tasks again: same selection and partitions">
            Re-run
          </button>
        )}
        {!ACTIVE.has(r.state) && unfinished > 0 && (
          <button data-testid="rerun-failed" class="secondary" disabled={busy} onClick={() => void act("rerun-failed")} title={`Run only the ${unfinished} tasks that did not succeed; reuse the others' outputs`}>
            Re-run from failure ({unfinished})
          </button>
        )}
      </div>
      {action && <div class="error">{action}</div>}
      <h2>Timeline</h2>
      <Gantt run={r} />
      {failed.length > 0 && (
        <>
          <h2>Errors</h2>
          <ul class="errors">
            {failed.map((t) => (
              <li>
                <strong>{t.asset_key}</strong>
                {t.partition ? ` [${t.partition}]` : ""} (attempt {t.attempt}): <pre>{t.error}</pre>
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Checks</h2>
      <CheckResults runId={r.run_id} />
      <h2>Logs</h2>
      {logs.error ? (
        <ErrorBox error={logs.error} what="load logs" />
      ) : !logs.data ? (
        <Loading what="logs" />
      ) : logs.data.lines.length === 0 ? (
        <p class="muted">No log lines.</p>
      ) : (
        <pre class="logs" data-testid="logs" tabIndex={0} aria-label="Logs of the run">
          {logs.data.lines.map((l) => `${when(l.ts)} ${l.level.padEnd(7)} ${l.task_id ?? "-"}  ${l.message}`).join("\n")}
        </pre>
      )}
    </div>
  );
}
