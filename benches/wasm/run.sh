#!/usr/bin/env bash
# Builds the benchmark module once per allocator (LTO, opt-level "z", as wasm authors ship) and
# runs them in V8 through Node.js. Prints the speed table and the code-size table.
#
#   benches/wasm/run.sh
set -euo pipefail
cd "$(dirname "$0")"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
out=target/modules
mkdir -p "$out"
for a in ours ours-small talc rlsf lol_alloc dlmalloc wee_alloc null; do
  if cargo build --quiet --release --target wasm32-unknown-unknown --features "$a" 2>"$out/$a.log"; then
    cp target/wasm32-unknown-unknown/release/wasm_bench.wasm "$out/$a.wasm"
  else
    echo "$a: does not build for wasm32 with this toolchain (see $out/$a.log)" >&2
    rm -f "$out/$a.wasm"
  fi
done
node run.mjs "$out"
