#!/usr/bin/env bash
# The Lambda host settles a stream whose client disconnected, in the Lambda emulator
# (`cargo lambda watch`, function URL with response streaming), with the Store on a real
# redis-server:
#   tests/lambda-settlement.sh
# The gateway routes a `least-busy` group of two deployments (fixed ids) at the mock provider's
# `drip-10` scenario (a 6 s stream), so the request counts +1 in `router:inflight:<id>` and its
# settlement −1. A client opens a stream through the function URL, reads its first event,
# checks the count is 1 (read from Redis directly), disconnects, and polls until the count is
# back to 0; more than 15 s is a failure. Everything listens on 127.0.0.1; redis-server, the
# mock and the emulator are stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=tests/tools-env.sh
. tests/tools-env.sh

run_dir="$root/.test-run/lambda-settlement"
rm -rf "$run_dir"
mkdir -p "$run_dir"

pgids=()
cleanup() {
  local pg
  for pg in "${pgids[@]}"; do
    kill -TERM -- "-$pg" 2>/dev/null || true
  done
  for pg in "${pgids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pg" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pg" 2>/dev/null || true
  done
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -f "$run_dir/lambda.log" ]; then
    echo "---- emulator log (tail) ----" >&2
    tail -n 40 "$run_dir/lambda.log" >&2
  fi
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME CMD...: CMD in its own process group, output to $run_dir/NAME.log.
start() {
  local name=$1
  shift
  set -m
  "$@" >"$run_dir/$name.log" 2>&1 &
  pgids+=("$!")
  set +m
}

cargo build -q -p tollgate-lambda -p tollgate-mock-provider

redis_port=$(free_port)
start redis redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no
start mock "$root/target/debug/mock-provider" --host 127.0.0.1 --port 0
mock_url=""
for _ in $(seq 100); do
  mock_url=$(grep -m1 -oE 'http://127\.0\.0\.1:[0-9]+' "$run_dir/mock.log" 2>/dev/null || true)
  [ -n "$mock_url" ] && break
  sleep 0.1
done
[ -n "$mock_url" ] || fail "the mock provider did not start"
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$redis_port" ping >/dev/null || fail "redis-server did not start"

ids="lambda-drip-a lambda-drip-b"
{
  printf 'model_list:\n'
  for id in $ids; do
    printf '  - model_name: drip\n'
    printf '    litellm_params: {model: openai/gpt-drip-10, api_base: "%s/v1", api_key: sk-mock-upstream}\n' "$mock_url"
    printf '    model_info: {id: %s}\n' "$id"
  done
  printf 'router_settings:\n  routing_strategy: least-busy\n'
  printf 'general_settings:\n  master_key: sk-lambda-settlement\n'
} >"$run_dir/config.yaml"

port=$(free_port)
echo "== cargo lambda watch on 127.0.0.1:$port (Store: redis-server on $redis_port)"
# The emulator builds and starts the function on its first request, with this environment.
TOLLGATE_CONFIG="$run_dir/config.yaml" TOLLGATE_STORE=redis REDIS_URL="redis://127.0.0.1:$redis_port" \
  start lambda cargo lambda watch -A 127.0.0.1 -P "$port" -p tollgate-lambda --bin tollgate
url="http://127.0.0.1:$port/lambda-url/tollgate"
deadline=$((SECONDS + 300))
until curl -sf -m 300 -o /dev/null "$url/health/liveliness"; do
  [ $SECONDS -lt $deadline ] || fail "the emulator did not answer within 300 s"
  sleep 0.5
done

echo "== a client disconnects mid-stream; the in-flight count must return to 0"
PYTHONPATH="$root/tests" python3 - "$port" "$redis_port" $ids <<'PY' || fail "settlement after a client disconnect"
import subprocess, sys

from settlement_probe import disconnect_mid_stream

port, redis_port, ids = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
BOUND = 15.0

def in_flight():
    # The Redis Store keeps counters under "c:" (core/src/store/redis_protocol.rs).
    total = 0
    for i in ids:
        out = subprocess.run(["redis-cli", "-p", redis_port, "GET", f"c:router:inflight:{i}"],
                             capture_output=True, text=True, check=True).stdout.strip()
        total += int(out or 0)
    return total

took = disconnect_mid_stream(port, "/lambda-url/tollgate/v1/chat/completions",
                             "sk-lambda-settlement", in_flight, BOUND)
print(f"ok: settled {took:.2f} s after the disconnect")
PY

echo "PASS: Lambda (emulator) settles a disconnected stream"
