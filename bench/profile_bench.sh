#!/usr/bin/env bash
# `kdecomp profile` (issue 20): do the partitions' times add up to the model's own time? Per
# model, decomposes (exact dims), profiles, and prints the model's time alone, the sum of its
# partitions (both medians of the same alternating runs), their ratio and the slowest kernel.
# The margin is kProfileSumMargin (verify.h, 10%); a model outside it is marked OUTSIDE. A
# benchmark: it reports; the exit status is 1 only when a model could not be profiled.
# usage: bench/profile_bench.sh [MODEL.py...]
#   (default: five level 3 models; KDECOMP=build/kdecomp, RUNS=3, OMP_NUM_THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
KDECOMP=${KDECOMP:-build/kdecomp}
RUNS=${RUNS:-3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
L3=../shared/kernelbench/level3
models=("$@")
[ ${#models[@]} -gt 0 ] || models=("$L3/1_MLP.py" "$L3/4_LeNet5.py" "$L3/9_ResNet18.py" "$L3/11_VGG16.py"
  "$L3/28_VisionTransformer.py")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
printf "%-34s %10s %10s %7s  %s\n" model model_s sum_s ratio "slowest kernel (share)"
for m in "${models[@]}"; do
  name=$(basename "$m" .py)
  if ! "$KDECOMP" decompose "$m" -o "$work/out" >/dev/null 2>"$work/err"; then
    echo "$name: decompose FAILED: $(tail -1 "$work/err")"
    status=1
    continue
  fi
  dir=$(ls -d "$work"/out/*/"$name")
  if ! "$KDECOMP" profile "$dir" --runs "$RUNS" >/dev/null 2>"$work/err"; then
    echo "$name: profile FAILED: $(tail -1 "$work/err")"
    status=1
    continue
  fi
  /usr/bin/python3 - "$dir/verification/profile.json" "$name" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ratio = j["sum_over_model"]
kernel = next(p for p in j["partitions"] if p["tier"] == "kernel")
mark = "" if abs(ratio - 1) <= j["margin"] else "  OUTSIDE"
print(f"{sys.argv[2]:<34} {j['model_seconds']:>10.4f} {j['partitions_sum_seconds']:>10.4f} {ratio:>6.3f}x  "
      f"{kernel['id']} ({100 * kernel['share']:.1f}%){mark}")
PY
  rm -rf "$work/out"
done
exit $status
