#!/usr/bin/env bash
# Pretrains the two language models the tasks start from (issue 11): a Differential Transformer
# and a standard-attention baseline of the same size, on the corpus and SentencePiece tokenizer
# of scripts/build-pretrain-corpus.sh, with the same data order, budget and seed (and, by
# difftx's paired initialisation, identical starting values of every tensor they share).
#
# Usage: bash scripts/pretrain-task-lms.sh OUT_DIR [STEPS] [SEED]     (defaults 2000, 1)
#   then: difftx classify train --init-from OUT_DIR/diff ...   (and OUT_DIR/llama)
#
# SIZE (environment, default small) picks the presets SIZE-diff and SIZE-llama. A run that
# was interrupted resumes from its last checkpoint when the same command is given again; a
# finished one is left as it is.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:?usage: pretrain-task-lms.sh OUT_DIR [STEPS] [SEED]}"
STEPS="${2:-2000}"
SEED="${3:-1}"
SIZE="${SIZE:-small}"
BIN="${DIFFTX:-$repo/build/difftx}"
P="${DIFFTX_CACHE:-$repo/cache}/pretrain"

die() { echo "pretrain-task-lms: error: $*" >&2; exit 1; }
[[ -x "$BIN" ]] || die "$BIN not found (bash scripts/build.sh, or set DIFFTX)"
[[ -f "$P/manifest.json" && -f "$P/spm/tokenizer.model" ]] || die "no corpus in $P (bash scripts/build-pretrain-corpus.sh)"
mkdir -p "$OUT"

for kind in diff llama; do
  run="$OUT/$kind"
  if [[ -f "$run/train_state.safetensors" ]]; then
    # --resume continues an unfinished run and returns at once for a finished one.
    "$BIN" train --out "$run" --resume --steps "$STEPS" --log-every 100
  else
    "$BIN" train --out "$run" --preset "$SIZE-$kind" --tokenizer "spm:$P/spm/tokenizer.model" \
      --data "$P/train" --val "$P/val" --steps "$STEPS" --batch 8 --seq 256 --lr 1e-3 \
      --seed "$SEED" --save-every 200 --eval-every 200 --log-every 100
  fi
done
cp "$P/manifest.json" "$OUT/corpus-manifest.json"
echo "pretrained: $OUT/diff $OUT/llama (corpus manifest in $OUT/corpus-manifest.json)"
