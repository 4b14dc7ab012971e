#!/usr/bin/env bash
# API-key benchmark (issue 13, R27): does a partner API key cost more at the gateway than an
# access token? Run by hand, not in CI:
#
#     bench/apikeys.sh                 # ~2 minutes after the build; output on stdout
#     bench/apikeys.sh | tee bench/results/apikeys-$(date +%F).txt
#
# One `tessera gateway` (release) with one route (`api_keys = true`, auth cache on), in
# front of the same upstream as bench/gateway.sh (nginx answering `ok`), measured with the
# same wrk command and the same machinery (bench/lib/gateway-common.sh):
#   (a) the upstream directly (an upper bound for the machine);
#   (j) the route with `Authorization: Bearer <ES256 access token>`, auth cache on;
#   (k) the same route with `X-API-Key: tsk_…` (the key's cache warm: the gateway checked it
#       at the provider once, before the measured run);
# (j) and (k) twice each, interleaved (j k j k), on the same gateway process, in one run.
# Target: (k) >= (j) in requests/s (an API key is not slower than a token), over both rounds.
#
# The key is the same user's as the token's, made with `tessera apikey create`; the gateway
# authenticates at the provider's check endpoint as a client made with `tessera client
# create`. Everything listens on 127.0.0.1 only and is stopped on exit. Tunables as in
# bench/gateway.sh: BENCH_DURATION (15s), BENCH_WARMUP (3s), BENCH_CONNECTIONS (64),
# BENCH_THREADS (2), BENCH_ALG (ES256).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-15s}
WARMUP=${BENCH_WARMUP:-3s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
ALG=${BENCH_ALG:-ES256}
WRK_HEADER_NOTE='Authorization: Bearer $TOKEN | X-API-Key: $KEY'
started_at=$(date +%s)

# shellcheck source=bench/lib/gateway-common.sh
source bench/lib/gateway-common.sh

# --- the key, and the gateway's client at the check endpoint -----------------------------------
tessera_cli() { env "${idp_env[@]}" "$TESSERA" "$@"; }
CLIENT=$(tessera_cli client create --name "bench gateway" --client-id bench-gateway \
  --grant client_credentials --json 2>"$TMP/client.log") || { cat "$TMP/client.log"; exit 1; }
CLIENT_SECRET=$(printf '%s' "$CLIENT" | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p')
[ -n "$CLIENT_SECRET" ] || { say "error: no client secret in: $CLIENT"; exit 1; }
CREATED=$(tessera_cli apikey create --user "$EMAIL" --name bench --json 2>"$TMP/apikey.log") \
  || { cat "$TMP/apikey.log"; exit 1; }
KEY=$(printf '%s' "$CREATED" | sed -n 's/.*"api_key": *"\([^"]*\)".*/\1/p')
KEY_ID=$(printf '%s' "$CREATED" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
[ -n "$KEY" ] || { say "error: no key in: $CREATED"; exit 1; }
APIKEY="X-API-Key: $KEY"
say "api key:     tsk_$KEY_ID…, ${#KEY} bytes (the same user's as the token)"

# --- the gateway -------------------------------------------------------------------------------
GW_PORT=$(free_port)
cat >"$TMP/gateway.toml" <<EOF
listen = "127.0.0.1:$GW_PORT"
issuer = "$ISSUER"

[auth_cache]
enabled = true

[api_keys]
client_id = "bench-gateway"
client_secret = "$CLIENT_SECRET"
metric_keys = ["$KEY_ID"]

[log]
level = "warn"                # no per-request access log

[[routes]]
name = "bench"
path_prefix = "/"
upstreams = ["http://127.0.0.1:$UP_PORT"]
api_keys = true
EOF
"$TESSERA" gateway --config "$TMP/gateway.toml" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!; PIDS+=("$GW_PID")
GW_URL="http://127.0.0.1:$GW_PORT/"
wait_http "${GW_URL}readyz" 200 "$TMP/gateway.log"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$GW_URL")" = 401 ] \
  || { say "error: the gateway let a request without credentials through"; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: tsk_${KEY_ID}_$(printf 'A%.0s' $(seq 43))" "$GW_URL")" = 401 ] \
  || { say "error: the gateway let a wrong key through"; exit 1; }

# --- runs --------------------------------------------------------------------------------------
section "runs"
check_ok "http://127.0.0.1:$UP_PORT/"
measure a "upstream directly" "http://127.0.0.1:$UP_PORT/" "$UP_PID"
check_ok "$GW_URL" "$AUTH"
check_ok "$GW_URL" "$APIKEY"   # the key's first use: checked at the provider, cached from now on
measure j1 "gateway, JWT (cache on)" "$GW_URL" "$GW_PID" "$AUTH"
measure k1 "gateway, API key (warm)" "$GW_URL" "$GW_PID" "$APIKEY"
measure j2 "gateway, JWT (cache on)" "$GW_URL" "$GW_PID" "$AUTH"
measure k2 "gateway, API key (warm)" "$GW_URL" "$GW_PID" "$APIKEY"
METRICS=$(curl -s "${GW_URL}metrics")
KEY_REQUESTS=$(awk -v id="$KEY_ID" '/^tessera_gateway_api_key_requests_total/ && index($0, id) {s += $2} END {print s}' <<<"$METRICS")
CACHED_KEYS=$(awk '/^tessera_gateway_api_key_cache_entries/ {print $2}' <<<"$METRICS")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------------------
section "wrk output"
printf '%s' "$RAW"

results_header
row a "upstream directly"
row j1 "gateway, JWT (cache on)"
row k1 "gateway, API key (warm)"
row j2 "gateway, JWT (cache on)"
row k2 "gateway, API key (warm)"
say ""
ratio_kj=$(awk -v k1="${RPS[k1]}" -v k2="${RPS[k2]}" -v j1="${RPS[j1]}" -v j2="${RPS[j2]}" \
  'BEGIN {printf "%.3f", (k1 + k2) / (j1 + j2)}')
verdict=$(awk -v r="$ratio_kj" 'BEGIN {print (r >= 1.0) ? "MET" : "NOT MET"}')
say "(k)/(j) = $ratio_kj over both rounds   target (k) >= (j): $verdict"
say "round 1: (k1)/(j1) = $(ratio k1 j1)   round 2: (k2)/(j2) = $(ratio k2 j2)"
say "(j1)/(a) = $(ratio j1 a)   (k1)/(a) = $(ratio k1 a)"
cpu_per_request() { awk -v x="${CPU_SUT[$1]}" -v n="${REQS[$1]}" 'BEGIN {printf "%.1f", x / n}'; }
say "gateway CPU per request: (j) $(cpu_per_request j1), $(cpu_per_request j2) µs; (k) $(cpu_per_request k1), $(cpu_per_request k2) µs"
say "(per-process CPU is less disturbed than requests/s when other jobs share the machine:"
say " compare it when 'rest' above is far from 0)"
say ""
say "tessera_gateway_api_key_requests_total{key_id=\"$KEY_ID\"} = ${KEY_REQUESTS:-?} after the runs;"
say "tessera_gateway_api_key_cache_entries = ${CACHED_KEYS:-?} (the key was checked at the provider once)."
say "Note: $(nproc) cores for everything — wrk, the gateway and the upstream compete for them, so"
say "requests/s is bounded by the CPU per request of all three together (columns above)."
say "load after:  $load_after (1/5/15 min, right after the last measured run)"
say ""
say "runtime: $(( $(date +%s) - started_at )) s"
