#!/usr/bin/env bash
# Builds and runs every fuzz target for SECONDS each (default 20), without a sanitizer so it works
# on stable. Fails on any finding: the crashing input is minimised into regressions/TARGET/, where
# a plain `cargo test` replays it. Prints executions per second and totals for each target.
#
#   fuzz/run-all.sh 600              # ten minutes per target
#   SANITIZER=address fuzz/run-all.sh 60   # AddressSanitizer (nightly or RUSTC_BOOTSTRAP=1)
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
sanitizer="${SANITIZER:-none}"
# The heap validators run after operations unless FEATURES says otherwise (FEATURES= to skip).
features="${FEATURES-validate}"
feature_args=()
[ -n "$features" ] && feature_args=(--features "$features")
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cargo fuzz build -s "$sanitizer" -O "${feature_args[@]}"
failed=()
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target" "artifacts/$target" "regressions/$target"
  log="artifacts/$target/run.log"
  printf '== %s: %ss ==\n' "$target" "$seconds"
  # Corpus: the writable corpus/TARGET first, then the committed seeds and regressions.
  if cargo fuzz run -s "$sanitizer" -O "${feature_args[@]}" "$target" "corpus/$target" "seeds/$target" "regressions/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
      -artifact_prefix="artifacts/$target/" >"$log" 2>&1; then
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
    printf '%s: ok, %s executions, %s per second\n' "$target" "${execs:-?}" "${rate:-?}"
  else
    crash=$(ls -t "artifacts/$target"/crash-* "artifacts/$target"/oom-* "artifacts/$target"/timeout-* 2>/dev/null | head -1 || true)
    printf '%s: FINDING (%s)\n' "$target" "${crash:-see $log}"
    tail -40 "$log"
    if [ -n "$crash" ]; then
      min="regressions/$target/$(basename "$crash")"
      cargo fuzz tmin -s "$sanitizer" -O "${feature_args[@]}" "$target" "$crash" -- -runs=2000 >/dev/null 2>&1 || true
      minimized=$(ls -t "artifacts/$target"/minimized-from-* 2>/dev/null | head -1 || true)
      cp "${minimized:-$crash}" "$min"
      printf 'minimised input kept as %s (replayed by cargo test)\n' "$min"
    fi
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  printf 'findings in: %s\n' "${failed[*]}"
  exit 1
fi
