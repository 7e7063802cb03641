"""Fixtures for the difftx module tests: tiny models made with `difftx init` and
`difftx.train`, and the CLI binary to compare against (DIFFTX_BINARY, set by CTest)."""
import json
import os
import pathlib
import struct
import subprocess

import numpy as np
import pytest

import difftx

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("DIFFTX_BINARY", str(ROOT / "build" / "difftx"))

TINY = {"model_type": "diffllama", "vocab_size": 32, "hidden_size": 16,
        "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
        "max_position_embeddings": 8}
BYTE = dict(TINY, vocab_size=257, max_position_embeddings=32)


def run_cli(*args):
    """Runs the difftx binary; returns its stdout (bytes). Fails the test on a non-zero exit."""
    done = subprocess.run([BINARY, *map(str, args)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def read_safetensors(path):
    """{name: numpy array} of an F32 safetensors file (the format is 8-byte header length,
    JSON header, data)."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        start, end = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + start:8 + n + end], dtype="<f4").reshape(t["shape"])
    return out


def write_safetensors_entry(path, name, flat_index, value):
    """Sets one float of tensor `name` in a safetensors file in place."""
    raw = bytearray(pathlib.Path(path).read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    t = json.loads(raw[8:8 + n])[name]
    assert t["dtype"] == "F32"
    at = 8 + n + t["data_offsets"][0] + 4 * flat_index
    raw[at:at + 4] = struct.pack("<f", value)
    pathlib.Path(path).write_bytes(bytes(raw))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A differential model of vocab 32 written by `difftx init` (no tokenizer)."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "config.json").write_text(json.dumps(TINY))
    run_cli("init", "--config", root / "config.json", "--out", root / "model", "--seed", "7")
    return root / "model"


@pytest.fixture(scope="session")
def byte_dir(tmp_path_factory):
    """A byte-tokenizer model trained for a few steps through difftx.train."""
    root = tmp_path_factory.mktemp("byte")
    (root / "config.json").write_text(json.dumps(BYTE))
    (root / "data.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40)
    difftx.train(str(root / "run"), config=str(root / "config.json"),
                 cache_dir=str(root / "cache"), data=str(root / "data.txt"), steps=3,
                 batch=2, seq=16, save_every=0, eval_every=0, seed=1)
    return root / "run"
