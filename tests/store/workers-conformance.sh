#!/usr/bin/env bash
# The Store conformance suite against the Workers backend (KV + SQLite-backed Durable Objects),
# in local workerd (`wrangler dev --local`):
#   tests/store/workers-conformance.sh
# Builds the Worker with the test-only `store-conformance` feature (into its own cargo target dir
# and out-dir, so it never replaces the normal build in workers/build), starts wrangler dev
# on free loopback ports, calls GET /__store/conformance twice (the second run checks that state
# from the first, kept by the same dev session, does not get in the way), and stops wrangler.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=tests/tools-env.sh
. tests/tools-env.sh

run_dir="$root/.test-run/workers-store"
rm -rf "$run_dir"
mkdir -p "$run_dir"
# Build output outside workers/build (git-ignored target/), so the normal build is untouched.
target_dir="$root/target/store-conformance"
out_dir="$target_dir/worker-build"
log="$run_dir/wrangler.log"

wrangler_pid=""
cleanup() {
  if [ -n "$wrangler_pid" ]; then
    kill -TERM -- "-$wrangler_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$wrangler_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$wrangler_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -f "$log" ]; then
    sleep 1 # let wrangler flush the Worker's console output (a failed case's panic message)
    echo "---- wrangler log (tail) ----" >&2
    tail -n 60 "$log" >&2
  fi
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The same features as tests/workers-settlement.sh, which reuses this build.
echo "== build the Worker with --features store-conformance,test-hooks"
(cd workers && worker-build --profile release-wasm --no-opt --out-dir "$out_dir" \
  --features store-conformance,test-hooks --target-dir "$target_dir") \
  >"$run_dir/worker-build.log" 2>&1 || {
  tail -n 40 "$run_dir/worker-build.log"
  fail "worker-build"
}

# A build-free config pointing at that build; no [vars] (the route needs no gateway config).
sed -e '/^\[build\]/,/^$/d' -e '/^\[vars\]/,$d' \
  -e "s#^main = \"workers/build/#main = \"$out_dir/#" \
  wrangler.toml >"$run_dir/wrangler.toml"
grep -q "^main = \"$out_dir/" "$run_dir/wrangler.toml" || fail "could not rewrite main in wrangler.toml"
: >"$run_dir/.dev.vars"

port=$(free_port)
inspector=$(free_port)
echo "== wrangler dev on 127.0.0.1:$port"
set -m
FORCE_COLOR=0 wrangler dev -c "$run_dir/wrangler.toml" --local --ip 127.0.0.1 --port "$port" \
  --inspector-port "$inspector" --show-interactive-dev-session=false >"$log" 2>&1 &
wrangler_pid=$!
set +m

url="http://127.0.0.1:$port"
deadline=$((SECONDS + 120))
until curl -s -m 5 -o /dev/null "$url/health/liveliness"; do
  kill -0 "$wrangler_pid" 2>/dev/null || fail "wrangler dev exited"
  [ $SECONDS -lt $deadline ] || fail "wrangler dev did not answer within 120 s"
  sleep 0.5
done

for run in 1 2; do
  echo "== conformance run $run"
  started=$SECONDS
  status=$(curl -s -m 300 -o "$run_dir/conformance-$run.out" -w '%{http_code}' "$url/__store/conformance") || true
  body=$(cat "$run_dir/conformance-$run.out" 2>/dev/null || true)
  if [ "$status" != "200" ] || [ "$body" != "ok" ]; then
    fail "run $run: HTTP $status, body: ${body:0:500}"
  fi
  echo "ok ($((SECONDS - started)) s)"
done

echo "PASS: Workers store conformance (KV + Durable Objects), 2 runs"
