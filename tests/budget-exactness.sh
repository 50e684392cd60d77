#!/usr/bin/env bash
# Budgets are exact across instances (docs/governance.md, "Proof: exactness across instances"):
#   tests/budget-exactness.sh                  # Redis, then DynamoDB
#   TOLLGATE_EXACTNESS_BACKENDS=redis tests/budget-exactness.sh   # only some (redis dynamodb)
#   TOLLGATE_EXACTNESS_DYNAMODB_CONCURRENCY=200 ...   # requests in flight on DynamoDB (default
#                                                     # 16; TOLLGATE_EXACTNESS_REDIS_CONCURRENCY: 200)
# Mode: a self-contained check (builds, starts and stops everything itself; ~20 s after the
# build on 2 cores), not a benchmark: it asserts counts and amounts, timings are only printed.
# For each shared Store — a real redis-server, then moto's DynamoDB server (serial, so each
# request is atomic as in DynamoDB: tests/store/moto_serial.py) — it starts 4 local gateway
# processes on that Store, with one model group priced so every request costs exactly $0.001
# (output $0.001 per token, input free, `max_tokens: 1`, and the mock answers one word), which
# is also exactly what each request reserves. tests/budget_exactness.py then creates a virtual
# key with `max_budget` = 37 requests through `/key/generate`, fires 200 concurrent requests
# with the official openai SDK (no retries) round-robin over the 4 instances (on DynamoDB 16
# in flight at a time: see dynamodb_concurrency below), and checks: 37
# answers are 200 and the other 163 are 400 `budget_exceeded`; after the after-response work,
# `/key/info` spend, `/global/spend` (rollups), the spend-log rows (37 success at $0.001, 163
# failure at 0) and the Store's own counter (read from Redis / DynamoDB directly) all say
# exactly 37 × $0.001. Prints one line per backend; exits non-zero on any mismatch.
# Everything listens on 127.0.0.1; every process started here is stopped on exit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=tests/tools-env.sh
. tests/tools-env.sh

backends="${TOLLGATE_EXACTNESS_BACKENDS:-redis dynamodb}"
instances=4
budget_requests=37
requests=200
master=sk-exactness-master
model=exact-4o
table=tollgate-exactness
# Requests in flight at once. Redis: all 200. DynamoDB: moto's serial server does ~150 Store
# operations a second (about 7 per gateway request), and the gateway bounds each DynamoDB
# operation at a fixed 3 s (TOLLGATE_DYNAMODB_TIMEOUT_MS is not read by the binary), so 200 at
# once would queue past that bound and be answered 503 store_unavailable: the emulator's
# throughput, not what is tested. 16 in flight (4 per instance) keep its queue far below it.
redis_concurrency="${TOLLGATE_EXACTNESS_REDIS_CONCURRENCY:-$requests}"
dynamodb_concurrency="${TOLLGATE_EXACTNESS_DYNAMODB_CONCURRENCY:-16}"

run_dir="$root/.test-run/budget-exactness"
rm -rf "$run_dir"
mkdir -p "$run_dir"

# ---- process bookkeeping: every background process gets its own group, killed on exit --------
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
  local pid=$!
  set +m
  pgids+=("$pid")
  echo "$pid" >"$run_dir/$name.pid"
}

# stop NAME: TERM its group, KILL it after 5 s.
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

# wait_for_line NAME REGEX SECONDS: prints the first match in NAME's log.
wait_for_line() {
  local deadline=$((SECONDS + $3)) line
  while [ $SECONDS -lt $deadline ]; do
    line=$(grep -m1 -oE "$2" "$run_dir/$1.log" 2>/dev/null || true)
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "timed out waiting for $1; its log:" >&2
  tail -n 40 "$run_dir/$1.log" >&2
  return 1
}

cargo build -q -p tollgate-lambda -p tollgate-mock-provider
t0=$SECONDS

start mock "$root/target/debug/mock-provider" --host 127.0.0.1 --port 0
mock_url=$(wait_for_line mock 'http://127\.0\.0\.1:[0-9]+' 30) || fail "the mock provider did not start"

# write_config FILE STORE_YAML: 4 instances share FILE; the store section differs per backend.
write_config() {
  cat >"$1" <<EOF
model_list:
  - model_name: $model
    litellm_params:
      model: openai/gpt-4o
      api_base: "$mock_url/v1"
      api_key: sk-mock-upstream
      input_cost_per_token: 0
      output_cost_per_token: 0.001
general_settings:
  master_key: $master
  store: $2
EOF
}

# round BACKEND STORE_YAML ARGS...: 4 gateways on the store, then the Python round.
round() {
  local backend=$1 store=$2 i urls=""
  shift 2
  write_config "$run_dir/config-$backend.yaml" "$store"
  for i in $(seq "$instances"); do
    start "gw-$backend-$i" "$root/target/debug/tollgate" --config "$run_dir/config-$backend.yaml" \
      --host 127.0.0.1 --port 0
  done
  for i in $(seq "$instances"); do
    urls+="${urls:+,}$(wait_for_line "gw-$backend-$i" 'http://127\.0\.0\.1:[0-9]+' 30)" ||
      fail "gateway $i on $backend did not start"
  done
  local rc=0
  python tests/budget_exactness.py --backend "$backend" --urls "$urls" --master-key "$master" \
    --model "$model" --budget-requests "$budget_requests" --requests "$requests" "$@" || rc=$?
  for i in $(seq "$instances"); do
    stop "gw-$backend-$i"
  done
  return "$rc"
}

failed=()
for backend in $backends; do
  case "$backend" in
    redis)
      port=$(free_port)
      start redis redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no
      for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
      done
      redis-cli -p "$port" ping >/dev/null || fail "redis-server did not start"
      round redis "{type: redis, url: \"redis://127.0.0.1:$port\"}" --redis-port "$port" \
        --concurrency "$redis_concurrency" ||
        failed+=(redis)
      ;;
    dynamodb)
      port=$(free_port)
      start moto python tests/store/moto_serial.py -H 127.0.0.1 -p "$port"
      endpoint="http://127.0.0.1:$port"
      # moto takes any credentials; the gateway's SDK reads these, and never looks further.
      export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
        AWS_EC2_METADATA_DISABLED=true
      # The table DynamoStore::create_table_if_missing makes (and template.yaml declares):
      # pk (hash) and sk (range), both strings, on demand.
      python - "$endpoint" "$table" <<'PY' || fail "could not create the DynamoDB table on moto"
import sys, time
import boto3

endpoint, table = sys.argv[1], sys.argv[2]
ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
deadline = time.monotonic() + 30
while True:
    try:
        ddb.list_tables()
        break
    except Exception:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                            {"AttributeName": "sk", "KeyType": "RANGE"}],
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                       {"AttributeName": "sk", "AttributeType": "S"}])
ddb.update_time_to_live(TableName=table,
                        TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
PY
      round dynamodb "{type: dynamodb, table: $table, endpoint: \"$endpoint\"}" \
        --dynamodb-endpoint "$endpoint" --dynamodb-table "$table" \
        --concurrency "$dynamodb_concurrency" || failed+=(dynamodb)
      ;;
    *) fail "unknown backend $backend (expected redis or dynamodb)" ;;
  esac
done

echo "took $((SECONDS - t0)) s after the build"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAIL: budgets are not exact on: ${failed[*]} (logs in $run_dir)" >&2
  exit 1
fi
echo "PASS: budgets are exact across $instances instances on: $backends"
