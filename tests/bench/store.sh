#!/usr/bin/env bash
# Store primitives benchmark on loopback: starts a real redis-server and moto's DynamoDB server
# on free 127.0.0.1 ports, runs the store_bench example against memory, embedded, Redis and
# DynamoDB, and stops what it started. Prints a Markdown table (see docs/benchmarks.md).
#
#   tests/bench/store.sh [--ops N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bash tests/tools.sh
. tests/tools-env.sh

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no >/dev/null 2>&1 &
pids+=($!)
moto_port=$(free_port)
python "$TOLLGATE_ROOT/tests/store/moto_serial.py" -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
pids+=($!)
wait_port "$redis_port"
wait_port "$moto_port"

cargo build -q --release -p tollgate-lambda --example store_bench
BENCH_REDIS_URL="redis://127.0.0.1:$redis_port" BENCH_DYNAMODB_ENDPOINT="http://127.0.0.1:$moto_port" \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  "$root/target/release/examples/store_bench" "$@"
