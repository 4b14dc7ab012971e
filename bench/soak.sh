#!/usr/bin/env bash
# Soak run (issue 19, R16–R18): three `tessera serve` nodes on PostgreSQL + Redis behind
# HAProxy, a `tessera gateway` in front of an upstream, and a mixed load for a long time,
# with one node and Redis each killed and restarted on a schedule and the signing keys
# rotated every few minutes. Run by hand for the hour; CI runs the 3-minute version:
#
#     bench/soak.sh                                   # 1 hour, release build
#     bench/soak.sh | tee bench/results/soak-$(date +%F).txt
#     SOAK_SECS=180 SOAK_WINDOW_SECS=60 SOAK_ROTATE_SECS=60 SOAK_BUILD=debug bench/soak.sh   # CI
#
# The load (crates/tessera/examples/soak_load.rs, SOAK_WORKERS workers, default 12): API
# calls through the gateway, refreshes, signups, revocations (logout, then the revoked token
# must be refused by the gateway within its poll interval), logins. Schedule, as fractions
# of SOAK_SECS: node 2 is killed (SIGKILL) at 25 % and 75 % and started again 10 s later;
# Redis is killed at 50 % and started again 10 s later (empty: no persistence); `tessera
# keys rotate` every SOAK_ROTATE_SECS (default 300).
#
# Printed at the end: requests by outcome per operation; 5xx and transport errors, split
# into those in flight at a node's kill (from 0.5 s before to 3 s after it) and the rest
# (goal 0); sessions lost (a refresh of a live session refused; goal 0); revoked tokens
# still accepted (goal 0); p50/p99 per operation per window (SOAK_WINDOW_SECS, default
# 600: flat); RSS and open file descriptors of every process per window (flat); the
# database's growth beside the rows written. Exits 1 when a goal is missed.
#
# Its own Redis (a free port) and database `soak` on the local PostgreSQL (dropped and
# created); everything on 127.0.0.1 in a temporary directory; every process started here is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SOAK_SECS:-3600}
WINDOW=${SOAK_WINDOW_SECS:-600}
ROTATE=${SOAK_ROTATE_SECS:-300}
WORKERS=${SOAK_WORKERS:-12}
BUILD=${SOAK_BUILD:-release}
POLL=2          # the gateway's revocation poll interval (s)
PG_HOST=127.0.0.1
DB=soak

for var in $(compgen -e | grep '^TESSERA_' || true); do unset "$var"; done
say() { printf '%s\n' "$*"; }
section() { printf '\n== %s ==\n' "$*"; }

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || { say "error: haproxy is not installed (Debian: apt-get install haproxy)"; exit 1; }
command -v redis-server >/dev/null || { say "error: redis-server is not installed"; exit 1; }
pg_isready -q -h $PG_HOST -p 5432 || { say "error: no PostgreSQL at $PG_HOST:5432"; exit 1; }

TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [ "$BUILD" = release ]; then
  say "building: cargo build --release -p tessera --bin tessera --example soak_load" >&2
  cargo build --release -q -p tessera --bin tessera --example soak_load
else
  cargo build -q -p tessera --bin tessera --example soak_load
fi
TESSERA=$TARGET/$BUILD/tessera
LOAD=$TARGET/$BUILD/examples/soak_load

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-soak.XXXXXX")
WAIT_HTTP_SECS=60
# shellcheck source=bench/lib/processes.sh
source bench/lib/processes.sh
# shellcheck source=bench/lib/haproxy.sh
source bench/lib/haproxy.sh

section "machine"
say "date:        $(date -u +%FT%TZ)"
say "cores:       $(nproc) — nodes, PostgreSQL, Redis, HAProxy, the gateway and the load share them"
say "memory:      $(free -h | awk '/Mem:/ {print $2 " total, " $7 " available"}')"
say "tessera:     $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $BUILD build"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
say "run:         ${SECS} s, windows of ${WINDOW} s, $WORKERS workers, key rotation every ${ROTATE} s"

# --- shared state ------------------------------------------------------------------------------
dropdb -h $PG_HOST -U postgres --if-exists $DB
createdb -h $PG_HOST -U postgres $DB
REDIS_PORT=$(free_port)
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" \
    >>"$TMP/redis.log" 2>&1 &
  REDIS_PID=$!; PIDS+=("$REDIS_PID")
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
}
start_redis
LB_PORT=$(free_port)
common_env=(TESSERA_DATABASE_URL="postgres://postgres@$PG_HOST:5432/$DB"
            TESSERA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
            TESSERA_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
            TESSERA_ISSUER="http://127.0.0.1:$LB_PORT"
            TESSERA_HTTP__TRUSTED_PROXIES=127.0.0.1/32
            TESSERA_LOG__LEVEL=warn)
cli() { env "${common_env[@]}" TESSERA_DATA_DIR="$TMP/cli" "$TESSERA" "$@"; }
cli migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log"; exit 1; }
PREFIX=soak-
PASSWORD="soak-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-Sk"
for i in $(seq 0 $((WORKERS - 1))); do
  cli user create --email "$PREFIX$i@example.com" --password "$PASSWORD" --verified >>"$TMP/users.log" 2>&1 \
    || { cat "$TMP/users.log"; exit 1; }
done

# --- three nodes behind HAProxy ----------------------------------------------------------------
declare -A NODE_PORT NODE_PID
start_node() { # I
  env "${common_env[@]}" TESSERA_DATA_DIR="$TMP/node$1" TESSERA_LISTEN="127.0.0.1:${NODE_PORT[$1]}" \
    "$TESSERA" serve >>"$TMP/node$1.log" 2>&1 &
  NODE_PID[$1]=$!; PIDS+=("$!")
  wait_http "http://127.0.0.1:${NODE_PORT[$1]}/readyz" 200 "$TMP/node$1.log"
}
servers=""
for i in 1 2 3; do
  NODE_PORT[$i]=$(free_port)
  start_node "$i"
  servers+="    server n$i 127.0.0.1:${NODE_PORT[$i]} check"$'\n'
done
start_haproxy "$LB_PORT" 2 "$servers"

# --- the gateway -------------------------------------------------------------------------------
GW_PORT=$(free_port)
UP_PORT=$(free_port)
cat >"$TMP/gateway.toml" <<EOF
listen = "127.0.0.1:$GW_PORT"
issuer = "http://127.0.0.1:$LB_PORT"
revocation_poll_secs = $POLL

[log]
level = "warn"

[[routes]]
name = "api"
path_prefix = "/api"
upstreams = ["http://127.0.0.1:$UP_PORT"]
EOF
"$TESSERA" gateway --config "$TMP/gateway.toml" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!; PIDS+=("$GW_PID")
wait_http "http://127.0.0.1:$GW_PORT/readyz" 200 "$TMP/gateway.log"

# --- the run -----------------------------------------------------------------------------------
section "run"
db_rows() {
  psql -h $PG_HOST -U postgres -d $DB -Atc "select string_agg(relname || '=' || n_live_tup || ':' || pg_total_relation_size(relid), ' ' order by relname) from pg_stat_user_tables"
}
db_size() { psql -h $PG_HOST -U postgres -d $DB -Atc "select pg_database_size('$DB')"; }
psql -h $PG_HOST -U postgres -d $DB -Atc "analyze" >/dev/null
DB_SIZE_BEFORE=$(db_size); DB_ROWS_BEFORE=$(db_rows)

START=$(date +%s)
"$LOAD" "http://127.0.0.1:$LB_PORT" "http://127.0.0.1:$GW_PORT" "$UP_PORT" "$PREFIX" "$PASSWORD" \
  "$WORKERS" "$SECS" "$WINDOW" $((POLL * 3)) >"$TMP/load.json" 2>"$TMP/load.log" &
LOAD_PID=$!; PIDS+=("$LOAD_PID")

event() { printf '%s %s\n' "$(date +%s%3N)" "$*" >>"$TMP/events"; say "$(date -u +%T) $*"; }
sample() { # t: RSS (KiB) and open descriptors of every process
  local name pid
  for name in node1 node2 node3 gateway haproxy redis; do
    case $name in
      node*) pid=${NODE_PID[${name#node}]} ;;
      gateway) pid=$GW_PID ;; haproxy) pid=$HAPROXY_PID ;; redis) pid=$REDIS_PID ;;
    esac
    [ -r "/proc/$pid/status" ] || continue
    printf '%s %s %s %s\n' "$1" "$name" "$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")" \
      "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" >>"$TMP/samples"
  done
}
declare -A AT
AT[$((SECS / 4))]="kill_node"; AT[$((SECS / 4 + 10))]="start_node"
AT[$((SECS / 2))]="kill_redis"; AT[$((SECS / 2 + 10))]="start_redis"
AT[$((SECS * 3 / 4))]="kill_node"; AT[$((SECS * 3 / 4 + 10))]="start_node"
SAMPLE_EVERY=$(( WINDOW / 6 > 0 ? WINDOW / 6 : 1 ))
for t in $(seq 1 "$SECS"); do
  sleep_until=$((START + t))
  while [ "$(date +%s)" -lt "$sleep_until" ]; do sleep 0.2; done
  kill -0 "$LOAD_PID" 2>/dev/null || break
  case "${AT[$t]:-}" in
    kill_node) event "kill node2 (pid ${NODE_PID[2]})"; kill -KILL "${NODE_PID[2]}"; wait "${NODE_PID[2]}" 2>/dev/null || true ;;
    start_node) start_node 2; event "node2 started again (pid ${NODE_PID[2]})" ;;
    kill_redis) event "kill redis (pid $REDIS_PID)"; kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true ;;
    start_redis) start_redis; event "redis started again, empty (pid $REDIS_PID)" ;;
  esac
  if [ $((t % ROTATE)) = 0 ]; then
    if cli keys rotate --alg ES256 >>"$TMP/rotate.log" 2>&1; then event "keys rotated"
    else event "key rotation FAILED: $(tail -1 "$TMP/rotate.log")"; fi
  fi
  if [ $((t % SAMPLE_EVERY)) = 0 ]; then sample "$t"; fi
done
if [ -n "${SOAK_LOGS:-}" ]; then mkdir -p "$SOAK_LOGS"; fi
wait "$LOAD_PID" || { say "error: the load generator failed:"; tail -20 "$TMP/load.log"; exit 1; }
forget "$LOAD_PID"
psql -h $PG_HOST -U postgres -d $DB -Atc "analyze" >/dev/null
DB_SIZE_AFTER=$(db_size); DB_ROWS_AFTER=$(db_rows)
# SOAK_LOGS=dir keeps every process's log and the raw results.
if [ -n "${SOAK_LOGS:-}" ]; then cp "$TMP"/*.log "$TMP"/load.json "$TMP"/events "$TMP"/samples "$SOAK_LOGS"/; fi

# --- report ------------------------------------------------------------------------------------
python3 - "$TMP/load.json" "$TMP/events" "$TMP/samples" "$WINDOW" "$DB_SIZE_BEFORE" "$DB_SIZE_AFTER" \
  "$DB_ROWS_BEFORE" "$DB_ROWS_AFTER" "$START" <<'PY'
import json, sys
from collections import defaultdict
load = json.load(open(sys.argv[1]))
events = [line.split(" ", 1) for line in open(sys.argv[2]).read().splitlines()]
samples = [line.split() for line in open(sys.argv[3]).read().splitlines()]
window = int(sys.argv[4]); size0, size1 = int(sys.argv[5]), int(sys.argv[6]); start = int(sys.argv[9])
def rows(text):
    out = {}
    for part in text.split():
        name, rest = part.split("=", 1); n, size = rest.split(":")
        out[name] = (int(n), int(size))
    return out
rows0, rows1 = rows(sys.argv[7]), rows(sys.argv[8])

print("\n== requests by outcome ==")
for op, outcomes in sorted(load["totals"].items()):
    print(f"{op:11} " + "  ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))

kills = [int(at) for at, what in events if what.startswith("kill node")]
in_flight, outside = [], []
for f in load["failures"]:
    (in_flight if any(k - 500 <= f["at_ms"] <= k + 3000 for k in kills) else outside).append(f)
print("\n== failures ==")
print(f"5xx / transport errors in flight at a node's kill: {len(in_flight)}")
print(f"5xx / transport errors otherwise (goal 0): {len(outside)}")
for f in outside[:20]:
    print(f"  +{(f['at_ms'] - start * 1000) / 1000:7.1f} s {f['op']} {f['outcome']}: {f['detail']}")
print(f"sessions lost (goal 0): {len(load['sessions_lost'])}")
for s in load["sessions_lost"][:10]:
    print(f"  +{(s['at_ms'] - start * 1000) / 1000:7.1f} s {s['detail']}")
print(f"unexpected 4xx answers: {sum(o.get('4xx', 0) for o in load['totals'].values())}; the first:")
for r in load["refusals"][:10]:
    print(f"  +{(r['at_ms'] - start * 1000) / 1000:7.1f} s {r['op']}: {r['detail']}")
print(f"revoked tokens still accepted after 3 poll intervals (goal 0): {load['revocations_late']}")
print("events:")
for at, what in events:
    print(f"  +{(int(at) - start * 1000) / 1000:7.1f} s {what}")

print(f"\n== latency per operation per window of {window} s (p50 / p99 ms; ok answers) ==")
ops = sorted({op for w in load["windows"].values() for op in w})
print("window  " + "".join(f"{op:>20}" for op in ops))
for w, per_op in sorted(load["windows"].items(), key=lambda kv: int(kv[0])):
    cells = []
    for op in ops:
        c = per_op.get(op)
        cells.append(f"{c['p50_ms']:8.1f} /{c['p99_ms']:8.1f}" if c else f"{'-':>19}")
    print(f"{int(w) * window:>5} s " + " ".join(cells))

print(f"\n== RSS MiB / open fds per process per window (last sample in each) ==")
last = defaultdict(dict)
for t, name, rss, fds in samples:
    last[int(t) // window][name] = (int(rss) / 1024, int(fds))
names = ["node1", "node2", "node3", "gateway", "haproxy", "redis"]
print("window  " + "".join(f"{n:>16}" for n in names))
for w in sorted(last):
    print(f"{w * window:>5} s " + "".join(
        f"{last[w][n][0]:9.1f} /{last[w][n][1]:5}" if n in last[w] else f"{'-':>16}" for n in names))

print("\n== database ==")
print(f"size: {size0 / 2**20:.1f} MiB -> {size1 / 2**20:.1f} MiB (+{(size1 - size0) / 2**20:.1f} MiB)")
for name in sorted(set(rows0) | set(rows1)):
    n0, s0 = rows0.get(name, (0, 0)); n1, s1 = rows1.get(name, (0, 0))
    if n1 != n0 or s1 != s0:
        per = f", {(s1 - s0) / (n1 - n0):.0f} B/row" if n1 > n0 else ""
        print(f"  {name:28} rows {n0:>8} -> {n1:>8}  size +{(s1 - s0) / 1024:8.0f} KiB{per}")
failed = bool(outside) or bool(load["sessions_lost"]) or load["revocations_late"] > 0
print("\nresult: " + ("FAILED (a goal was missed)" if failed else "every goal met"))
sys.exit(1 if failed else 0)
PY
