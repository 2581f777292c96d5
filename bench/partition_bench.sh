#!/usr/bin/env bash
# Partition time as a ratio to our import time (load + transform, the forward excluded), per
# model, measured in the same process run. Goal (issue 3): under 5% for the largest model,
# 30_SwinTransformerV2. A benchmark: it reports, it never fails for speed.
# usage: bench/partition_bench.sh [EXPORT_DIR...]   (default: build/corpus/*)
set -euo pipefail
cd "$(dirname "$0")/.."
KDECOMP=${KDECOMP:-build/kdecomp}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(build/corpus/*/)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf "%-36s %7s %10s %10s %8s\n" model nodes import_ms part_ms ratio
for d in "${dirs[@]}"; do
  [ -f "$d/model.pt" ] || continue
  name=$(basename "$d")
  if ! "$KDECOMP" partition "$d" -o "$work/trees" --summary-json "$work/$name.json" >/dev/null 2>"$work/err"; then
    echo "$name FAILED: $(tail -1 "$work/err")"
    continue
  fi
  /usr/bin/python3 - "$work/$name.json" "$name" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
imp = j["import"]["load_s"] + j["import"]["transform_s"]
part = j["import"]["partition_s"]
print(f"{sys.argv[2]:<36} {j['totals']['nodes']:>7} {1000*imp:>10.1f} {1000*part:>10.2f} {100*part/imp:>7.2f}%")
PY
done
