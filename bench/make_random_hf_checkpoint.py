#!/usr/bin/python3
"""Writes a random-weight Hugging Face checkpoint directory for load and speed measurements.

    /usr/bin/python3 bench/make_random_hf_checkpoint.py CONFIG.json OUT_DIR [--dtype BF16|F16|F32]
        [--shard-gb 5]

CONFIG.json is a Hugging Face config (e.g. tests/data/hf/kajuma_diffllama_config.json, the shape
of kajuma/DiffLlama-0.3B-handcut); the weights are normal(0, 0.02) matrices, unit norms and
normal(0, lambda_std_dev) lambdas, written tensor by tensor (peak memory: one tensor), sharded as
transformers does above --shard-gb. Needs numpy only. The output is large: never commit it.
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np


def shapes(c):
    V, D, I = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
    n = c["num_attention_heads"]
    kv = c.get("num_key_value_heads") or n
    d = c.get("head_dim") or D // n
    s = [("model.embed_tokens.weight", (V, D))]
    for l in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % l
        s += [(p + "self_attn.q_proj.weight", (n * d, D)), (p + "self_attn.k_proj.weight", (kv * d, D)),
              (p + "self_attn.v_proj.weight", (kv * d, D)), (p + "self_attn.o_proj.weight", (D, n * d))]
        if c["model_type"] == "diffllama":
            s += [(p + "self_attn." + x, (d,)) for x in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2")]
        s += [(p + "mlp.gate_proj.weight", (I, D)), (p + "mlp.up_proj.weight", (I, D)),
              (p + "mlp.down_proj.weight", (D, I)), (p + "input_layernorm.weight", (D,)),
              (p + "post_attention_layernorm.weight", (D,))]
    s.append(("model.norm.weight", (D,)))
    if not c.get("tie_word_embeddings", False):
        s.append(("lm_head.weight", (V, D)))
    return s


def encode(a, dtype):
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    bits = a.astype(np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--dtype", default="BF16", choices=["BF16", "F16", "F32"])
    ap.add_argument("--shard-gb", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    with open(a.config) as f:
        c = json.load(f)
    os.makedirs(a.out)
    shutil.copyfile(a.config, os.path.join(a.out, "config.json"))
    rng = np.random.default_rng(a.seed)
    size = 2 if a.dtype != "F32" else 4
    limit = int(a.shard_gb * 1e9)
    shards, cur, cur_bytes = [], [], 0
    for name, shape in shapes(c):
        b = int(np.prod(shape)) * size
        if cur and cur_bytes + b > limit:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append((name, shape))
        cur_bytes += b
    shards.append(cur)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        fname = "model.safetensors" if len(shards) == 1 else "model-%05d-of-%05d.safetensors" % (k + 1, len(shards))
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for name, shape in sorted(shard):
            b = int(np.prod(shape)) * size
            header[name] = {"dtype": a.dtype, "shape": list(shape), "data_offsets": [off, off + b]}
            off += b
            weight_map[name] = fname
        total += off
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * ((-len(h)) % 8)
        with open(os.path.join(a.out, fname), "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for name, shape in sorted(shard):
                if name.endswith("norm.weight"):
                    x = np.ones(shape, dtype=np.float32)
                elif ".lambda_" in name:
                    x = rng.standard_normal(shape, dtype=np.float32) * c.get("lambda_std_dev", 0.1)
                else:
                    x = rng.standard_normal(shape, dtype=np.float32) * 0.02
                f.write(encode(x, a.dtype))
    if len(shards) > 1:
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
            f.write("\n")
    print("wrote %s: %d tensors, %.2f GB in %d file(s)" % (a.out, len(weight_map), total / 1e9, len(shards)))


if __name__ == "__main__":
    main()
