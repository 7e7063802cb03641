#!/usr/bin/env python3
"""Two difftx binaries (e.g. the commit before a change and after it) on the same benches,
alternating ABBA so that drift in the machine's load hits both sides; prints the median of
every figure per binary and their ratio B / A.

    python3 bench/ab_compare.py --a /tmp/old/difftx --b build/difftx [--rounds 3]

Benches (each one `difftx bench ... --json` subprocess): the reference config
configs/small-diff.json at T = 512, B = 4 in fp32 and in bf16: training, prefill, and
batch-1 decode after a T/2 prompt (64 new tokens); and decode alone at batch 1, 512 new
tokens after a 512-token prompt (decode-b1), since 64 tokens time too briefly to be steady.
Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = {
    "ref-fp32": ["--config", "configs/small-diff.json", "--seq", "512", "--batch", "4",
                 "--steps", "3", "--decode-tokens", "64"],
    "ref-bf16": ["--config", "configs/small-diff.json", "--seq", "512", "--batch", "4",
                 "--steps", "3", "--decode-tokens", "64", "--precision", "bf16"],
    # decode alone: 512 tokens after a 512-token prompt (the short training run is not read;
    # seq 1024 keeps the prompt and the fed ids inside the batch, which binaries from before
    # the fix of issue 16 need)
    "decode-b1": ["--config", "configs/small-diff.json", "--seq", "1024", "--batch", "1",
                  "--steps", "1", "--decode-tokens", "512"],
}
KEYS = ["train_tokens_per_s", "prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss_mb"]


def run(binary, args, threads):
    out = subprocess.run([binary, "bench", *args, "--threads", str(threads), "--json"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="difftx binary A (before)")
    ap.add_argument("--b", required=True, help="difftx binary B (after)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=sorted(BENCHES), action="append")
    o = ap.parse_args()
    names = o.only or list(BENCHES)
    results = {n: {"a": [], "b": []} for n in names}
    for r in range(o.rounds):
        order = ["a", "b"] if r % 2 == 0 else ["b", "a"]
        for n in names:
            for side in order:
                results[n][side].append(run(getattr(o, side), BENCHES[n], o.threads))
                print(f"round {r + 1} {n} {side} done", file=sys.stderr)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"| bench | figure | A (median of {o.rounds}) | B | B / A |")
    print("|---|---|---|---|---|")
    for n in names:
        for k in KEYS:
            a = statistics.median(x[k] for x in results[n]["a"])
            b = statistics.median(x[k] for x in results[n]["b"])
            print(f"| {n} | {k} | {a:.1f} | {b:.1f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
