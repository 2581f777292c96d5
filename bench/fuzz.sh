#!/usr/bin/env bash
# Fuzzes every reader of untrusted bytes with libFuzzer (targets in fuzz/, built with clang,
# ASan + UBSan, in build-fuzz) for a fixed time each and prints executions, coverage and any crash.
#   bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   default 60 s, every target
#   bench/fuzz.sh --smoke                            CI: the no-LibTorch targets, a fixed number of
#                                                    inputs each (ctest -L fuzz in build-fuzz)
# Corpora grow in build-fuzz/fuzz-corpus/<target> across runs; a crash leaves its input in
# build-fuzz/fuzz-findings/<target>/ (rerun: build-fuzz/fuzz/<target> FILE). Exit 1 on a crash.
# KDECOMP_BUILD_LOCK=FILE serialises the build with other builds of the same tree (flock).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-fuzz}
PYTHON=${KDECOMP_PYTHON:-/usr/bin/python3}
lock=()
[[ -n ${KDECOMP_BUILD_LOCK:-} ]] && lock=(flock "$KDECOMP_BUILD_LOCK")
no_torch=(tree_diff output_layout batch_report)
with_torch=(reference_file reference_manifest onnx_import)

configure() {
  "${lock[@]}" env CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKDECOMP_FUZZ=ON -DKDECOMP_BUILD_TESTS=OFF >/dev/null
}

if [[ ${1:-} == --smoke ]]; then
  start=$SECONDS
  configure
  "${lock[@]}" ninja -C "$BUILD_DIR" fuzz_quick
  built=$SECONDS
  ctest --test-dir "$BUILD_DIR" -L fuzz --output-on-failure
  echo "fuzz smoke: build $((built - start)) s, runs $((SECONDS - built)) s"
  exit 0
fi

seconds=60
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
((${#targets[@]})) || targets=("${no_torch[@]}" "${with_torch[@]}")

start=$SECONDS
configure
"${lock[@]}" ninja -C "$BUILD_DIR" kdecomp_fuzz_seeds "${targets[@]/#/fuzz_}"
echo "fuzz: build $((SECONDS - start)) s"

# Seeds: written by the project's own writers (and the exporter for ONNX), fresh each run.
seeds=$BUILD_DIR/fuzz-seeds
rm -rf "$seeds"
"$BUILD_DIR/fuzz/kdecomp_fuzz_seeds" "$seeds"
onnx_export=$BUILD_DIR/fuzz-onnx-export
for target in "${targets[@]}"; do
  case $target in
    reference_file | reference_manifest)
      KDECOMP_FUZZ_WRITE_SEEDS=$seeds/$target "$BUILD_DIR/fuzz/fuzz_$target" >/dev/null 2>&1 ;;
    onnx_import)
      if [[ ! -f $onnx_export/model.onnx ]]; then
        "$PYTHON" python/kdecomp_export.py examples/models/conv_bn_relu.py -o "$onnx_export" --onnx >/dev/null
      fi
      mkdir -p "$seeds/onnx_import"
      cp "$onnx_export/model.onnx" "$seeds/onnx_import/conv_bn_relu.onnx" ;;
  esac
done

summary=()
crashed=0
for target in "${targets[@]}"; do
  dir=$BUILD_DIR/fuzz-run/$target
  corpus=$BUILD_DIR/fuzz-corpus/$target
  findings=$BUILD_DIR/fuzz-findings/$target
  rm -rf "$dir"
  mkdir -p "$dir" "$corpus" "$findings"
  args=(-max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=30 -max_len=16384
        -close_fd_mask=1 -print_final_stats=1 -artifact_prefix="$findings/")
  asan_options=
  case $target in
    tree_diff | output_layout | batch_report | reference_manifest) args+=(-dict=fuzz/json.dict) ;;
  esac
  case $target in
    # LibTorch has no frame pointers: only a full unwind finds the frame fuzz/lsan.supp names.
    reference_file | onnx_import) asan_options=fast_unwind_on_malloc=0 ;;
  esac
  echo "fuzz: $target for $seconds s"
  rc=0
  TMPDIR=$dir KDECOMP_FUZZ_ONNX_EXPORT=$onnx_export OMP_NUM_THREADS=1 LSAN_OPTIONS=suppressions=$PWD/fuzz/lsan.supp \
    ASAN_OPTIONS=$asan_options \
    "$BUILD_DIR/fuzz/fuzz_$target" "${args[@]}" "$corpus" "$seeds/$target" >"$dir/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  per_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
  result=ok
  if ((rc != 0)); then
    crashed=1
    artifact=$(grep -o "Test unit written to .*" "$dir/log" | tail -1 | sed 's/Test unit written to //')
    cause=$(grep -m1 -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|terminate called|finding:" "$dir/log" |
      sed -E 's/^==[0-9]+==//' | cut -c1-100)
    result="CRASH ($cause) -> ${artifact:-$dir/log}"
    tail -60 "$dir/log"
  fi
  summary+=("$(printf '%-20s %10s %8s %6s  %s' "$target" "${execs:-?}" "${per_s:-?}" "${cov:-?}" "$result")")
done

echo
printf '%-20s %10s %8s %6s  %s\n' target executions exec/s cov result
printf '%s\n' "${summary[@]}"
echo "($seconds s per target; logs in $BUILD_DIR/fuzz-run/)"
exit $crashed
