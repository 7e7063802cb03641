#!/usr/bin/env python3
"""Writes the seed corpus for the fuzzers (deterministic; standard library only).

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
        "bad_rope_scaling.json": dict(tiny, rope_scaling={"type": "linear", "factor": 2.0}),
        "bad_types.json": dict(tiny, hidden_size="16", vocab_size=32.5),
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


if __name__ == "__main__":
    main()
