// Runs each allocator's module in V8 (Node.js): actions per microsecond for the same workload,
// memory.size after it, and the allocator's code bytes (the module's code section against the
// `null` build's). Usage: node run.mjs DIR, where DIR holds ALLOCATOR.wasm files and null.wasm.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const dir = process.argv[2];
const ACTIONS = 2_000_000;
const REPS = 7;

// Bytes of a module's code section (function bodies), parsed from its section headers.
function codeBytes(buf) {
  let i = 8;
  const leb = () => {
    let v = 0, shift = 0, b;
    do { b = buf[i++]; v |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
    return v >>> 0;
  };
  while (i < buf.length) {
    const id = buf[i++];
    const len = leb();
    if (id === 10) return len;
    i += len;
  }
  return 0;
}

const names = readdirSync(dir).filter((f) => f.endsWith(".wasm")).map((f) => f.slice(0, -5));
const baseline = codeBytes(readFileSync(join(dir, "null.wasm")));
const rows = [];
for (const name of names.filter((n) => n !== "null")) {
  const bytes = readFileSync(join(dir, `${name}.wasm`));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const { bench, clear, memory } = instance.exports;
  const code = codeBytes(bytes) - baseline;
  // An allocator that runs out of its 4 GiB address space (or traps) is reported, not timed.
  let failed = null;
  const times = [];
  try {
    if (bench(200_000, 7) === 0) failed = "an allocation failed in the warm-up";
    clear();
    for (let r = 0; !failed && r < REPS; r++) {
      const t0 = performance.now();
      const ok = bench(ACTIONS, 1234 + r);
      const t1 = performance.now();
      if (ok === 0) failed = `an allocation failed in run ${r + 1}`;
      clear();
      times.push(t1 - t0);
    }
  } catch (e) {
    failed = `trapped: ${e.message}`;
  }
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1];
  const pages = memory.buffer.byteLength / 65536;
  rows.push({ name, perUs: failed ? 0 : ACTIONS / (ms * 1000), failed, pages, code, total: bytes.length });
}
const talc = rows.find((r) => r.name === "talc");
rows.sort((a, b) => b.perUs - a.perUs);
console.log(`Node ${process.version} (V8 ${process.versions.v8}), ${ACTIONS.toLocaleString()} actions, median of ${REPS}\n`);
console.log("| allocator | actions/µs | × talc | memory.size after (64 KiB pages) |\n|---|--:|--:|--:|");
for (const r of rows) {
  const speed = r.failed ? `failed (${r.failed})` : r.perUs.toFixed(1);
  const ratio = r.failed || !talc ? "–" : (r.perUs / talc.perUs).toFixed(2);
  console.log(`| ${r.name} | ${speed} | ${ratio} | ${r.pages} |`);
}
rows.sort((a, b) => a.code - b.code);
console.log("\n| allocator | allocator code bytes (vs host-call baseline) | whole module bytes |\n|---|--:|--:|");
for (const r of rows) console.log(`| ${r.name} | ${r.code} | ${r.total} |`);
