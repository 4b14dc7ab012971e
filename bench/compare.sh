#!/usr/bin/env bash
# Side by side in one run (issue 17): Tessera and the references it is measured against,
# each server pinned to one core (taskset) and the load generator (wrk) to the other, and
# one table of figures with their ratios against the issue's targets.
#
#     bench/compare.sh                                     # ~2 minutes after the build
#     bench/compare.sh | tee bench/results/compare-$(date +%F).txt
#     COMPARE_SECS=2 bench/compare.sh                      # the smoke run CI makes
#
# What runs, all on 127.0.0.1, over HTTP/1.1 keep-alive, the same wrk command for each:
#   raw signing   `openssl speed ecdsap256` on the server core: the ES256 sign rate of one
#                 core, the ceiling of any token endpoint (also rsa2048 and ed25519 verify
#                 rates, what a gateway pays per algorithm, unless COMPARE_SECS < 5);
#   token         `POST /oauth2/token` grant_type=client_credentials, Basic authentication,
#                 an ES256 at+jwt back: `tessera serve` (SQLite, the default) against Node
#                 `oidc-provider` (tests/interop's version, in-memory adapter, ES256 JWT
#                 access tokens through resource indicators; bench/lib/oidc-provider-ref.mjs);
#   gateway       GET / with the same ES256 access token to an nginx upstream answering `ok`:
#                 nginx as a plain proxy (no auth), HAProxy 2.6 `jwt_verify` (signature, alg,
#                 iss, aud, exp), `tessera gateway` with the auth cache off (full verification
#                 on every request) and on;
#   memory        VmRSS of a fresh, idle `tessera serve` and `tessera gateway`, and of the
#                 token-endpoint server after its runs.
# The upstream, the identity provider that mints the gateway's token and wrk run on the
# load core; only the server under test runs on the server core (its CPU per request is
# read from /proc, as in bench/gateway.sh).
#
# Tunables: COMPARE_SECS (10: seconds of each measured run; 2 for the smoke run),
# COMPARE_CONNECTIONS (32), COMPARE_SERVER_CORE (0), COMPARE_LOAD_CORE (1),
# BENCH_TESSERA_BIN (measure this binary instead of building the checkout).
# Installs wrk and nginx with apt-get when missing (see bench/lib/gateway-common.sh); needs
# haproxy, openssl, node and `npm ci` in tests/interop.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${COMPARE_SECS:-10}
DURATION=${SECS}s
WARMUP=$(( SECS < 5 ? 1 : 2 ))s
CONNECTIONS=${COMPARE_CONNECTIONS:-32}
THREADS=1
SERVER_CORE=${COMPARE_SERVER_CORE:-0}
LOAD_CORE=${COMPARE_LOAD_CORE:-1}
ALG=ES256
TOKEN_TARGET=0.30     # token endpoint >= 0.30 x raw ES256 sign/s of one core
P99_TARGET=3          # token endpoint p99 <= 3 x p50
HAPROXY_TARGET=1.15   # gateway, cache off >= 1.15 x HAProxy jwt_verify
NGINX_TARGET=1.0      # gateway, cache on >= 1.0 x nginx plain proxy
SERVE_RSS_TARGET=25   # MiB, idle `tessera serve`
GATEWAY_RSS_TARGET=15 # MiB, idle `tessera gateway`

command -v taskset >/dev/null || { echo "error: taskset (util-linux) is missing" >&2; exit 1; }
[ -d tests/interop/node_modules/oidc-provider ] \
  || { echo "error: run 'npm ci' in tests/interop first (oidc-provider)" >&2; exit 1; }
# Everything this script starts runs on the load core unless started through ON_SERVER (an
# array, not a function: `"${ON_SERVER[@]}" server &` leaves $! the server's own pid, since
# taskset execs it; a function would put a subshell in between).
taskset -pc "$LOAD_CORE" $$ >/dev/null
ON_SERVER=(taskset -c "$SERVER_CORE")
WRK_HEADER_NOTE='Authorization: (Bearer $TOKEN | Basic client credentials)'

# shellcheck source=bench/lib/gateway-common.sh
source bench/lib/gateway-common.sh
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
say "haproxy:     $("$HAPROXY" -v | sed -n 1p)"
say "node:        $(node --version), oidc-provider $(node -p "require('./tests/interop/node_modules/oidc-provider/package.json').version")"
say "openssl:     $(openssl version)"
say "pinning:     server under test on core $SERVER_CORE; wrk, upstream, token-minting provider on core $LOAD_CORE"
say "uptime:      $(uptime)"

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

# --- raw signing rate ------------------------------------------------------------------------
section "raw signature rates (openssl speed -seconds $SECS, core $SERVER_CORE)"
openssl_rate() { # ALGORITHM(openssl speed name) PATTERN -> "sign/s verify/s"
  "${ON_SERVER[@]}" openssl speed -seconds "$SECS" "$1" 2>/dev/null | awk -v p="$2" '$0 ~ p {print $(NF-1), $NF; exit}'
}
read -r ES_SIGN ES_VERIFY <<<"$(openssl_rate ecdsap256 'nistp256')"
say "ES256 (P-256): sign $ES_SIGN/s, verify $ES_VERIFY/s"
if [ "$SECS" -ge 5 ]; then
  read -r _ RS_VERIFY <<<"$(openssl_rate rsa2048 '^rsa 2048')"
  read -r _ ED_VERIFY <<<"$("${ON_SERVER[@]}" openssl speed -seconds "$SECS" ed25519 2>/dev/null | awk '/Ed25519/ && /bits/ {print $(NF-1), $NF; exit}')"
  say "RS256 (RSA-2048) verify $RS_VERIFY/s; EdDSA (Ed25519) verify $ED_VERIFY/s"
fi

# --- token endpoint: Tessera -----------------------------------------------------------------
section "token endpoint runs"
CC_SECRET_LINE=$(env "${idp_env[@]}" "$TESSERA" client create --name bench-cc --client-id bench-cc \
  --grant client_credentials --scope api 2>/dev/null | awk '/^client_secret/ {print $2}')
[ -n "$CC_SECRET_LINE" ] || { say "error: cannot register the client_credentials client"; exit 1; }
BASIC="Authorization: Basic $(printf '%s' "bench-cc:$CC_SECRET_LINE" | base64 -w0)"
cat >"$TMP/token.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=api"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
check_token() { # URL: the grant answers 200 with an ES256 at+jwt
  local body header
  body=$(curl -sS -X POST -H "$BASIC" -H 'content-type: application/x-www-form-urlencoded' \
    -d 'grant_type=client_credentials&scope=api' "$1")
  header=$(b64url_decode "$(printf '%s' "$body" | sed -n 's/.*"access_token":"\([^".]*\)\..*/\1/p')")
  case "$header" in *'"ES256"'*'at+jwt'*|*'at+jwt'*'"ES256"'*) ;; *) say "error: $1 answered: $body"; exit 1 ;; esac
}
# The provider started by gateway-common.sh runs on the load core; for its own runs it
# moves to the server core, threads and all, and back afterwards.
pin_tree() { # CORE PID
  local pid
  for pid in $(tree_pids "$2"); do taskset -apc "$1" "$pid" >/dev/null; done
}
check_token "$ISSUER/oauth2/token"
pin_tree "$SERVER_CORE" "$IDP_PID"
WRK_ARGS=(-s "$TMP/token.lua")
measure t "tessera serve (SQLite)" "$ISSUER/oauth2/token" "$IDP_PID" "$BASIC"
RSS_TOKENS=$(rss_mib "$IDP_PID")
TOKENS_ISSUED=${REQS[t]}
pin_tree "$LOAD_CORE" "$IDP_PID"

# --- token endpoint: oidc-provider -----------------------------------------------------------
OP_PORT=$(free_port)
"${ON_SERVER[@]}" node bench/lib/oidc-provider-ref.mjs \
  "{\"port\": $OP_PORT, \"client_id\": \"bench-cc\", \"client_secret\": \"$CC_SECRET_LINE\", \"resource\": \"https://api.example\"}" \
  >"$TMP/oidc-provider.log" 2>&1 &
OP_PID=$!; PIDS+=("$OP_PID")
wait_http "http://127.0.0.1:$OP_PORT/.well-known/openid-configuration" 200 "$TMP/oidc-provider.log"
check_token "http://127.0.0.1:$OP_PORT/token"
OP_RSS_IDLE=$(rss_mib "$OP_PID")
measure o "node oidc-provider" "http://127.0.0.1:$OP_PORT/token" "$OP_PID" "$BASIC"
OP_RSS_AFTER=$(rss_mib "$OP_PID")
stop "$OP_PID"
WRK_ARGS=()

# --- gateway: nginx plain proxy, HAProxy jwt_verify, tessera gateway -------------------------
section "gateway runs"
PX_PORT=$(free_port)
mkdir -p "$TMP/proxy"
{
  nginx_common "$TMP/proxy" | sed 's/^worker_processes auto;/worker_processes 1;/'
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
"${ON_SERVER[@]}" "$NGINX" -p "$TMP/proxy" -e "$TMP/proxy/error.log" -c "$TMP/proxy/nginx.conf" &
PX_PID=$!; PIDS+=("$PX_PID")
wait_http "http://127.0.0.1:$PX_PORT/" 200 "$TMP/proxy/error.log"
check_ok "http://127.0.0.1:$PX_PORT/"
measure n "nginx plain proxy (no auth)" "http://127.0.0.1:$PX_PORT/" "$PX_PID"
stop "$PX_PID"

# HAProxy checks what the gateway checks of this token: ES256 signature with the
# provider's key, alg, issuer, audience (the issuer, the provider's default), expiry.
curl -sS "$ISSUER/.well-known/jwks.json" >"$TMP/jwks.json"
KID=$(b64url_decode "${TOKEN%%.*}" | sed -n 's/.*"kid":"\([^"]*\)".*/\1/p')
python3 - "$TMP/jwks.json" "$KID" >"$TMP/es256.pem" <<'PY'
import json, sys
from jwcrypto import jwk
keys = json.load(open(sys.argv[1]))["keys"]
key = next(k for k in keys if k.get("kid") == sys.argv[2])
sys.stdout.write(jwk.JWK(**key).export_to_pem().decode())
PY
HA_PORT=$(free_port)
cat >"$TMP/haproxy-jwt.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    http-reuse always
frontend jwt
    bind 127.0.0.1:$HA_PORT
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('\$.alg')
    http-request deny deny_status 401 unless { var(txn.jwt_alg) -m str ES256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str $ISSUER }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.aud') -m str $ISSUER }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.jwt_alg,"$TMP/es256.pem") -m int 1 }
    default_backend upstream
backend upstream
    server up 127.0.0.1:$UP_PORT
CFG
"${ON_SERVER[@]}" "$HAPROXY" -db -f "$TMP/haproxy-jwt.cfg" >"$TMP/haproxy-jwt.log" 2>&1 &
HA_PID=$!; PIDS+=("$HA_PID")
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$HA_PORT/" && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HA_PORT/")" = 401 ] \
  || { say "error: HAProxy let a request without a token through"; cat "$TMP/haproxy-jwt.log"; exit 1; }
check_ok "http://127.0.0.1:$HA_PORT/"
measure h "HAProxy jwt_verify (ES256)" "http://127.0.0.1:$HA_PORT/" "$HA_PID"
stop "$HA_PID"

start_gateway gateway-nocache false "${ON_SERVER[@]}"
measure g "tessera gateway, cache off" "$GW_URL" "$GW_PID"
stop "$GW_PID"
start_gateway gateway-cache true "${ON_SERVER[@]}"
measure c "tessera gateway, cache on" "$GW_URL" "$GW_PID"
stop "$GW_PID"

# --- memory at rest ----------------------------------------------------------------------------
section "memory"
IDLE_PORT=$(free_port)
env TESSERA_LISTEN="127.0.0.1:$IDLE_PORT" TESSERA_DATA_DIR="$TMP/idle" TESSERA_LOG__LEVEL=warn \
  "$TESSERA" serve >"$TMP/idle.log" 2>&1 &
IDLE_PID=$!; PIDS+=("$IDLE_PID")
wait_http "http://127.0.0.1:$IDLE_PORT/readyz" 200 "$TMP/idle.log"
sleep 1
RSS_SERVE=$(rss_mib "$IDLE_PID")
stop "$IDLE_PID"
start_gateway gateway-idle true
sleep 1
RSS_GATEWAY=$(rss_mib "$GW_PID")
stop "$GW_PID"
say "tessera serve idle (fresh SQLite): $RSS_SERVE MiB; after its token runs ($TOKENS_ISSUED tokens in the measured run): $RSS_TOKENS MiB"
say "tessera gateway idle:              $RSS_GATEWAY MiB"
say "oidc-provider idle → after its run: $OP_RSS_IDLE → $OP_RSS_AFTER MiB"

# --- the table ---------------------------------------------------------------------------------
results_header
for c in t o n h g c; do
  case $c in
    t) row t "token: tessera serve" ;;  o) row o "token: oidc-provider" ;;
    n) row n "gw: nginx plain proxy" ;; h) row h "gw: HAProxy jwt_verify" ;;
    g) row g "gw: tessera, cache off" ;; c) row c "gw: tessera, cache on" ;;
  esac
done

verdict() { awk -v x="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "min") ? (x >= t) : (x <= t); print ok ? "met" : "NOT met" }'; }
section "against the targets of issue 17 (ratios in this run)"
tok_sign=$(awk -v x="${RPS[t]}" -v y="$ES_SIGN" 'BEGIN {printf "%.3f", x / y}')
tail_ratio=$(awk -v p99="${P99[t]}" -v p50="${P50[t]}" 'BEGIN {printf "%.2f", p99 / p50}')
printf '%-52s %10s %10s  %s\n' "ratio" "value" "target" "verdict"
printf '%-52s %10s %10s  %s\n' "token/s ÷ raw ES256 sign/s (one core each)" "$tok_sign" "≥ $TOKEN_TARGET" "$(verdict "$tok_sign" $TOKEN_TARGET min)"
printf '%-52s %10s %10s  %s\n' "token/s ÷ oidc-provider token/s" "$(ratio t o)" "≈ 6" "(informative)"
printf '%-52s %10s %10s  %s\n' "token p99 ÷ p50" "$tail_ratio" "≤ $P99_TARGET" "$(verdict "$tail_ratio" $P99_TARGET max)"
printf '%-52s %10s %10s  %s\n' "gateway cache off ÷ HAProxy jwt_verify (req/s)" "$(ratio g h)" "≥ $HAPROXY_TARGET" "$(verdict "$(ratio g h)" $HAPROXY_TARGET min)"
printf '%-52s %10s %10s  %s\n' "gateway cache on ÷ nginx plain proxy (req/s)" "$(ratio c n)" "≥ $NGINX_TARGET" "$(verdict "$(ratio c n)" $NGINX_TARGET min)"
printf '%-52s %10s %10s  %s\n' "idle RSS, tessera serve (MiB)" "$RSS_SERVE" "≤ $SERVE_RSS_TARGET" "$(verdict "$RSS_SERVE" $SERVE_RSS_TARGET max)"
printf '%-52s %10s %10s  %s\n' "idle RSS, tessera gateway (MiB)" "$RSS_GATEWAY" "≤ $GATEWAY_RSS_TARGET" "$(verdict "$RSS_GATEWAY" $GATEWAY_RSS_TARGET max)"
[ -n "${RS_VERIFY:-}" ] && say "per-algorithm verify cost on one core (openssl): ES256 $(awk -v v="$ES_VERIFY" 'BEGIN {printf "%.0f", 1e6 / v}') µs, RS256 $(awk -v v="$RS_VERIFY" 'BEGIN {printf "%.0f", 1e6 / v}') µs, EdDSA $(awk -v v="$ED_VERIFY" 'BEGIN {printf "%.0f", 1e6 / v}') µs"
say "load after:  $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min); uptime: $(uptime)"

section "raw wrk output"
say "$RAW"

# The smoke run fails on a broken path, never on a figure: every case must have answered.
for c in t o n h g c; do
  if [ "${BAD[$c]}" != 0 ] || [ "${ERRS[$c]}" != 0 ] || [ "${REQS[$c]:-0}" = 0 ]; then
    say "error: case ($c) had failed requests"; exit 1
  fi
done
