#!/bin/bash
# What each allocator does with the misuse programs of alloc-malloc's tests (tests/c/misuse.c and
# tests/c/hardened.c): a Markdown table, one row per case, one column per allocator, each cell
# how the program ended (ABRT, SEGV: caught; exit 0: it ran on; n/a: the allocator lacks the
# entry point the case calls, `free_sized`).
#
#   cargo build --release -p alloc-malloc && sh benches/peers/hardened_malloc.sh
#   bash benches/peers/detections.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
# Which builds: the release ones by default; OURS and HARDENED_MALLOC name others (CI checks its
# debug build and the hardened_malloc it built under target/peers).
ours=${OURS:-$root/target/release/liballoc_malloc.so}
hm=${HARDENED_MALLOC:-$root/target/release/libhardened_malloc.so}
scudo=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so 2>/dev/null | tail -1)
[ -f "$ours" ] || { echo "build the socket first: cargo build --release -p alloc-malloc" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# -O0: the stores into freed blocks must happen (as the tests build them).
for p in misuse hardened; do
  gcc -O0 -pthread -w -o "$work/$p" "$root/alloc-malloc/tests/c/$p.c" || exit 1
done
misuse="double-free overflow foreign interior double-free-large overflow-large interior-large
  realloc-freed realloc-interior usable-size-freed"
hardened="write-after-free mid-write-after-free large-read-after-free large-write-after-free
  large-aligned-write-after-free zero-size-read zero-size-write sized-mismatch sized-mismatch-large
  aligned-sized-mismatch two-threads-double-free forged-header forged-zero-header foreign-with-large-live"
names=(glibc general hardened)
envs=("" "ALLOC_MALLOC_PRESET=general LD_PRELOAD=$ours" "ALLOC_MALLOC_PRESET=hardened LD_PRELOAD=$ours")
if [ -f "$hm" ]; then names+=(hardened_malloc); envs+=("LD_PRELOAD=$hm"); fi
if [ -n "$scudo" ]; then names+=(Scudo); envs+=("LD_PRELOAD=$scudo"); fi
ended() {
  # shellcheck disable=SC2086
  timeout 30 env $1 "$2" "$3" >/dev/null 2>&1
  local rc=$?
  case $rc in
    134) echo ABRT ;; 139) echo SEGV ;; 135) echo BUS ;; 133) echo TRAP ;; 132) echo ILL ;;
    2) echo "n/a" ;; 124) echo "timeout" ;; *) [ $rc -gt 128 ] && echo "signal $((rc - 128))" || echo "exit $rc" ;;
  esac
}
printf '| case |'; printf ' %s |' "${names[@]}"; printf '\n|---|'; printf -- '---|%.0s' "${names[@]}"; printf '\n'
for prog in misuse hardened; do
  cases=$misuse; [ $prog = hardened ] && cases=$hardened
  for c in $cases; do
    printf '| %s |' "$c"
    for i in "${!names[@]}"; do printf ' %s |' "$(ended "${envs[$i]}" "$work/$prog" "$c")"; done
    printf '\n'
  done
done
