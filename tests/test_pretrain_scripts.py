#!/usr/bin/env python3
"""scripts/build-pretrain-corpus.sh and scripts/pretrain-task-lms.sh on a small fake cache.

Usage: test_pretrain_scripts.py DIFFTX_BINARY   (CTest `pretrain_scripts`)

Checks the splits (no Debian test description reaches the corpus), the manifest's hashes, that a
second build is a no-op and a damaged file is rebuilt, the errors for missing inputs, and that the
two pretrained models train on the corpus's tokenizer with the same parameter count and resume.
"""
import hashlib
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parent.parent
BIN = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(script, *args, env, expect=0):
    p = subprocess.run(["bash", str(REPO / "scripts" / script), *args], env=env,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != expect:
        print(p.stdout, p.stderr)
    check(p.returncode == expect, f"{script} {args}: exit {p.returncode}, expected {expect}")
    return p


def words(seed, n):
    vocab = ["nation", "people", "congress", "whale", "ship", "sea", "library", "package",
             "tool", "data", "the", "of", "and", "a", "to", "in", "is", "for", "with", "on"]
    return " ".join(vocab[(seed * 7 + i * 13 + i * i) % len(vocab)] for i in range(n))


def fake_cache(root):
    (root / "sotu").mkdir(parents=True)
    for year in (1790, 1999, 2000, 2021):
        (root / "sotu" / f"{year}_someone_x.txt").write_text(f"SOTU{year} " + words(year, 400))
    (root / "moby-dick").mkdir()
    (root / "moby-dick" / "data.txt").write_text("Call me Ishmael. " + words(3, 2000))
    deb = root / "tasks" / "debian"
    deb.mkdir(parents=True)
    for split, n in (("train", 30), ("validation", 5), ("test", 5)):
        with open(deb / f"debian-synopsis.{split}.jsonl", "w") as f:
            for i in range(n):
                f.write(json.dumps({"document": f"DEB{split.upper()}{i} " + words(i, 60),
                                    "summary": "a tool"}) + "\n")
    (deb / "snapshot.json").write_text(json.dumps({"snapshot_sha256": "ab" * 32, "files": {}}))


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    cache = tmp / "cache"
    fake_cache(cache)
    env = dict(os.environ, DIFFTX_CACHE=str(cache), DIFFTX=BIN)
    p = run("build-pretrain-corpus.sh", "300", env=env)
    out = cache / "pretrain"
    train = "".join((out / "train" / f).read_text() for f in ("sotu.txt", "moby-dick.txt", "debian.txt"))
    val = "".join((out / "val" / f).read_text() for f in ("sotu.txt", "debian.txt"))
    check("SOTU1790" in train and "SOTU1999" in train and "SOTU2000" not in train, "SOTU before 2000 trains")
    check("SOTU2000" in val and "SOTU2021" in val and "SOTU1999" not in val, "SOTU from 2000 validates")
    check("Ishmael" in train, "Moby-Dick trains")
    check(all(f"DEBTRAIN{i} " in train for i in range(30)), "every Debian training description is in")
    check(all(f"DEBVALIDATION{i} " in val for i in range(5)), "Debian validation descriptions validate")
    check("DEBTEST" not in train + val, "no Debian test description in the corpus")
    m = json.loads((out / "manifest.json").read_text())
    check(m["vocab_size"] == 300 and m["debian_snapshot_sha256"] == "ab" * 32, "manifest header")
    check(sorted(m["files"]) == sorted(str(q.relative_to(out)) for q in out.rglob("*")
                                       if q.is_file() and q.name != "manifest.json"),
          "the manifest lists every file")
    check(all(sha(out / f) == h for f, h in m["files"].items()), "the manifest's hashes are right")
    info = subprocess.run([BIN, "tokenizer", "info", "--tokenizer", f"spm:{out}/spm/tokenizer.model"],
                          capture_output=True, text=True)
    check(info.returncode == 0 and "300" in info.stdout, f"the tokenizer has 300 ids: {info.stdout}{info.stderr}")

    before = (out / "manifest.json").stat().st_mtime_ns
    p = run("build-pretrain-corpus.sh", "300", env=env)
    check("present, verified" in p.stdout and (out / "manifest.json").stat().st_mtime_ns == before,
          "a second build is a no-op")
    (out / "train" / "debian.txt").write_text("damaged")
    p = run("build-pretrain-corpus.sh", "300", env=env)
    check("built" in p.stdout and "DEBTRAIN0 " in (out / "train" / "debian.txt").read_text(),
          "a damaged corpus is rebuilt")

    # Missing inputs: one line naming what to run, exit 1, the existing corpus untouched.
    bad = dict(env, DIFFTX_CACHE=str(tmp / "empty"))
    p = run("build-pretrain-corpus.sh", env=bad, expect=1)
    check("fetch-data.sh" in p.stderr and len(p.stderr.strip().splitlines()) == 1, f"missing SOTU: {p.stderr}")
    p = run("build-pretrain-corpus.sh", "many", env=env, expect=1)
    check("VOCAB_SIZE" in p.stderr, "a bad vocabulary size is refused")
    p = run("pretrain-task-lms.sh", str(tmp / "lm"), env=bad, expect=1)
    check("build-pretrain-corpus.sh" in p.stderr, "pretraining without a corpus is refused")

    lm_env = dict(env, SIZE="tiny")
    run("pretrain-task-lms.sh", str(tmp / "lm"), "2", "1", env=lm_env)
    params = []
    for kind, model_type in (("diff", "diffllama"), ("llama", "llama")):
        cfg = json.loads((tmp / "lm" / kind / "config.json").read_text())
        check(cfg["model_type"] == model_type and cfg["vocab_size"] == 300, f"{kind}: config {cfg}")
        header = (tmp / "lm" / kind / "model.safetensors").read_bytes()
        n = int.from_bytes(header[:8], "little")
        tensors = json.loads(header[8:8 + n])
        params.append(sum(math.prod(t["shape"]) for k, t in tensors.items()
                          if k != "__metadata__"))
    check(abs(params[0] - params[1]) <= 0.01 * params[1], f"same size: {params}")
    # Extending the budget resumes both runs from their checkpoints.
    run("pretrain-task-lms.sh", str(tmp / "lm"), "3", "1", env=lm_env)
    for kind in ("diff", "llama"):
        steps = [json.loads(l) for l in (tmp / "lm" / kind / "metrics.jsonl").read_text().splitlines()]
        last = [s.get("step") for s in steps if "step" in s]
        check(last and max(last) == 3, f"{kind} resumed to step 3: {last}")

print("FAILED:" if failures else "all passed", len(failures))
sys.exit(1 if failures else 0)
