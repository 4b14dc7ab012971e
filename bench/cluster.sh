#!/usr/bin/env bash
# Cluster benchmark (issue 7): logins/s and refreshes/s through HAProxy with 1, 2 and 3
# `tessera serve` nodes on the same PostgreSQL and Redis, side by side. Run by hand, not in
# CI:
#
#     bench/cluster.sh                 # ~3 minutes after the build; output on stdout
#     bench/cluster.sh | tee bench/results/cluster-$(date +%F).txt
#
# For each node count: the nodes (release build, default Argon2id parameters: 19 MiB,
# 2 passes) behind HAProxy (round-robin, `option forwardfor`, health checks on /healthz),
# then the load generator crates/tessera/examples/cluster_load.rs at a fixed concurrency:
#   logins    — each worker repeats POST /auth/login for its own account;
#   refreshes — each worker logs in once, then chains POST /auth/reissue (each request
#               presents the pair the previous one returned; wrk cannot chain tokens).
# One account per worker: the login throttle limits attempts in flight per account, and
# counts only failures per IP (accounts/throttle.rs), so successful logins from one
# address are not held back.
#
# On a machine with few cores every node, PostgreSQL, Redis, HAProxy and the load
# generator share the same CPUs: more nodes add no CPU, so the expected shape is flat
# throughput (coordination through PostgreSQL and Redis costs nothing visible), not
# linear scaling. Scaling out needs machines, not processes. The rates also depend on how
# much of the CPU other processes take meanwhile (on a busy machine, N nodes run N times as
# many threads and win a larger share of it), so the script also prints the CPU time the
# nodes spent per request (from /proc): that figure does not depend on the neighbours, and
# a flat cpu-ms/op across 1-3 nodes is what "no cost from coordination" looks like.
#
# Its own Redis (a free port, no persistence) and its own database `cluster_bench`
# on the local PostgreSQL (dropped and created); everything on 127.0.0.1, in a temporary
# directory; every process started here is stopped on exit.
# Tunables: BENCH_DURATION (15 s), BENCH_CONCURRENCY (16), BENCH_NODES ("1 2 3").
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-15}
CONCURRENCY=${BENCH_CONCURRENCY:-16}
NODE_COUNTS=${BENCH_NODES:-1 2 3}
PG_HOST=127.0.0.1
DB=cluster_bench

# The nodes must not pick up the caller's settings.
for var in $(compgen -e | grep '^TESSERA_' || true); do unset "$var"; done

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s ==\n' "$*"; }

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || { say "error: haproxy is not installed (Debian: apt-get install haproxy)"; exit 1; }
command -v redis-server >/dev/null || { say "error: redis-server is not installed"; exit 1; }
pg_isready -q -h $PG_HOST -p 5432 || { say "error: no PostgreSQL at $PG_HOST:5432"; exit 1; }

say "building: cargo build --release -p tessera --bin tessera --example cluster_load" >&2
cargo build --release -q -p tessera --bin tessera --example cluster_load
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
TESSERA=$TARGET/release/tessera
LOAD=$TARGET/release/examples/cluster_load

# --- processes, cleanup ----------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-clusterbench.XXXXXX")
WAIT_HTTP_SECS=60
# shellcheck source=bench/lib/processes.sh
source bench/lib/processes.sh
# shellcheck source=bench/lib/haproxy.sh
source bench/lib/haproxy.sh

# --- machine ---------------------------------------------------------------------------------
section "machine"
say "date:        $(date -u +%FT%TZ)"
say "cores:       $(nproc) (nproc) — nodes, PostgreSQL, Redis, HAProxy and the load generator all share them"
say "cpu:         $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
say "memory:      $(free -h | awk '/Mem:/ {print $2 " total, " $7 " available"}')"
say "haproxy:     $("$HAPROXY" -v | sed -n 1p)"
say "redis:       $(redis-server --version)"
say "postgresql:  $(psql -h $PG_HOST -U postgres -Atc 'show server_version' postgres)"
say "tessera:     $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ uncommitted changes)'), release build, $(rustc --version)"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
say "load:        $CONCURRENCY concurrent clients, ${DURATION} s per measurement, one account per client"

# --- shared state: database, Redis, users ----------------------------------------------------
dropdb -h $PG_HOST -U postgres --if-exists $DB
createdb -h $PG_HOST -U postgres $DB
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" \
  >"$TMP/redis.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
MASTER_KEY=$(head -c 32 /dev/urandom | base64)
LB_PORT=$(free_port)
common_env=(TESSERA_DATABASE_URL="postgres://postgres@$PG_HOST:5432/$DB"
            TESSERA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
            TESSERA_MASTER_KEY="$MASTER_KEY"
            TESSERA_ISSUER="http://127.0.0.1:$LB_PORT"
            TESSERA_HTTP__TRUSTED_PROXIES=127.0.0.1/32
            TESSERA_LOG__LEVEL=warn)
env "${common_env[@]}" TESSERA_DATA_DIR="$TMP/cli" "$TESSERA" migrate >"$TMP/migrate.log" 2>&1 \
  || { cat "$TMP/migrate.log"; exit 1; }
PREFIX=bench-
PASSWORD="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-Cl"
for i in $(seq 0 $((CONCURRENCY - 1))); do
  env "${common_env[@]}" TESSERA_DATA_DIR="$TMP/cli" "$TESSERA" user create \
    --email "$PREFIX$i@example.com" --password "$PASSWORD" --verified >>"$TMP/users.log" 2>&1 \
    || { cat "$TMP/users.log"; exit 1; }
done

# --- one configuration: N nodes behind HAProxy -----------------------------------------------
NODE_PIDS=()
start_cluster() { # N
  local n=$1 i port servers=""
  NODE_PIDS=()
  for i in $(seq 1 "$n"); do
    port=$(free_port)
    env "${common_env[@]}" TESSERA_DATA_DIR="$TMP/node$i" TESSERA_LISTEN="127.0.0.1:$port" \
      "$TESSERA" serve >"$TMP/node$i.log" 2>&1 &
    NODE_PIDS+=("$!"); PIDS+=("$!")
    wait_http "http://127.0.0.1:$port/readyz" 200 "$TMP/node$i.log"
    servers+="    server n$i 127.0.0.1:$port check"$'\n'
  done
  start_haproxy "$LB_PORT" 3 "$servers"
  sleep 2   # every server's first health checks
}
stop_cluster() {
  local pid
  stop "$HAPROXY_PID"
  for pid in "${NODE_PIDS[@]}"; do stop "$pid"; done
}

CLK_TCK=$(getconf CLK_TCK)
nodes_ticks() { # utime+stime of all node processes, in clock ticks
  local total=0 pid t
  for pid in "${NODE_PIDS[@]}"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

declare -A RATE P50 P99 FAILED CPU
measure() { # N MODE
  local out t0 t1 ok
  t0=$(nodes_ticks)
  out=$("$LOAD" "$2" "http://127.0.0.1:$LB_PORT" "$PREFIX" "$PASSWORD" "$CONCURRENCY" "$DURATION")
  t1=$(nodes_ticks)
  ok=$(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' <<<"$out")
  # Node CPU per request (ms), all nodes together; includes the refresh workers' logins
  # before the window, which is small against thousands of refreshes.
  CPU[$1,$2]=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$ok" 'BEGIN {printf "%.2f", n ? 1000 * t / hz / n : 0}')
  RATE[$1,$2]=$(sed -n 's/.*"per_sec":\([0-9.]*\).*/\1/p' <<<"$out")
  P50[$1,$2]=$(sed -n 's/.*"p50_ms":\([0-9.]*\).*/\1/p' <<<"$out")
  P99[$1,$2]=$(sed -n 's/.*"p99_ms":\([0-9.]*\).*/\1/p' <<<"$out")
  FAILED[$1,$2]=$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' <<<"$out")
  say "$1 node(s), $2: $out, node cpu ${CPU[$1,$2]} ms/op"
}

section "runs"
for n in $NODE_COUNTS; do
  start_cluster "$n"
  # Warm-up: connection pools, key caches, the first Argon2 allocations.
  "$LOAD" login "http://127.0.0.1:$LB_PORT" "$PREFIX" "$PASSWORD" "$CONCURRENCY" 2 >/dev/null
  measure "$n" login
  measure "$n" refresh
  stop_cluster
done

# --- summary ---------------------------------------------------------------------------------
section "summary (requests/s through HAProxy; ratio to 1 node)"
first=${NODE_COUNTS%% *}
printf '%-6s %9s %6s %7s %7s %9s   %11s %6s %7s %7s %9s\n' nodes logins/s ratio p50-ms p99-ms cpu-ms/op refreshes/s ratio p50-ms p99-ms cpu-ms/op
for n in $NODE_COUNTS; do
  printf '%-6s %9.1f %6.2f %7.1f %7.1f %9.2f   %11.1f %6.2f %7.1f %7.1f %9.2f\n' "$n" \
    "${RATE[$n,login]}" "$(awk -v a="${RATE[$n,login]}" -v b="${RATE[$first,login]}" 'BEGIN {print a / b}')" \
    "${P50[$n,login]}" "${P99[$n,login]}" "${CPU[$n,login]}" \
    "${RATE[$n,refresh]}" "$(awk -v a="${RATE[$n,refresh]}" -v b="${RATE[$first,refresh]}" 'BEGIN {print a / b}')" \
    "${P50[$n,refresh]}" "${P99[$n,refresh]}" "${CPU[$n,refresh]}"
done
say "cpu-ms/op: CPU time of all tessera nodes together per completed request (from /proc),"
say "independent of how much of the machine other processes took meanwhile."
total_failed=0
for n in $NODE_COUNTS; do total_failed=$((total_failed + FAILED[$n,login] + FAILED[$n,refresh])); done
say "failed requests in all measurements: $total_failed"
say "load after:  $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
