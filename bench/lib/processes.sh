# Processes a bench script starts, and their clean-up: sourced after TMP (a scratch
# directory, removed at exit) is set. `PIDS+=($!)` after starting one; `stop PID` ends one
# early; `wait_http URL STATUS LOG` waits up to WAIT_HTTP_SECS (default 30) for an answer.
# Uses `say` of the sourcing script.

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() { # PID: no longer ours to stop
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop() { # PID: stop one process started here
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # URL EXPECTED_STATUS LOGFILE: up to WAIT_HTTP_SECS
  local code
  for _ in $(seq $((${WAIT_HTTP_SECS:-30} * 10))); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
    [ "$code" = "$2" ] && return 0
    sleep 0.1
  done
  say "error: $1 did not answer $2 (last: $code); log:"; tail -20 "$3" || true
  exit 1
}
