#!/usr/bin/env bash
# The measurement of docs/results/tasks.md: for each task, a Differential Transformer and a
# standard-attention baseline of the same size (presets small-diff / small-llama), trained from
# scratch with the same data, steps, batch, lr and seed, then evaluated on the test split with
# `difftx evaluate --compare`, and the non-neural baselines on the same test data.
#
# Usage: bash scripts/measure-tasks.sh OUT_DIR [STEPS] [SEED]     (after fetch-task-data.sh)
# Runs two trainings at a time, one thread each. With INIT=DIR (the OUT_DIR of
# scripts/pretrain-task-lms.sh) both kinds are fine-tuned from DIR/diff and DIR/llama (and read
# their SentencePiece tokenizer) instead of trained from scratch.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:?usage: measure-tasks.sh OUT_DIR [STEPS] [SEED]}"
STEPS="${2:-100}"
SEED="${3:-1}"
BIN="${DIFFTX:-$repo/build/difftx}"
D="${DIFFTX_CACHE:-$repo/cache}/tasks"
mkdir -p "$OUT"
# Fixed test subsets (every 10th / 30th line of the test split), so evaluation fits the budget.
awk 'NR % 10 == 1' "$D/debian/debian-section.test.jsonl" > "$OUT/debian-section.test10.jsonl"
awk 'NR % 30 == 1' "$D/debian/debian-synopsis.test.jsonl" > "$OUT/debian-synopsis.test30.jsonl"

start() {  # start KIND: the model a task run starts from
  if [[ -n "${INIT:-}" ]]; then echo --init-from "$INIT/$1"; else echo --preset "small-$1"; fi
}
common=(--steps "$STEPS" --batch 8 --lr 1e-3 --warmup 10 --seed "$SEED" --threads 1 --log-every 20)
cls() {  # cls NAME TRAIN KIND
  "$BIN" classify train --data "$2" --out "$OUT/$1-$3" $(start "$3") --seq 256 \
    "${common[@]}" > "$OUT/$1-$3.train.json" 2> "$OUT/$1-$3.train.log"
}
sum() {  # sum NAME TRAIN KIND
  "$BIN" summarize train --data "$2" --out "$OUT/$1-$3" $(start "$3") \
    --max-document-tokens 192 --max-summary-tokens 32 \
    "${common[@]}" > "$OUT/$1-$3.train.json" 2> "$OUT/$1-$3.train.log"
}
for kind in diff llama; do
  cls spam2 "$D/spam/spam2.train.jsonl" "$kind" &
done; wait
for kind in diff llama; do
  cls spam3 "$D/spam/spam3.train.jsonl" "$kind" &
done; wait
for kind in diff llama; do
  cls section "$D/debian/debian-section.train.jsonl" "$kind" &
done; wait
for kind in diff llama; do
  sum synopsis "$D/debian/debian-synopsis.train.jsonl" "$kind" &
done; wait

ev() {  # ev NAME TASK DATA
  "$BIN" evaluate --model "$OUT/$1-diff" --compare "$OUT/$1-llama" --task "$2" --data "$3" \
    --threads 2 --attn-examples 8 --attn-seq 128 --md "$OUT/$1.md" > "$OUT/$1.eval.json"
}
ev spam2 classify "$D/spam/spam2.test.jsonl"
ev spam3 classify "$D/spam/spam3.test.jsonl"
ev section classify "$OUT/debian-section.test10.jsonl"
ev synopsis summarize "$OUT/debian-synopsis.test30.jsonl"
"$BIN" classify eval --baseline --baseline-train "$D/spam/spam2.train.jsonl" --data "$D/spam/spam2.test.jsonl" > "$OUT/spam2.nb.json"
"$BIN" classify eval --baseline --baseline-train "$D/spam/spam3.train.jsonl" --data "$D/spam/spam3.test.jsonl" > "$OUT/spam3.nb.json"
"$BIN" classify eval --baseline --baseline-train "$D/debian/debian-section.train.jsonl" --data "$OUT/debian-section.test10.jsonl" > "$OUT/section.nb.json"
"$BIN" summarize eval --data "$OUT/debian-synopsis.test30.jsonl" --lead 8 > "$OUT/synopsis.lead.json"
echo "done: $OUT"
