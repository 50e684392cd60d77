#!/usr/bin/env bash
# Every test Tollgate has, on a fresh machine:
#   1. installs the project-local tools (tests/tools.sh: Python venv, node 22 + wrangler,
#      worker-build, wasm-bindgen, cargo-lambda, cfn-lint),
#   2. format, lint (host and wasm32), unit tests (the Store backends' conformance suites run
#      against a real redis-server, moto's DynamoDB server and a REST-to-Redis shim for
#      Upstash), core built for wasm32, template lint,
#   3. the end-to-end suite (official openai SDK) against all three hosts, each talking to the
#      in-repo mock provider: the local server, the Lambda emulator (cargo lambda watch) and
#      workerd (wrangler dev --local); on the emulator and workerd also a stream whose client
#      disconnects must settle (tests/lambda-settlement.sh, tests/workers-settlement.sh; the
#      local server's graceful shutdown is lambda/tests/graceful_shutdown.rs, a unit-test step);
#   4. budgets exact across 4 gateway processes on one Redis and on moto's DynamoDB
#      (tests/budget-exactness.sh).
# Everything listens on 127.0.0.1; every process started here is stopped on exit.
#
#   tests/run-all.sh            # all of it
#   TOLLGATE_HOSTS="local" tests/run-all.sh   # only some hosts (local lambda workers)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
hosts="${TOLLGATE_HOSTS:-local lambda workers}"
run_dir="$root/.test-run"
rm -rf "$run_dir"
mkdir -p "$run_dir"

say() { printf '\n== %s\n' "$*"; }

# ---- process bookkeeping: every background process gets its own group, killed on exit --------
pgids=()
cleanup() {
  local pg
  for pg in "${pgids[@]}"; do
    kill -TERM -- "-$pg" 2>/dev/null || true
  done
  sleep 1
  for pg in "${pgids[@]}"; do
    kill -KILL -- "-$pg" 2>/dev/null || true
  done
}
trap cleanup EXIT

# start NAME CMD...: runs CMD in its own process group, output to $run_dir/NAME.log.
start() {
  local name=$1
  shift
  set -m
  "$@" >"$run_dir/$name.log" 2>&1 &
  local pid=$!
  set +m
  pgids+=("$pid")
  echo "$pid" >"$run_dir/$name.pid"
}

stop() {
  local pid
  pid=$(cat "$run_dir/$1.pid")
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_line NAME REGEX SECONDS: prints the first match in NAME's log.
wait_for_line() {
  local deadline=$((SECONDS + $3)) line
  while [ $SECONDS -lt $deadline ]; do
    line=$(grep -m1 -oE "$2" "$run_dir/$1.log" 2>/dev/null || true)
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    sleep 0.2
  done
  echo "timed out waiting for $1; its log:" >&2
  tail -n 40 "$run_dir/$1.log" >&2
  return 1
}

# wait_for_http URL SECONDS
wait_for_http() {
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    if curl -sf -m 300 -o /dev/null "$1"; then
      return 0
    fi
    sleep 0.5
  done
  echo "timed out waiting for $1" >&2
  return 1
}

# ---- 1. tools --------------------------------------------------------------------------------
say "tools"
bash tests/tools.sh
# shellcheck source=tests/tools-env.sh
. tests/tools-env.sh

# ---- 2. static checks and unit tests ---------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (host, and wasm32 for core and workers)"
cargo clippy -q -p tollgate-core -p tollgate-lambda -p tollgate-mock-provider --all-targets -- -D warnings
cargo clippy -q -p tollgate-core -p tollgate-workers --target wasm32-unknown-unknown -- -D warnings
cargo clippy -q -p tollgate-workers --features store-conformance,test-hooks --target wasm32-unknown-unknown -- -D warnings

say "unit tests"
cargo test -q -p tollgate-core -p tollgate-lambda -p tollgate-mock-provider

say "core builds for wasm32-unknown-unknown"
cargo build -q -p tollgate-core --target wasm32-unknown-unknown

say "template.yaml passes cfn-lint"
cfn-lint template.yaml

# ---- 3. end to end -----------------------------------------------------------------------------
say "build binaries"
cargo build -q -p tollgate-lambda -p tollgate-mock-provider

say "budgets exact across 4 instances (Redis, then moto's DynamoDB)"
tests/budget-exactness.sh

start mock "$root/target/debug/mock-provider" --host 127.0.0.1 --port 0
MOCK_URL=$(wait_for_line mock 'http://127\.0\.0\.1:[0-9]+' 30)
export MOCK_URL MOCK_OPENAI_BASE="$MOCK_URL/v1" MOCK_ANTHROPIC_BASE="$MOCK_URL" MOCK_API_KEY="sk-mock-upstream"
# Vertex AI deployments trade their service-account JWT for a token at the mock's fake endpoint.
export MOCK_GOOGLE_TOKEN_URI="$MOCK_URL/token"
export TOLLGATE_MASTER_KEY="sk-test-master"
export LITELLM_LOG=warn

passed=0
failed=0
failed_hosts=()
# e2e HOST URL: runs the suite, adds its counts to the totals.
e2e() {
  local host=$1 url=$2 xml="$run_dir/e2e-$1.xml" rc=0
  say "e2e against the $host host ($url)"
  tests/e2e/run.sh "$url" -q --junitxml="$xml" || rc=$?
  local counts
  counts=$(python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
    s = r if r.tag == "testsuite" else r.find("testsuite")
    t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    print(t - f - e - sk, f + e)
except Exception:
    print(0, 1)
PY
)
  passed=$((passed + ${counts% *}))
  failed=$((failed + ${counts#* }))
  if [ "$rc" -ne 0 ]; then
    failed_hosts+=("$host")
  fi
}

for host in $hosts; do
  case "$host" in
    local)
      start gateway-local "$root/target/debug/tollgate" --config tests/e2e/config.yaml --host 127.0.0.1 --port 0
      url=$(wait_for_line gateway-local 'http://127\.0\.0\.1:[0-9]+' 60)
      e2e local "$url"
      stop gateway-local
      ;;
    lambda)
      port=$(free_port)
      # The emulator builds and starts the function on its first request, with this env.
      TOLLGATE_CONFIG="$root/tests/e2e/config.yaml" start lambda \
        cargo lambda watch -A 127.0.0.1 -P "$port" -p tollgate-lambda --bin tollgate
      url="http://127.0.0.1:$port/lambda-url/tollgate"
      wait_for_http "$url/health/liveliness" 600
      e2e lambda "$url"
      stop lambda
      say "Lambda emulator: a disconnected stream settles (Store on Redis)"
      tests/lambda-settlement.sh
      ;;
    workers)
      say "Store conformance on workerd (KV + Durable Objects)"
      tests/store/workers-conformance.sh
      say "workerd: a disconnected stream settles through ctx.wait_until"
      tests/workers-settlement.sh
      say "build the Worker"
      (cd workers && worker-build --profile release-wasm --no-opt >"$run_dir/worker-build.log" 2>&1) || {
        tail -n 40 "$run_dir/worker-build.log"
        exit 1
      }
      # A build-free wrangler config (so `wrangler dev` starts in seconds on what was built),
      # without the default [vars]: the test's vars come from .dev.vars beside it.
      sed -e '/^\[build\]/,/^$/d' -e '/^\[vars\]/,$d' -e 's#^main = "#main = "../#' wrangler.toml >"$run_dir/wrangler.toml"
      {
        # dotenv: a backtick-quoted value may span lines and hold both quote kinds (YAML
        # strings use them; dotenv has no escapes inside quotes). Comments are dropped so
        # nothing in them is interpreted; a backtick in the config itself cannot be passed.
        yaml_text=$(grep -vE '^[[:space:]]*#' tests/e2e/config.yaml)
        if [[ $yaml_text == *'`'* ]]; then
          echo "tests/e2e/config.yaml must not contain a backtick (it is passed to wrangler in a backtick-quoted .dev.vars value)" >&2
          exit 1
        fi
        printf 'TOLLGATE_CONFIG_YAML=`%s`\n' "$yaml_text"
        for v in MOCK_URL MOCK_OPENAI_BASE MOCK_ANTHROPIC_BASE MOCK_GOOGLE_TOKEN_URI MOCK_API_KEY TOLLGATE_MASTER_KEY; do
          printf '%s=%s\n' "$v" "${!v}"
        done
      } >"$run_dir/.dev.vars"
      port=$(free_port)
      inspector=$(free_port)
      FORCE_COLOR=0 start workers wrangler dev -c "$run_dir/wrangler.toml" \
        --local --ip 127.0.0.1 --port "$port" --inspector-port "$inspector" --show-interactive-dev-session=false
      url="http://127.0.0.1:$port"
      wait_for_http "$url/health/liveliness" 120
      e2e workers "$url"
      stop workers
      ;;
    *)
      echo "unknown host $host (use local, lambda, workers)" >&2
      exit 2
      ;;
  esac
done

say "summary"
if [ ${#failed_hosts[@]} -gt 0 ]; then
  echo "e2e failed on: ${failed_hosts[*]}"
fi
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failed_hosts[@]} -eq 0 ]
