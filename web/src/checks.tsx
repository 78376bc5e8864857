// Asset check results (issue #15): on the asset panel and on a run's page.
import { api, enc, type CheckResult } from "./api";
import { runPath } from "./automation";
import { Link } from "./router";
import { ErrorBox, Loading, useAsync, when, Wide } from "./util";

function Outcome(props: { r: CheckResult }) {
  const r = props.r;
  return <span class={`badge ${r.passed ? "state-succeeded" : "state-failed"}`}>{r.passed ? "passed" : r.error ? "error" : "failed"}</span>;
}

/** Check results of an asset (the newest per check and partition: failures first, then the
 * newest partitions) as a list that fits its panel, or of a run (all of them) as a table. */
export function CheckResults(props: { asset?: string; runId?: string }) {
  const query = props.asset ? `asset=${enc(props.asset)}&latest=true` : `run_id=${enc(props.runId ?? "")}`;
  const results = useAsync(() => api<{ results: CheckResult[] }>(`/api/v1/asset-checks?${query}&limit=200`), [query], props.runId ? 5000 : 10_000);
  if (results.error) return <ErrorBox error={results.error} what="load the check results" />;
  if (!results.data) return <Loading what="check results" />;
  const rows = [...results.data.results];
  if (!rows.length) return <p class="muted" data-testid="no-checks">{props.runId ? "No check ran in this run." : "No check result yet."}</p>;
  if (props.asset) {
    rows.sort((a, b) => Number(a.passed) - Number(b.passed) || (b.partition ?? "").localeCompare(a.partition ?? "") || a.check.localeCompare(b.check));
    return (
      <ul class="check-list" data-testid="check-results" aria-label={`Check results of ${props.asset}`}>
        {rows.map((r) => (
          <li key={r.event_id} data-check={r.check} data-partition={r.partition ?? ""} data-passed={String(r.passed)}>
            <Outcome r={r} /> <span class="mono">{r.check}</span>
            {r.partition ? <span class="mono"> [{r.partition}]</span> : ""}
            <div class="meta">
              {r.severity}
              {r.blocking ? " · blocking" : ""} · {when(r.evaluated_at)} ·{" "}
              {r.run_id ? (
                <>
                  run <Link href={runPath(r.run_id)}>{r.run_id}</Link>
                </>
              ) : (
                "run on its own"
              )}
            </div>
            {(r.error || r.description) && <div class="meta">{r.error ?? r.description}</div>}
          </li>
        ))}
      </ul>
    );
  }
  rows.sort((a, b) => a.asset.localeCompare(b.asset) || (a.partition ?? "").localeCompare(b.partition ?? "") || a.check.localeCompare(b.check));
  return (
    <Wide label="Check results of the run">
      <table class="grid checks" data-testid="check-results">
        <thead>
          <tr>
            <th>Asset</th>
            <th>Partition</th>
            <th>Check</th>
            <th>Result</th>
            <th>Severity</th>
            <th>Blocking</th>
            <th>When</th>
            <th>Detail</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.event_id} data-check={r.check} data-partition={r.partition ?? ""} data-passed={String(r.passed)}>
              <td class="mono">{r.asset}</td>
              <td class="mono">{r.partition ?? "—"}</td>
              <td class="mono">{r.check}</td>
              <td>
                <Outcome r={r} />
              </td>
              <td>{r.severity}</td>
              <td>{r.blocking ? "yes" : "no"}</td>
              <td class="nowrap">{when(r.evaluated_at)}</td>
              <td>{r.error ?? r.description ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Wide>
  );
}
