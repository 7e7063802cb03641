#!/usr/bin/env bash
# Builds the pretraining corpus of the task models (issue 11) and a SentencePiece tokenizer
# trained on it, in a git-ignored cache folder. Idempotent: a corpus whose manifest matches its
# inputs and files is not rebuilt.
#
# Usage: bash scripts/build-pretrain-corpus.sh [VOCAB_SIZE]      (default 8000)
#        (after scripts/fetch-data.sh sotu moby-dick and scripts/fetch-task-data.sh debian,
#         and a build: the tokenizer is trained by `difftx tokenizer train`)
#
# CACHE is $DIFFTX_CACHE if set, else <repo>/cache; DIFFTX is the program (default
# build/difftx). Layout:
#
#   CACHE/pretrain/train/sotu.txt      State of the Union addresses 1790-1999
#   CACHE/pretrain/train/moby-dick.txt Moby-Dick, whole
#   CACHE/pretrain/train/debian.txt    the long descriptions of the Debian *training* split
#                                      (debian-synopsis.train.jsonl "document"s), a blank line apart
#   CACHE/pretrain/val/sotu.txt        State of the Union addresses 2000-2021
#   CACHE/pretrain/val/debian.txt      the long descriptions of the Debian validation split
#   CACHE/pretrain/spm/                tokenizer.model + difftx_tokenizer.json (unigram, byte
#                                      fallback, VOCAB_SIZE pieces), trained on train/ only
#   CACHE/pretrain/manifest.json       SHA-256 of every input and output, the Debian snapshot
#
# No text of the Debian test split reaches the corpus or the tokenizer, so a model pretrained on
# it and fine-tuned for the Debian tasks has not seen their test descriptions. (The section and
# synopsis data share their split: both are split by a hash of the same description.)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${DIFFTX_CACHE:-$repo/cache}"
BIN="${DIFFTX:-$repo/build/difftx}"
VOCAB="${1:-8000}"

die() { echo "build-pretrain-corpus: error: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

[[ "$VOCAB" =~ ^[0-9]+$ ]] || die "VOCAB_SIZE must be a number, got '$VOCAB'"
[[ -x "$BIN" ]] || die "$BIN not found (bash scripts/build.sh, or set DIFFTX)"
command -v node >/dev/null || die "node is not installed (apt-get install nodejs)"
SOTU="$CACHE/sotu"; MOBY="$CACHE/moby-dick/data.txt"; DEB="$CACHE/tasks/debian"
compgen -G "$SOTU/*.txt" >/dev/null || die "no $SOTU/*.txt (bash scripts/fetch-data.sh sotu)"
[[ -f "$MOBY" ]] || die "no $MOBY (bash scripts/fetch-data.sh moby-dick)"
for s in train validation; do
  [[ -f "$DEB/debian-synopsis.$s.jsonl" ]] || die "no $DEB/debian-synopsis.$s.jsonl (bash scripts/fetch-task-data.sh debian)"
done
[[ -f "$DEB/snapshot.json" ]] || die "no $DEB/snapshot.json (bash scripts/fetch-task-data.sh debian)"

OUT="$CACHE/pretrain"
# What the corpus is a function of: the input files, the vocabulary size and this script.
inputs_id=$( (for f in "$SOTU"/*.txt "$MOBY" "$DEB"/debian-synopsis.{train,validation}.jsonl "$0"; do
  echo "$(sha_of "$f") $(basename "$f")"; done; echo "vocab $VOCAB") | sha256sum | cut -d' ' -f1)
if [[ -f "$OUT/manifest.json" ]] && grep -q "\"inputs_sha256\": \"$inputs_id\"" "$OUT/manifest.json" &&
   (cd "$OUT" && node -e '
     const m = require("./manifest.json"), fs = require("fs"), c = require("crypto");
     for (const [f, h] of Object.entries(m.files))
       if (!fs.existsSync(f) || c.createHash("sha256").update(fs.readFileSync(f)).digest("hex") !== h) process.exit(1);'); then
  echo "pretrain: $OUT (present, verified)"; exit 0
fi

mkdir -p "$CACHE"
work="$CACHE/.pretrain.$$"; rm -rf "$work"; trap 'rm -rf "$work"' EXIT
mkdir -p "$work/train" "$work/val"
# SOTU files are named YEAR_PRESIDENT_PARTY.txt: before 2000 train, from 2000 validation.
for f in "$SOTU"/*.txt; do
  year=$(basename "$f"); year=${year%%_*}
  [[ "$year" =~ ^[0-9]{4}$ ]] || die "$f: expected a file name YEAR_..."
  dest=train; ((10#$year < 2000)) || dest=val
  { cat "$f"; printf '\n\n'; } >> "$work/$dest/sotu.txt"
done
cp "$MOBY" "$work/train/moby-dick.txt"
# The documents of a split, a blank line apart (a failing line names the file and line).
documents() {
  node -e '
    const fs = require("fs"), path = process.argv[1];
    const lines = fs.readFileSync(path, "utf8").split("\n");
    const out = [];
    lines.forEach((l, i) => {
      if (!l.trim()) return;
      let r;
      try { r = JSON.parse(l); } catch (e) { console.error(`${path}:${i + 1}: not JSON`); process.exit(1); }
      if (typeof r.document !== "string") { console.error(`${path}:${i + 1}: no "document"`); process.exit(1); }
      out.push(r.document);
    });
    fs.writeSync(1, out.join("\n\n") + "\n");' "$1"
}
documents "$DEB/debian-synopsis.train.jsonl" > "$work/train/debian.txt"
documents "$DEB/debian-synopsis.validation.jsonl" > "$work/val/debian.txt"

"$BIN" tokenizer train --data "$work/train" --vocab-size "$VOCAB" --out "$work/spm" > "$work/spm.log" 2>&1 ||
  die "difftx tokenizer train failed: $(tail -n 3 "$work/spm.log")"
rm -f "$work/spm.log"

(cd "$work" && node -e '
  const fs = require("fs"), c = require("crypto"), p = require("path");
  const files = {};
  const walk = (d) => { for (const f of fs.readdirSync(d).sort()) {
    const q = p.join(d, f);
    if (fs.statSync(q).isDirectory()) walk(q);
    else files[q] = c.createHash("sha256").update(fs.readFileSync(q)).digest("hex"); } };
  for (const d of ["train", "val", "spm"]) walk(d);
  const snap = JSON.parse(fs.readFileSync(process.argv[3], "utf8")).snapshot_sha256;
  fs.writeFileSync("manifest.json", JSON.stringify({
    inputs_sha256: process.argv[1], vocab_size: Number(process.argv[2]),
    debian_snapshot_sha256: snap, files }, null, 1) + "\n");' "$inputs_id" "$VOCAB" "$DEB/snapshot.json")

rm -rf "$OUT.old"; [[ -e "$OUT" ]] && mv "$OUT" "$OUT.old"
mv "$work" "$OUT"; rm -rf "$OUT.old"
echo "pretrain: $OUT (built: $(du -sh "$OUT/train" | cut -f1) of training text, tokenizer $OUT/spm, $VOCAB pieces)"
