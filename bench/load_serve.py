#!/usr/bin/env python3
"""Bounded load generator for `difftx serve` (stdlib only): starts the server on a free port,
sends a fixed number of streaming completions at each concurrency, prints one JSON line per
run: requests/s, generated tokens/s, p50/p99 time to first token.

  python3 bench/load_serve.py --difftx build/difftx --model DIR --parallel 8 \
      --concurrency 1,4,16 --requests 32 --max-tokens 32
"""
import argparse, http.client, json, re, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor


def one(port, prompt, max_tokens):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    conn.request("POST", "/v1/completions", body=json.dumps(
        {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}))
    r = conn.getresponse()
    first = None
    chunks = 0
    buf = b""
    while True:
        data = r.read1(65536)
        if not data:
            break
        if first is None:
            first = time.perf_counter() - start
        buf += data
    conn.close()
    events = [e for e in buf.decode("utf-8", "replace").split("\n\n") if e.startswith("data: {")]
    for e in events:  # the last chunk of the choice carries usage.completion_tokens
        j = json.loads(e[6:])
        if "usage" in j:
            chunks += j["usage"]["completion_tokens"]
    return first, time.perf_counter() - start, chunks


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--difftx", default="build/difftx")
    ap.add_argument("--model", required=True)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=32)
    a = ap.parse_args()
    proc = subprocess.Popen([a.difftx, "serve", "--model", a.model, "--port", "0",
                             "--parallel", str(a.parallel)], stderr=subprocess.PIPE, text=True)
    try:
        m = re.search(r"http://127\.0\.0\.1:(\d+)", proc.stderr.readline())
        port = int(m.group(1))
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        for c in [int(x) for x in a.concurrency.split(",")]:
            start = time.perf_counter()
            with ThreadPoolExecutor(c) as pool:
                res = list(pool.map(lambda i: one(port, "load test %d" % i, a.max_tokens),
                                    range(a.requests)))
            wall = time.perf_counter() - start
            ttft = [r[0] for r in res]
            tokens = sum(r[2] for r in res)
            print(json.dumps({"parallel": a.parallel, "concurrency": c, "requests": a.requests,
                              "max_tokens": a.max_tokens, "wall_s": round(wall, 3),
                              "requests_per_s": round(a.requests / wall, 2),
                              "tokens": tokens, "tokens_per_s": round(tokens / wall, 1),
                              "ttft_p50_ms": round(1000 * percentile(ttft, 50), 1),
                              "ttft_p99_ms": round(1000 * percentile(ttft, 99), 1)}), flush=True)
    finally:
        proc.terminate()
        proc.wait(60)


if __name__ == "__main__":
    main()
