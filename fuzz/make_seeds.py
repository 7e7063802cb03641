#!/usr/bin/env python3
"""Writes the seed corpus for the fuzzers (deterministic; standard library only).

corpus/train_state: train_state metadata texts; corpus/metrics: metrics.jsonl files.
corpus/safetensors: tiny valid files (F32/F16/BF16, metadata, scalar and empty tensors,
special values) and a few near-misses. corpus/config: a tiny config, edge-case configs and
copies of the golden configs. corpus/token_cache: token caches with the identity that
fuzz_token_cache.cpp expects, valid and damaged. Run from anywhere: python3 fuzz/make_seeds.py
"""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ST = os.path.join(HERE, "corpus", "safetensors")
CFG = os.path.join(HERE, "corpus", "config")
TS = os.path.join(HERE, "corpus", "train_state")
METRICS = os.path.join(HERE, "corpus", "metrics")
TC = os.path.join(HERE, "corpus", "token_cache")
TC_IDENTITY = {"tokenizer": "byte-fuzz", "sources": [{"path": "/fuzz.txt", "bytes": 5, "fnv1a": "00"}]}
GOLDEN = os.path.join(HERE, "..", "tests", "golden")


def st_file(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


def u16(*xs):
    return struct.pack("<%dH" % len(xs), *xs)


def token_cache(ids, tokens=None, vocab=257):
    """The cache image of train/token_cache.cpp: magic, u64 header length, header, pad to 64, u32 ids."""
    header = dict(TC_IDENTITY, tokens=len(ids) if tokens is None else tokens, vocab_size=vocab)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    start = (16 + len(h) + 63) // 64 * 64
    out = b"DTXTOK01" + struct.pack("<Q", len(h)) + h
    return out + b"\0" * (start - len(out)) + struct.pack("<%dI" % len(ids), *ids)


def write(path, content):
    with open(path, "wb") as f:
        f.write(content)


def main():
    os.makedirs(ST, exist_ok=True)
    os.makedirs(CFG, exist_ok=True)
    write(os.path.join(ST, "mixed_dtypes.safetensors"), st_file([
        ("a.weight", "F32", [2, 3], f32(1, -2, 3.5, 0, 1e-3, -7)),
        ("b.half", "F16", [4], u16(0x3C00, 0xC000, 0x0001, 0x7BFF)),  # 1, -2, subnormal, max
        ("c.brain", "BF16", [2, 2], u16(0x3F80, 0xBF80, 0x4049, 0x0000)),
    ], {"format": "pt", "writer": "difftx"}))
    write(os.path.join(ST, "specials_f16_bf16.safetensors"), st_file([
        ("inf_nan_f16", "F16", [4], u16(0x7C00, 0xFC00, 0x7E00, 0x8000)),
        ("inf_nan_bf16", "BF16", [3], u16(0x7F80, 0x7FC0, 0x0001)),
    ]))
    write(os.path.join(ST, "scalar_and_empty.safetensors"), st_file([
        ("scalar", "F32", [], f32(42)),
        ("empty", "F32", [0, 5], b""),
        ("row", "BF16", [1, 1, 2], u16(0x3F80, 0x4000)),
    ]))
    write(os.path.join(ST, "no_tensors.safetensors"), st_file([], {"k": "v"}))
    good = st_file([("x", "F32", [2], f32(1, 2))])
    write(os.path.join(ST, "truncated.safetensors"), good[:-3])
    write(os.path.join(ST, "bad_dtype.safetensors"), st_file([("x", "F64", [1], f32(1, 2))]))

    tiny = {"model_type": "diffllama", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 1, "num_attention_heads": 4, "max_position_embeddings": 8}
    configs = {
        "tiny.json": tiny,
        "llama_gqa.json": dict(tiny, model_type="llama", num_attention_heads=4, num_key_value_heads=2),
        "all_keys.json": dict(tiny, num_key_value_heads=2, head_dim=6, rms_norm_eps=1e-6,
                              rope_theta=500.0, tie_word_embeddings=True, lambda_std_dev=0.0,
                              diff_head_layout="split", rope_interleaved=False,
                              diff_norm_affine=False, hidden_act="silu", attention_bias=False,
                              mlp_bias=False, rope_scaling=None, attention_dropout=0.0),
        "bad_rope_scaling.json": dict(tiny, rope_scaling={"type": "yarn", "factor": 2.0}),
        "rope_linear.json": dict(tiny, rope_scaling={"type": "linear", "factor": 2.0}),
        "bad_types.json": dict(tiny, hidden_size="16", vocab_size=32.5),
        "rope_llama3.json": dict(tiny, rope_theta=500000.0, pretraining_tp=1, torch_dtype="bfloat16",
                                 rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 8192}),
        "rope_parameters_v5.json": dict(tiny, dtype="float32",
                                        rope_parameters={"rope_type": "linear", "factor": 4.0,
                                                         "rope_theta": 10000.0}),
    }
    for name, c in configs.items():
        with open(os.path.join(CFG, name), "w") as f:
            json.dump(c, f, indent=1)
    os.makedirs(TC, exist_ok=True)
    write(os.path.join(TC, "hello.tokens"), token_cache([104, 101, 108, 108, 111, 256]))
    write(os.path.join(TC, "empty.tokens"), token_cache([]))
    write(os.path.join(TC, "zeros.tokens"), token_cache([0] * 40))
    write(os.path.join(TC, "flipped_id.tokens"), token_cache([104, 0x80000065, 108]))
    write(os.path.join(TC, "enlarged_count.tokens"), token_cache([1, 2, 3], tokens=(1 << 62) + 3))
    write(os.path.join(TC, "truncated.tokens"), token_cache([1, 2, 3, 4])[:-5])
    for case in sorted(os.listdir(GOLDEN)):
        src = os.path.join(GOLDEN, case, "config.json")
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(CFG, "golden_" + case + ".json"))
    train_state_and_metrics_seeds()
    shard_index_seeds()


def shard_index_seeds():
    d = os.path.join(HERE, "corpus", "shard_index")
    os.makedirs(d, exist_ok=True)
    good = {"metadata": {"total_size": 1024},
            "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                           "model.norm.weight": "model-00002-of-00002.safetensors",
                           "model.rotary_emb.inv_freq": "model-00001-of-00002.safetensors"}}
    seeds = {
        "good.json": good,
        "escape.json": {"weight_map": {"a": "../outside.safetensors"}},
        "not_string.json": {"weight_map": {"a": 7}},
        "empty_map.json": {"metadata": {}, "weight_map": {}},
    }
    for name, m in seeds.items():
        with open(os.path.join(d, name), "w") as f:
            json.dump(m, f, indent=2, sort_keys=True)


def train_state_and_metrics_seeds():
    os.makedirs(TS, exist_ok=True)
    os.makedirs(METRICS, exist_ok=True)
    options = {"data": "/d/train.txt", "val": "", "tokenizer": "byte", "steps": 10, "batch": 2,
               "seq": 32, "accum": 1, "lr": 0.003, "min_lr_ratio": 0.1, "weight_decay": 0.1,
               "grad_clip": 1.0, "warmup": 0, "schedule": "cosine", "seed": 7, "precision": "fp32",
               "save_every": 4, "eval_every": 8, "eval_windows": 2, "log_every": 1,
               "max_bad_steps": 10, "attn_stats_every": 0}
    states = {
        "full.json": {"step": 4, "skipped": 0, "adam_steps": 4, "options": options,
                      "config": {"model_type": "diffllama", "vocab_size": 259}},
        "old.json": {"step": 4, "options": {"steps": 10, "batch": 2, "seq": 32, "cosine": True,
                                            "seed": 7, "precision": "bf16"}, "config": {}},
        "big_seed.json": {"step": 0, "options": dict(options, seed=18446744073709551615), "config": {}},
        "bad_types.json": {"step": "4", "options": dict(options, batch=2.5), "config": []},
    }
    for name, m in states.items():
        with open(os.path.join(TS, name), "w") as f:
            json.dump(m, f)
    lines = [
        {"step": 1, "loss": 5.5, "lr": 0.001, "grad_norm": 3.2, "tokens_per_s": 100.0, "skipped": False},
        {"step": 2, "loss": None, "lr": 0.001, "grad_norm": None, "tokens_per_s": 90.0, "skipped": True},
        {"step": 2, "val_loss": 5.25},
        {"step": 2, "attn_sparsity": 0.5, "attn_focus": 0.1, "attn_entropy": None, "attn_mean_abs": 0.01,
         "attn_max": 0.9, "attn_negative_share": 0.2, "lambda": [0.8, None], "logit_top1": 3.0,
         "logit_median": 1.0, "hidden_top1": 40.0, "hidden_median": 0.5},
        {"step": 3, "other": "kind"},
    ]
    with open(os.path.join(METRICS, "run.jsonl"), "w") as f:
        f.write("\n".join(json.dumps(l) for l in lines) + "\n\n")
    with open(os.path.join(METRICS, "damaged.jsonl"), "w") as f:
        f.write('{"step": 1, "loss": 1e308}\n{"step": -1, "loss": -1e308}\n{"step": 1, "loss": "x"}\n{"step": 2, "lo')


if __name__ == "__main__":
    main()
