#!/usr/bin/env bash
# Coverage-guided fuzzing of every target in fuzz/ (cargo-fuzz, libFuzzer), for a long time
# each; CI runs the same for FUZZ_SECS=60. Run by hand:
#
#     bench/fuzz.sh                  # an hour per target (FUZZ_SECS=3600)
#     FUZZ_SECS=60 bench/fuzz.sh     # what CI runs
#     FUZZ_TARGETS="gateway_head" bench/fuzz.sh
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Each
# target starts from its committed seeds (fuzz/corpus/<target>, read only) and a working
# corpus under FUZZ_WORK (default: a temporary directory; give one to keep what a run found
# and merge it into the seeds with `cargo fuzz cmin`). A crash, a failed invariant, a leak
# or an input slower than 10 s stops that target: the input is left in
# fuzz/artifacts/<target>/ and the script exits 1 — make it a regression test in the normal
# suite. Printed per target: executions, executions/s, coverage (edges) and features, the
# working corpus, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECS=${FUZZ_SECS:-3600}
WORK=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/tessera-fuzz.XXXXXX")}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-${HOME:-/root}/.cache/tessera-fuzz-target}
TARGETS=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(cargo +nightly --version)"
echo "tessera: $(git rev-parse --short HEAD 2>/dev/null || echo '?'); ${SECS} s per target"
cargo +nightly fuzz build -O >/dev/null
failed=0
summary=()
for target in $TARGETS; do
  mkdir -p "$WORK/$target"
  log="$WORK/$target.log"
  if cargo +nightly fuzz run -O "$target" "$WORK/$target" "corpus/$target" -- \
      -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    outcome=ok
  else
    outcome=FAILED
    failed=1
    sed -n '/==ERROR\|panicked\|SUMMARY\|Test unit written/p' "$log" | head -20
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
  rss=$(awk '/stat::peak_rss_mb/ {print $2}' "$log")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$done_line")
  summary+=("$(printf '%-16s %-7s %12s %10s %8s %8s %12s %8s' "$target" "$outcome" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}")")
done
printf '\n%-16s %-7s %12s %10s %8s %8s %12s %8s\n' target result executions exec/s cov features corpus rss-MiB
printf '%s\n' "${summary[@]}"
exit "$failed"
