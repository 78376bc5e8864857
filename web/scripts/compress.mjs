// Pre-compress the build (gzip, level 9) so the server can send .gz files to browsers that
// accept them: the DuckDB .wasm bundles shrink about 4x (18 MB -> 4.2 MB). Node's zlib only.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

const root = new URL("../../src/arco/web/static/", import.meta.url).pathname;
const compressible = /\.(wasm|js|mjs|css|html|svg|json)$/;
let before = 0;
let after = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (compressible.test(name) && !name.endsWith(".gz")) {
      const data = readFileSync(path);
      if (data.length < 1024) continue;
      const packed = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
      if (packed.length >= data.length * 0.9) continue;
      writeFileSync(path + ".gz", packed);
      before += data.length;
      after += packed.length;
    }
  }
}
walk(root);
console.log(`gzip: ${(before / 1e6).toFixed(1)} MB -> ${(after / 1e6).toFixed(1)} MB`);
