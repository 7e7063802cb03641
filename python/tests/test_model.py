"""difftx.Model: loading, logits and loss against `difftx inspect`, gradients against the
library's backward and a finite difference, attention against `difftx attention`."""
import json
import shutil

import numpy as np
import pytest

import difftx
from conftest import TINY, read_safetensors, run_cli, write_safetensors_entry

IDS = [3, 17, 5, 30, 0, 9, 12]


def test_properties(tiny_dir):
    m = difftx.Model(str(tiny_dir))
    assert m.config["vocab_size"] == 32 and m.config["hidden_size"] == 16
    assert m.config["model_type"] == TINY["model_type"]
    assert m.vocab_size == 32
    assert "model.embed_tokens.weight" in m.parameter_names
    assert m.tokenizer is None


def test_logits_and_loss_equal_inspect(tiny_dir, tmp_path):
    m = difftx.Model(str(tiny_dir))
    out = tmp_path / "inspect.safetensors"
    run_cli("inspect", "--model", tiny_dir, "--tokens", ",".join(map(str, IDS)), "--out", out,
            "--grads")
    ref = read_safetensors(out)
    logits = m.logits(IDS)
    assert logits.dtype == np.float32 and logits.shape == (len(IDS), 32)
    np.testing.assert_array_equal(logits, ref["logits"])
    np.testing.assert_array_equal(m.logits(np.array(IDS, dtype=np.int32)), ref["logits"])
    loss, grads = m.loss_and_grads(IDS)
    assert loss == pytest.approx(float(ref["loss"][0]), abs=0)
    assert m.loss(IDS) == loss
    assert sorted(grads) == sorted(m.parameter_names)
    for name, g in grads.items():
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, ref["grad." + name], err_msg=name)


def test_gradient_matches_finite_difference(tiny_dir, tmp_path):
    loss, grads = difftx.Model(str(tiny_dir)).loss_and_grads(IDS)
    weights = read_safetensors(tiny_dir / "model.safetensors")
    for name in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"):
        g = grads[name]
        flat = int(np.argmax(np.abs(g)))  # the entry with the largest gradient: well above noise
        assert abs(g.flat[flat]) > 1e-3, name
        w = float(weights[name].flat[flat])
        eps = 1e-2
        losses = []
        for sign in (1, -1):
            copy = tmp_path / f"fd{sign}"
            shutil.copytree(tiny_dir, copy, dirs_exist_ok=True)
            write_safetensors_entry(copy / "model.safetensors", name, flat, w + sign * eps)
            losses.append(difftx.Model(str(copy)).loss(IDS))
        fd = (losses[0] - losses[1]) / (2 * eps)
        assert fd == pytest.approx(float(g.flat[flat]), rel=0.05, abs=1e-4), name


def test_attention_equals_cli(tiny_dir, tmp_path):
    m = difftx.Model(str(tiny_dir))
    a = m.attention(IDS)
    assert len(a["layers"]) == 2
    out = tmp_path / "att"
    run_cli("attention", "--model", tiny_dir, "--tokens", ",".join(map(str, IDS)), "--out", out)
    ref = read_safetensors(out / "maps.safetensors")
    for i, layer in enumerate(a["layers"]):
        assert layer["attn"].shape == (2, len(IDS), len(IDS))  # 4 heads -> 2 differential heads
        np.testing.assert_allclose(layer["attn"], ref[f"layers.{i}.attn"], atol=1e-6)
        np.testing.assert_allclose(layer["attn1"].sum(axis=-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(layer["attn"], layer["attn1"] - layer["lambda"] * layer["attn2"],
                                   atol=1e-6)
    stats = a["stats"]
    # The stats.json layout of `difftx attention` (analysis/attention_stats.h).
    cli_stats = json.loads((out / "stats.json").read_text())
    assert stats["mean"] == pytest.approx(cli_stats["mean"], abs=1e-6)
    assert len(stats["layers"]) == 2


def test_bad_arguments_raise_value_error(tiny_dir):
    m = difftx.Model(str(tiny_dir))
    with pytest.raises(ValueError, match="out of range"):
        m.logits([1, 32])
    with pytest.raises(ValueError, match="out of range"):
        m.logits([-1])
    with pytest.raises(ValueError, match="dtype"):
        m.logits(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="integers"):
        m.logits([1, 2.5])
    with pytest.raises(ValueError, match="empty"):
        m.loss_and_grads([])
    with pytest.raises(ValueError):
        m.logits(np.zeros((2, 2), dtype=np.int64))


def test_library_errors_raise_difftx_error(tiny_dir, tmp_path):
    assert issubclass(difftx.Error, RuntimeError)
    with pytest.raises(difftx.Error, match="not found"):
        difftx.Model(str(tmp_path / "missing"))
    m = difftx.Model(str(tiny_dir))
    with pytest.raises(difftx.Error):  # longer than max_position_embeddings (8)
        m.logits(list(range(9)))
    with pytest.raises(difftx.Error, match="tokenizer"):
        m.generate("hello")
