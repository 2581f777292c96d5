#!/usr/bin/env bash
# kdecomp diff benchmark: 15_DenseNet121 -> 16_DenseNet201 from existing trees (goal: under 1 s),
# beside the same command on identical trees (parse + hash only) in the same run.
#
#   bash bench/diff_bench.sh [BUILD_DIR] [KERNELBENCH_DIR]
set -euo pipefail
build=${1:-build}
level3=${2:-$(dirname "$0")/../../shared/kernelbench/level3}
kdecomp="$build/kdecomp"
work=$(mktemp -d "${TMPDIR:-/tmp}/kdecomp-diff-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
for m in 15_DenseNet121 16_DenseNet201; do
  OMP_NUM_THREADS=2 "$kdecomp" partition "$level3/$m.py" -o "$work" 2>/dev/null
done
a="$work/level3/15_DenseNet121/decomposition_tree.json"
b="$work/level3/16_DenseNet201/decomposition_tree.json"
/usr/bin/python3 - "$kdecomp" "$a" "$b" <<'PY'
import subprocess, sys, time
kdecomp, a, b = sys.argv[1:4]
def best(args, runs=5):
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        r = subprocess.run(args, stdout=subprocess.DEVNULL)
        times.append(time.monotonic() - t0)
        if r.returncode not in (0, 1):
            sys.exit(f"diff_bench: {' '.join(args)} failed ({r.returncode})")
    return min(times)
diff_s = best([kdecomp, "diff", a, b, "--json"])
self_s = best([kdecomp, "diff", b, b, "--json"])
print(f"diff 15_DenseNet121 -> 16_DenseNet201 (trees): {diff_s:.3f} s (goal < 1 s: {'met' if diff_s < 1 else 'missed'})")
print(f"diff 16_DenseNet201 -> itself (parse + hash baseline): {self_s:.3f} s; ratio {diff_s / self_s:.2f}x")
PY
