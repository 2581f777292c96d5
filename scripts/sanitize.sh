#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer (-DKDECOMP_SANITIZE=ON,
# cmake/sanitizers.cmake) into build-asan and runs them: `ctest -L unit`. Any sanitizer report
# fails its test (UBSan does not recover; LeakSanitizer runs at exit).
#   scripts/sanitize.sh              every unit test (the LibTorch-linked verify and importer units too)
#   scripts/sanitize.sh --no-torch   only kdecomp_unit_tests (no LibTorch: about a minute to build)
# KDECOMP_BUILD_LOCK=FILE serialises the build with other builds of the same tree (flock).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-asan}
targets=(kdecomp_unit_tests kdecomp_verify_tests kdecomp_importer_tests)
ctest_args=(-L unit)
if [[ ${1:-} == --no-torch ]]; then
  targets=(kdecomp_unit_tests)
  ctest_args+=(-E '^unit/(verify|importer)/')  # the LibTorch-linked units' prefixes
fi
# Leaks fail a test; a Catch test that lists its cases at build time runs under the same options.
# A full unwind on malloc: LibTorch has no frame pointers, and fuzz/lsan.supp names a frame inside it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp}  # leaks inside LibTorch
lock=()
[[ -n ${KDECOMP_BUILD_LOCK:-} ]] && lock=(flock "$KDECOMP_BUILD_LOCK")
start=$SECONDS
"${lock[@]}" cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKDECOMP_SANITIZE=ON >/dev/null
"${lock[@]}" ninja -C "$BUILD_DIR" "${targets[@]}"
built=$SECONDS
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ctest --test-dir "$BUILD_DIR" "${ctest_args[@]}" --output-on-failure -j2
echo "sanitize: build $((built - start)) s, tests $((SECONDS - built)) s (ASan + UBSan, $BUILD_DIR)"
