# HAProxy in front of identity-provider nodes, for the bench scripts that run several
# (bench/cluster.sh, bench/soak.sh); sourced after bench/lib/processes.sh. Round-robin,
# `option forwardfor`, health checks on /healthz, and a retry on another node when a
# connection fails or a node dies without answering.
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}

# start_haproxy PORT FALL "server lines": writes $TMP/haproxy.cfg, starts HAProxy on
# 127.0.0.1:PORT (a node leaves the rotation after FALL failed checks, 1 s apart), and waits
# until it answers /readyz. Sets HAPROXY_PID.
start_haproxy() {
  local port=$1 fall=$2 servers=$3
  cat >"$TMP/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    option forwardfor
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout check 2s
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response
    default-server inter 1s fall $fall rise 2
frontend idp
    bind 127.0.0.1:$port
    default_backend nodes
backend nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
$servers
CFG
  "$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
  HAPROXY_PID=$!; PIDS+=("$HAPROXY_PID")
  wait_http "http://127.0.0.1:$port/readyz" 200 "$TMP/haproxy.log"
}
