#!/usr/bin/env bash
# Builds and runs every test: unit, golden and end-to-end on real KernelBench models at exact dims.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
bash scripts/build.sh
# Two cores: one model at a time, two intra-op threads each.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
