#!/usr/bin/env python3
"""Load benchmark: latency Tollgate adds over calling the mock provider directly.

Starts the release mock provider (pinned to core 0) and the release gateway (pinned to core 1,
so "requests per second" means one core), then drives both with wrk, in the same run:

  * one connection: p50 / p99 latency direct vs through the gateway -> the added latency;
  * 16 connections: requests per second through the gateway on its one core.

for non-streamed and streamed chat. Prints a Markdown table (paste into docs/benchmarks.md).

  python3 tests/bench/load.py [--seconds 5]

Needs wrk (apt-get install wrk) and taskset. Everything listens on 127.0.0.1 and is stopped at
the end. Requests are bounded by wrk's duration.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MASTER = "sk-bench"
UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def start(cmd, env=None, cpu=None):
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu)] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line or "")
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
        if proc.poll() is not None:
            break
    proc.kill()
    sys.exit(f"could not start {' '.join(cmd)}")


def wrk(url, body, connections, seconds, headers):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\n')
        f.write(f"wrk.body = {json.dumps(body)}\n")
        for k, v in headers.items():
            f.write(f'wrk.headers["{k}"] = "{v}"\n')
        script = f.name
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
        capture_output=True, text=True, check=True,
    ).stdout
    os.unlink(script)
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"errors during load against {url}:\n{out}")
    pct = {}
    for p, val, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[p] = float(val) * UNITS[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return pct["50"], pct["99"], rps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "tollgate-lambda", "-p", "tollgate-mock-provider"],
                   cwd=ROOT, check=True)
    mock, mock_url = start([f"{ROOT}/target/release/mock-provider", "--port", "0"], cpu=0)
    env = dict(os.environ, MOCK_OPENAI_BASE=f"{mock_url}/v1", MOCK_API_KEY="sk-mock",
               TOLLGATE_MASTER_KEY=MASTER, LITELLM_LOG="warn")
    gw, gw_url = start([f"{ROOT}/target/release/tollgate", "--config", f"{ROOT}/tests/bench/config.yaml",
                        "--port", "0"], env=env, cpu=1)
    try:
        rows = []
        cases = (("chat, non-streamed", "gpt-4o", False), ("chat, streamed", "gpt-4o", True),
                 ("chat, built-in mock (no upstream hop)", "builtin", False))
        for label, model, stream in cases:
            def body_for(m):
                return json.dumps({"model": m, "stream": stream,
                                   "messages": [{"role": "user", "content": "Say hello to the benchmark please"}]})
            body = body_for("gpt-4o")
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {MASTER}"}
            d50, d99, drps = wrk(f"{mock_url}/v1/chat/completions", body, 1, args.seconds, headers)
            g50, g99, grps = wrk(f"{gw_url}/v1/chat/completions", body_for(model), 1, args.seconds, headers)
            _, _, load_rps = wrk(f"{gw_url}/v1/chat/completions", body_for(model), 16, args.seconds, headers)
            _, _, load_direct = wrk(f"{mock_url}/v1/chat/completions", body, 16, args.seconds, headers)
            rows.append((label, d50, g50, g50 - d50, d99, g99, drps, grps, load_rps, load_direct))
        print("| case | p50 direct | p50 via Tollgate | **p50 added** | p99 direct | p99 via Tollgate "
              "| req/s 1 conn direct | req/s 1 conn via | req/s 16 conns via (1 core) | req/s 16 conns direct |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.0f} µs | {r[2]:.0f} µs | **{r[3]:.0f} µs** | {r[4]:.0f} µs | {r[5]:.0f} µs "
                  f"| {r[6]:.0f} | {r[7]:.0f} | {r[8]:.0f} | {r[9]:.0f} |")
    finally:
        for p in (gw, mock):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
