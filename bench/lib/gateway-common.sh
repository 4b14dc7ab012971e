#!/usr/bin/env bash
# The machinery the gateway benchmarks share (bench/gateway.sh, bench/apikeys.sh), sourced
# by them after they set their tunables (DURATION, WARMUP, CONNECTIONS, THREADS, ALG): tools,
# the release build, process clean-up, the machine description, the upstream (nginx
# answering `ok`), the identity provider with a verified user and its access token ($TOKEN,
# $AUTH), and `measure` (wrk plus the CPU each process spent), `check_ok`, `row`, `ratio`.
# WRK_HEADER_NOTE names the header the runs send (for the machine section).
for var in $(compgen -e | grep '^TESSERA_' || true); do unset "$var"; done

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s ==\n' "$*"; }

# --- tools ---------------------------------------------------------------------------------
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
install_tools() {
  local want=() nginx_pkg updated=0
  command -v wrk >/dev/null || want+=(wrk)
  [ -x /usr/bin/time ] || want+=(time)   # GNU time: wrk's own CPU time
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || want+=(nginx)
  [ ${#want[@]} -eq 0 ] && return 0
  if [ -z "$(candidate wrk)" ] || [ "$(candidate wrk)" = "(none)" ]; then
    as_root apt-get update -qq; updated=1
  fi
  local pkgs=()
  for p in "${want[@]}"; do
    if [ "$p" = nginx ]; then
      # Debian's `nginx` is the server itself; `nginx-light` (older releases) is a variant.
      nginx_pkg=nginx
      if [ "$(candidate nginx)" = "(none)" ] || [ -z "$(candidate nginx)" ]; then nginx_pkg=nginx-light; fi
      if [ $updated = 0 ] && { [ -z "$(candidate $nginx_pkg)" ] || [ "$(candidate $nginx_pkg)" = "(none)" ]; }; then
        as_root apt-get update -qq; updated=1
      fi
      pkgs+=("$nginx_pkg")
    else
      pkgs+=("$p")
    fi
  done
  # Keep the package from starting the system nginx (it would listen on 0.0.0.0:80).
  local policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d; policy_added=1
  fi
  say "installing: ${pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null
  [ $policy_added = 1 ] && as_root rm -f /usr/sbin/policy-rc.d
  return 0
}
install_tools
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# BENCH_TESSERA_BIN: a tessera binary to measure instead of building this checkout (a
# before/after comparison runs the same script on both).
if [ -n "${BENCH_TESSERA_BIN:-}" ]; then
  TESSERA=$BENCH_TESSERA_BIN
else
  say "building: cargo build --release -p tessera"
  cargo build --release -q -p tessera
  TESSERA=${CARGO_TARGET_DIR:-$PWD/target}/release/tessera
fi

# --- processes, cleanup ----------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-gwbench.XXXXXX")
# shellcheck source=bench/lib/processes.sh
source bench/lib/processes.sh

# --- machine ---------------------------------------------------------------------------------
section "machine"
say "date:        $(date -u +%FT%TZ)"
say "cores:       $(getconf _NPROCESSORS_ONLN) — wrk, the proxy under test and the upstream all share them"
say "cpu:         $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
say "memory:      $(free -h | awk '/Mem:/ {print $2 " total, " $7 " available"}')"
say "kernel:      $(uname -sr)"
say "wrk:         $(wrk -v 2>&1 | head -1 || true)"
say "nginx:       $("$NGINX" -v 2>&1)"
say "tessera:     $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ uncommitted changes)'), $(rustc --version)"
say "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
say "wrk command: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H '${WRK_HEADER_NOTE:-Authorization: Bearer \$TOKEN}' URL (warm-up: -d$WARMUP)"

# --- upstream: nginx `return 200 "ok\n"` -------------------------------------------------------
UP_PORT=$(free_port)
nginx_common() { # PREFIX_DIR
  cat <<EOF
worker_processes auto;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() { # PREFIX_DIR
  cat <<EOF
  access_log off;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
EOF
}
mkdir -p "$TMP/upstream"
{
  nginx_common "$TMP/upstream"
  say "http {"
  nginx_http_common "$TMP/upstream"
  cat <<EOF
  server {
    listen 127.0.0.1:$UP_PORT;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
EOF
} >"$TMP/upstream/nginx.conf"
"$NGINX" -p "$TMP/upstream" -e "$TMP/upstream/error.log" -c "$TMP/upstream/nginx.conf" &
UP_PID=$!; PIDS+=("$UP_PID")
wait_http "http://127.0.0.1:$UP_PORT/" 200 "$TMP/upstream/error.log"

# --- identity provider, user, token ----------------------------------------------------------
IDP_PORT=$(free_port)
ISSUER="http://127.0.0.1:$IDP_PORT"
idp_env=(TESSERA_LISTEN="127.0.0.1:$IDP_PORT" TESSERA_DATA_DIR="$TMP/idp"
         TESSERA_TOKENS__ACCESS_TOKEN_TTL_SECS=3600 TESSERA_TOKENS__ACCESS_TOKEN_ALG="$ALG"
         TESSERA_LOG__LEVEL=warn)
env "${idp_env[@]}" "$TESSERA" serve >"$TMP/idp.log" 2>&1 &
IDP_PID=$!; PIDS+=("$IDP_PID")
wait_http "$ISSUER/readyz" 200 "$TMP/idp.log"
EMAIL=bench@example.com
PASSWORD="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-Gw"
env "${idp_env[@]}" "$TESSERA" user create --email "$EMAIL" --password "$PASSWORD" --verified >"$TMP/user.log" 2>&1 \
  || { cat "$TMP/user.log"; exit 1; }
LOGIN=$(curl -sS -X POST "$ISSUER/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}")
TOKEN=$(printf '%s' "$LOGIN" | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { say "error: login failed: $LOGIN"; exit 1; }
b64url_decode() { local s; s=$(printf '%s' "$1" | tr '_-' '/+'); while [ $(( ${#s} % 4 )) -ne 0 ]; do s="$s="; done; printf '%s' "$s" | base64 -d; }
TOKEN_HEADER=$(b64url_decode "${TOKEN%%.*}")
case "$TOKEN_HEADER" in *"\"$ALG\""*) ;; *) say "error: the access token is not $ALG: $TOKEN_HEADER"; exit 1 ;; esac
AUTH="Authorization: Bearer $TOKEN"
say "token:       $TOKEN_HEADER, ${#TOKEN} bytes, lifetime 3600 s, issuer $ISSUER"


# --- measuring -------------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
declare -A RPS P50 P99 REQS BAD ERRS CPU_SUT CPU_UP CPU_WRK CPU_REST BUSY
RAW=""

tree_pids() { # PID and its children (nginx master + workers)
  printf '%s\n' "$1"; pgrep -P "$1" 2>/dev/null || true
}
cpu_ticks() { # utime+stime of PID and its children, in clock ticks
  local total=0 pid t
  for pid in $(tree_pids "$1"); do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
system_ticks() { # busy and total jiffies of all CPUs
  awk '/^cpu / { busy = $2+$3+$4+$7+$8+$9; total = busy+$5+$6; print busy, total }' /proc/stat
}
to_ms() { # wrk's "123.45us" / "1.23ms" / "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}

# WRK_ARGS (an array, default empty): more wrk arguments for every run, e.g. `-s post.lua`.
WRK_ARGS=()
measure() { # CASE LABEL URL SUT_PID [HEADER (default $AUTH)]
  local case=$1 label=$2 url=$3 sut=$4 header=${5:-$AUTH} out sut0 up0 sys0 sut1 up1 sys1 wrk_cpu
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "$header" ${WRK_ARGS[@]+"${WRK_ARGS[@]}"} "$url" >/dev/null
  sut0=$(cpu_ticks "$sut"); up0=$(cpu_ticks "$UP_PID"); sys0=$(system_ticks)
  out=$(/usr/bin/time -f 'wrk-cpu %U %S' -o "$TMP/wrk.time" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "$header" ${WRK_ARGS[@]+"${WRK_ARGS[@]}"} "$url")
  sut1=$(cpu_ticks "$sut"); up1=$(cpu_ticks "$UP_PID"); sys1=$(system_ticks)
  wrk_cpu=$(awk '/^wrk-cpu/ {printf "%.0f", ($2 + $3) * 1000000}' "$TMP/wrk.time") # µs
  RAW+=$'\n'"--- ($case) $label: $url"$'\n'"$out"$'\n'
  RPS[$case]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  P50[$case]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  P99[$case]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  REQS[$case]=$(awk '/requests in/ {print $1}' <<<"$out")
  BAD[$case]=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out"); BAD[$case]=${BAD[$case]:-0}
  ERRS[$case]=$(awk '/Socket errors:/ {gsub(/[^0-9]+/, " "); s = 0; for (i = 1; i <= NF; i++) s += $i; print s}' <<<"$out"); ERRS[$case]=${ERRS[$case]:-0}
  # CPU per request, in µs, of: the server under test, the upstream, wrk, and everything else
  # the machine did meanwhile (kernel softirq for loopback, the provider, other jobs).
  local us_per_tick=$((1000000 / CLK_TCK)) n=${REQS[$case]}
  CPU_SUT[$case]=$(( (sut1 - sut0) * us_per_tick ))
  CPU_UP[$case]=$(( (up1 - up0) * us_per_tick ))
  CPU_WRK[$case]=$wrk_cpu
  read -r b0 t0 <<<"$sys0"; read -r b1 t1 <<<"$sys1"
  BUSY[$case]=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.0f", 100 * b / t}')
  CPU_REST[$case]=$(( (b1 - b0) * us_per_tick - CPU_SUT[$case] - CPU_UP[$case] - wrk_cpu ))
  if [ "$case" = a ]; then CPU_REST[$case]=$(( CPU_REST[$case] + CPU_SUT[$case] )); CPU_SUT[$case]=0; fi
  say "($case) ${RPS[$case]} req/s, p50 ${P50[$case]} ms, p99 ${P99[$case]} ms, non-2xx ${BAD[$case]}, socket errors ${ERRS[$case]}"
  if [ "${BAD[$case]}" != 0 ] || [ "${ERRS[$case]}" != 0 ]; then
    say "warning: ($case) had failed requests: its numbers do not measure the intended path"
  fi
}

check_ok() { # URL [HEADER]: the credentials are accepted and the upstream's answer comes back
  local body
  body=$(curl -sS -H "${2:-$AUTH}" "$1") || true
  [ "$body" = "ok" ] || { say "error: $1 answered: $body"; exit 1; }
}


# --- the gateway under test ---------------------------------------------------------------------
gateway_config() { # FILE PORT CACHE(true|false)
  cat >"$1" <<EOF
listen = "127.0.0.1:$2"
issuer = "$ISSUER"            # audience: the issuer (the provider's default tokens.audience)

[auth_cache]
enabled = $3

[log]
level = "warn"                # no per-request access log

[[routes]]
name = "bench"
path_prefix = "/"
upstreams = ["http://127.0.0.1:$UP_PORT"]
auth_cache = $3
EOF
}

# start_gateway NAME CACHE [LAUNCHER...]: starts `tessera gateway` (through LAUNCHER, e.g.
# `taskset -c 0`, when given), checks it refuses a request without a token and passes one
# with; sets GW_PID and GW_URL.
start_gateway() {
  local name=$1 cache=$2 port; shift 2; port=$(free_port)
  gateway_config "$TMP/$name.toml" "$port" "$cache"
  "$@" "$TESSERA" gateway --config "$TMP/$name.toml" >"$TMP/$name.log" 2>&1 &
  GW_PID=$!; PIDS+=("$GW_PID")
  GW_URL="http://127.0.0.1:$port/"
  wait_http "${GW_URL}readyz" 200 "$TMP/$name.log"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL")" = 401 ] \
    || { say "error: the gateway let a request without a token through"; exit 1; }
  check_ok "$GW_URL"
}
cache_entries() { curl -s "${GW_URL}metrics" | awk '/^tessera_gateway_auth_cache_entries/ {print $2}'; }

results_header() {
  section "results ($(getconf _NPROCESSORS_ONLN) cores, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 127.0.0.1)"
  printf '%-30s %12s %9s %9s %8s   %s\n' "case" "requests/s" "p50 ms" "p99 ms" "non-2xx" \
  "CPU µs/request: server upstream wrk rest | machine busy"
}
row() {
  local n=${REQS[$1]}
  printf '%-30s %12s %9s %9s %8s   %14.1f %8.1f %4.1f %5.1f | %3s%%\n' "($1) $2" "${RPS[$1]}" "${P50[$1]}" "${P99[$1]}" \
    "$(( BAD[$1] + ERRS[$1] ))" \
    "$(awk -v x="${CPU_SUT[$1]}" -v n="$n" 'BEGIN {print x / n}')" \
    "$(awk -v x="${CPU_UP[$1]}" -v n="$n" 'BEGIN {print x / n}')" \
    "$(awk -v x="${CPU_WRK[$1]}" -v n="$n" 'BEGIN {print x / n}')" \
    "$(awk -v x="${CPU_REST[$1]}" -v n="$n" 'BEGIN {print x / n}')" \
    "${BUSY[$1]}"
}
ratio() { awk -v x="${RPS[$1]}" -v y="${RPS[$2]}" 'BEGIN {printf "%.2f", x / y}'; }
