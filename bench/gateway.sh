#!/usr/bin/env bash
# Gateway benchmark (issue 6): what does verifying an ES256 access token on every request
# cost, compared with a plain, well-tuned reverse proxy? Run by hand, not in CI:
#
#     bench/gateway.sh                 # ~2 minutes after the build; output on stdout
#     bench/gateway.sh | tee bench/results/gateway-$(date +%F).txt
#
# Four cases, each measured with the same wrk command (same Authorization header for all,
# a short warm-up run first, then the measured run):
#   (a) the upstream directly;
#   (b) nginx as a plain reverse proxy to it (keep-alive to the upstream, worker_processes
#       auto, access_log off);
#   (c) `tessera gateway` verifying the token in full on every request (auth cache off);
#   (d) `tessera gateway` with the auth cache on (the default).
# Target: (c) >= 0.8 x (b) in requests/s.
#
# The upstream is nginx answering `return 200 "ok\n"` from its own process (not the proxy's),
# started once and identical for every case. nginx was chosen over a small Rust server
# because it is the fastest thing available here for a fixed answer, so the upstream's share
# of the CPU is as small as possible and the same in all four cases; its numbers in (a) are
# an upper bound for the machine, not something the gateway is compared with directly.
#
# The identity provider is `tessera serve` (release) on SQLite in a temporary directory; a
# verified user is created with `tessera user create`, logs in through `POST /auth/login`,
# and that access token (ES256, the default algorithm; lifetime 3600 s for the run) is sent
# in every request of every case. The gateway fetches the provider's keys at start and polls
# its revocation feed in the background, as in production.
#
# Besides wrk's numbers the script records the CPU time each process used during each
# measured run (from /proc), so "where the time goes" can be read per request; and when
# (c)/(b) is below the target it takes a short sampling profile of the gateway in cases (c)
# and (d), after their measured runs, with `perf record -e cpu-clock` (hardware counters are
# often not available in VMs; set BENCH_PROFILE=0 to skip, 1 to force).
#
# Everything listens on 127.0.0.1 only, in temporary directories; every process started
# here is stopped on exit. Installs wrk and nginx with apt-get when missing (root or sudo).
# Tunables: BENCH_DURATION (15s), BENCH_WARMUP (3s), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_ALG (ES256; RS256 or EdDSA to compare the provider's other access-token algorithms).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-15s}
WARMUP=${BENCH_WARMUP:-3s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
PROFILE=${BENCH_PROFILE:-auto}
ALG=${BENCH_ALG:-ES256}
TARGET=0.8
started_at=$(date +%s)

# The provider and the gateway must not pick up the caller's settings.

# shellcheck source=bench/lib/gateway-common.sh
source bench/lib/gateway-common.sh

# --- (b) nginx reverse proxy ----------------------------------------------------------------
PX_PORT=$(free_port)
mkdir -p "$TMP/proxy"
{
  nginx_common "$TMP/proxy"
  say "http {"
  nginx_http_common "$TMP/proxy"
  cat <<EOF
  upstream backend {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$PX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$TMP/proxy/nginx.conf"

section "runs"
check_ok "http://127.0.0.1:$UP_PORT/"
measure a "upstream directly" "http://127.0.0.1:$UP_PORT/" "$UP_PID"

"$NGINX" -p "$TMP/proxy" -e "$TMP/proxy/error.log" -c "$TMP/proxy/nginx.conf" &
PX_PID=$!; PIDS+=("$PX_PID")
wait_http "http://127.0.0.1:$PX_PORT/" 200 "$TMP/proxy/error.log"
check_ok "http://127.0.0.1:$PX_PORT/"
measure b "nginx reverse proxy" "http://127.0.0.1:$PX_PORT/" "$PX_PID"
stop "$PX_PID"


start_gateway gateway-nocache false
measure c "gateway, auth cache off" "$GW_URL" "$GW_PID"
say "    tessera_gateway_auth_cache_entries after (c): $(cache_entries) (0: every request verified in full)"
GW_C_PID=$GW_PID; GW_C_URL=$GW_URL

# --- profiles, while each gateway still runs (after its measured run) -------------------------
ratio_cb=$(awk -v c="${RPS[c]}" -v b="${RPS[b]}" 'BEGIN {printf "%.3f", c / b}')
below=$(awk -v r="$ratio_cb" -v t=$TARGET 'BEGIN {print (r < t) ? 1 : 0}')
DO_PROFILE=0
if [ "$PROFILE" = 1 ] || { [ "$PROFILE" = auto ] && [ "$below" = 1 ]; }; then
  if command -v perf >/dev/null; then DO_PROFILE=1; else say "no profile: perf is not installed (Debian: linux-perf)"; fi
fi
declare -A PROFILE_TOP PROFILE_CAT SYSCALLS CSWITCH TASKCLOCK
profile() { # CASE PID URL: 10 s of the same wrk load; perf stat on the server (all cases) and
            # perf record on the gateway (c, d). Runs after the measured runs, never during.
  local case=$1 pid=$2 url=$3 wrk_bg data="$TMP/perf-$1.data" pids rps n rec_pid=""
  pids=$(tree_pids "$pid" | paste -sd,)
  say "profiling ($case): perf stat$( [ "$case" = b ] || echo ' + perf record -e cpu-clock') on the server during 10 s of the same wrk load"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d12s -H "$AUTH" "$url" >"$TMP/wrk-profile-$case.txt" &
  wrk_bg=$!; PIDS+=("$wrk_bg")
  sleep 1
  if [ "$case" != b ]; then
    perf record -q -e cpu-clock -F 1999 -o "$data" -p "$pid" -- sleep 10 >/dev/null 2>&1 &
    rec_pid=$!; PIDS+=("$rec_pid")
  fi
  perf stat -x, -o "$TMP/perf-stat-$case.txt" -e task-clock,context-switches,raw_syscalls:sys_enter \
    -p "$pids" -- sleep 10 >/dev/null 2>&1 || true
  if [ -n "$rec_pid" ]; then wait "$rec_pid" || true; forget "$rec_pid"; fi
  wait "$wrk_bg" || true; forget "$wrk_bg"
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk-profile-$case.txt")
  n=$(awk -v r="${rps:-0}" 'BEGIN {printf "%.0f", r * 10}')
  if [ "${n:-0}" -gt 0 ]; then
    TASKCLOCK[$case]=$(awk -F, -v n="$n" '$3 ~ /^task-clock/ {printf "%.1f", $1 * 1000 / n}' "$TMP/perf-stat-$case.txt")
    CSWITCH[$case]=$(awk -F, -v n="$n" '$3 ~ /^context-switches/ {printf "%.2f", $1 / n}' "$TMP/perf-stat-$case.txt")
    SYSCALLS[$case]=$(awk -F, -v n="$n" '$3 ~ /sys_enter/ {printf "%.2f", $1 / n}' "$TMP/perf-stat-$case.txt")
  fi
  [ "$case" = b ] && return 0
  if [ -s "$data" ]; then
    PROFILE_TOP[$case]=$(perf report -i "$data" --stdio --no-children --sort dso,symbol --percent-limit 1 \
                           2>/dev/null | grep -v '^#' | grep -v '^$' | head -20 | cut -c1-120 | sed 's/ *$//')
    # Self time by category, and as CPU µs per request (share x the gateway's CPU per request
    # in the measured run).
    PROFILE_CAT[$case]=$(perf report -i "$data" --stdio --no-children --sort dso,symbol --percent-limit 0 \
                           2>/dev/null | awk -v per_req="$(awk -v x="${CPU_SUT[$case]}" -v n="${REQS[$case]}" 'BEGIN {print x / n}')" '
      /^ *[0-9.]+%/ {
        pct = $1; sub(/%/, "", pct); dso = $2; sym = ""
        for (i = 4; i <= NF; i++) sym = sym " " $i
        if (dso ~ /kernel/) c = "kernel: syscalls, loopback TCP, wake-ups"
        else if (sym ~ /aws_lc|nistz256|ecp_|bn_|BN_|beeu|ecdsa|ECDSA|p256|EC_|sha256|SHA256|RAND/) c = "aws-lc: ECDSA P-256 verify (+ SHA-256, RNG)"
        else if (sym ~ /serde|base64|jsonwebtoken|tessera_verify/) c = "JWT decode: base64, JSON, claims"
        else if (dso ~ /libc/ && sym ~ /malloc|free|memmove|memcpy|memset|realloc|_int_|tcache|memcmp/) c = "libc: malloc/free/memcpy"
        else if (dso ~ /libc/) c = "libc: other"
        else if (sym ~ /hyper|tokio|h2::|http::|mio::|bytes::/) c = "hyper/tokio: HTTP and runtime"
        else c = "other: gateway logic, metrics, tracing, unresolved"
        cat[c] += pct }
      END { for (c in cat) printf "%6.1f%%  %6.1f µs  %s\n", cat[c], cat[c] * per_req / 100, c }' | sort -rn)
  else
    PROFILE_TOP[$case]="(perf record failed: not supported here)"
  fi
}
[ "$DO_PROFILE" = 1 ] && profile c "$GW_C_PID" "$GW_C_URL"
stop "$GW_C_PID"

start_gateway gateway-cache true
measure d "gateway, auth cache on" "$GW_URL" "$GW_PID"
say "    tessera_gateway_auth_cache_entries after (d): $(cache_entries)"
[ "$DO_PROFILE" = 1 ] && profile d "$GW_PID" "$GW_URL"
stop "$GW_PID"
if [ "$DO_PROFILE" = 1 ]; then # the plain proxy again, for its syscalls and switches per request
  "$NGINX" -p "$TMP/proxy" -e "$TMP/proxy/error.log" -c "$TMP/proxy/nginx.conf" &
  PX_PID=$!; PIDS+=("$PX_PID")
  wait_http "http://127.0.0.1:$PX_PORT/" 200 "$TMP/proxy/error.log"
  profile b "$PX_PID" "http://127.0.0.1:$PX_PORT/"
  stop "$PX_PID"
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------------------
section "wrk output"
printf '%s' "$RAW"

results_header
row a "upstream directly"
row b "nginx reverse proxy"
row c "gateway, auth cache off"
row d "gateway, auth cache on"
say ""
verdict=$(awk -v r="$ratio_cb" -v t=$TARGET 'BEGIN {print (r >= t) ? "MET" : "NOT MET"}')
say "(c)/(b) = $(ratio c b)   target (c) >= $TARGET x (b): $verdict"
say "(d)/(b) = $(ratio d b)"
say "(b)/(a) = $(ratio b a)"
say "(d)/(c) = $(ratio d c)   (what the auth cache buys)"
say ""
say "Note: $(nproc) cores for everything — wrk, the server under test and the upstream compete for"
say "them, so requests/s is bounded by the CPU per request of all three together (columns above);"
say "'rest' is CPU the machine spent outside those processes (loopback softirq, the provider,"
say "other jobs running at the same time). In (a) the upstream is the server: its CPU is under 'upstream'."
say "load after:  $load_after (1/5/15 min, taken right after the last measured run: includes this benchmark's own wrk, servers and upstream)"
if [ "$DO_PROFILE" = 1 ]; then
  section "profile: the server under test, per request (perf stat, separate 10 s runs)"
  printf '%-30s %14s %16s %20s\n' "case" "CPU µs" "syscalls" "context switches"
  for case in b c d; do
    case $case in b) l="(b) nginx reverse proxy";; c) l="(c) gateway, auth cache off";; d) l="(d) gateway, auth cache on";; esac
    printf '%-30s %14s %16s %20s\n' "$l" "${TASKCLOCK[$case]:-?}" "${SYSCALLS[$case]:-?}" "${CSWITCH[$case]:-?}"
  done
  say "(perf record was attached in (c) and (d) and inflates their CPU here: take CPU from the"
  say "results table, syscalls and context switches from this one)"
  for case in c d; do
    section "profile of ($case): the gateway's CPU by category (self time; µs per request)"
    say "${PROFILE_CAT[$case]:-}"
  done
  section "profile of (c): top symbols (self time, >= 1%)"
  say "${PROFILE_TOP[c]:-}"
fi
say ""
say "runtime: $(( $(date +%s) - started_at )) s"
