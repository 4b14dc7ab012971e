#!/usr/bin/env bash
# Where the token endpoint's CPU goes (issue 17): `tessera serve` (release, SQLite) pinned to
# one core, wrk on the other posting client_credentials with Basic authentication, and
# `perf record -g` on the server during the load. Prints wrk's figures, perf stat's
# per-token counts, and the profile by self time (symbols, then coarse categories).
#
#     bench/token-profile.sh                  # ~1 minute after the build
#     PROFILE_SECS=20 bench/token-profile.sh
#
# Tunables: PROFILE_SECS (10), PROFILE_CONNECTIONS (32), COMPARE_SERVER_CORE (0),
# COMPARE_LOAD_CORE (1), BENCH_TESSERA_BIN (profile this binary instead of building).
# Needs perf (Debian: linux-perf) and wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
for var in $(compgen -e | grep '^TESSERA_' || true); do unset "$var"; done

SECS=${PROFILE_SECS:-10}
CONNECTIONS=${PROFILE_CONNECTIONS:-32}
SERVER_CORE=${COMPARE_SERVER_CORE:-0}
LOAD_CORE=${COMPARE_LOAD_CORE:-1}
say() { printf '%s\n' "$*"; }

if [ -n "${BENCH_TESSERA_BIN:-}" ]; then
  TESSERA=$BENCH_TESSERA_BIN
else
  cargo build --release -q -p tessera
  TESSERA=${CARGO_TARGET_DIR:-$PWD/target}/release/tessera
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-tokprof.XXXXXX")
# shellcheck source=bench/lib/processes.sh
source bench/lib/processes.sh
taskset -pc "$LOAD_CORE" $$ >/dev/null

PORT=$(free_port)
ISSUER="http://127.0.0.1:$PORT"
env_idp=(TESSERA_LISTEN="127.0.0.1:$PORT" TESSERA_DATA_DIR="$TMP/idp" TESSERA_LOG__LEVEL=warn)
env "${env_idp[@]}" taskset -c "$SERVER_CORE" "$TESSERA" serve >"$TMP/idp.log" 2>&1 &
IDP_PID=$!; PIDS+=("$IDP_PID")
wait_http "$ISSUER/readyz" 200 "$TMP/idp.log"
SECRET=$(env "${env_idp[@]}" "$TESSERA" client create --name bench-cc --client-id bench-cc \
  --grant client_credentials --scope api 2>/dev/null | awk '/^client_secret/ {print $2}')
[ -n "$SECRET" ] || { say "error: cannot register the client"; exit 1; }
BASIC="Authorization: Basic $(printf '%s' "bench-cc:$SECRET" | base64 -w0)"
cat >"$TMP/token.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=api"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
code=$(curl -s -o "$TMP/first.json" -w '%{http_code}' -X POST -H "$BASIC" \
  -d 'grant_type=client_credentials&scope=api' "$ISSUER/oauth2/token")
[ "$code" = 200 ] || { say "error: the token endpoint answered $code: $(cat "$TMP/first.json")"; exit 1; }

say "date:    $(date -u +%FT%TZ); $(getconf _NPROCESSORS_ONLN) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
say "tessera: $("$TESSERA" --version 2>/dev/null || echo "$TESSERA"), $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ uncommitted changes)')"
say "load:    $(uptime)"
say "command: taskset -c $LOAD_CORE wrk -t1 -c$CONNECTIONS -d$((SECS + 4))s --latency -s token.lua -H 'Authorization: Basic …' $ISSUER/oauth2/token"
say "         perf record -g -F 999 -p <tessera serve on core $SERVER_CORE> -- sleep $SECS (after a 2 s warm-up)"
wrk -t1 -c"$CONNECTIONS" -d2s -s "$TMP/token.lua" -H "$BASIC" "$ISSUER/oauth2/token" >/dev/null
wrk -t1 -c"$CONNECTIONS" -d$((SECS + 4))s --latency -s "$TMP/token.lua" -H "$BASIC" "$ISSUER/oauth2/token" >"$TMP/wrk.txt" &
WRK_PID=$!; PIDS+=("$WRK_PID")
sleep 2
perf stat -x, -o "$TMP/stat.txt" -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter \
  -p "$IDP_PID" -- sleep "$SECS" >/dev/null 2>&1 &
STAT_PID=$!; PIDS+=("$STAT_PID")
perf record -q -g -F 999 -o "$TMP/perf.data" -p "$IDP_PID" -- sleep "$SECS" >/dev/null 2>&1
wait "$STAT_PID" || true; forget "$STAT_PID"
wait "$WRK_PID" || true; forget "$WRK_PID"
say ""
say "== wrk"
grep -E 'Requests/sec|Latency|50%|90%|99%|requests in|Non-2xx|Socket' "$TMP/wrk.txt"
RPS=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt")
N=$(awk -v r="$RPS" -v s="$SECS" 'BEGIN {printf "%.0f", r * s}')
say ""
say "== perf stat, per token (≈ $N tokens in the $SECS s window)"
awk -F, -v n="$N" '
  $3 ~ /^task-clock/ {printf "CPU:              %.1f µs/token (%.0f%% of one core)\n", $1 * 1000 / n, $1 / 10 / '"$SECS"'}
  $3 ~ /^context-switches/ {printf "context switches: %.2f /token\n", $1 / n}
  $3 ~ /^cpu-migrations/ {printf "migrations:       %.2f /token\n", $1 / n}
  $3 ~ /sys_enter/ {printf "syscalls:         %.2f /token\n", $1 / n}' "$TMP/stat.txt"
say ""
say "== threads (CPU share in the profile)"
perf report -i "$TMP/perf.data" --stdio --no-children --sort comm -g none 2>/dev/null | grep -E '^ +[0-9]' | head -10 || true
say ""
say "== self time by symbol (≥ 0.7 %)"
perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0.7 -g none 2>/dev/null \
  | grep -E '^ +[0-9]' | cut -c1-130 | sed 's/ *$//'
say ""
say "== self time by category"
perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0 -g none 2>/dev/null | awk '
  /^ *[0-9.]+%/ {
    pct = $1; sub(/%/, "", pct); dso = $2; sym = ""
    for (i = 4; i <= NF; i++) sym = sym " " $i
    if (dso ~ /kernel/) c = "kernel (syscalls, loopback TCP, futex, scheduler, file writes)"
    else if (sym ~ /sqlite3|sqlx|Vdbe|btree|pager|wal/i) c = "SQLite and sqlx"
    else if (sym ~ /aws_lc|nistz256|ecp_|bn_|BN_|beeu|ecdsa|ECDSA|p256|EC_|sha256|SHA256|RAND|CRYPTO|EVP|ec_|fiat/) c = "aws-lc (signature, SHA-256, RNG)"
    else if (dso ~ /libc/ && sym ~ /malloc|free|memmove|memcpy|memset|realloc|_int_|tcache|memcmp|cfree/) c = "malloc/free/memcpy"
    else if (sym ~ /serde|base64|json/) c = "JSON and base64"
    else if (sym ~ /hyper|tokio|h2::|http::|mio::|bytes::|axum|tower/) c = "hyper/tokio/axum (HTTP, runtime)"
    else if (sym ~ /tracing/) c = "tracing"
    else if (dso ~ /libc/) c = "libc other (locks, syscall wrappers)"
    else c = "other (application, unresolved)"
    cat[c] += pct }
  END { for (c in cat) printf "%6.1f%%  %s\n", cat[c], c }' | sort -rn
say ""
say "== kernel self time by symbol (top 12)"
perf report -i "$TMP/perf.data" --stdio --no-children --sort symbol --dso '[kernel.kallsyms]' -g none 2>/dev/null \
  | grep -E '^ +[0-9]' | head -12 | cut -c1-110 || true
say ""
say "== threads by library (self time)"
perf report -i "$TMP/perf.data" --stdio --no-children --sort comm,dso -g none 2>/dev/null \
  | grep -E '^ +[0-9]' | head -12 | cut -c1-110 || true
say ""
say "RSS after: $(awk '/^VmRSS:/ {printf "%.1f MiB", $2 / 1024}' /proc/$IDP_PID/status)"
