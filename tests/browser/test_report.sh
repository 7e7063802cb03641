#!/usr/bin/env bash
# Headless-browser test of difftx attention's report.html (Debian's chromium, installed by
# scripts/install-deps.sh). Writes a report for a differential model beside its baseline, loads
# it from file:// and checks that
#   - the page draws its first map (body data-drawn="1", coloured pixels, a pixel checksum),
#   - no script error happened (data-errors="0") and nothing at all reached the console,
#   - a hover (simulated by the page's #hover=i,j link) reads out query, key and value,
#   - the page asks for nothing from outside (no src=, href=, url( or @import),
# and takes a screenshot (kept in SHOT_DIR when given) to look at.
# Usage: test_report.sh DIFFTX_BINARY SOURCE_DIR [SHOT_DIR]. A missing chromium is a failure.
set -euo pipefail
difftx=$1
src=$2
shots=${3:-}
fail() { echo "FAIL: $*" >&2; exit 1; }

browser=$(command -v chromium || true)
[[ -n "$browser" ]] || fail "chromium is not installed; run: bash scripts/install-deps.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
golden="$src/tests/golden"
"$difftx" attention --model "$golden/diff_interleaved_affine" --compare "$golden/llama_baseline" \
  --tokens 1,5,9,3,7,2,30,11,4,8,6,12 --span 3:6 --activations --out "$work/out" >/dev/null
page="$work/out/report.html"
[[ -s "$page" ]] || fail "no report.html"
if grep -Eqi '(src|href)=|url\(|@import' "$page"; then fail "report.html refers to outside resources"; fi

run_browser() {
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d -p "$work")" --enable-logging=stderr --v=0 \
    --virtual-time-budget=5000 "$@"
}

run_browser --dump-dom "file://$page#hover=9,4" >"$work/dom.html" 2>"$work/browser.log" ||
  fail "chromium --dump-dom failed: $(tail -3 "$work/browser.log")"
body=$(grep -o '<body[^>]*>' "$work/dom.html" || true)
echo "body: $body"
[[ "$body" == *'data-drawn="1"'* ]] || fail "the map was not drawn"
[[ "$body" == *'data-errors="0"'* ]] || fail "script errors on the page"
coloured=$(sed -n 's/.*data-coloured="\([0-9]*\)".*/\1/p' <<<"$body")
[[ -n "$coloured" && "$coloured" -gt 1000 ]] || fail "the canvas is (nearly) blank: $coloured coloured pixels"
[[ "$body" =~ data-checksum=\"[0-9]+\" ]] || fail "no pixel checksum"
if grep -q 'CONSOLE' "$work/browser.log"; then
  grep 'CONSOLE' "$work/browser.log" >&2
  fail "console messages while loading the page"
fi
grep -q 'query 9 ' "$work/dom.html" || fail "hover readout missing (query token)"
grep -Eq 'key +4 ' "$work/dom.html" || fail "hover readout missing (key token)"
grep -q 'value 0' "$work/dom.html" || fail "hover readout missing (value)"
panels=$(grep -o 'class="panel"' "$work/dom.html" | wc -l)
[[ "$panels" -eq 2 ]] || fail "expected 2 panels side by side, found $panels"

shot="${shots:-$work}/report_screenshot.png"
[[ -z "$shots" ]] || mkdir -p "$shots"
run_browser --screenshot="$shot" --window-size=1200,900 "file://$page#hover=9,4" \
  >/dev/null 2>"$work/shot.log" || fail "chromium --screenshot failed"
[[ $(stat -c %s "$shot") -gt 20000 ]] || fail "screenshot $shot is too small to show the page"
echo "screenshot: $shot"
echo "PASS: report.html loads, draws and reads out hovers in chromium"
