#!/usr/bin/env bash
# Does `POST /auth/password/forgot` tell by its timing which addresses have accounts?
# (issue 16: a known address answered in 2.3–3.0 ms, an unknown one in 1.4–1.7 ms.)
# Run by hand, not in CI:
#
#     bench/forgot_timing.sh            # builds the release binary; ~1 minute
#     TESSERA_BIN=path bench/forgot_timing.sh
#
# One `tessera serve` on SQLite (mail written as .eml files, the default transport) with
# one verified account. BENCH_TRIES (default 300) pairs of requests, interleaved known /
# unknown in a random order per pair, over one keep-alive connection, timed by the client
# from the request's first byte to the answer's last. Printed: the median and p90 of each,
# and the ratio known / unknown of the medians (goal: 1.0 within the noise; the answers'
# bodies are equal, which the script checks). Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${TESSERA_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --release -q -p tessera
  BIN="${CARGO_TARGET_DIR:-target}/release/tessera"
fi
TRIES="${BENCH_TRIES:-300}"
TMP="$(mktemp -d)"
say() { printf '%s\n' "$*"; }
# shellcheck source=bench/lib/processes.sh
source bench/lib/processes.sh

PORT=$(free_port)
export TESSERA_DATA_DIR="$TMP/data" TESSERA_LISTEN="127.0.0.1:$PORT"
export TESSERA_MASTER_KEY="dGVzc2VyYS1iZW5jaC1mb3Jnb3QtbWFzdGVyLWtleS0="
TESSERA_USER_PASSWORD='correct horse battery staple 42' \
  "$BIN" user create --email known@example.com --verified >/dev/null 2>&1
"$BIN" serve 2>"$TMP/serve.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$PORT/readyz" 200 "$TMP/serve.log"

say "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); binary $BIN"
python3 - "$PORT" "$TRIES" <<'PY'
import http.client, json, random, statistics, sys, time
port, tries = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
def forgot(email):
    body = json.dumps({"email": email})
    start = time.perf_counter()
    conn.request("POST", "/auth/password/forgot", body, {"content-type": "application/json"})
    reply = conn.getresponse()
    data = reply.read()
    elapsed = (time.perf_counter() - start) * 1000
    return elapsed, reply.status, data
for _ in range(20):  # warm-up, not counted
    forgot("known@example.com"); forgot("warm-up@example.com")
times = {"known": [], "unknown": []}
answers = set()
for i in range(tries):
    order = [("known", "known@example.com"), ("unknown", f"nobody-{i}@example.com")]
    random.shuffle(order)
    for kind, email in order:
        ms, status, data = forgot(email)
        times[kind].append(ms)
        answers.add((status, data))
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]
for kind in ("known", "unknown"):
    xs = times[kind]
    print(f"{kind:8} {len(xs)} tries  median {statistics.median(xs):6.3f} ms  p90 {q(xs, 0.9):6.3f} ms")
print(f"ratio known/unknown of the medians: {statistics.median(times['known']) / statistics.median(times['unknown']):.2f}")
print(f"distinct answers (status, body): {len(answers)} {sorted(answers)}")
sys.exit(0 if len(answers) == 1 else 1)
PY
