#!/usr/bin/env python3
"""The model variants against the baseline on one machine, in one script: DIFF V1
(diffllama) and DIFF V2 (diffllama_v2) against the standard Transformer (llama), all built
from the same sizes (configs/small-llama.json, the reference config, with only model_type
changed), timed by `difftx bench --json` in rotating order (round r runs the kinds shifted by
r, so drift in the machine's load hits every kind alike). Prints the median of every figure per
kind and its share of the baseline's.

    python3 bench/variants.py [--difftx build/difftx] [--rounds 3] [--threads 2]

Benches:
  train        T = 512, B = 4, fp32: training tokens/s (forward, backward, AdamW) and prefill
  decode       batch 1, 512 new tokens after a 512-token prompt (context ~768)
  decode-long  batch 1, 256 new tokens after a 4096-token prompt (context ~4224), where
               reading the KV cache weighs in (the regime of V2's "decodes like a Transformer")
Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ["llama", "diffllama", "diffllama_v2"]
BENCHES = {
    "train": (2048, ["--seq", "512", "--batch", "4", "--steps", "3", "--decode-tokens", "0"],
              ["train_tokens_per_s", "prefill_tokens_per_s"]),
    "decode": (2048, ["--seq", "1024", "--batch", "1", "--steps", "1", "--decode-tokens", "512"],
               ["decode_tokens_per_s"]),
    "decode-long": (8192, ["--seq", "8192", "--batch", "1", "--steps", "1", "--decode-tokens", "256"],
                    ["decode_tokens_per_s"]),
}


def write_configs(tmp):
    with open(os.path.join(ROOT, "configs", "small-llama.json")) as f:
        base = json.load(f)
    paths = {}
    for kind in KINDS:
        for max_pos in sorted({b[0] for b in BENCHES.values()}):
            c = dict(base, model_type=kind, max_position_embeddings=max_pos)
            p = os.path.join(tmp, f"{kind}-{max_pos}.json")
            with open(p, "w") as f:
                json.dump(c, f)
            paths[kind, max_pos] = p
    return paths


def run(binary, config, args, threads):
    out = subprocess.run([binary, "bench", "--config", config, *args, "--threads", str(threads),
                          "--json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--difftx", default=os.path.join(ROOT, "build", "difftx"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=sorted(BENCHES), action="append")
    o = ap.parse_args()
    names = o.only or list(BENCHES)
    results = {(n, k): [] for n in names for k in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        configs = write_configs(tmp)
        for r in range(o.rounds):
            order = KINDS[r % 3:] + KINDS[:r % 3]
            for n in names:
                max_pos, args, _ = BENCHES[n]
                for kind in order:
                    results[n, kind].append(run(o.difftx, configs[kind, max_pos], args, o.threads))
                    print(f"round {r + 1} {n} {kind} done", file=sys.stderr)
    params = {k: results[names[0], k][0]["parameters"] for k in KINDS}
    print(f"load average at the end: {os.getloadavg()[0]:.2f}; parameters: " +
          ", ".join(f"{k} {params[k]:,}" for k in KINDS))
    print(f"| bench | figure | llama (median of {o.rounds}) | diffllama | share | diffllama_v2 | share |")
    print("|---|---|---|---|---|---|---|")
    for n in names:
        for key in BENCHES[n][2]:
            med = {k: statistics.median(x[key] for x in results[n, k]) for k in KINDS}
            base = med["llama"]
            print(f"| {n} | {key} | {base:.1f} | {med['diffllama']:.1f} | "
                  f"{med['diffllama'] / base:.3f} | {med['diffllama_v2']:.1f} | "
                  f"{med['diffllama_v2'] / base:.3f} |")


if __name__ == "__main__":
    main()
