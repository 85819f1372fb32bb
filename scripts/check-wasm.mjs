// Checks the wasm in a built bundle and reports its size.
// - Fails if the module imports anything from `env` (the sign of C code built by gcc instead of
//   clang for wasm32: such a module does not load in a browser).
// - Prints the raw and gzipped sizes.
// Usage: node scripts/check-wasm.mjs dist
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const dir = process.argv[2] ?? "dist";
const wasmFiles = readdirSync(dir).filter((name) => name.endsWith(".wasm"));
if (wasmFiles.length === 0) {
  console.error(`error: no .wasm in ${dir}`);
  process.exit(1);
}
let failed = false;
for (const name of wasmFiles) {
  const bytes = readFileSync(join(dir, name));
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(bytes));
  const fromEnv = imports.filter((entry) => entry.module === "env").map((entry) => entry.name);
  if (fromEnv.length > 0) {
    console.error(`error: ${name} imports from env: ${fromEnv.join(", ")} (was C code built without clang?)`);
    failed = true;
  }
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  const kib = (n) => (n / 1024).toFixed(1);
  console.log(`wasm size: ${name} ${kib(bytes.length)} KiB raw, ${kib(gzipped)} KiB gzipped (gzip -9)`);
}
process.exit(failed ? 1 : 0);
