// REST client: bearer token from sessionStorage, problem+json errors as ApiError.

const TOKEN_KEY = "arco.token";

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API (RFC 9457 problem+json), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorizedListeners: Listener[] = [];

/** Called when the server refuses the token (401): the app shows the sign-in page. */
export function onUnauthorized(listener: Listener): void {
  unauthorizedListeners.push(listener);
}

async function errorOf(response: Response, path: string): Promise<ApiError> {
  let type = "http-error";
  let message = `${response.status} ${response.statusText} from ${path}`;
  try {
    const body = await response.json();
    if (body && typeof body === "object") {
      type = String(body.type ?? type).replace("urn:arco:problem:", "");
      const detail = body.detail ?? body.title;
      if (detail) message = String(detail);
      if (Array.isArray(body.errors) && body.errors.length) {
        message += ": " + body.errors.map((e: { location: string; message: string }) => `${e.location} ${e.message}`).join("; ");
      }
    }
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(response.status, type, message);
}

/** Call an Arco API path (e.g. "/api/v1/namespaces") and parse its JSON answer. */
export async function api<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const token = getToken();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers, body });
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the Arco server (${String(err)})`);
  }
  if (!response.ok) {
    const error = await errorOf(response, path);
    if (response.status === 401) unauthorizedListeners.forEach((l) => l());
    throw error;
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** The token `arco dev` hands to loopback browsers, or null on any other server. */
export async function devToken(): Promise<string | null> {
  try {
    const response = await fetch("/api/v1/dev/token");
    if (!response.ok) return null;
    const body = (await response.json()) as { token?: string };
    return body.token ?? null;
  } catch {
    return null;
  }
}

/** The claims of the current token, decoded without verification (display only). */
export function tokenClaims(): Record<string, unknown> | null {
  const token = getToken();
  if (!token) return null;
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "="))) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export const enc = encodeURIComponent;

// ----------------------------------------------------------------- API shapes

export interface Column {
  name: string;
  type: string;
  nullable: boolean;
  ordinal: number;
  description: string | null;
  column_id: number;
}
export interface Namespace {
  id: string;
  name: string;
  description: string | null;
  properties: Record<string, string>;
  created_at: string;
  updated_at: string;
}
export interface Table {
  id: string;
  namespace: string;
  name: string;
  format: string;
  location: string | null;
  description: string | null;
  properties: Record<string, string>;
  columns: Column[];
  created_at: string;
  updated_at: string;
  schema_version: number;
}
export interface Page<T> {
  items: T[];
  next_page_token: string | null;
}
export interface Edge {
  source: string;
  target: string;
  edge_type: string;
  declared: boolean;
  observed: boolean;
  observations: number;
  last_seen: string | null;
  run_id: string | null;
  columns: string[];
}
export interface Traversal {
  root: string;
  direction: string;
  depth: number;
  nodes: { name: string; depth: number; direction: string }[];
  edges: Edge[];
}
export interface SearchHit {
  kind: string;
  name: string;
  qualified_name: string;
  namespace: string;
  description: string | null;
  score: number;
  matched: string[];
}
export interface SearchResult {
  hits: SearchHit[];
  total: number;
  next_page_token: string | null;
  catalog_version: number;
}
export interface Asset {
  key: string;
  namespace: string;
  name: string;
  group: string | null;
  description: string | null;
  deps: string[];
  partitioned: boolean;
  tags: Record<string, string>;
  owners: string[];
  code_version: string | null;
  last_materialization: { run_id: string; partition: string | null; materialized_at: string; row_count: number | null } | null;
  stale: boolean;
  /** Under the asset's freshness policy now; null when it has none. */
  freshness?: "fresh" | "overdue" | null;
}
export interface RunSummary {
  run_id: string;
  state: string;
  selection: string;
  created_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  task_counts: Record<string, number>;
}
export interface Task {
  task_id: string;
  asset_key: string;
  partition: string | null;
  state: string;
  attempt: number;
  queued_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  error: string | null;
}
export interface Run extends RunSummary {
  tasks: Task[];
}
export interface LogLine {
  ts: string;
  task_id: string | null;
  level: string;
  message: string;
}

// ------------------------------------------------------------- automation (issue #15)

export interface RunRef {
  run_id: string;
  run_key?: string | null;
  state: string | null;
}
export interface Tick {
  scheduled_at: string;
  run_key: string;
  status: string;
  reason: string | null;
  runs: RunRef[];
}
export interface Schedule {
  name: string;
  cron: string;
  timezone: string;
  selection: string;
  partitions: string | null;
  max_catchup: number;
  default_enabled: boolean;
  enabled: boolean;
  description: string | null;
  next_tick: string | null;
  last_tick: string | null;
  history: Tick[];
}
export interface Evaluation {
  evaluation: number;
  evaluated_at: string;
  status: string;
  error: string | null;
  runs: RunRef[];
}
export interface Sensor {
  name: string;
  kind: string;
  interval_seconds: number;
  selection: string | null;
  assets: string[];
  run_states: string[];
  default_enabled: boolean;
  enabled: boolean;
  description: string | null;
  cursor: string | null;
  next_evaluation: string | null;
  last_evaluated_at: string | null;
  evaluations: number;
  failures: number;
  last_error: string | null;
  history: Evaluation[];
}
export interface BackfillSummary {
  backfill_id: string;
  selection: string;
  state: string;
  created_at: string;
  finished_at: string | null;
  partitions: number;
  first_partition: string;
  last_partition: string;
  chunks: number;
  chunks_launched: number;
  chunk_counts: Record<string, number>;
  max_runs: number;
}
export interface Backfill {
  backfill_id: string;
  selection: string;
  state: string;
  created_at: string;
  finished_at: string | null;
  partitions: number;
  chunks: number;
  chunks_launched: number;
  max_runs: number;
  counts: Record<string, number>;
  /** asset -> partition -> materialized | failed | in progress | missing */
  assets: Record<string, Record<string, string>>;
  runs: Record<string, { attempt: number; run_id: string; status: string }>;
}
export interface CheckResult {
  event_id: string;
  check: string;
  asset: string;
  partition: string | null;
  run_id: string | null;
  passed: boolean;
  severity: string;
  blocking: boolean;
  description: string | null;
  metadata: Record<string, unknown>;
  error: string | null;
  evaluated_at: string;
}
