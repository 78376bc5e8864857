// Runs the browser-urls view SQL in DuckDB-WASM (the web UI's engine) under Node.
// Usage: node wasm_views.cjs JOB.json  where JOB = {"dist": ".../duckdb-wasm/dist/",
//   "files": {"arco://<path>": "<local file>"}, "views": {"<name>": "<sql>"}, "out": "<dir>",
//   "queries"?: ["<sql over arco_sys.*>", ...]}
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
  process.stdout.write(JSON.stringify({ version, errors, queries }));
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
