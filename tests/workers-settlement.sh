#!/usr/bin/env bash
# A Worker settles a stream whose client disconnected, through ctx.wait_until, in local workerd
# (`wrangler dev --local`):
#   tests/workers-settlement.sh
# The gateway routes a `least-busy` group of two deployments (fixed ids) at the mock provider's
# `drip-50` scenario (a 30 s stream), so the request counts +1 in the Durable-Object counter
# `router:inflight:<id>` and its settlement −1. A client opens a stream, reads its first event,
# checks the count is 1 (test-only route `GET /__test/counter`, built with the `test-hooks`
# feature), disconnects, and polls until the count is back to 0; more than 10 s is a failure.
# Then again with the settlement held 2 s past the disconnect (test-only request header
# `x-tollgate-test-defer-delay-ms`): a quick settlement finishes even as a bare spawn_local in
# local workerd, a slow one only inside ctx.wait_until.
#
# The Worker is the test build of tests/store/workers-conformance.sh (same features, target and
# out-dir, so running both builds once). Everything listens on 127.0.0.1; the mock and
# wrangler are stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=tests/tools-env.sh
. tests/tools-env.sh

run_dir="$root/.test-run/workers-settlement"
rm -rf "$run_dir"
mkdir -p "$run_dir"
target_dir="$root/target/store-conformance"
out_dir="$target_dir/worker-build"
log="$run_dir/wrangler.log"

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
  if [ -f "$log" ]; then
    sleep 1 # let wrangler flush the Worker's console output
    echo "---- wrangler log (tail) ----" >&2
    tail -n 40 "$log" >&2
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

echo "== build the test Worker (--features store-conformance,test-hooks) and the mock provider"
(cd workers && worker-build --profile release-wasm --no-opt --out-dir "$out_dir" \
  --features store-conformance,test-hooks --target-dir "$target_dir") \
  >"$run_dir/worker-build.log" 2>&1 || {
  tail -n 40 "$run_dir/worker-build.log"
  fail "worker-build"
}
cargo build -q -p tollgate-mock-provider

start mock "$root/target/debug/mock-provider" --host 127.0.0.1 --port 0
mock_url=""
for _ in $(seq 100); do
  mock_url=$(grep -m1 -oE 'http://127\.0\.0\.1:[0-9]+' "$run_dir/mock.log" 2>/dev/null || true)
  [ -n "$mock_url" ] && break
  sleep 0.1
done
[ -n "$mock_url" ] || fail "the mock provider did not start"

# Fresh deployment ids each run: no count left by an earlier run can pass for this one's.
run_id="$(date +%s)-$$"
ids="wk-drip-a-$run_id wk-drip-b-$run_id"
{
  printf 'TOLLGATE_CONFIG_YAML=`model_list:\n'
  for id in $ids; do
    printf '  - model_name: drip\n'
    printf '    litellm_params: {model: openai/gpt-drip-50, api_base: "%s/v1", api_key: sk-mock-upstream}\n' "$mock_url"
    printf '    model_info: {id: %s}\n' "$id"
  done
  printf 'router_settings:\n  routing_strategy: least-busy\n'
  printf 'general_settings:\n  master_key: sk-workers-settlement\n`\n'
} >"$run_dir/.dev.vars"

# The test build, without its build step and default [vars] (the config comes from .dev.vars).
sed -e '/^\[build\]/,/^$/d' -e '/^\[vars\]/,$d' \
  -e "s#^main = \"workers/build/#main = \"$out_dir/#" \
  wrangler.toml >"$run_dir/wrangler.toml"
grep -q "^main = \"$out_dir/" "$run_dir/wrangler.toml" || fail "could not rewrite main in wrangler.toml"

port=$(free_port)
inspector=$(free_port)
echo "== wrangler dev on 127.0.0.1:$port"
FORCE_COLOR=0 start wrangler wrangler dev -c "$run_dir/wrangler.toml" --local --ip 127.0.0.1 \
  --port "$port" --inspector-port "$inspector" --show-interactive-dev-session=false
log="$run_dir/wrangler.log"
url="http://127.0.0.1:$port"
deadline=$((SECONDS + 120))
until curl -s -m 5 -o /dev/null "$url/health/liveliness"; do
  [ $SECONDS -lt $deadline ] || fail "wrangler dev did not answer within 120 s"
  sleep 0.5
done

echo "== a client disconnects mid-stream; the in-flight count must return to 0"
PYTHONPATH="$root/tests" python3 - "$port" $ids <<'PY' || fail "settlement after a client disconnect"
import sys, urllib.request

from settlement_probe import disconnect_mid_stream

port, ids = int(sys.argv[1]), sys.argv[2:]
base = f"http://127.0.0.1:{port}"
BOUND = 10.0

def in_flight():
    total = 0
    for i in ids:
        with urllib.request.urlopen(f"{base}/__test/counter?key=router:inflight:{i}", timeout=10) as r:
            total += int(r.read())
    return total

def disconnect_and_wait(delay_ms):
    """Seconds until the count is 0 after a disconnect, the settlement held `delay_ms`."""
    extra = f"x-tollgate-test-defer-delay-ms: {delay_ms}\r\n" if delay_ms else ""
    return disconnect_mid_stream(port, "/v1/chat/completions", "sk-workers-settlement",
                                 in_flight, BOUND, extra)

took = disconnect_and_wait(0)
print(f"ok: settled {took:.2f} s after the disconnect")
# The same with the settlement held 2 s past the disconnect (a slow Store): only work inside
# ctx.wait_until survives that long; a bare spawn_local is cancelled with the request.
took = disconnect_and_wait(2000)
if took < 1.9:
    sys.exit(f"settled {took:.2f} s after the disconnect: the 2 s defer delay was not applied")
print(f"ok: settled {took:.2f} s after the disconnect, with the settlement deferred 2 s")
PY

echo "PASS: Workers settle a disconnected stream (ctx.wait_until)"
