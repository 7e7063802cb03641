"""Model.generate / Model.stream against `difftx generate`, and the tokenizer."""
import threading
import time

import pytest

import difftx
from conftest import run_cli


def test_greedy_ids_equal_cli(tiny_dir):
    m = difftx.Model(str(tiny_dir))
    out = m.generate([1, 2, 3], max_tokens=5, temperature=0)
    cli = run_cli("generate", "--model", tiny_dir, "--tokens", "1,2,3", "--max-tokens", 5,
                  "--temperature", 0, "--ids").decode().strip()
    assert out["ids"] == [int(x) for x in cli.split(",")]
    assert out["finish_reason"] == "length"


def test_text_greedy_and_sampled_equal_cli(byte_dir):
    m = difftx.Model(str(byte_dir))
    for extra, kwargs in (([ "--temperature", 0], dict(temperature=0)),
                          (["--seed", 3, "--top-k", 20], dict(seed=3, top_k=20))):
        cli = run_cli("generate", "--model", byte_dir, "--prompt", "the quick", "--max-tokens", 12,
                      *extra)
        out = m.generate("the quick", max_tokens=12, **kwargs)
        # A barely trained model emits bytes that are not UTF-8: compare bytes.
        assert m.tokenizer.decode_bytes(out["ids"]) + b"\n" == cli
        assert out["text"] == cli[:-1].decode("utf-8", "replace")


def test_stream_yields_the_same_tokens(byte_dir):
    m = difftx.Model(str(byte_dir))
    full = m.generate("the", max_tokens=10, temperature=0)
    pieces = list(m.generate("the", max_tokens=10, temperature=0, stream=True))
    assert [i for i, _ in pieces] == full["ids"]
    assert "".join(t for _, t in pieces) == full["text"]
    assert list(m.stream("the", max_tokens=10, temperature=0)) == pieces


def test_abandoned_stream_stops(byte_dir):
    m = difftx.Model(str(byte_dir))
    s = m.stream("the", max_tokens=20, temperature=0.8)
    next(s)
    del s  # the worker is cancelled and joined


def test_stop_string(byte_dir):
    m = difftx.Model(str(byte_dir))
    ids = m.generate("the", max_tokens=16, temperature=0)["ids"]
    ascii_at = [i for i, t in enumerate(ids) if 32 <= t < 127 and i > 0]
    if not ascii_at:
        pytest.skip("the tiny model generated no printable ASCII to stop at")
    stop = chr(ids[ascii_at[0]])
    out = m.generate("the", max_tokens=16, temperature=0, stop=[stop])
    assert out["finish_reason"] == "stop" and stop not in out["text"]
    assert len(out["ids"]) <= len(ids)


def test_bad_sampling_options(byte_dir):
    m = difftx.Model(str(byte_dir))
    with pytest.raises(ValueError):
        m.generate("the", top_p=0)
    with pytest.raises(ValueError):
        m.generate("the", max_tokens=-1)
    with pytest.raises(ValueError):
        m.generate("", max_tokens=1)
    with pytest.raises(ValueError):
        m.generate("the", precision="fp8")


def test_generation_runs_without_the_gil(byte_dir):
    """Another Python thread keeps running while a generation computes."""
    m = difftx.Model(str(byte_dir))
    ticks = []  # the ticker's clock readings, taken while it holds the GIL
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.monotonic())
            done.wait(0.0005)

    calls = []  # (start, end) of each generate() call
    t = threading.Thread(target=tick)
    t.start()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # long generations: the window slides past 32 tokens
            start = time.monotonic()
            m.generate("the", max_tokens=1000, temperature=0, sliding_window=True)
            calls.append((start, time.monotonic()))
    finally:
        done.set()
        t.join()
    # A tick well inside a call (not in the moment before the call enters C++) can only
    # happen if generate() let go of the GIL.
    margin = 0.002
    inside = [x for x in ticks if any(s + margin < x < e - margin for s, e in calls)]
    assert inside, f"no tick during {len(calls)} generate() calls"


def test_tokenizer(byte_dir):
    tok = difftx.Model(str(byte_dir)).tokenizer
    assert tok.kind == "byte" and tok.vocab_size == 257 and tok.eos_id == 256
    ids = tok.encode("héllo")
    assert ids == list("héllo".encode())
    assert tok.decode(ids) == "héllo"
    assert tok.decode_bytes([255]) == b"\xff"
    with pytest.raises(ValueError):
        tok.decode([257])
