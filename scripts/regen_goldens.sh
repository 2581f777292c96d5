#!/usr/bin/env bash
# Regenerates the golden files: IR dumps and tier trees of examples/models/*.py and the tier
# trees of the KernelBench models listed in tests/golden/kernelbench.txt (exact dimensions):
# exports each model with `kdecomp export` and writes `kdecomp inspect --ir` / `--partitions`.
#
#   scripts/regen_goldens.sh [BUILD_DIR]    (default: build; the kdecomp binary is BUILD_DIR/kdecomp)
#
# Review the resulting `git diff tests/golden` before committing: the golden files are the
# reviewed expectation of the golden test (ctest -L golden).
set -eu
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
[[ "$build" = /* ]] || build="$root/$build"
kdecomp="$build/kdecomp"
if [[ ! -x "$kdecomp" ]]; then
  echo "error: $kdecomp not found; build first (cmake -S . -B build -G Ninja && ninja -C build)" >&2
  exit 2
fi
exec "$root/tests/golden/check_goldens.sh" --update "$kdecomp" "$root"
