#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted files: safetensors, config.json, train_state metadata,
# metrics.jsonl, token caches, sharded-checkpoint indexes (model.safetensors.index.json) and
# Hugging Face tokenizer.json, and the body of difftx serve's POST /v1/completions.
#
#   scripts/fuzz.sh [SECONDS]     (default 20 seconds per target)
#
# Builds fuzz/fuzz_*.cpp with libFuzzer + AddressSanitizer + UndefinedBehaviorSanitizer into
# build-fuzz/, then runs each target for SECONDS on a scratch copy of fuzz/corpus/<target>
# (the repository's seed corpus is never modified). A crash, sanitizer report, leak, timeout,
# out-of-memory or an exception other than difftx::Error is a finding: its input is saved in
# build-fuzz/findings/<target>/ and the script exits 1. One summary line per target.
set -euo pipefail

SECS="${1:-20}"
[[ "$SECS" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/build-fuzz"
CXX="${FUZZ_CXX:-clang++}"
CXXFLAGS=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
          -fno-omit-frame-pointer -I"$ROOT/src")
COMMON=(src/core/error.cpp src/core/files.cpp src/core/cleanup.cpp)
declare -A SOURCES=(
  [safetensors]="fuzz/fuzz_safetensors.cpp src/io/safetensors.cpp"
  [config]="fuzz/fuzz_config.cpp src/model/config.cpp src/model/ext_config.cpp"
  [train_state]="fuzz/fuzz_train_state.cpp src/train/train_state.cpp src/train/run_settings.cpp"
  [metrics]="fuzz/fuzz_metrics.cpp src/train/metrics.cpp"
  [token_cache]="fuzz/fuzz_token_cache.cpp src/train/token_cache.cpp"
  [shard_index]="fuzz/fuzz_shard_index.cpp src/io/hf_shard_index.cpp"
  [completion_request]="fuzz/fuzz_completion_request.cpp src/serve/completion_request.cpp"
  [hf_tokenizer]="fuzz/fuzz_hf_tokenizer.cpp src/io/tokenizer_hf_pipeline.cpp src/io/tokenizer_hf_bpe.cpp src/io/tokenizer_hf_text.cpp src/io/tokenizer_hf_decoder.cpp src/io/tokenizer_hf_regex.cpp src/io/utf8_stream.cpp"
)
declare -A LIBS=([hf_tokenizer]="-lonig")  # libraries a target needs beyond the C++ runtime
TARGETS=(safetensors config train_state metrics token_cache shard_index hf_tokenizer completion_request)
HEADERS=(src/core src/io src/model src/kernels/matmul.h src/train src/serve src/infer)  # what the sources above include

command -v "$CXX" >/dev/null || { echo "fuzz.sh: $CXX not found (install clang)" >&2; exit 2; }
mkdir -p "$OUT/logs"

# Build (only when a source or header is newer than the binary), the targets in parallel.
pids=()
for t in "${TARGETS[@]}"; do
  bin="$OUT/fuzz_$t"
  read -r -a srcs <<< "${SOURCES[$t]}"
  if [[ -x "$bin" ]] && [[ -z "$(cd "$ROOT" && find "${srcs[@]}" "${COMMON[@]}" "${HEADERS[@]}" \
                                      -newer "$bin" -print -quit)" ]]; then
    continue
  fi
  read -r -a libs <<< "${LIBS[$t]:-}"
  (cd "$ROOT" && "$CXX" "${CXXFLAGS[@]}" "${srcs[@]}" "${COMMON[@]}" "${libs[@]}" -o "$bin" \
     > "$OUT/logs/build_$t.log" 2>&1) &
  pids+=("$!:$t")
done
for p in "${pids[@]}"; do
  if ! wait "${p%%:*}"; then
    echo "fuzz.sh: building fuzz_${p#*:} failed:" >&2
    cat "$OUT/logs/build_${p#*:}.log" >&2
    exit 2
  fi
done

status=0
scratch=""
trap 'rm -rf "$scratch"' EXIT
for t in "${TARGETS[@]}"; do
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/difftx-fuzz-$t.XXXXXX")"
  cp -r "$ROOT/fuzz/corpus/$t/." "$scratch/"
  seeds=$(find "$scratch" -type f | wc -l)
  findings="$OUT/findings/$t"
  mkdir -p "$findings"
  log="$OUT/logs/fuzz_$t.log"
  rc=0
  "$OUT/fuzz_$t" "$scratch" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -max_len=4096 -dict="$ROOT/fuzz/$t.dict" -print_final_stats=1 \
      -artifact_prefix="$findings/" > "$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  corpus=$(find "$scratch" -type f | wc -l)
  rm -rf "$scratch"
  if [[ $rc -eq 0 ]]; then
    echo "fuzz_$t: ok: ${runs:-?} runs in ${SECS}s, ${cov:-cov ?}, corpus $seeds -> $corpus inputs"
  else
    status=1
    artifact=$(grep -Eo "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //' || true)
    reason=$(grep -Em1 'ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|libFuzzer)|runtime error:|terminate called|uncaught exception' "$log" || true)
    echo "fuzz_$t: FINDING (exit $rc) after ${runs:-?} runs: ${reason:-see log}; input: ${artifact:-?}; log: $log"
  fi
done
exit $status
