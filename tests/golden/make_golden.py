#!/usr/bin/python3
"""Golden test cases for difftx, from an independent float64 PyTorch reference.

The model is written directly from SPEC.md sections 1 and 2 (Differential Transformer V1,
decoder-only, pre-norm, no biases; plus the plain-attention "llama" baseline).  Each case is a
checkpoint directory (config.json, model.safetensors) plus tokens.txt and expected.safetensors
(logits [T, vocab], loss [1], grad.<name> for every stored tensor; all F32, computed in
float64 from the values exactly as stored in model.safetensors).

Run:  /usr/bin/python3 tests/golden/make_golden.py      (needs only torch and numpy)
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
OUT_DIR = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------------------------
# safetensors: minimal writer and reader
# ----------------------------------------------------------------------------------------------

def f32_to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, round to nearest even (no NaNs expected)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    bits = bits + 0x7FFF + ((bits >> 16) & 1)
    return (bits >> 16).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def encode(a, dtype):
    """numpy float array -> little-endian bytes in the given safetensors dtype."""
    a = np.asarray(a, dtype=np.float64)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        assert np.all(np.abs(a) < 65504.0)
        return a.astype("<f2").tobytes()
    if dtype == "BF16":
        return f32_to_bf16_bits(a.astype(np.float32)).astype("<u2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """tensors: ordered dict name -> numpy array (any float dtype); all stored as `dtype`."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        data = encode(arr, dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """-> dict name -> float64 numpy array (F32, F16, BF16 supported), in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        chunk = data[b:e]
        if info["dtype"] == "F32":
            a = np.frombuffer(chunk, dtype="<f4")
        elif info["dtype"] == "F16":
            a = np.frombuffer(chunk, dtype="<f2")
        elif info["dtype"] == "BF16":
            a = bf16_bits_to_f32(np.frombuffer(chunk, dtype="<u2"))
        else:
            raise ValueError(info["dtype"])
        out[name] = a.astype(np.float64).reshape(info["shape"])
    return out

# ----------------------------------------------------------------------------------------------
# config (SPEC section 2 defaults)
# ----------------------------------------------------------------------------------------------

def load_config(path):
    with open(path) as f:
        c = json.load(f)
    assert c["model_type"] in ("diffllama", "diffllama_v2", "llama")
    assert not c.get("attention_bias", False)
    assert c.get("hidden_act", "silu") == "silu"
    cfg = dict(c)
    cfg.setdefault("num_key_value_heads", c["num_attention_heads"])
    if cfg.get("head_dim") is None:
        assert c["hidden_size"] % c["num_attention_heads"] == 0
        cfg["head_dim"] = c["hidden_size"] // c["num_attention_heads"]
    cfg.setdefault("rms_norm_eps", 1e-5)
    if cfg.get("rope_theta") is None and isinstance(c.get("rope_parameters"), dict):
        cfg["rope_theta"] = c["rope_parameters"].get("rope_theta", 10000.0)   # transformers 5.x
    cfg.setdefault("rope_theta", 10000.0)
    cfg["rope_inv_freq"] = hf_rope_inv_freq(cfg)
    cfg.setdefault("max_position_embeddings", 2048)
    cfg.setdefault("tie_word_embeddings", False)
    cfg.setdefault("lambda_std_dev", 0.1)
    cfg.setdefault("diff_head_layout", "split")
    cfg.setdefault("rope_interleaved", False)
    cfg.setdefault("diff_norm_affine", False)
    cfg.setdefault("diff_groupnorm", True)        # ablation keys (SPEC section 2)
    cfg.setdefault("diff_lambda_init", None)
    cfg.setdefault("attention_groupnorm", False)
    for key in ("ext_token_enhancer", "ext_noise_reduction", "ext_attention_loss"):
        cfg.setdefault(key, None)                 # the design deck's extensions (off)
    cfg.setdefault("ext_flow_gate", False)
    return cfg

# ----------------------------------------------------------------------------------------------
# the model, one function per piece
# ----------------------------------------------------------------------------------------------

def hf_rope_inv_freq(cfg):
    """Rotary inverse frequencies with Hugging Face rope scaling, written from transformers'
    modeling_rope_utils (_compute_default / _compute_linear_scaling / _compute_llama3_parameters),
    in float64.  Reads `rope_scaling` (4.x, "type" or "rope_type") or `rope_parameters` (5.x).
    None when there is no scaling (rope() then uses theta^(-2i/d))."""
    sc = cfg.get("rope_scaling")
    if sc is None:
        sc = cfg.get("rope_parameters")
    if sc is None:
        return None
    kind = sc.get("rope_type", sc.get("type", "default"))
    base, dim = cfg["rope_theta"], cfg["head_dim"]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float64) / dim))
    if kind == "default":
        return None
    if kind == "linear":
        return inv_freq / sc["factor"]
    assert kind == "llama3", kind
    factor, low, high = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"]
    old_context_len = sc["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low
    high_freq_wavelen = old_context_len / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium, smoothed, inv_freq_llama)


def rmsnorm(x, w, eps):
    """x * rsqrt(mean(x^2) + eps) * w over the last dim; w None means no weight."""
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y if w is None else y * w


def rope(x, theta, interleaved, inv_freq=None):
    """x [T, heads, d] at positions 0..T-1.  Pair (x0, x1) rotated by angle t * theta^(-2i/d):
    (x0 cos - x1 sin, x0 sin + x1 cos).  interleaved: pairs (2i, 2i+1) (GPT-J / official);
    otherwise pairs (i, i + d/2) (Llama rotate_half).  inv_freq (when given) replaces
    theta^(-2i/d): the scaled frequencies of hf_rope_inv_freq."""
    T, _, d = x.shape
    assert d % 2 == 0
    i = torch.arange(d // 2, dtype=torch.float64)
    if inv_freq is None:
        inv_freq = theta ** (-2.0 * i / d)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]   # [T, d/2]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    if interleaved:
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).reshape(x.shape)
    x0, x1 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)


def causal_softmax(q, k, check=None):
    """softmax(q k^T / sqrt(d) + causal mask), q, k [T, d] -> [T, T]."""
    T, d = q.shape
    s = q @ k.t() / math.sqrt(d)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    a = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1)
    if check is not None:
        check.append(a.detach())
    return a


def lambda_init_fn(layer, cfg=None):
    if cfg is not None and cfg.get("diff_lambda_init") is not None:
        return cfg["diff_lambda_init"]                  # ablation: one value for every layer
    return 0.8 - 0.6 * math.exp(-0.3 * layer)


def diff_attention(x, p, pre, cfg, layer, check=None, maps=None):
    """Differential attention (SPEC 1).  x [T, hidden] is the normed input.  maps (a list)
    receives each head's effective map a1 - lambda a2."""
    T = x.shape[0]
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    assert n % 2 == 0 and kv % 2 == 0
    H, Hkv = n // 2, kv // 2
    assert H % Hkv == 0
    rep = H // Hkv
    q = (x @ p[pre + "q_proj.weight"].t()).view(T, n, d)
    k = (x @ p[pre + "k_proj.weight"].t()).view(T, kv, d)
    v = (x @ p[pre + "v_proj.weight"].t()).view(T, kv, d)
    q = rope(q, cfg["rope_theta"], cfg["rope_interleaved"], cfg.get("rope_inv_freq"))
    k = rope(k, cfg["rope_theta"], cfg["rope_interleaved"], cfg.get("rope_inv_freq"))

    lam_init = lambda_init_fn(layer, cfg)
    lam = (torch.exp(torch.dot(p[pre + "lambda_q1"], p[pre + "lambda_k1"]))
           - torch.exp(torch.dot(p[pre + "lambda_q2"], p[pre + "lambda_k2"])) + lam_init)
    gn_w = p[pre + "groupnorm.weight"] if cfg["diff_norm_affine"] else None
    # ablation "w/o GroupNorm": the per-head RMSNorm goes, its (1 - lambda_init) scale stays
    head_norm = (lambda o: rmsnorm(o, gn_w, cfg["rms_norm_eps"])) if cfg["diff_groupnorm"] else (lambda o: o)

    outs = []
    for h in range(H):
        g = h // rep
        if cfg["diff_head_layout"] == "interleaved":
            q1, q2 = q[:, 2 * h], q[:, 2 * h + 1]
            k1, k2 = k[:, 2 * g], k[:, 2 * g + 1]
            V = torch.cat([v[:, 2 * g], v[:, 2 * g + 1]], dim=-1)      # = v viewed [T, Hkv, 2d]
        elif cfg["diff_head_layout"] == "split":
            q1, q2 = q[:, h], q[:, h + H]
            k1, k2 = k[:, g], k[:, g + Hkv]
            V = torch.cat([v[:, g], v[:, g + Hkv]], dim=-1)
        else:
            raise ValueError(cfg["diff_head_layout"])
        a1 = causal_softmax(q1, k1, check)
        a2 = causal_softmax(q2, k2, check)
        if maps is not None:
            maps.append(a1 - lam * a2)
        o = (a1 - lam * a2) @ V                                         # [T, 2d]
        outs.append(head_norm(o) * (1.0 - lam_init))
    return torch.cat(outs, dim=-1) @ p[pre + "o_proj.weight"].t()


def std_attention(x, p, pre, cfg, check=None, maps=None):
    """Plain causal softmax attention, n heads of width d, GQA: head i uses kv head i // (n/kv).
    maps (a list) receives each head's softmax map."""
    T = x.shape[0]
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    assert n % kv == 0
    q = (x @ p[pre + "q_proj.weight"].t()).view(T, n, d)
    k = (x @ p[pre + "k_proj.weight"].t()).view(T, kv, d)
    v = (x @ p[pre + "v_proj.weight"].t()).view(T, kv, d)
    q = rope(q, cfg["rope_theta"], cfg["rope_interleaved"], cfg.get("rope_inv_freq"))
    k = rope(k, cfg["rope_theta"], cfg["rope_interleaved"], cfg.get("rope_inv_freq"))
    outs = []
    for i in range(n):
        j = i // (n // kv)
        a = causal_softmax(q[:, i], k[:, j], check)
        if maps is not None:
            maps.append(a)
        o = a @ v[:, j]                                                 # [T, d]
        if cfg["attention_groupnorm"]:                                  # "Transformer + GroupNorm"
            o = rmsnorm(o, p[pre + "groupnorm.weight"], cfg["rms_norm_eps"])
        outs.append(o)
    return torch.cat(outs, dim=-1) @ p[pre + "o_proj.weight"].t()


def diff_v2_attention(x, p, pre, cfg, check=None):
    """DIFF V2 (SPEC 1b).  2n query sub-heads of width d; kv heads of width d; query sub-head j
    reads kv head j // (2n / kv); O_h = a_{2h} - sigmoid(x W_lambda^T)[:, h] * a_{2h+1}."""
    T = x.shape[0]
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    assert n % kv == 0
    rep = (2 * n) // kv
    q = (x @ p[pre + "q_proj.weight"].t()).view(T, 2 * n, d)
    k = (x @ p[pre + "k_proj.weight"].t()).view(T, kv, d)
    v = (x @ p[pre + "v_proj.weight"].t()).view(T, kv, d)
    q = rope(q, cfg["rope_theta"], cfg["rope_interleaved"])
    k = rope(k, cfg["rope_theta"], cfg["rope_interleaved"])
    lam = torch.sigmoid(x @ p[pre + "lambda_proj.weight"].t())         # [T, n]
    a = [causal_softmax(q[:, j], k[:, j // rep], check) @ v[:, j // rep] for j in range(2 * n)]
    outs = [a[2 * h] - lam[:, h:h + 1] * a[2 * h + 1] for h in range(n)]  # each [T, d]
    return torch.cat(outs, dim=-1) @ p[pre + "o_proj.weight"].t()


def swiglu_mlp(x, p, pre):
    gate = x @ p[pre + "gate_proj.weight"].t()
    up = x @ p[pre + "up_proj.weight"].t()
    return (torch.nn.functional.silu(gate) * up) @ p[pre + "down_proj.weight"].t()


def forward(p, cfg, tokens, check=None, reg=None):
    """-> logits [T, vocab].  reg (a list) receives ext_attention_loss's alpha * R_l per layer."""
    eps = cfg["rms_norm_eps"]
    x = p["model.embed_tokens.weight"][tokens]
    for l in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % l
        xn = rmsnorm(x, p[pre + "input_layernorm.weight"], eps)
        maps = []
        if cfg["model_type"] == "diffllama":
            y = diff_attention(xn, p, pre + "self_attn.", cfg, l, check, maps)
        elif cfg["model_type"] == "diffllama_v2":
            y = diff_v2_attention(xn, p, pre + "self_attn.", cfg, check)
        else:
            y = std_attention(xn, p, pre + "self_attn.", cfg, check, maps)
        x_prev = x
        x = x + ext_token_enhancer(y, maps, p, pre, cfg)
        x = x + swiglu_mlp(rmsnorm(x, p[pre + "post_attention_layernorm.weight"], eps), p, pre + "mlp.")
        x = ext_noise_reduction(x, maps, p, pre, cfg)
        x = ext_flow_gate(x, x_prev, p, pre, cfg)
        if reg is not None:
            reg.append(ext_attention_reg(maps, cfg))
    x = rmsnorm(x, p["model.norm.weight"], eps)
    w_lm = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ w_lm.t()


# ----------------------------------------------------------------------------------------------
# the design deck's extensions (difftx docs/variants.md); each is the identity when off
# ----------------------------------------------------------------------------------------------

NOISE_MASKS = []   # every noise-reduction mask computed, for the case's self-check


def ext_mass(maps):
    """Attention mass each token t receives: column sums of the effective maps E [T, T] over
    the T - t queries that see t, averaged over heads -> [T]."""
    E = torch.stack(maps)
    T = E.shape[-1]
    return (E.sum(1) / torch.arange(T, 0, -1, dtype=torch.float64)).mean(0)


def ext_token_enhancer(y, maps, p, pre, cfg):
    """y * sigmoid(W_up gelu(W_down y)) * (1 + mass), on the attention sublayer's output."""
    if not cfg["ext_token_enhancer"]:
        return y
    gelu = torch.nn.functional.gelu
    gate = torch.sigmoid(gelu(y @ p[pre + "ext.enhancer.down.weight"].t())
                         @ p[pre + "ext.enhancer.up.weight"].t())
    return y * gate * (1.0 + ext_mass(maps))[:, None]


def ext_noise_reduction(x, maps, p, pre, cfg):
    """x + [mass > threshold] * W_down gelu(W_up rmsnorm(x)), the mask without gradient."""
    e = cfg["ext_noise_reduction"]
    if not e:
        return x
    mass = ext_mass(maps).detach()
    # the engine computes in float32: no mass may sit at the threshold
    assert (mass - e["threshold"]).abs().min() > 1e-3, (mass, e["threshold"])
    mask = (mass > e["threshold"]).to(torch.float64)
    NOISE_MASKS.append(mask)
    xn = rmsnorm(x, p[pre + "ext.noise.norm.weight"], cfg["rms_norm_eps"])
    branch = torch.nn.functional.gelu(xn @ p[pre + "ext.noise.up.weight"].t()) @ p[pre + "ext.noise.down.weight"].t()
    return x + mask[:, None] * branch


def ext_flow_gate(x, x_prev, p, pre, cfg):
    """g * x + (1 - g) * x_prev, g = sigmoid(W [x; x_prev] + b): the layer's output and input."""
    if not cfg["ext_flow_gate"]:
        return x
    g = torch.sigmoid(torch.cat([x, x_prev], dim=-1) @ p[pre + "ext.flow_gate.weight"].t()
                      + p[pre + "ext.flow_gate.bias"])
    return g * x + (1.0 - g) * x_prev


def ext_attention_reg(maps, cfg):
    """alpha * mean over heads of (|E|_1 / T - beta |E|_F / sqrt(T)) for one layer."""
    e = cfg["ext_attention_loss"]
    if not e:
        return torch.zeros(())
    T = maps[0].shape[0]
    per_head = [E.abs().sum() / T - e["beta"] * torch.sqrt((E * E).sum() / T) for E in maps]
    return e["alpha"] * torch.stack(per_head).mean()


def lm_loss(logits, tokens):
    """Mean cross-entropy of predicting token t+1 from position t, t = 0..T-2."""
    logp = torch.log_softmax(logits[:-1], dim=-1)
    return -logp.gather(1, tokens[1:, None]).mean()

# ----------------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------------

def param_shapes(cfg):
    """Tensor names and shapes of SPEC section 2, in order."""
    V, D, I = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"]
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    s = {"model.embed_tokens.weight": (V, D)}
    for l in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d." % l
        s[pre + "input_layernorm.weight"] = (D,)
        v2 = cfg["model_type"] == "diffllama_v2"
        s[pre + "self_attn.q_proj.weight"] = ((2 * n if v2 else n) * d, D)
        s[pre + "self_attn.k_proj.weight"] = (kv * d, D)
        s[pre + "self_attn.v_proj.weight"] = (kv * d, D)
        s[pre + "self_attn.o_proj.weight"] = (D, n * d)
        if v2:
            s[pre + "self_attn.lambda_proj.weight"] = (n, D)
        elif cfg["model_type"] == "diffllama":
            for nm in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
                s[pre + "self_attn." + nm] = (d,)
            if cfg["diff_norm_affine"]:
                s[pre + "self_attn.groupnorm.weight"] = (2 * d,)
        elif cfg["attention_groupnorm"]:
            s[pre + "self_attn.groupnorm.weight"] = (d,)
        s[pre + "post_attention_layernorm.weight"] = (D,)
        s[pre + "mlp.gate_proj.weight"] = (I, D)
        s[pre + "mlp.up_proj.weight"] = (I, D)
        s[pre + "mlp.down_proj.weight"] = (D, I)
        if cfg["ext_token_enhancer"]:
            r = D // cfg["ext_token_enhancer"]["reduction"]
            s[pre + "ext.enhancer.down.weight"] = (r, D)
            s[pre + "ext.enhancer.up.weight"] = (D, r)
        if cfg["ext_noise_reduction"]:
            s[pre + "ext.noise.norm.weight"] = (D,)
            s[pre + "ext.noise.up.weight"] = (2 * D, D)
            s[pre + "ext.noise.down.weight"] = (D, 2 * D)
        if cfg["ext_flow_gate"]:
            s[pre + "ext.flow_gate.weight"] = (D, 2 * D)
            s[pre + "ext.flow_gate.bias"] = (D,)
    s["model.norm.weight"] = (D,)
    if not cfg["tie_word_embeddings"]:
        s["lm_head.weight"] = (V, D)
    return s


def random_params(cfg, rng):
    """Deliberately large weights so attention is far from uniform and lambda matters."""
    p = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
            p[name] = 1.0 + 0.1 * rng.standard_normal(shape)
        elif ".lambda_" in name:
            p[name] = 0.3 * rng.standard_normal(shape)
        else:                                       # embeddings and all matrices
            p[name] = 0.3 * rng.standard_normal(shape)
    return p


def to_torch(params_np):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params_np.items()}


def loss_and_grads(params_np, cfg, tokens_list, check=None):
    p = to_torch(params_np)
    tokens = torch.tensor(tokens_list, dtype=torch.long)
    reg = []
    logits = forward(p, cfg, tokens, check, reg)
    loss = lm_loss(logits, tokens) + sum(reg)
    names = list(p.keys())
    grads = torch.autograd.grad(loss, [p[k] for k in names])
    return logits.detach(), loss.detach(), {k: g for k, g in zip(names, grads)}


def loss_only(params_np, cfg, tokens_list):
    p = {k: torch.tensor(v) for k, v in params_np.items()}
    tokens = torch.tensor(tokens_list, dtype=torch.long)
    with torch.no_grad():
        reg = []
        logits = forward(p, cfg, tokens, reg=reg)
        return (lm_loss(logits, tokens) + sum(reg)).item()

# ----------------------------------------------------------------------------------------------
# self-checks
# ----------------------------------------------------------------------------------------------

def check_attention_rows(probs):
    """(c) every attention row is a probability distribution with zero weight on the future."""
    assert len(probs) > 0
    for a in probs:
        T = a.shape[0]
        assert torch.allclose(a.sum(-1), torch.ones(T), atol=1e-12, rtol=0)
        assert torch.all(a >= 0)
        assert torch.all(torch.triu(a, diagonal=1) == 0)


def check_finite_difference(params_np, cfg, tokens, grads, rng, n_entries=12):
    """(a) central differences of the float64 loss vs autograd on a few entries."""
    names = list(params_np.keys())
    picks = []
    # always include lambdas and (when present) groupnorm, then random others
    for nm in names:
        if nm.endswith("lambda_q1") or nm.endswith("lambda_k2") or "groupnorm" in nm or ".ext." in nm:
            picks.append(nm)
    picks += [names[i] for i in rng.choice(len(names), size=n_entries, replace=True)]
    h = 1e-6
    for nm in picks:
        arr = params_np[nm]
        idx = tuple(int(rng.integers(0, s)) for s in arr.shape)
        if nm == "model.embed_tokens.weight":          # pick a row that is actually used
            idx = (tokens[int(rng.integers(0, len(tokens)))],) + idx[1:]
        plus = {k: v.copy() for k, v in params_np.items()}
        minus = {k: v.copy() for k, v in params_np.items()}
        plus[nm][idx] += h
        minus[nm][idx] -= h
        fd = (loss_only(plus, cfg, tokens) - loss_only(minus, cfg, tokens)) / (2 * h)
        ad = grads[nm][idx].item()
        assert abs(fd - ad) <= 1e-6 * max(1.0, abs(ad)), (nm, idx, fd, ad)


def interleaved_to_split_rows(n_sub, d):
    """Row permutation taking a [n_sub*d, ...] weight from interleaved to split sub-head order:
    split sub-head j < n_sub/2 is interleaved sub-head 2j, split sub-head j >= n_sub/2 is 2(j-n/2)+1."""
    half = n_sub // 2
    order = [2 * j for j in range(half)] + [2 * j + 1 for j in range(half)]
    return np.concatenate([np.arange(s * d, (s + 1) * d) for s in order])


def rope_pair_perm(n_sub, d):
    """Within each sub-head, row permutation taking GPT-J pairs (2i, 2i+1) to rotate_half pairs
    (i, i + d/2): new i <- old 2i, new i + d/2 <- old 2i + 1."""
    within = np.array([2 * i for i in range(d // 2)] + [2 * i + 1 for i in range(d // 2)])
    return np.concatenate([s * d + within for s in range(n_sub)])


def check_layout_equivalence(params_np, cfg, tokens, logits):
    """(b) permuting q/k/v rows interleaved -> split and switching the layout keeps the logits;
    likewise permuting within-sub-head q/k rows and switching rope_interleaved off."""
    assert cfg["diff_head_layout"] == "interleaved" and cfg["rope_interleaved"]
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    t = torch.tensor(tokens, dtype=torch.long)

    def logits_of(pn, c):
        with torch.no_grad():
            return forward({k: torch.tensor(v) for k, v in pn.items()}, c, t)

    p2 = {k: v.copy() for k, v in params_np.items()}
    for l in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d.self_attn." % l
        p2[pre + "q_proj.weight"] = p2[pre + "q_proj.weight"][interleaved_to_split_rows(n, d)]
        p2[pre + "k_proj.weight"] = p2[pre + "k_proj.weight"][interleaved_to_split_rows(kv, d)]
        p2[pre + "v_proj.weight"] = p2[pre + "v_proj.weight"][interleaved_to_split_rows(kv, d)]
    c2 = dict(cfg, diff_head_layout="split")
    l2 = logits_of(p2, c2)
    assert torch.allclose(l2, logits, atol=1e-10, rtol=0), (l2 - logits).abs().max()
    # sanity: without the permutation the split layout must give different logits
    assert not torch.allclose(logits_of(params_np, c2), logits, atol=1e-6)

    p3 = {k: v.copy() for k, v in p2.items()}
    for l in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d.self_attn." % l
        p3[pre + "q_proj.weight"] = p3[pre + "q_proj.weight"][rope_pair_perm(n, d)]
        p3[pre + "k_proj.weight"] = p3[pre + "k_proj.weight"][rope_pair_perm(kv, d)]
    c3 = dict(c2, rope_interleaved=False)
    l3 = logits_of(p3, c3)
    assert torch.allclose(l3, logits, atol=1e-10, rtol=0), (l3 - logits).abs().max()
    assert not torch.allclose(logits_of(p2, c3), logits, atol=1e-6)


def hf_style_split_attention(x, p, pre, cfg, layer):
    """A second, vectorised formulation of the split layout mirroring Hugging Face DiffLlama
    (repeat_kv over all n query sub-heads, chunk/cat of values, chunk of outputs)."""
    T = x.shape[0]
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    q = rope((x @ p[pre + "q_proj.weight"].t()).view(T, n, d), cfg["rope_theta"], cfg["rope_interleaved"], cfg.get("rope_inv_freq"))
    k = rope((x @ p[pre + "k_proj.weight"].t()).view(T, kv, d), cfg["rope_theta"], cfg["rope_interleaved"], cfg.get("rope_inv_freq"))
    v = (x @ p[pre + "v_proj.weight"].t()).view(T, kv, d)
    q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)          # [heads, T, d]
    k = k.repeat_interleave(n // kv, dim=0)
    v = v.repeat_interleave(n // kv, dim=0)
    v = torch.cat(torch.chunk(v, 2, dim=0), dim=-1).repeat(2, 1, 1)            # [n, T, 2d]
    s = q @ k.transpose(1, 2) / math.sqrt(d)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    o = torch.softmax(s, -1) @ v
    lam_init = lambda_init_fn(layer)
    lam = (torch.exp((p[pre + "lambda_q1"] * p[pre + "lambda_k1"]).sum())
           - torch.exp((p[pre + "lambda_q2"] * p[pre + "lambda_k2"]).sum()) + lam_init)
    o1, o2 = torch.chunk(o, 2, dim=0)
    o = o1 - lam * o2
    gn = p[pre + "groupnorm.weight"] if cfg["diff_norm_affine"] else None
    o = (1 - lam_init) * rmsnorm(o, gn, cfg["rms_norm_eps"])
    return o.transpose(0, 1).reshape(T, -1) @ p[pre + "o_proj.weight"].t()


def check_hf_style_split(params_np, cfg, tokens):
    """Per layer, the loop implementation equals the HF-style vectorised one (split layout)."""
    assert cfg["diff_head_layout"] == "split"
    p = {k: torch.tensor(v) for k, v in params_np.items()}
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.standard_normal((len(tokens), cfg["hidden_size"])))
    for l in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d.self_attn." % l
        a = diff_attention(x, p, pre, cfg, l)
        b = hf_style_split_attention(x, p, pre, cfg, l)
        assert torch.allclose(a, b, atol=1e-12, rtol=0), (a - b).abs().max()

# ----------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------

def project_config(model_type, layout=None, rope_interleaved=None, affine=None, **kw):
    """A config as this project writes it: every key explicit (head_dim only when given)."""
    c = {"model_type": model_type}
    c.update(kw)
    c.setdefault("num_hidden_layers", 2)
    c.setdefault("rms_norm_eps", 1e-5)
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("max_position_embeddings", 64)
    c.setdefault("tie_word_embeddings", False)
    if model_type == "diffllama":
        c.setdefault("lambda_std_dev", 0.1)
        c["diff_head_layout"] = layout
        c["diff_norm_affine"] = affine
    c["rope_interleaved"] = rope_interleaved
    return c


def hf_diffllama_config(**kw):
    """A config.json as transformers 4.4x writes it for DiffLlamaForCausalLM (no project keys)."""
    c = {
        "architectures": ["DiffLlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": None,
        "hidden_act": "silu",
        "hidden_size": None,
        "initializer_range": 0.02,
        "intermediate_size": None,
        "lambda_std_dev": 0.1,
        "max_position_embeddings": 2048,
        "model_type": "diffllama",
        "num_attention_heads": None,
        "num_hidden_layers": 2,
        "num_key_value_heads": None,
        "pad_token_id": None,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.48.0",
        "use_cache": True,
        "vocab_size": None,
    }
    c.update(kw)
    assert all(v is not None for k, v in c.items() if k not in ("pad_token_id", "rope_scaling"))
    return c


CASES = [
    # name, config, T, storage dtype, seed
    ("diff_interleaved_affine",
     project_config("diffllama", "interleaved", True, True, vocab_size=37, hidden_size=16,
                    intermediate_size=40, num_attention_heads=4, num_key_value_heads=4,
                    rope_theta=100.0),
     9, "F32", 1001),
    ("diff_split_noaffine",
     hf_diffllama_config(vocab_size=41, hidden_size=16, intermediate_size=40,
                         num_attention_heads=4, num_key_value_heads=4, head_dim=4,
                         rms_norm_eps=1e-6),
     8, "F32", 1002),
    ("diff_gqa",
     project_config("diffllama", "interleaved", True, True, vocab_size=43, hidden_size=16,
                    intermediate_size=24, num_attention_heads=8, num_key_value_heads=4,
                    head_dim=6, rope_theta=500.0),
     10, "F32", 1003),
    ("diff_split_gqa_tied",
     project_config("diffllama", "split", False, True, vocab_size=53, hidden_size=16,
                    intermediate_size=32, num_attention_heads=8, num_key_value_heads=2,
                    head_dim=4, rope_theta=50.0, tie_word_embeddings=True, rms_norm_eps=1e-6),
     11, "F32", 1004),
    ("llama_baseline",
     project_config("llama", None, False, None, vocab_size=37, hidden_size=24,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=2,
                    rope_theta=100.0),
     9, "F32", 1005),
    ("diff_bf16_weights",
     project_config("diffllama", "interleaved", True, True, vocab_size=37, hidden_size=16,
                    intermediate_size=40, num_attention_heads=4, num_key_value_heads=4,
                    rope_theta=100.0),
     9, "BF16", 1006),
    ("diff_f16_weights",
     project_config("diffllama", "interleaved", True, True, vocab_size=37, hidden_size=16,
                    intermediate_size=40, num_attention_heads=4, num_key_value_heads=4,
                    rope_theta=100.0),
     9, "F16", 1007),
    # the paper's Table 6 ablations (SPEC section 2's ablation keys)
    ("diff_no_groupnorm",
     project_config("diffllama", "interleaved", True, False, vocab_size=37, hidden_size=16,
                    intermediate_size=24, num_attention_heads=8, num_key_value_heads=4,
                    head_dim=4, rope_theta=100.0, diff_groupnorm=False),
     9, "F32", 1008),
    ("diff_lambda_init_const",
     project_config("diffllama", "interleaved", True, True, vocab_size=41, hidden_size=16,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=4,
                    num_hidden_layers=3, rope_theta=100.0, diff_lambda_init=0.5),
     9, "F32", 1009),
    # DIFF V2 (SPEC section 1b): sub-head GQA rep 2n/kv = 2 and 4, both RoPE styles
    ("diffv2_rope_gptj",
     project_config("diffllama_v2", None, True, None, vocab_size=37, hidden_size=16,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=4,
                    rope_theta=100.0),
     9, "F32", 1011),
    ("diffv2_gqa_rope_half",
     project_config("diffllama_v2", None, False, None, vocab_size=41, hidden_size=16,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=6, rope_theta=100.0),
     10, "F32", 1012),
    ("diffv2_gqa_rope_gptj_tied",
     project_config("diffllama_v2", None, True, None, vocab_size=43, hidden_size=16,
                    intermediate_size=16, num_attention_heads=4, num_key_value_heads=2,
                    num_hidden_layers=3, rope_theta=500.0, tie_word_embeddings=True),
     9, "F32", 1013),
    ("llama_groupnorm",
     project_config("llama", None, True, None, vocab_size=37, hidden_size=24,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=2,
                    rope_theta=100.0, attention_groupnorm=True),
     9, "F32", 1010),
    # the design deck's extensions (docs/variants.md)
    ("ext_token_enhancer",
     project_config("diffllama", "interleaved", True, True, vocab_size=37, hidden_size=16,
                    intermediate_size=24, num_attention_heads=8, num_key_value_heads=4,
                    head_dim=4, rope_theta=100.0, ext_token_enhancer={"reduction": 4}),
     9, "F32", 1021),
    ("ext_noise_reduction",
     project_config("diffllama", "split", False, True, vocab_size=37, hidden_size=16,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=4,
                    head_dim=4, rope_theta=100.0, ext_noise_reduction={"threshold": 0.1}),
     9, "F32", 1022),
    ("ext_flow_gate",
     project_config("llama", None, False, None, vocab_size=37, hidden_size=16,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=2,
                    rope_theta=100.0, num_hidden_layers=3, ext_flow_gate=True),
     9, "F32", 1023),
    ("ext_attention_loss",
     project_config("diffllama", "interleaved", True, True, vocab_size=37, hidden_size=16,
                    intermediate_size=24, num_attention_heads=8, num_key_value_heads=4,
                    head_dim=4, rope_theta=100.0, ext_attention_loss={"alpha": 0.5, "beta": 0.7}),
     9, "F32", 1024),
    ("ext_all_llama",
     project_config("llama", None, True, None, vocab_size=37, hidden_size=16,
                    intermediate_size=16, num_attention_heads=4, num_key_value_heads=2,
                    rope_theta=100.0, ext_token_enhancer={"reduction": 2},
                    ext_noise_reduction={"threshold": 0.3}, ext_flow_gate=True,
                    ext_attention_loss={"alpha": 0.3, "beta": 0.5}),
     9, "F32", 1025),
    ("ext_flow_gate_v2",
     project_config("diffllama_v2", None, True, None, vocab_size=37, hidden_size=16,
                    intermediate_size=24, num_attention_heads=4, num_key_value_heads=2,
                    rope_theta=100.0, ext_flow_gate=True),
     9, "F32", 1026),
]


# ----------------------------------------------------------------------------------------------
# Hugging Face checkpoint forms (SPEC section 2): rope scaling, transformers 5.x configs, shards
# ----------------------------------------------------------------------------------------------

def hf_llama_config(**kw):
    """A config.json as transformers 4.4x writes it for LlamaForCausalLM."""
    c = {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": 2, "head_dim": None, "hidden_act": "silu",
        "hidden_size": None, "initializer_range": 0.02, "intermediate_size": None,
        "max_position_embeddings": 2048, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": None, "num_hidden_layers": 2, "num_key_value_heads": None,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.48.0",
        "use_cache": True, "vocab_size": None,
    }
    c.update(kw)
    assert all(v is not None for k, v in c.items() if k != "rope_scaling")
    return c


def hf5_config(c4):
    """The same config as transformers 5.x writes it: rope_theta and the scaling move into
    rope_parameters, torch_dtype becomes dtype."""
    c = {k: v for k, v in c4.items() if k not in ("rope_scaling", "rope_theta", "torch_dtype")}
    rp = {"rope_type": "default"}
    if c4.get("rope_scaling"):
        rp = {k: v for k, v in c4["rope_scaling"].items() if k != "type"}
        rp["rope_type"] = c4["rope_scaling"].get("rope_type", c4["rope_scaling"].get("type"))
    rp["rope_theta"] = c4["rope_theta"]
    c["rope_parameters"] = rp
    c["dtype"] = c4["torch_dtype"]
    c["transformers_version"] = "5.0.0"
    return c


# Llama-3 style scaling scaled down to T ~ 10: with theta 100 and head_dim 8 the wavelengths are
# 6.3, 19.9, 62.8, 199, so with original length 64 (high-frequency bound 16, low 64) the four
# pairs are kept, blended, blended, divided by the factor: every branch is exercised.
LLAMA3_SMALL = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}

SHARDED = {"diff_hf4_llama3_sharded_tied": 3, "llama_hf4_linear_sharded_tied": 2}  # name -> shards


def write_weights(d, name, params, dtype):
    """model.safetensors, or for SHARDED cases the shards as transformers writes them
    (model-0000K-of-0000N.safetensors, model.safetensors.index.json) plus a stray
    rotary_emb.inv_freq buffer in the first shard that the engine must ignore."""
    for f in os.listdir(d):
        if f.startswith("model") and (f.endswith(".safetensors") or f.endswith(".json")):
            os.remove(os.path.join(d, f))
    if name not in SHARDED:
        write_safetensors(os.path.join(d, "model.safetensors"), params, dtype, {"format": "pt"})
        return
    n = SHARDED[name]
    names = list(params.keys())
    index = {"metadata": {"total_size": 0}, "weight_map": {}}
    for k in range(n):
        fname = "model-%05d-of-%05d.safetensors" % (k + 1, n)
        part = {nm: params[nm] for i, nm in enumerate(names) if i * n // len(names) == k}
        if k == 0:
            part["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(4)
        write_safetensors(os.path.join(d, fname), part, dtype, {"format": "pt"})
        for nm, a in part.items():
            index["weight_map"][nm] = fname
            index["metadata"]["total_size"] += a.size * (4 if dtype == "F32" else 2)
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")


def read_weights(d):
    """The stored parameters, from model.safetensors or the shards named by the index."""
    index_path = os.path.join(d, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        return read_safetensors(os.path.join(d, "model.safetensors"))
    with open(index_path) as f:
        weight_map = json.load(f)["weight_map"]
    out = {}
    for fname in sorted(set(weight_map.values())):
        for nm, a in read_safetensors(os.path.join(d, fname)).items():
            assert weight_map[nm] == fname and nm not in out
            if not nm.endswith("rotary_emb.inv_freq"):
                out[nm] = a
    return out


def check_rope_scaling_matters(params_np, cfg, tokens, logits):
    """The scaled frequencies differ from theta^(-2i/d) and change the logits (otherwise the
    case would not test the scaling)."""
    d = cfg["head_dim"]
    plain = cfg["rope_theta"] ** (-2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
    assert not torch.allclose(cfg["rope_inv_freq"], plain)
    with torch.no_grad():
        unscaled = forward({k: torch.tensor(v) for k, v in params_np.items()},
                           dict(cfg, rope_inv_freq=None), torch.tensor(tokens, dtype=torch.long))
    assert not torch.allclose(unscaled, logits, atol=1e-3)


CASES += [
    ("diff_hf4_llama3_sharded_tied",
     hf_diffllama_config(vocab_size=47, hidden_size=16, intermediate_size=24,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                         rope_theta=100.0, rope_scaling=dict(LLAMA3_SMALL),
                         tie_word_embeddings=True, torch_dtype="bfloat16", mlp_bias=False,
                         pretraining_tp=1),
     10, "BF16", 1101),
    ("diff_hf5_linear",
     hf5_config(hf_diffllama_config(vocab_size=41, hidden_size=16, intermediate_size=24,
                                    num_attention_heads=4, num_key_value_heads=4, head_dim=8,
                                    rope_theta=100.0, rope_scaling={"type": "linear", "factor": 4.0})),
     9, "F32", 1102),
    ("llama_hf4_linear_sharded_tied",
     hf_llama_config(vocab_size=37, hidden_size=16, intermediate_size=16, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=8, rope_theta=100.0,
                     rope_scaling={"type": "linear", "factor": 4.0}, tie_word_embeddings=True),
     9, "F32", 1103),
    ("llama_hf5_llama3",
     hf5_config(hf_llama_config(vocab_size=37, hidden_size=16, intermediate_size=24,
                                num_attention_heads=2, num_key_value_heads=2, head_dim=8,
                                rope_theta=100.0, rope_scaling=dict(LLAMA3_SMALL))),
     10, "F32", 1104),
]


def make_case(name, config, T, dtype, seed):
    d = os.path.join(OUT_DIR, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    cfg = load_config(os.path.join(d, "config.json"))
    assert T <= cfg["max_position_embeddings"]
    rng = np.random.default_rng(seed)

    params = random_params(cfg, rng)
    write_weights(d, name, params, dtype)
    params = read_weights(d)                                            # the stored (rounded) values
    assert list(params.keys()) == list(param_shapes(cfg).keys())

    tokens = [int(t) for t in rng.integers(0, cfg["vocab_size"], size=T)]
    with open(os.path.join(d, "tokens.txt"), "w") as f:
        f.write(",".join(str(t) for t in tokens) + "\n")

    probs = []
    NOISE_MASKS.clear()
    logits, loss, grads = loss_and_grads(params, cfg, tokens, check=probs)
    if cfg["ext_noise_reduction"]:    # the branch must be on for some tokens and off for others
        assert any(0 < float(m.sum()) < T for m in NOISE_MASKS), NOISE_MASKS
    check_attention_rows(probs)
    check_finite_difference(params, cfg, tokens, grads, rng)
    if cfg["rope_inv_freq"] is not None:
        check_rope_scaling_matters(params, cfg, tokens, logits)
    if cfg["model_type"] == "diffllama" and cfg["diff_head_layout"] == "interleaved":
        check_layout_equivalence(params, cfg, tokens, logits)
    if cfg["model_type"] == "diffllama" and cfg["diff_head_layout"] == "split":
        check_hf_style_split(params, cfg, tokens)
    # attention must be far from uniform for the test to mean anything
    last_row_max = np.mean([float(a[-1].max()) for a in probs])
    assert last_row_max > 2.0 / T, last_row_max    # uniform would be 1/T

    expected = {"logits": logits.numpy(), "loss": loss.reshape(1).numpy()}
    for k in params:
        expected["grad." + k] = grads[k].numpy()
    write_safetensors(os.path.join(d, "expected.safetensors"), expected, "F32")
    back = read_safetensors(os.path.join(d, "expected.safetensors"))
    assert np.allclose(back["logits"], logits.numpy(), rtol=1e-6, atol=1e-6)

    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    assert size < 80_000, (name, size)
    return loss.item(), size, cfg, tokens


def self_test_safetensors():
    a = np.array([1.0, -2.5, 3.14159, 1e-3, 65000.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8])
    bits = f32_to_bf16_bits(np.array([1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8], dtype=np.float32))
    assert list(bits) == [0x3F80, 0x3F82]      # ties to even: down, then up
    tmp = os.path.join(OUT_DIR, ".tmp_selftest.safetensors")
    for dt, tol in (("F32", 1e-6), ("F16", 1e-3), ("BF16", 1e-2)):
        write_safetensors(tmp, {"a": a.reshape(7, 1)}, dt)
        with open(tmp, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        assert n % 8 == 0
        b = read_safetensors(tmp)["a"].ravel()
        assert np.allclose(a, b, rtol=tol), (dt, a, b)
        if dt == "BF16":
            ref = torch.tensor(a, dtype=torch.float32).to(torch.bfloat16).to(torch.float64).numpy()
            assert np.array_equal(ref, b)
    os.remove(tmp)


def main():
    """python3 make_golden.py [NAME ...]: every case, or only those named."""
    self_test_safetensors()
    only = set(sys.argv[1:])
    unknown = only - {c[0] for c in CASES}
    assert not unknown, "no such case: %s" % sorted(unknown)
    for name, config, T, dtype, seed in CASES:
        if only and name not in only:
            continue
        loss, size, cfg, tokens = make_case(name, config, T, dtype, seed)
        print("%-24s %-9s layout=%-11s rope_il=%-5s affine=%-5s V=%d D=%d I=%d n=%d kv=%d d=%d "
              "tied=%s T=%d %s loss=%.6f (%d bytes)" % (
                  name, cfg["model_type"], cfg.get("diff_head_layout") if cfg["model_type"] == "diffllama" else "-",
                  cfg["rope_interleaved"], cfg["diff_norm_affine"] if cfg["model_type"] == "diffllama" else "-",
                  cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"],
                  cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"],
                  cfg["tie_word_embeddings"], T, dtype, loss, size))


if __name__ == "__main__":
    main()
