#!/usr/bin/env bash
# Password-login cost: CPU time of a real node per `POST /auth/login` (one Argon2id
# verification with the configured `passwords.argon2_*`), and the node's memory, with
# glibc's default malloc and with the allocator setting deploy/Dockerfile uses.
#
# Usage: bench/logins.sh            (builds the release binary)
#        TESSERA_BIN=path bench/logins.sh
# CPU time (utime + stime from /proc) rather than wall time, so other load on the machine
# changes the result little. Everything runs on 127.0.0.1 in a temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${TESSERA_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release -q -p tessera
  BIN="${CARGO_TARGET_DIR:-target}/release/tessera"
fi
LOGINS="${BENCH_LOGINS:-60}"
PORT=18490
PW='correct horse battery staple 42'

measure() {
  local tunables="$1" dir pid
  dir="$(mktemp -d)"
  export TESSERA_DATA_DIR="$dir/data" TESSERA_LISTEN="127.0.0.1:$PORT"
  export TESSERA_MASTER_KEY="dGVzc2VyYS1iZW5jaC1sb2dpbnMtbWFzdGVyLWtleS0=" TESSERA_LOGIN__MAX_FAILURES_PER_IP=1000000
  TESSERA_USER_PASSWORD="$PW" "$BIN" user create --email bench@example.com --verified >/dev/null 2>&1
  GLIBC_TUNABLES="$tunables" "$BIN" serve 2>"$dir/serve.log" &
  pid=$!
  for _ in $(seq 150); do curl -sf "localhost:$PORT/readyz" >/dev/null && break; sleep 0.2; done
  login() {
    curl -s -o /dev/null "localhost:$PORT/auth/login" -H 'content-type: application/json' \
      -d "{\"email\":\"bench@example.com\",\"password\":\"$PW\"}"
  }
  cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
  login
  local before after
  before=$(cpu)
  for _ in $(seq "$LOGINS"); do login; done
  after=$(cpu)
  local sequential_rss
  sequential_rss=$(rss)
  local clients=()
  for _ in 1 2 3 4 5 6 7 8; do (for _ in $(seq 25); do login; done) & clients+=($!); done
  wait "${clients[@]}"
  python3 -c "
ms = ($after - $before) / $(getconf CLK_TCK) / $LOGINS * 1000
print(f'{\"${tunables:-glibc default}\":42} {ms:6.1f} ms CPU/login  {1000 / ms:5.1f} logins/s/core  RSS {$sequential_rss} MiB after $LOGINS sequential, $(rss) MiB after 8 x 25 concurrent')"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); binary $BIN"
measure ""
measure "glibc.malloc.mmap_threshold=4194304"
