#!/usr/bin/python3
"""Checks `difftx convert --to hf` against Hugging Face semantics, in float64 PyTorch.

For each case: `difftx init` a model in this project's official form (interleaved heads, GPT-J
RoPE, affine head norm; norm weights perturbed so that the groupnorm fold matters), convert it
with --to hf, then compute the logits of the converted directory with a formulation that mirrors
transformers' DiffLlamaAttention / LlamaAttention (repeat_kv, chunk/cat of values, a weightless
groupnorm, rotate_half RoPE with the config's scaling: make_golden.hf_style_split_attention and
hf_rope_inv_freq) reading only the keys transformers reads, and compare them with
`difftx inspect` of the *source* directory.  Also checks that config.json holds only keys of
transformers' config classes.

Run:  /usr/bin/python3 tests/golden/check_hf_export.py BUILD/difftx     (needs torch, numpy)
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as g  # noqa: E402  (the float64 reference and its safetensors reader)

HF_KEYS = {"architectures", "attention_bias", "attention_dropout", "bos_token_id", "eos_token_id",
           "head_dim", "hidden_act", "hidden_size", "initializer_range", "intermediate_size",
           "max_position_embeddings", "model_type", "num_attention_heads", "num_hidden_layers",
           "num_key_value_heads", "rms_norm_eps", "rope_scaling", "rope_theta",
           "tie_word_embeddings", "torch_dtype", "transformers_version", "use_cache", "vocab_size"}
DIFF_KEYS = HF_KEYS | {"lambda_std_dev"}
LLAMA_KEYS = HF_KEYS | {"mlp_bias", "pretraining_tp"}

CASES = {
    "diff_gqa_llama3": {"model_type": "diffllama", "vocab_size": 61, "hidden_size": 32,
                        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 8,
                        "num_key_value_heads": 4, "head_dim": 8, "rope_theta": 100.0,
                        "rope_scaling": dict(g.LLAMA3_SMALL), "max_position_embeddings": 64},
    "diff_mha_tied": {"model_type": "diffllama", "vocab_size": 61, "hidden_size": 32,
                      "intermediate_size": 48, "num_hidden_layers": 3, "num_attention_heads": 4,
                      "num_key_value_heads": 4, "tie_word_embeddings": True},
    "llama_gptj_linear": {"model_type": "llama", "vocab_size": 61, "hidden_size": 32,
                          "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                          "num_key_value_heads": 2, "rope_theta": 100.0,
                          "rope_scaling": {"type": "linear", "factor": 3.0}},
}


def hf_forward(p, cfg, tokens):
    """transformers' forward for DiffLlamaForCausalLM / LlamaForCausalLM (eager attention)."""
    eps = cfg["rms_norm_eps"]
    x = p["model.embed_tokens.weight"][tokens]
    for l in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % l
        xn = g.rmsnorm(x, p[pre + "input_layernorm.weight"], eps)
        if cfg["model_type"] == "diffllama":
            x = x + g.hf_style_split_attention(xn, p, pre + "self_attn.", cfg, l)
        else:
            x = x + g.std_attention(xn, p, pre + "self_attn.", cfg)
        x = x + g.swiglu_mlp(g.rmsnorm(x, p[pre + "post_attention_layernorm.weight"], eps), p, pre + "mlp.")
    x = g.rmsnorm(x, p["model.norm.weight"], eps)
    w = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ w.t()


def perturb_norms(model_dir):
    """Norm weights 1 + 0.3 N(0,1), lambdas 0.3 N(0,1) (init's unit norms would hide a bad fold)."""
    path = os.path.join(model_dir, "model.safetensors")
    p = g.read_safetensors(path)
    rng = np.random.default_rng(5)
    for k in p:
        if k.endswith("norm.weight"):
            p[k] = 1.0 + 0.3 * rng.standard_normal(p[k].shape)
        elif ".lambda_" in k:
            p[k] = 0.3 * rng.standard_normal(p[k].shape)
    g.write_safetensors(path, p, "F32", {"format": "pt"})


def main():
    difftx = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/difftx")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in CASES.items():
            src, hf = os.path.join(tmp, name), os.path.join(tmp, name + "_hf")
            with open(src + ".json", "w") as f:
                json.dump(config, f)
            subprocess.run([difftx, "init", "--config", src + ".json", "--out", src, "--seed", "3"],
                           check=True, stdout=subprocess.DEVNULL)
            perturb_norms(src)
            subprocess.run([difftx, "convert", "--model", src, "--out", hf, "--to", "hf"],
                           check=True, stdout=subprocess.DEVNULL)
            tokens = [int(t) for t in np.random.default_rng(1).integers(0, config["vocab_size"], 12)]
            out = os.path.join(tmp, name + ".safetensors")
            subprocess.run([difftx, "inspect", "--model", src, "--tokens", ",".join(map(str, tokens)),
                            "--out", out], check=True, stdout=subprocess.DEVNULL)
            engine = g.read_safetensors(out)["logits"]

            with open(os.path.join(hf, "config.json")) as f:
                raw = json.load(f)
            allowed = DIFF_KEYS if raw["model_type"] == "diffllama" else LLAMA_KEYS
            assert set(raw) == allowed, (name, set(raw) ^ allowed)
            cfg = g.load_config(os.path.join(hf, "config.json"))   # HF defaults: split, rotate_half, no affine
            assert cfg["diff_head_layout"] == "split" and not cfg["rope_interleaved"] and not cfg["diff_norm_affine"]
            p = {k: torch.tensor(v) for k, v in g.read_safetensors(os.path.join(hf, "model.safetensors")).items()}
            assert not any("groupnorm" in k for k in p)
            with torch.no_grad():
                ref = hf_forward(p, cfg, torch.tensor(tokens)).numpy()
            err = np.abs(engine - ref).max() / np.abs(ref).max()
            worst = max(worst, err)
            print("%-18s logits of difftx (source form) vs HF semantics on the --to hf output: "
                  "max rel error %.2e" % (name, err))
            assert err < 1e-5, (name, err)
    print("ok: worst %.2e" % worst)


if __name__ == "__main__":
    main()
