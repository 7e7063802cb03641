#!/usr/bin/env bash
# The whole test suite, from a fresh machine: dependencies, build, every CTest test, the same
# suite again built with ASan + UBSan (scripts/test-asan.sh), then a short fixed-time fuzzing
# run of the safetensors and config parsers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/fetch-data.sh   # tokenizer tests read GPT-2, SOTU, Moby-Dick and the tokenizer.json files (hf)
(cd build && ctest --output-on-failure -j"$(nproc)")
bash scripts/test-asan.sh
bash scripts/fuzz.sh "${DIFFTX_FUZZ_SECONDS:-20}"
