// Automation pages (issue #15): schedules, sensors, backfills; check results on asset and run pages.
import { useState } from "preact/hooks";
import { api, enc, type Backfill, type BackfillSummary, type RunRef, type Schedule, type Sensor } from "./api";
import { Link, navigate } from "./router";
import { ErrorBox, Loading, Show, StateBadge, useAsync, useTitle, when, Wide } from "./util";

type Tab = "schedules" | "sensors" | "backfills";

/** The tabs of the Automation section (the header's "Automation" link opens the first). */
function AutomationTabs(props: { current: Tab }) {
  const tab = (to: Tab, label: string) => {
    const href = `/automation/${to}`;
    return (
      <a
        href={href}
        class={props.current === to ? "active" : ""}
        aria-current={props.current === to ? "page" : undefined}
        data-testid={`automation-${to}`}
        onClick={(e) => {
          if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          navigate(href);
        }}
      >
        {label}
      </a>
    );
  };
  return (
    <nav class="segmented" aria-label="Automation">
      {tab("schedules", "Schedules")}
      {tab("sensors", "Sensors")}
      {tab("backfills", "Backfills")}
    </nav>
  );
}

export const runPath = (id: string) => `/runs/${enc(id)}`;

function RunLinks(props: { runs: RunRef[] }) {
  if (!props.runs.length) return <span class="muted">—</span>;
  return (
    <ul class="run-refs">
      {props.runs.map((r) => (
        <li key={r.run_id}>
          <Link href={runPath(r.run_id)} class="mono">
            {r.run_id}
          </Link>{" "}
          {r.state ? <StateBadge state={r.state} /> : <span class="muted">not found</span>}
        </li>
      ))}
    </ul>
  );
}

/** An on/off switch that PATCHes `{enabled}` and shows the server's answer. */
function EnabledSwitch(props: { kind: "schedule" | "sensor"; name: string; enabled: boolean; onChanged: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const flip = async () => {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/v1/${props.kind}s/${enc(props.name)}`, { method: "PATCH", json: { enabled: !props.enabled } });
      props.onChanged();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        role="switch"
        aria-checked={props.enabled}
        class={`switch ${props.enabled ? "on" : "off"}`}
        data-testid={`toggle-${props.name}`}
        disabled={busy}
        title={props.enabled ? `Turn ${props.name} off` : `Turn ${props.name} on`}
        onClick={() => void flip()}
      >
        <span class="sr-only">{props.name} </span>
        {props.enabled ? "On" : "Off"}
      </button>
      {error && (
        <div class="error" role="alert">
          {error}
        </div>
      )}
    </>
  );
}

export function SchedulesPage() {
  const list = useAsync(() => api<{ schedules: Schedule[] }>("/api/v1/schedules"), [], 10_000);
  useTitle("Schedules · Automation");
  return (
    <div class="page">
      <h1>Automation</h1>
      <AutomationTabs current="schedules" />
      <h2 class="sr-only">Schedules</h2>
      <Show state={list} what="schedules">
        {(data) =>
          data.schedules.length === 0 ? (
            <p class="muted">This project declares no schedules.</p>
          ) : (
            <>
              <Wide label="Schedules">
                <table class="grid" data-testid="schedule-list">
                  <thead>
                    <tr>
                      <th>Schedule</th>
                      <th>Cron</th>
                      <th>Timezone</th>
                      <th>Target</th>
                      <th>Enabled</th>
                      <th>Next tick</th>
                      <th>Last tick</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.schedules.map((s) => (
                      <tr key={s.name} data-schedule={s.name}>
                        <td>
                          <a href={`#schedule-${s.name}`}>{s.name}</a>
                          {s.description && <div class="muted">{s.description}</div>}
                        </td>
                        <td class="mono nowrap">{s.cron}</td>
                        <td>{s.timezone}</td>
                        <td class="mono">
                          {s.selection}
                          {s.partitions ? ` [${s.partitions}]` : ""}
                        </td>
                        <td>
                          <EnabledSwitch kind="schedule" name={s.name} enabled={s.enabled} onChanged={list.reload} />
                        </td>
                        <td class="nowrap" data-testid="next-tick">
                          {s.enabled ? when(s.next_tick) : <span class="muted">off</span>}
                        </td>
                        <td class="nowrap">{when(s.last_tick)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Wide>
              {data.schedules.map((s) => (
                <section key={s.name} id={`schedule-${s.name}`} data-testid={`ticks-${s.name}`} aria-labelledby={`ticks-title-${s.name}`}>
                  <h2 id={`ticks-title-${s.name}`}>
                    Recent ticks of <span class="mono">{s.name}</span>
                  </h2>
                  {s.history.length === 0 ? (
                    <p class="muted">No tick yet{s.enabled && s.next_tick ? `; the next is at ${when(s.next_tick)}` : ""}.</p>
                  ) : (
                    <Wide label={`Recent ticks of ${s.name}`}>
                      <table class="grid">
                        <thead>
                          <tr>
                            <th>Scheduled at</th>
                            <th>Status</th>
                            <th>Reason</th>
                            <th>Runs</th>
                          </tr>
                        </thead>
                        <tbody>
                          {s.history.map((t) => (
                            <tr key={t.run_key} data-tick={t.scheduled_at}>
                              <td class="nowrap">{when(t.scheduled_at)}</td>
                              <td>
                                <span class={`badge tick-${t.status}`}>{t.status}</span>
                              </td>
                              <td>{t.reason ?? "—"}</td>
                              <td>
                                <RunLinks runs={t.runs} />
                              </td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </Wide>
                  )}
                </section>
              ))}
            </>
          )
        }
      </Show>
    </div>
  );
}

function seconds(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** OK, or failing: consecutive failures and when the backoff lets the next evaluation run. */
function SensorHealth(props: { sensor: Sensor }) {
  const s = props.sensor;
  if (!s.failures) return <span class="badge state-succeeded">ok</span>;
  return (
    <span>
      <span class="badge state-failed">failing</span> {s.failures} consecutive failure{s.failures === 1 ? "" : "s"}; backing off until {when(s.next_evaluation)}
    </span>
  );
}

export function SensorsPage() {
  const list = useAsync(() => api<{ sensors: Sensor[] }>("/api/v1/sensors"), [], 10_000);
  useTitle("Sensors · Automation");
  return (
    <div class="page">
      <h1>Automation</h1>
      <AutomationTabs current="sensors" />
      <h2 class="sr-only">Sensors</h2>
      <Show state={list} what="sensors">
        {(data) =>
          data.sensors.length === 0 ? (
            <p class="muted">This project declares no sensors.</p>
          ) : (
            <>
              <Wide label="Sensors">
                <table class="grid" data-testid="sensor-list">
                  <thead>
                    <tr>
                      <th>Sensor</th>
                      <th>Kind</th>
                      <th>Interval</th>
                      <th>Target</th>
                      <th>Enabled</th>
                      <th>Cursor</th>
                      <th>Last evaluated</th>
                      <th>Next evaluation</th>
                      <th>Health</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.sensors.map((s) => (
                      <tr key={s.name} data-sensor={s.name}>
                        <td>
                          <a href={`#sensor-${s.name}`}>{s.name}</a>
                          {s.description && <div class="muted">{s.description}</div>}
                        </td>
                        <td>{s.kind}</td>
                        <td class="num">{seconds(s.interval_seconds)}</td>
                        <td class="mono">{s.selection ?? (s.assets.join(", ") || "—")}</td>
                        <td>
                          <EnabledSwitch kind="sensor" name={s.name} enabled={s.enabled} onChanged={list.reload} />
                        </td>
                        <td class="mono" data-testid="cursor">
                          {s.cursor ?? "—"}
                        </td>
                        <td class="nowrap">{when(s.last_evaluated_at)}</td>
                        <td class="nowrap">{s.enabled ? when(s.next_evaluation) : <span class="muted">off</span>}</td>
                        <td data-testid="health">
                          <SensorHealth sensor={s} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </Wide>
              {data.sensors.map((s) => (
                <section key={s.name} id={`sensor-${s.name}`} data-testid={`evaluations-${s.name}`} aria-labelledby={`evals-title-${s.name}`}>
                  <h2 id={`evals-title-${s.name}`}>
                    Recent evaluations of <span class="mono">{s.name}</span> <span class="meta">({s.evaluations} in all)</span>
                  </h2>
                  {s.last_error && (
                    <pre class="run-error-box" data-testid="last-error">
                      {s.last_error}
                    </pre>
                  )}
                  {s.history.length === 0 ? (
                    <p class="muted">Not evaluated yet.</p>
                  ) : (
                    <Wide label={`Recent evaluations of ${s.name}`}>
                      <table class="grid">
                        <thead>
                          <tr>
                            <th>#</th>
                            <th>Evaluated at</th>
                            <th>Status</th>
                            <th>Error</th>
                            <th>Runs</th>
                          </tr>
                        </thead>
                        <tbody>
                          {s.history.map((e) => (
                            <tr key={e.evaluation} data-evaluation={e.evaluation}>
                              <td class="num">{e.evaluation}</td>
                              <td class="nowrap">{when(e.evaluated_at)}</td>
                              <td>
                                <span class={`badge tick-${e.status}`}>{e.status}</span>
                              </td>
                              <td class="run-error">{e.error ?? "—"}</td>
                              <td>
                                <RunLinks runs={e.runs} />
                              </td>
                            </tr>
                          ))}
                        </tbody>
                      </table>
                    </Wide>
                  )}
                </section>
              ))}
            </>
          )
        }
      </Show>
    </div>
  );
}

/** Plan a backfill: a selection over a partition range; its page opens once it exists. */
function BackfillForm() {
  const [selection, setSelection] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [chunk, setChunk] = useState("1");
  const [maxRuns, setMaxRuns] = useState("4");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const made = await api<BackfillSummary>("/api/v1/backfills", {
        method: "POST",
        json: { selection: selection.trim(), from: from.trim(), to: to.trim(), chunk_size: Number(chunk), max_runs: Number(maxRuns) },
      });
      navigate(`/automation/backfills/${enc(made.backfill_id)}`);
    } catch (err) {
      setError(`Could not create the backfill: ${err instanceof Error ? err.message : String(err)}`);
      setBusy(false);
    }
  };
  const field = (id: string, label: string, value: string, set: (v: string) => void, extra: Record<string, unknown> = {}) => (
    <p class="field">
      <label for={id}>{label}</label>
      <input id={id} data-testid={id} value={value} required onInput={(e) => set((e.target as HTMLInputElement).value)} {...extra} />
    </p>
  );
  return (
    <form class="backfill-form" onSubmit={(e) => void submit(e)} aria-labelledby="new-backfill">
      <h2 id="new-backfill">New backfill</h2>
      <div class="fields">
        {field("backfill-selection", "Selection", selection, setSelection, { placeholder: "auto.daily+", class: "mono" })}
        {field("backfill-from", "From partition", from, setFrom, { placeholder: "2024-03-01" })}
        {field("backfill-to", "To partition", to, setTo, { placeholder: "2024-03-31" })}
        {field("backfill-chunk", "Partitions per run", chunk, setChunk, { type: "number", min: 1, max: 10000 })}
        {field("backfill-max-runs", "Runs at once", maxRuns, setMaxRuns, { type: "number", min: 1, max: 1000 })}
      </div>
      <p class="muted">The next tick of the automation daemon launches its runs, at most the given number at once.</p>
      <button type="submit" data-testid="create-backfill" disabled={busy}>
        Create backfill
      </button>
      {error && (
        <div class="error" role="alert" data-testid="backfill-error">
          {error}
        </div>
      )}
    </form>
  );
}

function ChunkCounts(props: { counts: Record<string, number> }) {
  const entries = Object.entries(props.counts).filter(([, n]) => n > 0);
  if (!entries.length) return <span class="muted">none launched</span>;
  return (
    <>
      {entries.map(([s, n]) => (
        <span key={s} class={`count chunk-${s}`}>
          {s} {n}
        </span>
      ))}
    </>
  );
}

export function BackfillsPage() {
  const list = useAsync(() => api<{ backfills: BackfillSummary[] }>("/api/v1/backfills"), [], 5000);
  useTitle("Backfills · Automation");
  return (
    <div class="page">
      <h1>Automation</h1>
      <AutomationTabs current="backfills" />
      <BackfillForm />
      <h2>Backfills</h2>
      <Show state={list} what="backfills">
        {(data) =>
          data.backfills.length === 0 ? (
            <p class="muted">No backfills yet.</p>
          ) : (
            <Wide label="Backfills">
              <table class="grid" data-testid="backfill-list">
                <thead>
                  <tr>
                    <th>Backfill</th>
                    <th>State</th>
                    <th>Selection</th>
                    <th>Partitions</th>
                    <th>Runs launched</th>
                    <th>Runs by status</th>
                    <th>Created</th>
                  </tr>
                </thead>
                <tbody>
                  {data.backfills.map((b) => (
                    <tr key={b.backfill_id} data-backfill={b.backfill_id}>
                      <td class="mono">
                        <Link href={`/automation/backfills/${enc(b.backfill_id)}`}>{b.backfill_id}</Link>
                      </td>
                      <td>
                        <StateBadge state={b.state} />
                      </td>
                      <td class="mono">{b.selection}</td>
                      <td>
                        {b.partitions}: {b.first_partition} … {b.last_partition}
                      </td>
                      <td class="num">
                        <progress max={b.chunks} value={b.chunks_launched} aria-label={`Runs launched of ${b.backfill_id}`} /> {b.chunks_launched} / {b.chunks}
                      </td>
                      <td>
                        <ChunkCounts counts={b.chunk_counts} />
                      </td>
                      <td class="nowrap">{when(b.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Wide>
          )
        }
      </Show>
    </div>
  );
}

export const PARTITION_STATES = ["materialized", "failed", "in progress", "missing"] as const;
const cellClass = (status: string) => `cell cell-${status.replace(/\s+/g, "-")}`;

function countOf(cells: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  Object.values(cells).forEach((s) => (out[s] = (out[s] ?? 0) + 1));
  return out;
}

function countText(counts: Record<string, number>): string {
  return PARTITION_STATES.map((s) => `${s} ${counts[s] ?? 0}`).join(" · ");
}

/** One asset's partitions, in order, one coloured cell each (hover or focus for its name). */
function PartitionBar(props: { asset: string; cells: Record<string, string> }) {
  const parts = Object.keys(props.cells).sort();
  const counts = countOf(props.cells);
  return (
    <div class="partition-row" data-testid="partition-bar" data-asset={props.asset}>
      <h3 class="mono">{props.asset}</h3>
      <p class="meta" data-testid="partition-counts">
        {countText(counts)}
      </p>
      <div class="partition-bar" role="img" aria-label={`${props.asset}: ${countText(counts)}`}>
        {parts.map((p) => (
          <span key={p} class={cellClass(props.cells[p])} data-partition={p} data-status={props.cells[p]} title={`${p}: ${props.cells[p]}`} />
        ))}
      </div>
    </div>
  );
}

export function BackfillPage(props: { id: string }) {
  const bf = useAsync(() => api<Backfill>(`/api/v1/backfills/${enc(props.id)}`), [props.id], 3000);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useTitle(`Backfill ${props.id}`);
  if (bf.error) return <ErrorBox error={bf.error} what="load the backfill" />;
  if (!bf.data) return <Loading what="the backfill" />;
  const b = bf.data;
  const act = async (action: "pause" | "resume" | "cancel" | "retry") => {
    setBusy(true);
    setError(null);
    try {
      await api(`/api/v1/backfills/${enc(b.backfill_id)}/${action}`, { method: "POST" });
      bf.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  const done = b.state === "CANCELLED" || b.state === "COMPLETED";
  const failedChunks = Object.values(b.runs).filter((c) => c.status === "failed").length;
  return (
    <div class="page">
      <p class="crumbs">
        <Link href="/automation/backfills">Backfills</Link> / {b.backfill_id}
      </p>
      <h1 data-testid="backfill-title">
        Backfill <span class="mono">{b.backfill_id}</span> <StateBadge state={b.state} />
      </h1>
      <p class="meta">
        selection <code>{b.selection}</code> · {b.partitions} partitions in {b.chunks} runs ({b.chunks_launched} launched, at most {b.max_runs} at once) · created {when(b.created_at)}
        {b.finished_at ? ` · finished ${when(b.finished_at)}` : ""}
      </p>
      <div class="toolbar">
        <button data-testid="backfill-pause" disabled={busy || b.state !== "RUNNING"} onClick={() => void act("pause")}>
          Pause
        </button>
        <button data-testid="backfill-resume" disabled={busy || b.state !== "PAUSED"} onClick={() => void act("resume")}>
          Resume
        </button>
        <button data-testid="backfill-cancel" class="secondary" disabled={busy || done} onClick={() => void act("cancel")}>
          Cancel
        </button>
        <button data-testid="backfill-retry" class="secondary" disabled={busy || failedChunks === 0} onClick={() => void act("retry")} title="Launch the failed runs again, as new attempts">
          Retry failed ({failedChunks})
        </button>
      </div>
      {error && (
        <div class="error" role="alert" data-testid="backfill-action-error">
          {error}
        </div>
      )}
      <h2>Partitions</h2>
      <p class="meta legend" data-testid="backfill-counts">
        {PARTITION_STATES.map((s) => (
          <span key={s} class="legend-item">
            <span class={`${cellClass(s)} swatch`} /> {s} <span data-count={s}>{b.counts[s] ?? 0}</span>
          </span>
        ))}
      </p>
      {Object.entries(b.assets).map(([asset, cells]) => (
        <PartitionBar key={asset} asset={asset} cells={cells} />
      ))}
      <h2>Runs</h2>
      {Object.keys(b.runs).length === 0 ? (
        <p class="muted">No run launched yet: the next tick of the automation daemon launches them.</p>
      ) : (
        <Wide label="Runs of the backfill">
          <table class="grid" data-testid="backfill-runs">
            <thead>
              <tr>
                <th>Chunk</th>
                <th>Run</th>
                <th>Attempt</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(b.runs).map(([i, c]) => (
                <tr key={i}>
                  <td class="num">{i}</td>
                  <td class="mono">
                    <Link href={runPath(c.run_id)}>{c.run_id}</Link>
                  </td>
                  <td class="num">{c.attempt}</td>
                  <td>{c.status}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Wide>
      )}
    </div>
  );
}
