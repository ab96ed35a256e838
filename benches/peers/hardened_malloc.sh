#!/bin/sh
# Builds GrapheneOS's hardened_malloc (its default configuration: the reference for a hardened
# general-purpose malloc) as target/release/libhardened_malloc.so, where `compare --exec` and
# `compare --programs` find it and preload it beside the other peers.
#
#   sh benches/peers/hardened_malloc.sh        # from the repository root
#
# The sources come from crates.io (the `hardened-malloc-sys` crate vendors them; its own build
# script makes a static library for Rust programs, which is not what LD_PRELOAD needs), fetched
# by Cargo through the manifest beside this script. The compile mirrors upstream's Makefile:
# config-default.conf is its config/default.mk as -D flags. GCC 12's C2x mode lacks the
# `alignas` keyword, so <stdalign.h> is included first.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/release}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cargo fetch --locked --manifest-path "$here/Cargo.toml" >&2
manifest=$(cargo metadata --locked --format-version 1 --manifest-path "$here/Cargo.toml" \
  | grep -o '"manifest_path":"[^"]*hardened-malloc-sys-[^"]*"' | head -1 | cut -d'"' -f4)
crate=$(dirname "$manifest")
src=$crate/vendor/hardened-malloc
defs=$(grep -v '^#' "$crate/config-default.conf" | grep '=' \
  | awk -F= '{ v = $2; if (v == "true") v = 1; if (v == "false") v = 0; printf "-D%s=%s ", $1, v }')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
flags="-O3 -fPIC -fvisibility=hidden -D_GNU_SOURCE $defs -I$src -I$src/include -I$src/third_party"
# shellcheck disable=SC2086
cc -std=c2x -include stdalign.h $flags -c "$src/chacha.c" "$src/h_malloc.c" "$src/memory.c" \
  "$src/pages.c" "$src/random.c" "$src/util.c"
# shellcheck disable=SC2086
c++ -std=c++17 $flags -c "$src/new.cc"
c++ -shared -o "$out/libhardened_malloc.so" ./*.o -Wl,-z,nodlopen -Wl,-z,now
echo "built $out/libhardened_malloc.so (hardened-malloc-sys $(basename "$crate" | sed 's/hardened-malloc-sys-//'))"
