"""difftx.train: the library's training loop with a per-step Python callback."""
import json

import pytest

import difftx
from conftest import BYTE


@pytest.fixture()
def setup(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BYTE))
    (tmp_path / "data.txt").write_text("pack my box with five dozen liquor jugs. " * 40)
    return dict(config=str(tmp_path / "config.json"), cache_dir=str(tmp_path / "cache"),
                data=str(tmp_path / "data.txt"), batch=2, seq=16, save_every=0, eval_every=0)


def test_callback_sees_every_step(tmp_path, setup):
    seen = []
    out = difftx.train(str(tmp_path / "run"), steps=4, callback=seen.append, **setup)
    assert [r["step"] for r in seen] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and r["lr"] > 0 for r in seen)
    assert out["finished"] and out["step"] == 4
    m = difftx.Model(str(tmp_path / "run"))
    assert m.tokenizer.kind == "byte"


def test_callback_false_stops_and_resume_continues(tmp_path, setup):
    out = difftx.train(str(tmp_path / "run"), steps=6, callback=lambda r: r["step"] < 2, **setup)
    assert not out["finished"] and out["step"] == 2
    seen = []
    out = difftx.train(str(tmp_path / "run"), resume=True, callback=seen.append)
    assert out["finished"] and [r["step"] for r in seen] == [3, 4, 5, 6]


def test_callback_exception_propagates(tmp_path, setup):
    def boom(_):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        difftx.train(str(tmp_path / "run"), steps=3, callback=boom, **setup)


def test_bad_options(tmp_path, setup):
    with pytest.raises(ValueError, match="unknown option"):
        difftx.train(str(tmp_path / "r1"), steps=2, no_such_flag=1, **setup)
    with pytest.raises(ValueError, match="wrong type"):
        difftx.train(str(tmp_path / "r2"), steps="many", **setup)
    with pytest.raises(ValueError, match="steps"):
        difftx.train(str(tmp_path / "r3"), **setup)
    with pytest.raises(difftx.Error):  # the library's check of the settings
        difftx.train(str(tmp_path / "r4"), steps=2, **dict(setup, batch=0))
    assert not (tmp_path / "r4").exists()
