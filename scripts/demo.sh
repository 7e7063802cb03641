#!/usr/bin/env bash
# The main job, end to end on the embedded default: build difftx, create a differential
# model and a standard-attention baseline of the same size (configs/small-*.json), and run
# one forward + backward pass through each on a fixed token sequence.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
out=demo-out
rm -rf "$out" && mkdir -p "$out"
tokens=$(seq -s, 1 37 4000 | cut -d, -f1-64)
for kind in diff llama; do
  ./build/difftx init --config "configs/small-$kind.json" --out "$out/$kind" --seed 1
  ./build/difftx inspect --model "$out/$kind" --tokens "$tokens" --out "$out/$kind-inspect.safetensors" --grads
done
echo "demo: models and inspect outputs are in $out/"
