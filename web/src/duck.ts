// DuckDB-WASM in the browser over Arco's signed URLs (contract 1 in CONTRACTS.md).
//
// The bundles come from this origin (Vite copies them into assets/), never a CDN.
// Files are fetched with GET and registered as buffers under 'arco://<path>', so the
// server's view SQL runs unchanged and DuckDB never sends the HEAD request that a
// presigned S3 GET URL refuses.
import * as duckdb from "@duckdb/duckdb-wasm";
import { DataType, type Table as ArrowTable } from "apache-arrow";
import mvpWasm from "@duckdb/duckdb-wasm/dist/duckdb-mvp.wasm?url";
import mvpWorker from "@duckdb/duckdb-wasm/dist/duckdb-browser-mvp.worker.js?url";
import ehWasm from "@duckdb/duckdb-wasm/dist/duckdb-eh.wasm?url";
import ehWorker from "@duckdb/duckdb-wasm/dist/duckdb-browser-eh.worker.js?url";
import { api, ApiError } from "./api";

const BUNDLES: duckdb.DuckDBBundles = {
  mvp: { mainModule: mvpWasm, mainWorker: mvpWorker },
  eh: { mainModule: ehWasm, mainWorker: ehWorker },
};
/** Schema holding the system views; `system` itself is reserved by DuckDB. */
export const VIEW_SCHEMA = "arco_sys";
const DOMAINS = ["catalog", "lineage", "executions"];
const FETCH_PARALLELISM = 6;

export interface SignedUrl {
  path: string;
  url: string;
  expires_at: string;
  domain?: string;
  size?: number;
}
export interface BrowserUrls {
  expires_at: string;
  versions: Record<string, number>;
  urls: SignedUrl[];
  views: Record<string, string>;
}
export interface Snapshot {
  versions: Record<string, number>;
  views: string[];
  files: number;
  bytes: number;
  loadMs: number;
  loadedAt: Date;
}
export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: string[][];
  rowCount: number;
  /** The query itself, in the browser. */
  elapsedMs: number;
  /** Building the system tables this query was the first to use (0 when all were built). */
  prepareMs: number;
  /** The system tables built for this query. */
  prepared: string[];
  truncated: boolean;
}

let dbPromise: Promise<duckdb.AsyncDuckDB> | null = null;
let connPromise: Promise<duckdb.AsyncDuckDBConnection> | null = null;
const registered = new Set<string>();
let snapshot: Snapshot | null = null;
/** The server's SQL of each system table of the loaded snapshot. */
let systemSql: Record<string, string> = {};
/** System tables already built as DuckDB tables for the loaded snapshot. */
const built = new Set<string>();

/** The one DuckDB-WASM instance of the page (started on first use). */
export function database(): Promise<duckdb.AsyncDuckDB> {
  if (!dbPromise) {
    dbPromise = (async () => {
      const bundle = await duckdb.selectBundle(BUNDLES);
      const worker = new Worker(bundle.mainWorker!);
      const db = new duckdb.AsyncDuckDB(new duckdb.VoidLogger(), worker);
      await db.instantiate(bundle.mainModule, bundle.pthreadWorker);
      return db;
    })();
    dbPromise.catch(() => (dbPromise = null));
  }
  return dbPromise;
}

async function connection(): Promise<duckdb.AsyncDuckDBConnection> {
  if (!connPromise) {
    connPromise = database().then((db) => db.connect());
    connPromise.catch(() => (connPromise = null));
  }
  return connPromise;
}

export function currentSnapshot(): Snapshot | null {
  return snapshot;
}

async function fetchAll(urls: SignedUrl[], db: duckdb.AsyncDuckDB, progress: (done: number) => void): Promise<number> {
  let next = 0;
  let done = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < urls.length) {
      const item = urls[next++];
      const name = "arco://" + item.path;
      if (registered.has(name)) {
        progress(++done);
        continue;
      }
      let response: Response;
      try {
        response = await fetch(item.url, { method: "GET", credentials: "omit" });
      } catch (err) {
        throw new Error(
          `could not download ${item.path}: ${String(err)} (a network or CORS failure: the store must allow GET from this origin)`,
        );
      }
      if (!response.ok) {
        const hint = response.status === 403 ? " (the signed URL was refused: expired, tampered or out of scope)" : "";
        throw new Error(`could not download ${item.path}: HTTP ${response.status}${hint}`);
      }
      const data = new Uint8Array(await response.arrayBuffer());
      bytes += data.byteLength;
      await db.registerFileBuffer(name, data);
      registered.add(name);
      progress(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(FETCH_PARALLELISM, urls.length) }, worker));
  return bytes;
}

/**
 * Mint signed URLs for the caller's current snapshot and download the files. The
 * system tables are built from them when a query first uses each (see `prepare`).
 */
export async function loadSnapshot(progress: (message: string) => void = () => {}): Promise<Snapshot> {
  const started = performance.now();
  progress("starting DuckDB-WASM…");
  const dbReady = database();
  const minted = api<BrowserUrls>("/api/v1/browser/urls", { method: "POST", json: { domains: DOMAINS } }).catch(
    (err: unknown) => {
      if (err instanceof ApiError && err.status === 404) {
        throw new ApiError(404, err.type, "this server has no browser read path (POST /api/v1/browser/urls): " + err.message);
      }
      throw err;
    },
  );
  const [db, urls] = await Promise.all([dbReady, minted]);
  progress(`downloading ${urls.urls.length} files…`);
  const bytes = await fetchAll(urls.urls, db, (done) => progress(`downloaded ${done} of ${urls.urls.length} files…`));
  const conn = await connection();
  await conn.query(`CREATE SCHEMA IF NOT EXISTS ${VIEW_SCHEMA}`);
  // Tables of an older snapshot go; each is built again when a query first uses it.
  for (const name of built) await conn.query(`DROP TABLE IF EXISTS ${VIEW_SCHEMA}.${quoteIdent(name)}`);
  built.clear();
  systemSql = { ...urls.views };
  snapshot = {
    versions: urls.versions,
    views: Object.keys(urls.views).sort(),
    files: urls.urls.length,
    bytes,
    loadMs: performance.now() - started,
    loadedAt: new Date(),
  };
  return snapshot;
}

export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Replace `system.<name>` (outside strings, quoted identifiers and comments) with the
 * table that serves it, and list the names used. Unknown names are an error that
 * lists the known ones.
 */
export function rewriteSystem(sql: string, known: string[]): { sql: string; names: string[] } {
  const names = new Set<string>();
  let out = "";
  let i = 0;
  const n = sql.length;
  const isWord = (c: string | undefined) => !!c && /[A-Za-z0-9_$]/.test(c);
  while (i < n) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < n) {
        if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2;
          else break;
        } else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === "-" && sql[i + 1] === "-") {
      const j = sql.indexOf("\n", i);
      const end = j < 0 ? n : j;
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const j = sql.indexOf("*/", i + 2);
      const end = j < 0 ? n : j + 2;
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    const m = /^system\s*\.\s*(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))/i.exec(sql.slice(i, i + 200));
    if (m && !isWord(sql[i - 1]) && sql[i - 1] !== ".") {
      const name = (m[1] ?? m[2]).toLowerCase();
      if (!known.includes(name)) {
        throw new Error(`system.${name} is not a system table; the system tables are ${known.map((k) => "system." + k).join(", ")}`);
      }
      names.add(name);
      out += `${VIEW_SCHEMA}.${quoteIdent(name)}`;
      i += m[0].length;
      continue;
    }
    out += c;
    i++;
  }
  return { sql: out, names: [...names] };
}

/**
 * Build the system tables `names` (those not built yet) as DuckDB tables; ms taken.
 *
 * Tables, not views: DuckDB-WASM 1.28.0 traps ("table index is out of bounds") on
 * aggregates over these views, and a view would redo the base/delta merge of every
 * row on every query; built once, later queries scan plain columns (ADR 008).
 */
async function prepare(conn: duckdb.AsyncDuckDBConnection, names: string[]): Promise<{ ms: number; built: string[] }> {
  const started = performance.now();
  const todo = names.filter((n) => !built.has(n));
  for (const name of todo) {
    try {
      await conn.query(`CREATE OR REPLACE TABLE ${VIEW_SCHEMA}.${quoteIdent(name)} AS ${systemSql[name]}`);
    } catch (err) {
      throw new Error(`could not build system.${name} from the snapshot files in DuckDB-WASM: ${messageOf(err)}`);
    }
    built.add(name);
  }
  return { ms: performance.now() - started, built: todo };
}

/** One cell as the console shows it (NULL, numbers and text as typed; nested values as JSON). */
function formatValue(value: unknown, type: DataType): string {
  const plain = plainValue(value, type);
  if (plain === null) return "NULL";
  if (typeof plain === "string") return plain;
  if (typeof plain === "object") return JSON.stringify(plain);
  return String(plain);
}

const TIME_DIVISOR: Record<number, number> = { 0: 1, 1: 1e3, 2: 1e6, 3: 1e9 };

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/**
 * An Arrow value as plain JSON-able data, typed by ``type``: decimals with their
 * point, dates and times as ISO text, bytes escaped, nested values recursively.
 */
export function plainValue(value: unknown, type: DataType): unknown {
  if (value === null || value === undefined) return null;
  if (DataType.isDecimal(type)) {
    // Arrow hands decimals (and DuckDB's HUGEINT, as DECIMAL(38,0)) over as unscaled
    // 128-bit integers whose toJSON is a quoted string: place the point by hand.
    return withScale(String(value), type.scale);
  }
  if (DataType.isTimestamp(type) || DataType.isDate(type)) {
    const d = new Date(Number(value));
    if (Number.isNaN(d.getTime())) return String(value);
    return DataType.isDate(type) ? d.toISOString().slice(0, 10) : d.toISOString();
  }
  if (DataType.isTime(type)) {
    const seconds = Number(value) / (TIME_DIVISOR[type.unit] ?? 1);
    const whole = Math.floor(seconds);
    const frac = seconds - whole;
    const text = `${pad(Math.floor(whole / 3600))}:${pad(Math.floor(whole / 60) % 60)}:${pad(whole % 60)}`;
    return frac > 0 ? text + frac.toFixed(6).slice(1).replace(/0+$/, "") : text;
  }
  if (DataType.isInterval(type)) {
    // apache-arrow 13 cannot decode DuckDB's MONTH_DAY_NANO intervals.
    return "(interval: cast it to VARCHAR to see it)";
  }
  if (DataType.isBinary(type) || DataType.isFixedSizeBinary(type)) {
    let out = "";
    for (const byte of value as Uint8Array) {
      out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, "0")}`;
    }
    return out;
  }
  if (typeof value === "bigint") return value.toString();
  if (DataType.isList(type) || DataType.isFixedSizeList(type)) {
    const child = type.children[0].type;
    return Array.from(value as Iterable<unknown>, (v) => plainValue(v, child));
  }
  if (DataType.isStruct(type)) {
    const out: Record<string, unknown> = {};
    for (const field of type.children) out[field.name] = plainValue((value as Record<string, unknown>)[field.name], field.type);
    return out;
  }
  if (DataType.isMap(type)) {
    const [keyField, valueField] = type.children[0].type.children;
    const out: Record<string, unknown> = {};
    for (const [k, v] of value as Iterable<[unknown, unknown]>) out[String(plainValue(k, keyField.type))] = plainValue(v, valueField.type);
    return out;
  }
  if (typeof value === "object") {
    const json = (value as { toJSON?: () => unknown }).toJSON;
    return typeof json === "function" ? json.call(value) : value;
  }
  return value;
}

/** An unscaled integer's digits ("-250") with ``scale`` decimals ("-2.50"). */
export function withScale(digits: string, scale: number): string {
  if (scale <= 0) return digits;
  const negative = digits.startsWith("-");
  const abs = (negative ? digits.slice(1) : digits).padStart(scale + 1, "0");
  return `${negative ? "-" : ""}${abs.slice(0, -scale)}.${abs.slice(-scale)}`;
}

/** Run the user's SQL (with `system.<name>` rewritten); at most `maxRows` rows are materialised for display. */
export async function runQuery(sql: string, maxRows = 1000): Promise<QueryResult> {
  if (!snapshot) await loadSnapshot();
  await loadTables(dottedNames(sql));
  const rewritten = rewriteSystem(sql, snapshot!.views);
  const conn = await connection();
  const prepared = await prepare(conn, rewritten.names);
  const started = performance.now();
  let table: ArrowTable;
  try {
    table = await conn.query(rewritten.sql);
  } catch (err) {
    throw new Error(explain(messageOf(err)));
  }
  const elapsedMs = performance.now() - started;
  return { ...shape(table, maxRows), elapsedMs, prepareMs: prepared.ms, prepared: prepared.built };
}

function shape(table: ArrowTable, maxRows: number): Pick<QueryResult, "columns" | "rows" | "rowCount" | "truncated"> {
  const fields = table.schema.fields;
  const shown = Math.min(table.numRows, maxRows);
  const vectors = fields.map((_f, i) => table.getChildAt(i));
  const rows: string[][] = [];
  for (let r = 0; r < shown; r++) {
    rows.push(fields.map((f, c) => formatValue(vectors[c]?.get(r), f.type)));
  }
  return { columns: fields.map((f) => ({ name: f.name, type: String(f.type) })), rows, rowCount: table.numRows, truncated: table.numRows > shown };
}

// ------------------------------------------------------------------ table data
/** One catalog table's data files, signed, and the SQL that reads them (POST /api/v1/browser/tables). */
export interface BrowserTable {
  name: string;
  namespace: string;
  table: string;
  format: string;
  fingerprint: string;
  sql: string;
  urls: SignedUrl[];
}
/** Catalog tables built in DuckDB-WASM: name -> the fingerprint of the files they were built from. */
const loadedTables = new Map<string, string>();
const MAX_TABLES = 20;

/**
 * Dotted names `ns.table` (or `"ns.sub".table`) outside strings and comments, except
 * `system.*`: the candidates for catalog tables. The server says which ones are.
 */
export function dottedNames(sql: string): string[] {
  const out = new Set<string>();
  const part = '(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$-]*))';
  const dotted = new RegExp(`^${part}\\s*\\.\\s*${part}`);
  const isWord = (c: string | undefined) => !!c && /[A-Za-z0-9_$."]/.test(c);
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'") {
      const j = sql.indexOf("'", i + 1);
      i = j < 0 ? sql.length : j + 1;
      continue;
    }
    if (c === "-" && sql[i + 1] === "-") {
      const j = sql.indexOf("\n", i);
      i = j < 0 ? sql.length : j;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const j = sql.indexOf("*/", i + 2);
      i = j < 0 ? sql.length : j + 2;
      continue;
    }
    const m = isWord(sql[i - 1]) ? null : dotted.exec(sql.slice(i, i + 400));
    if (m) {
      const ns = m[1] !== undefined ? m[1].replace(/""/g, '"') : m[2];
      const name = m[3] !== undefined ? m[3].replace(/""/g, '"') : m[4];
      if (ns.toLowerCase() !== "system" && ns !== VIEW_SCHEMA) out.add(`${ns}.${name}`);
      i += m[0].length;
      // Further parts (`ns.table.column`) belong to the same chain.
      const more = new RegExp(`^\\s*\\.\\s*${part}`);
      for (let n = more.exec(sql.slice(i, i + 400)); n; n = more.exec(sql.slice(i, i + 400))) i += n[0].length;
      continue;
    }
    if (c === '"') {
      const j = sql.indexOf('"', i + 1);
      i = j < 0 ? sql.length : j + 1;
      continue;
    }
    i++;
  }
  return [...out];
}

/**
 * Build the catalog tables among `names` in DuckDB-WASM as `"<namespace>"."<table>"`,
 * from exactly their data files (signed URLs minted by the server, fetched with GET and
 * registered as buffers). Names that are no catalog table are left alone unless `strict`.
 */
export async function loadTables(names: string[], strict = false): Promise<BrowserTable[]> {
  if (names.length === 0) return [];
  const answer = await api<{ tables: BrowserTable[]; missing: string[] }>("/api/v1/browser/tables", {
    method: "POST",
    json: { tables: names.slice(0, MAX_TABLES), ignore_missing: !strict },
  });
  const db = await database();
  const todo = answer.tables.filter((t) => loadedTables.get(t.name) !== t.fingerprint);
  await fetchAll(
    todo.flatMap((t) => t.urls),
    db,
    () => {},
  );
  const conn = await connection();
  for (const t of todo) {
    const target = `${quoteIdent(t.namespace)}.${quoteIdent(t.table)}`;
    try {
      await conn.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(t.namespace)}`);
      await conn.query(`CREATE OR REPLACE TABLE ${target} AS ${t.sql}`);
    } catch (err) {
      throw new Error(`could not build ${t.name} from its data files in DuckDB-WASM: ${messageOf(err)}`);
    }
    loadedTables.set(t.name, t.fingerprint);
  }
  return answer.tables;
}

/** The first rows and the row count of one catalog table, read in the browser. */
export async function previewTable(namespace: string, name: string, limit = 20): Promise<{ result: Pick<QueryResult, "columns" | "rows" | "rowCount" | "truncated">; count: number }> {
  await loadTables([`${namespace}.${name}`], true);
  const conn = await connection();
  const target = `${quoteIdent(namespace)}.${quoteIdent(name)}`;
  const rows = await conn.query(`SELECT * FROM ${target} LIMIT ${Math.max(1, Math.floor(limit))}`);
  const count = await conn.query(`SELECT count(*)::DOUBLE AS n FROM ${target}`);
  return { result: shape(rows, limit), count: Number(count.getChildAt(0)?.get(0) ?? 0) };
}

/** DuckDB's message, with the internal view schema named the way the user wrote it. */
function explain(message: string): string {
  return message.replace(new RegExp(`${VIEW_SCHEMA}\\.`, "g"), "system.");
}
