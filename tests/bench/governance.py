#!/usr/bin/env python3
"""Governance benchmark: the latency a virtual key with a budget adds over the master key.

For each Store (memory, embedded redb, Redis), starts the release gateway pinned to one core
with that Store, creates a virtual key with a large budget through `/key/generate`, and drives
the built-in mock model (no upstream hop, so only Tollgate's own work is measured) with wrk:

  * one connection: p50 / p99 with the master key, then with the virtual key -> the added p50;
  * 16 connections: requests per second with each.

The virtual key's request authenticates through the key cache, reserves its worst case on the
key's budget counter (one Store batch before the answer) and settles after it (one batch in
the after-response work, with the spend rollups and the spend-log row).

  python3 tests/bench/governance.py [--seconds 5]

Needs wrk and taskset (like load.py) and redis-server. Prints a Markdown table.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from load import MASTER, ROOT, start, wrk  # noqa: E402


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def generate_key(url):
    req = urllib.request.Request(
        f"{url}/key/generate",
        data=json.dumps({"max_budget": 1_000_000.0, "budget_duration": "30d"}).encode(),
        headers={"Authorization": f"Bearer {MASTER}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["key"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    for tool in ("wrk", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "tollgate-lambda"], cwd=ROOT, check=True)
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                              "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp()
    stores = (
        ("memory", {"TOLLGATE_STORE": "memory"}),
        ("embedded (redb, fsync per commit)", {"TOLLGATE_STORE": "embedded",
                                               "TOLLGATE_STORE_PATH": f"{tmp}/bench.redb"}),
        ("Redis (loopback)", {"TOLLGATE_STORE": "redis", "REDIS_URL": f"redis://127.0.0.1:{redis_port}"}),
    )
    body = json.dumps({"model": "builtin", "max_tokens": 16,
                       "messages": [{"role": "user", "content": "Say hello to the benchmark please"}]})
    rows = []
    try:
        time.sleep(0.5)
        for label, extra in stores:
            env = dict(os.environ, TOLLGATE_MASTER_KEY=MASTER, LITELLM_LOG="warn",
                       MOCK_OPENAI_BASE="http://127.0.0.1:9/v1", MOCK_API_KEY="unused", **extra)
            gw, url = start([f"{ROOT}/target/release/tollgate", "--config",
                             f"{ROOT}/tests/bench/config.yaml", "--port", "0"], env=env, cpu=1)
            try:
                key = generate_key(url)
                target = f"{url}/v1/chat/completions"
                results = {}
                for who, bearer in (("master", MASTER), ("virtual", key)):
                    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"}
                    wrk(target, body, 1, 1, headers)  # warm up (key cache, connections)
                    p50, p99, _ = wrk(target, body, 1, args.seconds, headers)
                    _, _, rps = wrk(target, body, 16, args.seconds, headers)
                    results[who] = (p50, p99, rps)
                m, v = results["master"], results["virtual"]
                rows.append((label, m[0], v[0], v[0] - m[0], m[1], v[1], m[2], v[2]))
            finally:
                gw.send_signal(signal.SIGTERM)
                try:
                    gw.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    gw.kill()
    finally:
        redis.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    print("| Store | p50 master key | p50 virtual key + budget | **p50 added** | p99 master | p99 virtual "
          "| req/s 16 conns master (1 core) | req/s 16 conns virtual |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.0f} µs | {r[2]:.0f} µs | **{r[3]:.0f} µs** | {r[4]:.0f} µs | {r[5]:.0f} µs "
              f"| {r[6]:.0f} | {r[7]:.0f} |")


if __name__ == "__main__":
    main()
