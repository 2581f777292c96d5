#!/usr/bin/env bash
# Builds and runs every test: unit, golden and end-to-end on real KernelBench models at exact dims,
# then the libFuzzer smoke run over the readers that need no LibTorch (bench/fuzz.sh --smoke).
#   scripts/test.sh [--large] [CTEST_ARGS...]
#     --large      also the cases on large networks (KDECOMP_TEST_LARGE=1: the diff pairs of VGG,
#                  DenseNet, EfficientNet and ResNet101, the ONNX exports of ResNet18 and of 29, 30, 44)
#     CTEST_ARGS   passed to ctest (e.g. -L unit, -R onnx); with any, the fuzz smoke run is left out
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [[ ${1:-} == --large ]]; then
  export KDECOMP_TEST_LARGE=1
  shift
fi
bash scripts/build.sh
# Two tests at a time with one intra-op thread each: much of a test is single-threaded (Python
# start-up, exports, compiling emitted suites). Tests that need the whole machine say so
# (RUN_SERIAL in tests/CMakeLists.txt). KDECOMP_TEST_JOBS=1 runs them one by one.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${KDECOMP_TEST_JOBS:-2}" "$@"
if (($# == 0)); then
  BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz} bash bench/fuzz.sh --smoke
fi
