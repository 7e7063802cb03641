#!/usr/bin/env bash
# The library, the program and every CTest test built with clang's AddressSanitizer and
# UndefinedBehaviorSanitizer into build-asan/, then the whole CTest suite run under them.
# Any sanitizer report fails its test (UBSan does not recover; ASan aborts on the first error).
#
#   scripts/test-asan.sh            (called by scripts/test.sh after the release build's tests)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang++ >/dev/null || { echo "test-asan.sh: clang++ not found (bash scripts/install-deps.sh)" >&2; exit 2; }
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -O1 -g: readable stacks and a build a third faster than -O2, the suite still fast enough.
# OpenMP comes from clang's libomp (libomp-14-dev); oneDNN's own GNU OpenMP calls resolve to it.
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDIFFTX_BUILD_PYTHON=OFF \
  -DDIFFTX_BUILD_BENCH=OFF "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g $SAN" \
  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" >/dev/null
cmake --build build-asan -j"$(nproc)"
# Sanitizer settings, each for a reason:
#  - abort_on_error=0, exitcode: a report is a failing exit status, not a core dump.
#  - detect_leaks=1: leaks are findings too (LeakSanitizer).
#  - print_stacktrace: UBSan reports with the stack that led there.
# Tests that run the difftx program see the same variables, so the program is checked too.
export ASAN_OPTIONS="abort_on_error=0:exitcode=86:detect_leaks=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
# One suppression, for fontconfig's caches behind cairo's text (explained in the file).
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
# Not under the sanitizers (yet): the mpirun tests (OpenMPI's runtime reports leaks and
# slows start-up past the tests' timeouts) and the HTTP soak (its memory and timing bounds
# assume a release build). Both run in the release build's suite.
(cd build-asan && ctest --output-on-failure -j"$(nproc)" --timeout 1500 -E '^MpiTrain\.|^serve_http$')
