// Runs the browser-urls view SQL in DuckDB-WASM (the web UI's engine) under Node.
// Usage: node wasm_views.cjs JOB.json  where JOB = {"dist": ".../duckdb-wasm/dist/",
//   "files": {"arco://<path>": "<local file>"}, "views": {"<name>": "<sql>"}, "out": "<dir>",
//   "queries"?: ["<sql over arco_sys.*>", ...], "sweep"?: {"view", "from", "to"}}
// Each view's rows are written to <out>/<name>.arrow and each query's to
// <out>/query-<i>.arrow (Arrow IPC streams), so the Python test compares typed
// values, not printed ones.
const fs = require("fs");
const path = require("path");
const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const duckdb = require(path.join(job.dist, "duckdb-node-blocking.cjs"));
// The apache-arrow copy DuckDB-WASM itself loads (web/node_modules).
const arrow = require(require.resolve("apache-arrow", { paths: [job.dist] }));

(async () => {
  const bundles = {
    mvp: { mainModule: path.join(job.dist, "duckdb-mvp.wasm"), mainWorker: path.join(job.dist, "duckdb-node-mvp.worker.cjs") },
    eh: { mainModule: path.join(job.dist, "duckdb-eh.wasm"), mainWorker: path.join(job.dist, "duckdb-node-eh.worker.cjs") },
  };
  const db = await duckdb.createDuckDB(bundles, new duckdb.VoidLogger(), duckdb.NODE_RUNTIME);
  await db.instantiate(() => {});
  for (const [name, local] of Object.entries(job.files)) {
    db.registerFileBuffer(name, new Uint8Array(fs.readFileSync(local)));
  }
  const conn = db.connect();
  const version = conn.query("SELECT version() AS v").toArray()[0].v;
  conn.query("CREATE SCHEMA arco_sys");
  const errors = {};
  for (const [name, sql] of Object.entries(job.views)) {
    try {
      // Built as a table, as the web UI does (ADR 008); ARCO_WASM_VIEWS=1 builds views.
      const kind = process.env.ARCO_WASM_VIEWS === "1" ? "VIEW" : "TABLE";
      conn.query(`CREATE ${kind} arco_sys."${name}" AS ${sql}`);
      const table = conn.query(`SELECT * FROM arco_sys."${name}"`);
      fs.writeFileSync(path.join(job.out, `${name}.arrow`), arrow.tableToIPC(table, "stream"));
    } catch (err) {
      errors[name] = String(err && err.message ? err.message : err);
    }
  }
  // Extra queries over the built tables (job.queries), as a console user writes them.
  const queries = {};
  for (const [i, sql] of (job.queries || []).entries()) {
    try {
      const table = conn.query(sql);
      fs.writeFileSync(path.join(job.out, `query-${i}.arrow`), arrow.tableToIPC(table, "stream"));
      queries[i] = null;
    } catch (err) {
      queries[i] = String(err && err.message ? err.message : err);
    }
  }
  // job.sweep = {view, from, to}: build one view again and again, its SQL padded with
  // trailing blanks to every length in [from, to), each allocation shifting the heap a
  // little - DuckDB-WASM 1.28.0 traps on some layouts only. Lists the lengths that
  // failed (a fresh database after each, a trap leaves the old one unusable).
  const failed = [];
  if (job.sweep) {
    let c = conn;
    const sql = `CREATE OR REPLACE TABLE arco_sys."${job.sweep.view}" AS ${job.views[job.sweep.view]}`;
    for (let n = Math.max(job.sweep.from, sql.length); n < job.sweep.to; n++) {
      try {
        c.query(sql + " ".repeat(n - sql.length));
      } catch (err) {
        failed.push([n, String(err && err.message ? err.message : err)]);
        const fresh = await duckdb.createDuckDB(bundles, new duckdb.VoidLogger(), duckdb.NODE_RUNTIME);
        await fresh.instantiate(() => {});
        for (const [name, local] of Object.entries(job.files)) {
          fresh.registerFileBuffer(name, new Uint8Array(fs.readFileSync(local)));
        }
        c = fresh.connect();
        c.query("CREATE SCHEMA arco_sys");
      }
    }
  }
  process.stdout.write(JSON.stringify({ version, errors, queries, failed }));
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
