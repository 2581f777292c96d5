#!/usr/bin/env bash
# Build cost of an emitted suite: a clean configure + build of OUTDIR's CMake project (every
# tier's unity executable and the composition test), against compiling one file that only
# includes <ATen/ATen.h>, measured in the same run (issue goal: 11_VGG16's suite under 60 s).
#
#   bench/emit_build_bench.sh OUTDIR [OUTDIR...]     (OUTDIR: a decomposition, e.g. out/level3/11_VGG16)
set -euo pipefail
if (($# == 0)); then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/kdecomp-emit-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }

# The baseline: the same compiler and flags as the emitted project's Release build (-O1).
printf '#include <ATen/ATen.h>\nint main() { return at::ones({2}).sum().item<int>() == 2 ? 0 : 1; }\n' > "$work/aten_only.cpp"
t0=$(now)
c++ -std=c++17 -O1 -DNDEBUG -D_GLIBCXX_USE_CXX11_ABI=1 -isystem /usr/include/torch/csrc/api/include \
  -c "$work/aten_only.cpp" -o "$work/aten_only.o"
baseline=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }')

printf '%-40s %8s %8s %8s %10s\n' model files build_s aten_s ratio
for dir in "$@"; do
  name=$(basename "$dir")
  files=$(find "$dir"/level_*_* -name '*.cpp' | wc -l)
  rm -rf "$work/build"
  t0=$(now)
  cmake -S "$dir" -B "$work/build" -G Ninja > "$work/configure.log" 2>&1
  if ! cmake --build "$work/build" > "$work/build.log" 2>&1; then
    echo "$name: build failed (see below)" >&2
    tail -20 "$work/build.log" >&2
    continue
  fi
  build=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { print a - b }')
  printf '%-40s %8d %8.1f %8.1f %9.1fx\n' "$name" "$files" "$build" "$baseline" "$(awk -v a="$build" -v b="$baseline" 'BEGIN { print a / b }')"
done
