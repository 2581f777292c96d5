#!/usr/bin/env bash
# Build time of two source trees, in the same run: a clean build (configure + every target,
# ccache off) and the rebuild after touching one file, for each tree in turn.
#
#   bench/build_time.sh [-j N] BEFORE_TREE AFTER_TREE [TOUCHED_FILE ...]
#
# Each tree is built in a build directory of its own (TREE/build-time, removed first). The
# touched files are paths relative to the tree (default: one LibTorch-free and one LibTorch
# translation unit that both trees have). Prints one table row per measurement.
set -euo pipefail
jobs=2
if [[ ${1:-} == -j ]]; then
  jobs=$2
  shift 2
fi
if (($# < 2)); then
  echo "usage: $0 [-j N] BEFORE_TREE AFTER_TREE [TOUCHED_FILE ...]" >&2
  exit 2
fi
trees=("$1" "$2")
shift 2
touched=("$@")
((${#touched[@]})) || touched=(graph/src/analysis.cpp verify/src/verifier.cpp)
export CCACHE_DISABLE=1

seconds() { local start=$SECONDS; "$@" > /dev/null; echo $((SECONDS - start)); }

echo "| tree | commit | clean build s | $(printf '%s | ' "${touched[@]/#/touch }")"
for tree in "${trees[@]}"; do
  build="$tree/build-time"
  rm -rf "$build"
  commit=$(git -C "$tree" rev-parse --short HEAD)
  clean=$(seconds bash -c "cmake -S '$tree' -B '$build' -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C '$build' -j $jobs")
  row="| $tree | $commit | $clean |"
  for file in "${touched[@]}"; do
    if [[ -e "$tree/$file" ]]; then
      touch "$tree/$file"
      row+=" $(seconds ninja -C "$build" -j "$jobs") |"
    else
      row+=" (no such file) |"
    fi
  done
  echo "$row"
done
