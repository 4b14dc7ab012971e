#!/usr/bin/env bash
# Token-engine benchmark: access-token signing and refresh rotations (SQLite and
# PostgreSQL), each against the raw signing rate of the same key measured in this run.
# Usage: bench/tokens.sh   (PostgreSQL at 127.0.0.1:5432 is used when reachable)
set -euo pipefail
cd "$(dirname "$0")/.."

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  dropdb -h 127.0.0.1 -U postgres --if-exists tessera_bench
  createdb -h 127.0.0.1 -U postgres tessera_bench
  export TESSERA_BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/tessera_bench"
fi
cargo build --release -q -p tessera --example bench_tokens
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)"
./target/release/examples/bench_tokens
