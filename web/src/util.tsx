import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "./api";

export interface Async<T> {
  data: T | null;
  error: Error | null;
  loading: boolean;
  reload: () => void;
}

/** Run `load` whenever `deps` change; keeps the last result while reloading. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[], intervalMs?: number): Async<T> {
  const [state, setState] = useState<{ data: T | null; error: Error | null; loading: boolean }>({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: Error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  useEffect(() => {
    if (!intervalMs) return;
    const id = setInterval(() => setTick((t) => t + 1), intervalMs);
    return () => clearInterval(id);
  }, [intervalMs, ...deps]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** True on a narrow (phone) viewport; follows rotation and window resizes. */
export function useNarrow(maxPx = 720): boolean {
  const query = `(max-width: ${maxPx}px)`;
  const [narrow, setNarrow] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const mql = window.matchMedia(query);
    const on = () => setNarrow(mql.matches);
    mql.addEventListener("change", on);
    return () => mql.removeEventListener("change", on);
  }, [query]);
  return narrow;
}

/** A wide table that scrolls sideways on its own on a phone instead of the whole page. */
export function Wide(props: { label: string; children: ComponentChildren }) {
  // Focusable so keyboard users can scroll it (WCAG 2.1.1, axe scrollable-region-focusable).
  return (
    <div class="wide" tabIndex={0} role="region" aria-label={props.label}>
      {props.children}
    </div>
  );
}

/** Name the browser tab after the page (WCAG 2.4.2: every page has its own title). */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Arco` : "Arco";
  }, [title]);
}

export function ErrorBox(props: { error: Error; what?: string }) {
  const e = props.error;
  const kind = e instanceof ApiError ? ` (${e.status} ${e.type})` : "";
  return (
    <div class="error" role="alert" data-testid="error">
      <strong>{props.what ? `Could not ${props.what}` : "Error"}{kind}:</strong> {e.message}
    </div>
  );
}

/** The error of a page that needs the server's project: a hint when it has none. */
export function NoProject(props: { error: Error; what: string }) {
  if (props.error instanceof ApiError && props.error.type === "no-project") {
    return (
      <div class="notice" data-testid="no-project">
        This server was started without a project, so it knows no asset definitions. Start it with <code>arco serve --module MODULE</code>, from a folder with an{" "}
        <code>arco.toml</code>, or with <code>arco dev</code>.
      </div>
    );
  }
  return <ErrorBox error={props.error} what={props.what} />;
}

export function Loading(props: { what?: string }) {
  return <p class="muted loading">Loading{props.what ? ` ${props.what}` : ""}…</p>;
}

export function Show<T>(props: { state: Async<T>; what: string; children: (data: T) => ComponentChildren }) {
  if (props.state.error) return <NoProject error={props.state.error} what={`load ${props.what}`} />;
  if (props.state.data === null) return <Loading what={props.what} />;
  return <>{props.children(props.state.data)}</>;
}

export function Properties(props: { props: Record<string, string> }) {
  const entries = Object.entries(props.props);
  if (!entries.length) return <p class="muted">No properties.</p>;
  return (
    <dl class="props" data-testid="properties">
      {entries.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </>
      ))}
    </dl>
  );
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function spanMs(start: string | null, end: string | null): number | null {
  if (!start) return null;
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : Date.now();
  return Number.isNaN(a) || Number.isNaN(b) ? null : b - a;
}

export function StateBadge(props: { state: string }) {
  return <span class={`badge state-${props.state.toLowerCase()}`}>{props.state}</span>;
}
