#!/usr/bin/python3
"""Load time, peak RSS, first-token latency and decode speed of `difftx generate` on a model.

    /usr/bin/python3 bench/measure_generate.py BUILD/difftx MODEL_DIR [--tokens 1,2,3] [--new 33] [--reps 2]

Run A (--max-tokens 0) gives the time to start and load the model and its peak RSS; run B
(--max-tokens NEW, greedy, ids streamed to a pipe) gives the time from the start to the first
generated id (load + prefill + one step: the first-token latency of a fresh process) and the
decode rate over the remaining NEW - 1 tokens. Peak RSS is the child's ru_maxrss. Prints
one JSON object per run and the medians; the load average is printed alongside, since the
figures are only as steady as the machine.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import time


def run(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    stamps, buf = [], b""
    fd = p.stdout.fileno()
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        now = time.monotonic() - t0
        buf += b
        stamps += [now] * b.count(b",") + ([now] if not stamps and buf.strip(b"\n") else [])
    p.wait()
    wall = time.monotonic() - t0
    assert p.returncode == 0, cmd
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, stamps, max(rss, before), buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("difftx")
    ap.add_argument("model")
    ap.add_argument("--tokens", default="128000,791,3681,315,279,3723,5415,374,430,433,527,264,1317,1396,315,8336")
    ap.add_argument("--new", type=int, default=33)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    base = [a.difftx, "generate", "--model", a.model, "--tokens", a.tokens, "--ids", "--temperature", "0"]
    loads, firsts, rates, rss_a = [], [], [], []
    for rep in range(a.reps):
        wall, _, rss, _ = run(base + ["--max-tokens", "0"])
        loads.append(wall)
        rss_a.append(rss)
        wall_b, stamps, rss_b, out = run(base + ["--max-tokens", str(a.new)])
        n = len(out.strip().split(b","))
        assert n == a.new, (n, out[:100])
        first = stamps[0]
        rate = (n - 1) / (stamps[-1] - first) if n > 1 and stamps[-1] > first else float("nan")
        firsts.append(first)
        rates.append(rate)
        print(json.dumps({"rep": rep, "load_s": round(wall, 3), "peak_rss_mb_load": rss // 1024,
                          "first_id_s": round(first, 3),
                          "decode_tokens_per_s": round(rate, 3), "peak_rss_mb_generate": rss_b // 1024,
                          "loadavg": os.getloadavg()[0]}))
    print(json.dumps({"median_load_s": round(statistics.median(loads), 3),
                      "median_first_id_s": round(statistics.median(firsts), 3),
                      "median_decode_tokens_per_s": round(statistics.median(rates), 3),
                      "peak_rss_mb": max(rss_a) // 1024, "prompt_tokens": len(a.tokens.split(","))}))


if __name__ == "__main__":
    main()
