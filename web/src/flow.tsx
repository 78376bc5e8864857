// Assets graph, run list and run page (Gantt timeline + logs): the flow API (contract 2).
import { useState } from "preact/hooks";
import { api, ApiError, enc, type Asset, type LogLine, type Run, type RunSummary } from "./api";
import { Graph, type GraphNode } from "./graph";
import { Link, navigate, tablePath } from "./router";
import { ErrorBox, Loading, StateBadge, duration, spanMs, useAsync, when } from "./util";

const ACTIVE = new Set(["QUEUED", "RUNNING"]);

function assetKind(a: Asset): string {
  if (!a.last_materialization) return "never";
  return a.stale ? "stale" : "fresh";
}

function NoProject(props: { error: Error }) {
  if (props.error instanceof ApiError && props.error.type === "no-project") {
    return (
      <div class="notice" data-testid="no-project">
        This server was started without a project, so it knows no asset definitions. Start it with <code>arco serve --module MODULE</code>, from a folder with an{" "}
        <code>arco.toml</code>, or with <code>arco dev</code>.
      </div>
    );
  }
  return <ErrorBox error={props.error} what="load the assets" />;
}

export function AssetsPage() {
  const assets = useAsync(() => api<{ assets: Asset[] }>("/api/v1/assets"), [], 5000);
  const [selected, setSelected] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [runError, setRunError] = useState<string | null>(null);
  const materialize = async (selection: string) => {
    setBusy(true);
    setRunError(null);
    try {
      const run = await api<{ run_id: string }>("/api/v1/runs", { method: "POST", json: { selection } });
      navigate(`/runs/${enc(run.run_id)}`);
    } catch (err) {
      setRunError(`Could not start a run: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      setBusy(false);
    }
  };
  if (assets.error) return <NoProject error={assets.error} />;
  if (!assets.data) return <Loading what="assets" />;
  const list = assets.data.assets;
  const nodes: GraphNode[] = list.map((a) => ({
    id: a.key,
    label: a.key,
    sublabel: a.last_materialization ? `${a.stale ? "stale" : "fresh"} · ${when(a.last_materialization.materialized_at)}` : "never materialized",
    kind: assetKind(a),
  }));
  const edges = list.flatMap((a) => a.deps.map((d) => ({ source: d, target: a.key })));
  const current = list.find((a) => a.key === selected) ?? null;
  const counts = { fresh: 0, stale: 0, never: 0 } as Record<string, number>;
  list.forEach((a) => counts[assetKind(a)]++);
  return (
    <div class="page">
      <h1>Assets</h1>
      <p class="meta legend">
        {list.length} assets · <span class="swatch fresh" /> fresh {counts.fresh} · <span class="swatch stale" /> stale {counts.stale} · <span class="swatch never" /> never
        materialized {counts.never}
      </p>
      <div class="with-panel">
        <Graph testid="asset-graph" nodes={nodes} edges={edges} selected={selected} onSelect={setSelected} />
        {current && (
          <aside class="panel" data-testid="asset-panel">
            <h2>{current.key}</h2>
            <p>{current.description ?? <span class="muted">No description.</span>}</p>
            <dl class="props">
              <dt>group</dt>
              <dd>{current.group ?? "—"}</dd>
              <dt>partitioned</dt>
              <dd>{current.partitioned ? "yes" : "no"}</dd>
              <dt>code version</dt>
              <dd>{current.code_version ?? "—"}</dd>
              <dt>owners</dt>
              <dd>{current.owners.join(", ") || "—"}</dd>
              <dt>upstream</dt>
              <dd>{current.deps.join(", ") || "—"}</dd>
              <dt>last run</dt>
              <dd>{current.last_materialization ? <Link href={`/runs/${enc(current.last_materialization.run_id)}`}>{current.last_materialization.run_id}</Link> : "—"}</dd>
              <dt>rows</dt>
              <dd>{current.last_materialization?.row_count ?? "—"}</dd>
            </dl>
            <p>
              <Link href={tablePath(current.namespace, current.name)}>Open in the catalog</Link>
            </p>
            <div class="toolbar">
              <button data-testid="materialize" disabled={busy} onClick={() => void materialize(current.key)} title="Queue a run of this asset">
                Materialize
              </button>
              <button class="secondary" disabled={busy} onClick={() => void materialize("+" + current.key)} title="This asset and everything upstream of it">
                With upstream
              </button>
            </div>
            {runError && <div class="error">{runError}</div>}
          </aside>
        )}
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
  if (runs.error) return <ErrorBox error={runs.error} what="load runs" />;
  if (!runs.data) return <Loading what="runs" />;
  return (
    <div class="page">
      <h1>Runs</h1>
      {runs.data.runs.length === 0 ? (
        <p class="muted">No runs yet. Start one with <code>arco run '*'</code>.</p>
      ) : (
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
      )}
      <p class="pager">
        {tokens.length > 0 && <button class="secondary" onClick={() => setTokens(tokens.slice(0, -1))}>Newer</button>}
        {runs.data.next_page_token && <button class="secondary" onClick={() => setTokens([...tokens, runs.data!.next_page_token!])}>Older</button>}
      </p>
    </div>
  );
}

const ROW_H = 24;
const LABEL_W = 320;
const CHART_W = 720;

function Gantt(props: { run: Run }) {
  const tasks = props.run.tasks;
  const times = tasks.flatMap((t) => [t.queued_at, t.started_at, t.ended_at]).filter((x): x is string => !!x).map(Date.parse);
  const running = ACTIVE.has(props.run.state);
  const t0 = Math.min(...times, props.run.started_at ? Date.parse(props.run.started_at) : Infinity);
  const t1 = Math.max(...times, running ? Date.now() : -Infinity, props.run.ended_at ? Date.parse(props.run.ended_at) : -Infinity);
  if (!tasks.length || !Number.isFinite(t0)) return <p class="muted">No task has started yet.</p>;
  const span = Math.max(1, t1 - t0);
  const x = (ms: number) => LABEL_W + ((ms - t0) / span) * CHART_W;
  const ordered = [...tasks].sort((a, b) => (Date.parse(a.started_at ?? a.queued_at ?? "") || Infinity) - (Date.parse(b.started_at ?? b.queued_at ?? "") || Infinity) || a.task_id.localeCompare(b.task_id));
  const height = ordered.length * ROW_H + 30;
  const ticks = 5;
  return (
    <div class="gantt" data-testid="gantt">
      <svg width={LABEL_W + CHART_W + 20} height={height}>
        {Array.from({ length: ticks + 1 }, (_, i) => {
          const px = LABEL_W + (i / ticks) * CHART_W;
          return (
            <g key={i}>
              <line x1={px} x2={px} y1={0} y2={height - 18} class="tick" />
              <text x={px} y={height - 4} class="tick-label" text-anchor="middle">
                {duration((i / ticks) * span)}
              </text>
            </g>
          );
        })}
        {ordered.map((t, i) => {
          const y = i * ROW_H + 2;
          const start = t.started_at ? Date.parse(t.started_at) : null;
          const end = t.ended_at ? Date.parse(t.ended_at) : running && start ? Date.now() : start;
          const label = t.partition ? `${t.asset_key} [${t.partition}]` : t.asset_key;
          return (
            <g key={t.task_id} class={`task state-${t.state.toLowerCase()}`} data-task={t.task_id}>
              <title>
                {label} · {t.state} · attempt {t.attempt} · {duration(spanMs(t.started_at, t.ended_at))}
                {t.error ? `\n${t.error}` : ""}
              </title>
              <text x={4} y={y + 15} class="task-label">
                {label.length > 44 ? label.slice(0, 43) + "…" : label}
              </text>
              {t.queued_at && start !== null && <rect x={x(Date.parse(t.queued_at))} y={y + 9} width={Math.max(0, x(start) - x(Date.parse(t.queued_at)))} height={3} class="queued" />}
              {start !== null && end !== null && <rect x={x(start)} y={y + 3} width={Math.max(2, x(end) - x(start))} height={ROW_H - 8} rx={3} class="bar" />}
            </g>
          );
        })}
      </svg>
    </div>
  );
}

export function RunPage(props: { id: string }) {
  const [live, setLive] = useState(true);
  const run = useAsync(() => api<Run>(`/api/v1/runs/${enc(props.id)}`), [props.id], live ? 2000 : undefined);
  const logs = useAsync(() => api<{ lines: LogLine[] }>(`/api/v1/runs/${enc(props.id)}/logs`), [props.id], live ? 2000 : undefined);
  const [action, setAction] = useState<string | null>(null);
  if (run.error) return <ErrorBox error={run.error} what="load the run" />;
  if (!run.data) return <Loading what="the run" />;
  const r = run.data;
  if (live && !ACTIVE.has(r.state) && !run.loading) setTimeout(() => setLive(false), 0);
  const act = async (what: "cancel" | "rerun") => {
    try {
      const body = what === "rerun" ? { from_failure: true } : undefined;
      const out = await api<{ run_id?: string }>(`/api/v1/runs/${enc(r.run_id)}/${what}`, { method: "POST", json: body });
      setAction(null);
      if (what === "rerun" && out?.run_id) navigate(`/runs/${enc(out.run_id)}`);
      else run.reload();
    } catch (err) {
      setAction(err instanceof Error ? err.message : String(err));
    }
  };
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
        selection <code>{r.selection}</code> · created {when(r.created_at)} · ran {duration(spanMs(r.started_at, r.ended_at))} · {r.tasks.length} tasks
      </p>
      <div class="toolbar">
        {ACTIVE.has(r.state) && <button onClick={() => void act("cancel")}>Cancel run</button>}
        {(r.state === "FAILED" || r.state === "CANCELLED") && <button onClick={() => void act("rerun")}>Re-run from failure</button>}
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
      <h2>Logs</h2>
      {logs.error ? (
        <ErrorBox error={logs.error} what="load logs" />
      ) : !logs.data ? (
        <Loading what="logs" />
      ) : logs.data.lines.length === 0 ? (
        <p class="muted">No log lines.</p>
      ) : (
        <pre class="logs" data-testid="logs">
          {logs.data.lines.map((l) => `${when(l.ts)} ${l.level.padEnd(7)} ${l.task_id ?? "-"}  ${l.message}`).join("\n")}
        </pre>
      )}
    </div>
  );
}
