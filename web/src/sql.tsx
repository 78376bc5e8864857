// SQL console: DuckDB-WASM in the browser over the signed URLs of the caller's snapshot.
import { useEffect, useRef, useState } from "preact/hooks";
import { currentSnapshot, loadSnapshot, messageOf, runQuery, type QueryResult, type Snapshot } from "./duck";
import { navigate } from "./router";
import { duration, useTitle } from "./util";

const DEFAULT_SQL = "SELECT namespace, name, column_count, description\nFROM system.tables\nORDER BY namespace, name\nLIMIT 100";

export function SqlPage(props: { q: string | null; autorun: boolean }) {
  const [sql, setSql] = useState(props.q ?? DEFAULT_SQL);
  const [result, setResult] = useState<QueryResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string>("");
  const [busy, setBusy] = useState(false);
  const [snap, setSnap] = useState<Snapshot | null>(currentSnapshot());
  const ran = useRef(false);
  useTitle("SQL console");

  const refresh = async () => {
    setBusy(true);
    setError(null);
    try {
      const s = await loadSnapshot(setStatus);
      setSnap(s);
      setStatus("");
    } catch (err) {
      setError(`Could not load the catalog snapshot: ${messageOf(err)}`);
      setStatus("");
    } finally {
      setBusy(false);
    }
  };

  const run = async (text = sql) => {
    if (!text.trim()) {
      setError("Type a query first, e.g. SELECT count(*) FROM system.tables");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      if (!currentSnapshot()) {
        const s = await loadSnapshot(setStatus);
        setSnap(s);
      }
      setStatus("running…");
      const out = await runQuery(text);
      setResult(out);
      // For benchmarks/browser.py: when the first result was ready (ms since navigation),
      // and the in-browser time of the latest query.
      const timings = ((window as unknown as { arcoTimings?: Record<string, number> }).arcoTimings ??= {});
      timings.firstResultMs ??= performance.now();
      timings.lastQueryMs = out.elapsedMs;
      timings.lastPrepareMs = out.prepareMs;
      timings.lastRows = out.rowCount;
      timings.queries = (timings.queries ?? 0) + 1;
      const url = `/sql?q=${encodeURIComponent(text)}`;
      if (location.pathname + location.search !== url) history.replaceState(null, "", url);
    } catch (err) {
      setResult(null);
      setError(messageOf(err));
    } finally {
      setStatus("");
      setBusy(false);
    }
  };

  useEffect(() => {
    if (props.autorun && !ran.current) {
      ran.current = true;
      void run(props.q ?? sql);
    }
  }, []);

  return (
    <div class="page sql">
      <h1>SQL console</h1>
      <p class="meta">
        Runs in your browser with DuckDB-WASM over signed URLs of your catalog snapshot. Query <code>system.tables</code>, <code>system.columns</code>, <code>system.namespaces</code>,{" "}
        <code>system.lineage_edges</code>, <code>system.runs</code>, <code>system.tasks</code>, <code>system.materializations</code>….
      </p>
      <label for="sql-input" class="sr-only">
        SQL query
      </label>
      <textarea
        id="sql-input"
        data-testid="sql-input"
        spellcheck={false}
        rows={7}
        value={sql}
        onInput={(e) => setSql((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            void run();
          }
        }}
      />
      <div class="toolbar">
        <button data-testid="run-sql" disabled={busy} onClick={() => void run()}>
          Run <span class="muted">(Ctrl+Enter)</span>
        </button>
        <button class="secondary" disabled={busy} onClick={() => void refresh()} title="Mint new signed URLs and load the newest snapshot">
          Reload snapshot
        </button>
        <span class="status" data-testid="sql-status">
          {status}
        </span>
        {snap && (
          <span class="meta" data-testid="snapshot">
            snapshot {Object.entries(snap.versions).map(([d, v]) => `${d} v${v}`).join(", ")} · {snap.files} files, {(snap.bytes / 1024).toFixed(0)} KiB loaded in{" "}
            {duration(snap.loadMs)}
          </span>
        )}
      </div>
      {error && (
        <div class="error" role="alert" data-testid="sql-error">
          {error}
        </div>
      )}
      {result && (
        <div data-testid="sql-result">
          <p class="meta">
            <span data-testid="row-count" data-rows={result.rowCount}>
              {result.rowCount} row{result.rowCount === 1 ? "" : "s"}
            </span>{" "}
            in{" "}
            <span data-testid="elapsed" data-ms={result.elapsedMs.toFixed(1)}>
              {duration(result.elapsedMs)}
            </span>
            {result.prepared.length > 0 && (
              <span data-testid="prepared" data-ms={result.prepareMs.toFixed(1)}>
                {" "}
                (+ {duration(result.prepareMs)} building {result.prepared.map((n) => "system." + n).join(", ")} from the snapshot, once)
              </span>
            )}
            {result.truncated && ` · showing the first ${result.rows.length}`}
          </p>
          <div class="scroll" tabIndex={0} role="region" aria-label="Query result">
            <table class="grid results" data-testid="result-table">
              <thead>
                <tr>
                  {result.columns.map((c) => (
                    <th title={c.type}>{c.name}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {result.rows.map((r) => (
                  <tr>
                    {r.map((v) => (
                      <td class={v === "NULL" ? "null" : ""}>{v}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
      <p class="examples">
        Examples:{" "}
        {["SELECT count(*) FROM system.tables", "SELECT namespace, count(*) AS tables FROM system.tables GROUP BY ALL ORDER BY 2 DESC", "SELECT source, target, edge_type FROM system.lineage_edges LIMIT 50", "SELECT run_id, state FROM system.runs ORDER BY 1 DESC LIMIT 20"].map((q) => (
          <a
            href={`/sql?q=${encodeURIComponent(q)}`}
            onClick={(e) => {
              e.preventDefault();
              setSql(q);
              navigate(`/sql?q=${encodeURIComponent(q)}`, true);
            }}
          >
            <code>{q}</code>
          </a>
        ))}
      </p>
    </div>
  );
}
