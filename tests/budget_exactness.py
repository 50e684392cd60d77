#!/usr/bin/env python3
"""One backend's round of tests/budget-exactness.sh: a budget is exact across instances.

Given gateway instances that share one Store, creates a virtual key with a budget of exactly
N requests (`POST /key/generate` on the first instance), fires R chat requests, C of them in
flight at once (all by default), with the official `openai` SDK (`max_retries=0`, round-robin
over the instances), each costing exactly COST dollars (the model is priced so;
`max_tokens: 1` makes the mock answer one word), then checks, once the after-response work is
done:

  * exactly N answers are 200 (each with `x-litellm-response-cost` == COST) and every other
    one is a 400 with error type `budget_exceeded`;
  * `GET /key/info` spend == N * COST (within 1e-9);
  * `GET /spend/logs?api_key=` has N `success` rows of spend COST and R - N `failure` rows
    of spend 0 (the refusals);
  * `GET /global/spend` (the daily rollups) == N * COST;
  * the Store's own counter for the key (`spend:key:<sha256 of the raw key>:all`, read from
    Redis or DynamoDB directly) == N * COST in nano-dollars.

Prints one summary line and exits 1 on any mismatch.

  budget_exactness.py --backend redis --urls URL1,URL2,... --master-key K --model M \
      [--budget-requests 37] [--requests 200] [--concurrency C] [--cost 0.001] \
      (--redis-port P | --dynamodb-endpoint URL --dynamodb-table T)
"""

import argparse
import hashlib
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import requests

NANOS_PER_USD = 1_000_000_000
SETTLE_TIMEOUT_S = 15.0


def admin(method, url, master, path, **kw):
    r = requests.request(method, f"{url}{path}", headers={"Authorization": f"Bearer {master}"},
                         timeout=30, **kw)
    if r.status_code != 200:
        raise SystemExit(f"{method} {path} on {url}: {r.status_code} {r.text[:500]}")
    return r.json()


def fire(clients, model, total, concurrency):
    """`total` requests, round-robin over `clients`, `concurrency` of them in flight at once
    (the first `concurrency` released together)."""
    start = threading.Barrier(concurrency)

    def one(i):
        client = clients[i % len(clients)]
        if i < concurrency:
            start.wait()
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=model,
                messages=[{"role": "user", "content": f"exactness probe {i}"}],
                max_tokens=1,
            )
            raw.parse()
            return ("ok", raw.headers.get("x-litellm-response-cost"))
        except openai.APIStatusError as e:
            return (e.status_code, getattr(e, "type", None), str(e)[:300])
        except Exception as e:  # connection errors, timeouts: a failure of the test
            return ("error", type(e).__name__, str(e)[:300])

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(total)))
    return results, time.monotonic() - t0


def store_counter(args, key):
    """The Store's counter `key` (nano-dollars), read from the backend itself."""
    if args.redis_port:
        # The Redis Store keeps counters under "c:" (core/src/store/redis_protocol.rs).
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(args.redis_port), "GET", f"c:{key}"],
                             capture_output=True, text=True, check=True).stdout.strip()
        return int(out or 0)
    import boto3
    # A counter is one item: pk "c#<key>", sk "c", value in "v" (lambda/src/store/dynamodb.rs).
    ddb = boto3.client("dynamodb", endpoint_url=args.dynamodb_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    item = ddb.get_item(TableName=args.dynamodb_table, ConsistentRead=True,
                        Key={"pk": {"S": f"c#{key}"}, "sk": {"S": "c"}}).get("Item")
    return int(item["v"]["N"]) if item else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", required=True)
    ap.add_argument("--urls", required=True, help="comma-separated gateway base URLs")
    ap.add_argument("--master-key", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--budget-requests", type=int, default=37)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, help="requests in flight at once (default: all)")
    ap.add_argument("--cost", type=float, default=0.001, help="dollars per request")
    ap.add_argument("--redis-port", type=int)
    ap.add_argument("--dynamodb-endpoint")
    ap.add_argument("--dynamodb-table")
    args = ap.parse_args()
    urls = [u.rstrip("/") for u in args.urls.split(",")]
    n, total = args.budget_requests, args.requests
    cost_nanos = round(args.cost * NANOS_PER_USD)
    budget = n * cost_nanos / NANOS_PER_USD
    t_start = time.monotonic()

    made = admin("POST", urls[0], args.master_key, "/key/generate",
                 json={"max_budget": budget, "models": [args.model]})
    raw_key = made["key"]
    token = hashlib.sha256(raw_key.encode()).hexdigest()
    clients = [openai.OpenAI(base_url=f"{u}/v1", api_key=raw_key, max_retries=0, timeout=60)
               for u in urls]

    concurrency = min(args.concurrency or total, total)
    results, burst_s = fire(clients, args.model, total, concurrency)

    problems = []
    ok = [r for r in results if r[0] == "ok"]
    refused = [r for r in results if r[0] == 400 and r[1] == "budget_exceeded"]
    other = [r for r in results if r[0] != "ok" and not (r[0] == 400 and r[1] == "budget_exceeded")]
    if len(ok) != n:
        problems.append(f"{len(ok)} requests succeeded, expected exactly {n}")
    if other:
        problems.append(f"{len(other)} answers were neither 200 nor a 400 budget_exceeded, e.g. {other[:3]}")
    wrong_cost = [c for _, c in ok if c is None or abs(float(c) - args.cost) > 1e-12]
    if wrong_cost:
        problems.append(f"{len(wrong_cost)} answers' x-litellm-response-cost is not {args.cost}: {wrong_cost[:3]}")
    # What must be recorded: the successful requests' costs, nothing more, nothing less.
    spent_nanos = len(ok) * cost_nanos
    spent = spent_nanos / NANOS_PER_USD

    # Settlement is after-response work: poll until every request has its spend-log row (the
    # settlement batch is written just before it, by the same work), then read every figure.
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        rows = admin("GET", urls[-1], args.master_key, "/spend/logs", params={"api_key": raw_key})
        if len(rows) >= total or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(0.5)  # anything landing after the last row would show as a mismatch below
    rows = admin("GET", urls[-1], args.master_key, "/spend/logs", params={"api_key": raw_key})
    success = [r for r in rows if r.get("status") == "success"]
    failure = [r for r in rows if r.get("status") == "failure"]
    if len(rows) != total:
        problems.append(f"/spend/logs has {len(rows)} rows for the key, expected {total} (one per request)")
    if len(success) != len(ok):
        problems.append(f"/spend/logs has {len(success)} success rows for {len(ok)} successful requests")
    bad = [r["spend"] for r in success if abs(r["spend"] - args.cost) > 1e-12]
    if bad:
        problems.append(f"{len(bad)} success rows do not cost {args.cost}: {bad[:5]}")
    if len(failure) != total - len(ok):
        problems.append(f"/spend/logs has {len(failure)} failure rows for {total - len(ok)} refused requests")
    bad = [r["spend"] for r in failure if r["spend"] != 0]
    if bad:
        problems.append(f"{len(bad)} failure rows have a spend: {bad[:5]}")
    if len({r["request_id"] for r in rows}) != len(rows):
        problems.append("/spend/logs repeats a request_id")

    info = admin("GET", urls[1 % len(urls)], args.master_key, "/key/info", params={"key": raw_key})
    key_spend = info["info"]["spend"]
    if abs(key_spend - spent) > 1e-9:
        problems.append(f"/key/info spend is {key_spend!r}, the successful requests cost {spent}")
    global_spend = admin("GET", urls[2 % len(urls)], args.master_key, "/global/spend")["spend"]
    if abs(global_spend - spent) > 1e-9:
        problems.append(f"/global/spend (daily rollups) is {global_spend!r}, the successful requests cost {spent}")
    counter = store_counter(args, f"spend:key:{token}:all")
    if counter != spent_nanos:
        problems.append(f"the Store's counter spend:key:<token>:all is {counter}, the successful requests cost {spent_nanos} nano$")

    wall = time.monotonic() - t_start
    print(f"{args.backend}: {len(urls)} instances, {total} requests ({concurrency} at once), budget ${budget:g} "
          f"= {n} x ${args.cost:g}: {len(ok)} ok, {len(refused)} budget_exceeded, {len(other)} other; "
          f"recorded: /key/info ${key_spend:.9f}, /spend/logs {len(success)} success + "
          f"{len(failure)} failure rows, rollups ${global_spend:.9f}, Store counter {counter} nano$; "
          f"burst {burst_s:.2f} s, wall {wall:.2f} s -> {'PASS' if not problems else 'FAIL'}")
    for p in problems:
        print(f"  MISMATCH: {p}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
