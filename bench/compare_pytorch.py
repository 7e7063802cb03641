#!/usr/bin/python3
"""Compare difftx with PyTorch on the same model, same shapes, same measurements.

The PyTorch model is written in the style of the official Differential Transformer code
(microsoft/unilm, Diff-Transformer/multihead_diffattn.py): naive attention with q/k/v
projections, RoPE, matmul QK^T, causal mask, softmax, the two maps subtracted with lambda,
matmul with V, RMSNorm `subln` and * (1 - lambda_init). model_type "llama" gets standard
(eager, Hugging Face style) Llama attention. The rest is RMSNorm, SwiGLU, an untied or tied
LM head and cross-entropy, as in SPEC section 1. Tensor names follow SPEC section 2 (so the
official `subln` is called `groupnorm` here) so that a difftx checkpoint loads directly.

It times what `difftx bench` times:
  train    zero_grad, forward, cross-entropy, backward, torch.optim.AdamW step;
           one warm-up step, then the median of --steps steps; B*T tokens per step
  prefill  forward over B x T under torch.no_grad; warm-up, median of --steps
  decode   the official code has no KV cache, so PyTorch "decode" is full recomputation of
           the growing sequence per new token (greedy), batch 1, from a prompt of T/2 tokens;
           difftx decodes with its KV cache. Both are reported, labelled.
  RSS      ru_maxrss of the process. Every PyTorch measurement runs in its own subprocess
           (train / prefill / decode) so its peak RSS is its own; the difftx figure is the
           peak of its whole `bench` process (training dominates it).

PyTorch and difftx runs alternate (order flipped every round, A B B A ...), --repeats rounds;
the table shows the median over rounds of each side and the ratio difftx / PyTorch.

Before timing, a check (skip with --skip-check) verifies that the PyTorch model is the same
model: its parameter count equals SPEC section 2's count and what `difftx init` reports, its
initial loss on random tokens is ~ ln(vocab), and with the weights of a `difftx init`
checkpoint loaded, its logits, loss and gradients match `difftx inspect --grads`.

Run with Debian's python: /usr/bin/python3 bench/compare_pytorch.py --config configs/small-diff.json
(torch 1.13 CPU and numpy: `bash scripts/install-deps.sh --with-torch`). No network needed.
"""

import argparse
import json
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------
# Config (SPEC section 2, with the project's defaults for new models)
# ----------------------------------------------------------------------------------------

def load_config(path):
    with open(path) as f:
        raw = json.load(f)
    c = dict(raw)
    for key in ("model_type", "vocab_size", "hidden_size", "intermediate_size",
                "num_hidden_layers", "num_attention_heads"):
        if key not in c:
            raise SystemExit(f"compare_pytorch: error: {path}: missing required key {key!r}")
    if c["model_type"] not in ("diffllama", "llama"):
        raise SystemExit(f"compare_pytorch: error: {path}: model_type must be diffllama or llama")
    if c.get("attention_bias", False):
        raise SystemExit(f"compare_pytorch: error: {path}: attention_bias true is not supported")
    if c.get("hidden_act", "silu") != "silu":
        raise SystemExit(f"compare_pytorch: error: {path}: hidden_act must be silu")
    if c.get("rope_scaling") is not None:
        raise SystemExit(f"compare_pytorch: error: {path}: rope_scaling is not supported")
    c.setdefault("num_key_value_heads", c["num_attention_heads"])
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    c.setdefault("rms_norm_eps", 1e-5)
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("max_position_embeddings", 2048)
    c.setdefault("tie_word_embeddings", False)
    c.setdefault("lambda_std_dev", 0.1)
    # The project's new models default to the official semantics (SPEC section 2).
    c.setdefault("diff_head_layout", "interleaved")
    c.setdefault("rope_interleaved", True)
    c.setdefault("diff_norm_affine", True)
    if c["model_type"] == "diffllama":
        if c["num_attention_heads"] % 2 or c["num_key_value_heads"] % 2:
            raise SystemExit(f"compare_pytorch: error: {path}: diffllama needs even head counts")
    if c["num_attention_heads"] % c["num_key_value_heads"]:
        raise SystemExit(f"compare_pytorch: error: {path}: heads not a multiple of kv heads")
    return c


def spec_parameter_count(c):
    """Parameter count from SPEC section 2's tensor list."""
    D, I, V, L = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    n, kv, d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    per_layer = n * d * D + 2 * kv * d * D + D * n * d + 3 * D * I + 2 * D
    if c["model_type"] == "diffllama":
        per_layer += 4 * d + (2 * d if c["diff_norm_affine"] else 0)
    total = V * D + L * per_layer + D
    if not c["tie_word_embeddings"]:
        total += V * D
    return total


# ----------------------------------------------------------------------------------------
# The PyTorch model (imported lazily: only worker subprocesses load torch)
# ----------------------------------------------------------------------------------------

def build_model_classes():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class RMSNorm(nn.Module):
        """As unilm Diff-Transformer rms_norm.py: normalise in float32, then scale."""

        def __init__(self, dim, eps, elementwise_affine=True):
            super().__init__()
            self.eps = eps
            if elementwise_affine:
                self.weight = nn.Parameter(torch.ones(dim))
            else:
                self.register_parameter("weight", None)

        def forward(self, x):
            xf = x.float()
            out = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
            if self.weight is not None:
                out = out * self.weight
            return out

    def rope_tables(d, max_pos, theta):
        inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        freqs = torch.outer(torch.arange(max_pos, dtype=torch.float64), inv_freq)
        return freqs.cos().float(), freqs.sin().float()  # [max_pos, d/2]

    def apply_rotary_emb(x, cos, sin, interleaved):
        """x [B, T, heads, d]; cos/sin [T, d/2]. interleaved: GPT-J pairs (2i, 2i+1) as the
        official code's apply_rotary_emb(..., interleaved=True); else Llama pairs (i, i+d/2)."""
        cos = cos[:, None, :].to(x.dtype)
        sin = sin[:, None, :].to(x.dtype)
        if interleaved:
            # The official code calls a fused (Triton) rotary kernel, which has no CPU build; the
            # complex-number form (Meta's Llama code) is the cheap pure-PyTorch equivalent: the
            # pairs (2i, 2i+1) are the real and imaginary parts, rotated by e^{i t theta_i}.
            xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
            rot = torch.complex(cos.float(), sin.float())
            return torch.view_as_real(xc * rot).flatten(-2).type_as(x)
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)

    def repeat_kv(x, n_rep):
        """[B, kv, T, d] -> [B, kv*n_rep, T, d], each head repeated n_rep times in place."""
        if n_rep == 1:
            return x
        bs, nkv, slen, hd = x.shape
        return x[:, :, None].expand(bs, nkv, n_rep, slen, hd).reshape(bs, nkv * n_rep, slen, hd)

    def lambda_init_fn(depth):
        return 0.8 - 0.6 * math.exp(-0.3 * depth)

    class MultiheadDiffAttn(nn.Module):
        """multihead_diffattn.py (naive attention), with SPEC's layouts and kv groups."""

        def __init__(self, c, depth):
            super().__init__()
            D = c["hidden_size"]
            self.n = c["num_attention_heads"]          # sub-heads
            self.H = self.n // 2                       # differential heads
            self.kv = c["num_key_value_heads"]
            self.Hkv = self.kv // 2
            self.n_rep = self.H // self.Hkv
            self.d = c["head_dim"]
            self.scaling = self.d ** -0.5
            self.split = c["diff_head_layout"] == "split"
            self.rope_interleaved = c["rope_interleaved"]
            self.q_proj = nn.Linear(D, self.n * self.d, bias=False)
            self.k_proj = nn.Linear(D, self.kv * self.d, bias=False)
            self.v_proj = nn.Linear(D, self.kv * self.d, bias=False)
            self.o_proj = nn.Linear(self.n * self.d, D, bias=False)
            self.lambda_init = lambda_init_fn(depth)
            std = c["lambda_std_dev"]
            self.lambda_q1 = nn.Parameter(torch.zeros(self.d).normal_(mean=0, std=std))
            self.lambda_k1 = nn.Parameter(torch.zeros(self.d).normal_(mean=0, std=std))
            self.lambda_q2 = nn.Parameter(torch.zeros(self.d).normal_(mean=0, std=std))
            self.lambda_k2 = nn.Parameter(torch.zeros(self.d).normal_(mean=0, std=std))
            # The official code's `subln`; named as in SPEC section 2.
            self.groupnorm = RMSNorm(2 * self.d, c["rms_norm_eps"], c["diff_norm_affine"])

        def forward(self, x, cos, sin):
            bsz, T, _ = x.size()
            H, Hkv, d = self.H, self.Hkv, self.d
            q = self.q_proj(x).view(bsz, T, 2 * H, d)
            k = self.k_proj(x).view(bsz, T, 2 * Hkv, d)
            v = self.v_proj(x).view(bsz, T, Hkv, 2 * d)
            if self.split:  # HF DiffLlama: bring (Q1, Q2), (K1, K2), V to the official order
                q = q.view(bsz, T, 2, H, d).transpose(2, 3).reshape(bsz, T, 2 * H, d)
                k = k.view(bsz, T, 2, Hkv, d).transpose(2, 3).reshape(bsz, T, 2 * Hkv, d)
                v = v.view(bsz, T, 2, Hkv, d).transpose(2, 3).reshape(bsz, T, Hkv, 2 * d)
            q = apply_rotary_emb(q, cos, sin, self.rope_interleaved)
            k = apply_rotary_emb(k, cos, sin, self.rope_interleaved)
            q = q.transpose(1, 2)                                      # [B, 2H, T, d]
            k = k.transpose(1, 2)                                      # [B, 2Hkv, T, d]
            if self.n_rep > 1:  # head h uses (K1, K2) of group h / n_rep
                k = k.reshape(bsz, Hkv, 1, 2, T, d).expand(bsz, Hkv, self.n_rep, 2, T, d)
                k = k.reshape(bsz, 2 * H, T, d)
            v = repeat_kv(v.transpose(1, 2), self.n_rep)               # [B, H, T, 2d]
            q = q * self.scaling
            attn_weights = torch.matmul(q, k.transpose(-1, -2))
            attn_mask = torch.triu(
                torch.zeros([T, T]).float().fill_(float("-inf")).type_as(attn_weights), 1)
            attn_weights = torch.nan_to_num(attn_weights)
            attn_weights += attn_mask
            attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).type_as(
                attn_weights)
            lambda_1 = torch.exp(torch.sum(self.lambda_q1 * self.lambda_k1, dim=-1).float()).type_as(q)
            lambda_2 = torch.exp(torch.sum(self.lambda_q2 * self.lambda_k2, dim=-1).float()).type_as(q)
            lambda_full = lambda_1 - lambda_2 + self.lambda_init
            attn_weights = attn_weights.view(bsz, H, 2, T, T)
            attn_weights = attn_weights[:, :, 0] - lambda_full * attn_weights[:, :, 1]
            attn = torch.matmul(attn_weights, v)
            attn = self.groupnorm(attn)
            attn = attn * (1 - self.lambda_init)
            attn = attn.transpose(1, 2).reshape(bsz, T, H * 2 * d)
            return self.o_proj(attn)

    class LlamaAttention(nn.Module):
        """Standard softmax attention (Hugging Face LlamaAttention, eager)."""

        def __init__(self, c, depth):
            super().__init__()
            D = c["hidden_size"]
            self.n, self.kv, self.d = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
            self.n_rep = self.n // self.kv
            self.rope_interleaved = c["rope_interleaved"]
            self.q_proj = nn.Linear(D, self.n * self.d, bias=False)
            self.k_proj = nn.Linear(D, self.kv * self.d, bias=False)
            self.v_proj = nn.Linear(D, self.kv * self.d, bias=False)
            self.o_proj = nn.Linear(self.n * self.d, D, bias=False)

        def forward(self, x, cos, sin):
            bsz, T, _ = x.size()
            q = self.q_proj(x).view(bsz, T, self.n, self.d)
            k = self.k_proj(x).view(bsz, T, self.kv, self.d)
            v = self.v_proj(x).view(bsz, T, self.kv, self.d)
            q = apply_rotary_emb(q, cos, sin, self.rope_interleaved).transpose(1, 2)
            k = repeat_kv(apply_rotary_emb(k, cos, sin, self.rope_interleaved).transpose(1, 2), self.n_rep)
            v = repeat_kv(v.transpose(1, 2), self.n_rep)
            attn_weights = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.d)
            mask = torch.triu(torch.full((T, T), float("-inf")), 1).type_as(attn_weights)
            attn_weights = attn_weights + mask
            attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).type_as(q)
            attn = torch.matmul(attn_weights, v)
            attn = attn.transpose(1, 2).reshape(bsz, T, self.n * self.d)
            return self.o_proj(attn)

    class MLP(nn.Module):
        def __init__(self, c):
            super().__init__()
            D, I = c["hidden_size"], c["intermediate_size"]
            self.gate_proj = nn.Linear(D, I, bias=False)
            self.up_proj = nn.Linear(D, I, bias=False)
            self.down_proj = nn.Linear(I, D, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class DecoderLayer(nn.Module):
        def __init__(self, c, depth):
            super().__init__()
            eps = c["rms_norm_eps"]
            self.input_layernorm = RMSNorm(c["hidden_size"], eps)
            attn_cls = MultiheadDiffAttn if c["model_type"] == "diffllama" else LlamaAttention
            self.self_attn = attn_cls(c, depth)
            self.post_attention_layernorm = RMSNorm(c["hidden_size"], eps)
            self.mlp = MLP(c)

        def forward(self, x, cos, sin):
            h = x + self.self_attn(self.input_layernorm(x), cos, sin)
            return h + self.mlp(self.post_attention_layernorm(h))

    class Backbone(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
            self.layers = nn.ModuleList(DecoderLayer(c, i) for i in range(c["num_hidden_layers"]))
            self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    class CausalLM(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c
            self.model = Backbone(c)
            self.tied = bool(c["tie_word_embeddings"])
            if not self.tied:
                self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
            cos, sin = rope_tables(c["head_dim"], c["max_position_embeddings"], c["rope_theta"])
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
            for m in self.modules():  # SPEC: normal(0, 0.02) matrices; norms start at one
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, mean=0.0, std=0.02)

        def forward(self, tokens):
            T = tokens.shape[1]
            cos, sin = self.rope_cos[:T], self.rope_sin[:T]
            x = self.model.embed_tokens(tokens)
            for layer in self.model.layers:
                x = layer(x, cos, sin)
            x = self.model.norm(x)
            w = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
            return F.linear(x, w)

    return CausalLM


def next_token_targets(tokens):
    """Token t+1 is the target of position t; the last position has none (ignored), as in
    difftx's next_token_targets. Made once, outside the timed steps, as difftx does."""
    import torch
    return torch.cat([tokens[:, 1:], torch.full_like(tokens[:, :1], -100)], dim=1)


def next_token_loss(logits, targets):
    """Mean cross-entropy over the positions that have a target (no slice of the logits, whose
    backward would zero-fill a copy of the whole [B, T, vocab] gradient)."""
    import torch.nn.functional as F
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V).float(), targets.reshape(-1), ignore_index=-100)


# ----------------------------------------------------------------------------------------
# Worker: one PyTorch measurement in its own process; prints one JSON line
# ----------------------------------------------------------------------------------------

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def blas_info(torch):
    """Which BLAS torch's matmuls go to (Debian's torch uses whatever libblas.so.3 is), its
    OpenBLAS kernel, and a quick f32 matmul GFLOP/s probe at n = 1024."""
    info = {"blas_library": None, "openblas_core": None}
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.split()[-1].lower()})
        info["blas_library"] = ", ".join(os.path.realpath(x) for x in libs) or None
    except OSError:
        pass
    if info["blas_library"] and "openblas" in info["blas_library"]:
        try:
            import ctypes
            lib = ctypes.CDLL("libopenblas.so.0")
            lib.openblas_get_corename.restype = ctypes.c_char_p
            info["openblas_core"] = lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            pass
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * 1024 ** 3 / (time.perf_counter() - t0) / 1e9)
    info["matmul_gflops_1024"] = best
    return info


def worker(args):
    import contextlib
    import torch
    torch.set_num_threads(args.threads)
    rss_import = rss_mb()
    blas = blas_info(torch)
    torch.manual_seed(args.seed)
    c = load_config(args.config)
    model = build_model_classes()(c)
    B, T, V = args.batch, args.seq, c["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(args.seed + 1))
    targets = next_token_targets(tokens)

    def autocast():
        if args.torch_bf16:
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    out = {"what": args.worker, "torch_version": torch.__version__,
           "threads": torch.get_num_threads(), "rss_after_import_mb": rss_import,
           "parameters": sum(p.numel() for p in model.parameters()), **blas}

    if args.worker == "train":
        # Same AdamW hyper-parameters as difftx (src/train/adamw.h); lr as in difftx bench.
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8,
                                weight_decay=0.1)
        times, losses = [], []
        for s in range(args.steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with autocast():
                logits = model(tokens)
                loss = next_token_loss(logits, targets)
            loss.backward()
            opt.step()
            dt = time.perf_counter() - t0
            losses.append(loss.item())
            if s > 0:
                times.append(dt)
        step = statistics.median(times)
        out.update(train_step_s=step, train_tokens_per_s=B * T / step, step_times_s=times,
                   first_loss=losses[0], ln_vocab=math.log(V))
    elif args.worker == "prefill":
        times = []
        with torch.no_grad():
            for s in range(args.steps + 1):
                t0 = time.perf_counter()
                with autocast():
                    logits = model(tokens)
                dt = time.perf_counter() - t0
                if s > 0:
                    times.append(dt)
        del logits
        step = statistics.median(times)
        out.update(prefill_s=step, prefill_tokens_per_s=B * T / step, step_times_s=times)
    elif args.worker == "decode":
        # What a user of the official code does: no KV cache, recompute the whole sequence
        # for every new token (greedy), batch 1, prompt of T/2 tokens.
        prompt = max(1, T // 2)
        n_new = min(args.torch_decode_tokens, c["max_position_embeddings"] - prompt)
        seq = tokens[:1, :prompt]
        with torch.no_grad():
            with autocast():
                model(seq)  # warm-up at the prompt length
            t0 = time.perf_counter()
            for _ in range(n_new):
                with autocast():
                    logits = model(seq)
                nxt = logits[:, -1].float().argmax(-1, keepdim=True)
                seq = torch.cat([seq, nxt], dim=1)
            dt = time.perf_counter() - t0
        out.update(decode_tokens_per_s=n_new / dt if n_new > 0 else 0.0,
                   decode_context=prompt + n_new // 2, decode_tokens=n_new)
    out["peak_rss_mb"] = rss_mb()
    print(json.dumps(out), flush=True)


# ----------------------------------------------------------------------------------------
# Check: the PyTorch model is the model difftx runs
# ----------------------------------------------------------------------------------------

def read_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "F16": np.float16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[base + a:base + b], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[base + a:base + b], dtype=dtypes[info["dtype"]]).astype(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def check_worker(args):
    """Runs in a subprocess; prints one JSON line with the findings."""
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    c = load_config(args.config)
    model = build_model_classes()(c)
    V = c["vocab_size"]
    res = {"parameters_torch": sum(p.numel() for p in model.parameters()),
           "parameters_spec": spec_parameter_count(c), "ln_vocab": math.log(V)}
    g = torch.Generator().manual_seed(args.seed + 2)
    T0 = min(args.seq, 128)
    toks = torch.randint(0, V, (2, T0), generator=g)
    with torch.no_grad():
        res["initial_loss_random_tokens"] = next_token_loss(model(toks), next_token_targets(toks)).item()

    tmp = tempfile.mkdtemp(prefix="compare_pytorch_")
    try:
        mdir = os.path.join(tmp, "model")
        p = subprocess.run([args.difftx, "init", "--config", args.config, "--out", mdir,
                            "--seed", "7"], capture_output=True, text=True)
        if p.returncode != 0:
            res["difftx_init_error"] = (p.stderr or p.stdout).strip()
        else:
            m = re.search(r"(\d+) parameters", p.stdout + p.stderr)
            res["parameters_difftx"] = int(m.group(1)) if m else None
            # Load difftx's weights and compare logits, loss and gradients with `inspect`.
            weights = read_safetensors(os.path.join(mdir, "model.safetensors"))
            sd = {k: torch.from_numpy(v.copy()) for k, v in weights.items()}
            missing, unexpected = model.load_state_dict(sd, strict=False)
            res["state_dict_missing"], res["state_dict_unexpected"] = list(missing), list(unexpected)
            Tc = 24
            ids = torch.randint(0, V, (1, Tc), generator=g)
            out = os.path.join(tmp, "inspect.safetensors")
            p = subprocess.run([args.difftx, "inspect", "--model", mdir, "--tokens",
                                ",".join(str(int(t)) for t in ids[0]), "--out", out, "--grads"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                res["difftx_inspect_error"] = (p.stderr or p.stdout).strip()
            else:
                ref = read_safetensors(out)
                model.zero_grad(set_to_none=True)
                logits = model(ids)
                loss = next_token_loss(logits, next_token_targets(ids))
                loss.backward()
                rl = torch.from_numpy(ref["logits"].copy())
                res["inspect_loss_difftx"] = float(ref["loss"][0])
                res["inspect_loss_torch"] = loss.item()
                res["inspect_logits_max_abs_diff"] = (logits[0].detach() - rl).abs().max().item()
                res["inspect_logits_max_abs"] = rl.abs().max().item()
                worst, worst_name = 0.0, None
                params = dict(model.named_parameters())
                for name, arr in ref.items():
                    if not name.startswith("grad."):
                        continue
                    pn = name[len("grad."):]
                    gt = params[pn].grad
                    gd = torch.from_numpy(arr.copy())
                    gt = torch.zeros_like(gd) if gt is None else gt
                    rel = ((gt - gd).abs().max() / (gd.abs().max() + 1e-12)).item()
                    if rel > worst:
                        worst, worst_name = rel, pn
                res["inspect_grad_worst_rel_diff"] = worst
                res["inspect_grad_worst_tensor"] = worst_name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res), flush=True)


def judge_check(res):
    problems = []
    if res["parameters_torch"] != res["parameters_spec"]:
        problems.append(f"PyTorch has {res['parameters_torch']} parameters, SPEC count is {res['parameters_spec']}")
    if res.get("parameters_difftx") is not None and res["parameters_difftx"] != res["parameters_torch"]:
        problems.append(f"difftx init reports {res['parameters_difftx']} parameters, PyTorch has {res['parameters_torch']}")
    # Logits at init have variance ~ 0.02^2 * hidden, so the expected loss is a little above
    # ln(vocab) (ln V + variance / 2 = 9.11 for the reference config).
    if abs(res["initial_loss_random_tokens"] - res["ln_vocab"]) > 0.3:
        problems.append(f"initial loss {res['initial_loss_random_tokens']:.4f} is far from ln(vocab) {res['ln_vocab']:.4f}")
    if res.get("state_dict_missing") or res.get("state_dict_unexpected"):
        problems.append(f"checkpoint names differ: missing {res['state_dict_missing']}, unexpected {res['state_dict_unexpected']}")
    if "inspect_logits_max_abs_diff" in res:
        if res["inspect_logits_max_abs_diff"] > 1e-3 * max(1.0, res["inspect_logits_max_abs"]):
            problems.append(f"logits differ from difftx inspect by {res['inspect_logits_max_abs_diff']:.3g}")
        if abs(res["inspect_loss_difftx"] - res["inspect_loss_torch"]) > 1e-4:
            problems.append("loss differs from difftx inspect")
        if res["inspect_grad_worst_rel_diff"] > 1e-3:
            problems.append(f"gradient of {res['inspect_grad_worst_tensor']} differs from difftx inspect "
                            f"by {res['inspect_grad_worst_rel_diff']:.3g} (relative to its max)")
    return problems


def format_check(res):
    lines = [f"check: parameters PyTorch {res['parameters_torch']:,}, SPEC {res['parameters_spec']:,}, "
             f"difftx init {res.get('parameters_difftx', 'n/a') if res.get('parameters_difftx') is None else format(res['parameters_difftx'], ',')}",
             f"check: initial loss on random tokens {res['initial_loss_random_tokens']:.4f} (ln vocab {res['ln_vocab']:.4f})"]
    if "inspect_logits_max_abs_diff" in res:
        lines.append(f"check: vs `difftx inspect --grads` on difftx init weights: loss {res['inspect_loss_torch']:.6f} vs "
                     f"{res['inspect_loss_difftx']:.6f}, logits max|diff| {res['inspect_logits_max_abs_diff']:.2e}, "
                     f"grads worst rel diff {res['inspect_grad_worst_rel_diff']:.2e} ({res['inspect_grad_worst_tensor']})")
    for k in ("difftx_init_error", "difftx_inspect_error"):
        if k in res:
            lines.append(f"check: {k}: {res[k]}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------

def last_json_line(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON object in output")


def torch_env(args):
    """Environment of the PyTorch subprocesses. Debian's torch calls libblas.so.3: with
    libopenblas0-pthread installed that is OpenBLAS, else the reference BLAS (~20x slower, a
    meaningless comparison: the script warns). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, set on some
    machines to pin an older kernel, are dropped for these processes only unless
    --keep-openblas-env; the check step runs in the same environment and would catch wrong
    results."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    if not args.keep_openblas_env:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    return env


def run_torch(args, what):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", what,
           "--config", args.config, "--seq", str(args.seq), "--batch", str(args.batch),
           "--steps", str(args.steps), "--threads", str(args.threads), "--seed", str(args.seed),
           "--torch-decode-tokens", str(args.torch_decode_tokens), "--difftx", args.difftx]
    if args.torch_bf16:
        cmd.append("--torch-bf16")
    p = subprocess.run(cmd, capture_output=True, text=True, env=torch_env(args))
    if p.returncode != 0:
        raise SystemExit(f"compare_pytorch: error: PyTorch {what} worker failed:\n{p.stderr}")
    return last_json_line(p.stdout)


def run_difftx(args):
    cmd = [args.difftx, "bench", "--config", args.config, "--seq", str(args.seq),
           "--batch", str(args.batch), "--steps", str(args.steps), "--precision", args.precision,
           "--threads", str(args.threads), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"compare_pytorch: error: {' '.join(cmd)} failed (status {p.returncode}):\n{p.stderr}")
    return last_json_line(p.stdout)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "small-diff.json"))
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per run (median), after one warm-up")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="difftx precision")
    ap.add_argument("--torch-bf16", action="store_true",
                    help="PyTorch under torch.autocast(cpu, bfloat16) (slow in PyTorch 1.13 CPU)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    ap.add_argument("--torch-decode-tokens", type=int, default=8,
                    help="tokens generated by full recomputation on the PyTorch side")
    ap.add_argument("--no-torch-decode", action="store_true", help="skip the PyTorch decode run")
    ap.add_argument("--difftx", default=os.path.join(REPO, "build", "difftx"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the PyTorch processes")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--json-out", metavar="FILE", help="also write the JSON object to FILE")
    ap.add_argument("--worker", choices=["train", "prefill", "decode", "check"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.config = os.path.abspath(args.config)
    args.difftx = os.path.abspath(args.difftx)

    if args.worker == "check":
        return check_worker(args)
    if args.worker:
        return worker(args)

    c = load_config(args.config)
    if not os.access(args.difftx, os.X_OK):
        raise SystemExit(f"compare_pytorch: error: no difftx binary at {args.difftx}; build it or pass --difftx")
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else \
          (lambda *a: print(*a, flush=True))

    check = None
    if not args.skip_check:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "check", "--config", args.config,
               "--seq", str(args.seq), "--threads", str(args.threads), "--seed", str(args.seed),
               "--difftx", args.difftx]
        p = subprocess.run(cmd, capture_output=True, text=True, env=torch_env(args))
        if p.returncode != 0:
            raise SystemExit(f"compare_pytorch: error: check failed:\n{p.stderr}")
        check = last_json_line(p.stdout)
        log(format_check(check))
        problems = judge_check(check)
        if problems:
            raise SystemExit("compare_pytorch: error: the PyTorch model is not the difftx model:\n  "
                             + "\n  ".join(problems))

    rounds = []
    for r in range(args.repeats):
        order = ["torch", "difftx"] if r % 2 == 0 else ["difftx", "torch"]
        rnd = {}
        for side in order:
            t0 = time.time()
            if side == "torch":
                rnd["torch_train"] = run_torch(args, "train")
                rnd["torch_prefill"] = run_torch(args, "prefill")
                if not args.no_torch_decode:
                    rnd["torch_decode"] = run_torch(args, "decode")
                log(f"round {r + 1}/{args.repeats} PyTorch: train {rnd['torch_train']['train_tokens_per_s']:.1f} tok/s, "
                    f"prefill {rnd['torch_prefill']['prefill_tokens_per_s']:.1f} tok/s, "
                    f"RSS {rnd['torch_train']['peak_rss_mb']:.0f} MB ({time.time() - t0:.0f} s)")
            else:
                rnd["difftx"] = run_difftx(args)
                log(f"round {r + 1}/{args.repeats} difftx:  train {rnd['difftx']['train_tokens_per_s']:.1f} tok/s, "
                    f"prefill {rnd['difftx']['prefill_tokens_per_s']:.1f} tok/s, "
                    f"RSS {rnd['difftx']['peak_rss_mb']:.0f} MB ({time.time() - t0:.0f} s)")
        rounds.append(rnd)

    def col(key, field):
        return med([rd[key].get(field) for rd in rounds if key in rd])

    d0 = rounds[0]["difftx"]
    rows = [
        ("train tokens/s", col("difftx", "train_tokens_per_s"), col("torch_train", "train_tokens_per_s"), "higher is better"),
        ("prefill tokens/s", col("difftx", "prefill_tokens_per_s"), col("torch_prefill", "prefill_tokens_per_s"), "higher is better"),
        ("peak RSS MB (training)", col("difftx", "peak_rss_mb"), col("torch_train", "peak_rss_mb"), "lower is better"),
        ("peak RSS MB (prefill only)", None, col("torch_prefill", "peak_rss_mb"), "difftx: one process for all"),
    ]
    decode_note = None
    if not args.no_torch_decode:
        dd, td = col("difftx", "decode_tokens_per_s"), col("torch_decode", "decode_tokens_per_s")
        rows.append(("decode tokens/s, batch 1", dd, td, "difftx KV cache vs PyTorch full recompute"))
        decode_note = (f"decode: difftx with KV cache, {d0.get('decode_context', '?')} tokens mean context; "
                       f"PyTorch recomputes the whole sequence per token (the official code has no KV cache), "
                       f"{rounds[0]['torch_decode']['decode_tokens']} tokens, "
                       f"{rounds[0]['torch_decode']['decode_context']} tokens mean context")
    # GFLOP/s for both sides from difftx's own FLOP count per token.
    tr_fpt = d0["train_gflops"] * 1e9 / d0["train_tokens_per_s"] if d0.get("train_gflops") else None
    pf_fpt = d0["prefill_gflops"] * 1e9 / d0["prefill_tokens_per_s"] if d0.get("prefill_gflops") else None
    if tr_fpt:
        rows.append(("train GFLOP/s", col("difftx", "train_tokens_per_s") * tr_fpt / 1e9,
                     col("torch_train", "train_tokens_per_s") * tr_fpt / 1e9, "difftx FLOP count"))
    if pf_fpt:
        rows.append(("prefill GFLOP/s", col("difftx", "prefill_tokens_per_s") * pf_fpt / 1e9,
                     col("torch_prefill", "prefill_tokens_per_s") * pf_fpt / 1e9, "difftx FLOP count"))

    t0r = rounds[0]["torch_train"]
    meta = {
        "config": os.path.relpath(args.config, REPO) if args.config.startswith(REPO) else args.config,
        "model_type": c["model_type"], "seq": args.seq, "batch": args.batch, "steps": args.steps,
        "threads": args.threads, "repeats": args.repeats, "difftx": args.difftx,
        "difftx_precision": args.precision, "torch_precision": "bf16-autocast" if args.torch_bf16 else "fp32",
        "torch_version": t0r["torch_version"], "parameters": t0r["parameters"],
        "torch_rss_after_import_mb": t0r["rss_after_import_mb"], "load_average": os.getloadavg(),
        "torch_blas": t0r.get("blas_library"), "torch_openblas_core": t0r.get("openblas_core"),
        "torch_matmul_gflops_1024": med([rd["torch_train"].get("matmul_gflops_1024") for rd in rounds]),
        "difftx_mfu_median": col("difftx", "mfu"),
    }
    blas_warning = None
    if not meta["torch_blas"] or "openblas" not in meta["torch_blas"]:
        blas_warning = ("WARNING: PyTorch is not using OpenBLAS (Debian's torch then runs on the reference "
                        "BLAS, ~20x slower): apt-get install libopenblas0-pthread for a meaningful comparison")
    meta["warning"] = blas_warning
    doc = json.dumps({"meta": meta, "check": check,
                      "median": [{"metric": n, "difftx": a, "pytorch": b,
                                  "ratio_difftx_over_pytorch": (a / b if a and b else None), "note": note}
                                 for n, a, b, note in rows],
                      "decode_note": decode_note, "rounds": rounds}, indent=1)
    if args.json_out:
        with open(args.json_out + ".tmp", "w") as f:
            f.write(doc + "\n")
        os.replace(args.json_out + ".tmp", args.json_out)
    if args.json:
        if blas_warning:
            print(blas_warning, file=sys.stderr)
        print(doc)
        return

    print()
    print(f"difftx vs PyTorch {meta['torch_version']} ({'official-style naive DIFF attention' if c['model_type'] == 'diffllama' else 'eager Llama attention'}), "
          f"{meta['config']}, {meta['parameters']:,} parameters")
    print(f"T={args.seq} B={args.batch}, {args.steps} timed steps after 1 warm-up, {args.threads} threads, "
          f"{args.repeats} alternating rounds (medians), difftx {args.precision}, PyTorch {meta['torch_precision']}")
    print(f"load average at end {', '.join(f'{x:.2f}' for x in meta['load_average'])}; "
          f"PyTorch RSS after `import torch` alone {meta['torch_rss_after_import_mb']:.0f} MB")
    core = f", kernel {meta['torch_openblas_core']}" if meta["torch_openblas_core"] else ""
    print(f"PyTorch BLAS: {meta['torch_blas']}{core}; f32 matmul n=1024 {meta['torch_matmul_gflops_1024']:.0f} GFLOP/s")
    if blas_warning:
        print(blas_warning)
    print()
    w = max(len(r[0]) for r in rows)
    print(f"{'metric':<{w}}  {'difftx':>10}  {'PyTorch':>10}  {'difftx/PyTorch':>14}  note")
    for name, a, b, note in rows:
        fa = f"{a:10.1f}" if a is not None else f"{'-':>10}"
        fb = f"{b:10.1f}" if b is not None else f"{'-':>10}"
        ratio = f"{a / b:14.2f}" if a and b else f"{'-':>14}"
        print(f"{name:<{w}}  {fa}  {fb}  {ratio}  {note}")
    if decode_note:
        print()
        print(decode_note)
    if args.torch_bf16:
        print("note: PyTorch 1.13 CPU autocast to bf16 may be slower than its fp32 path")


if __name__ == "__main__":
    main()
