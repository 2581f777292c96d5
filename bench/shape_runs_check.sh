#!/usr/bin/env bash
# The import's shape runs on the meta device against the same runs on the exact inputs: each
# model exported once, partitioned both ways (KDECOMP_EXACT_SHAPE_RUNS=1 forces the exact runs);
# the trees and analyses must be byte-identical but for their timestamp line. Says per model:
# "identical (meta)", "identical (exact: the meta device stopped at ...)", or DIFFERENT / ERROR.
# Exit 1 if any model differs or fails.
# usage: bench/shape_runs_check.sh [--work DIR] MODEL.py|EXPORT_DIR|DIR_OF_MODELS...
set -euo pipefail
cd "$(dirname "$0")/.."
KDECOMP=$(realpath "${KDECOMP:-build/kdecomp}")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
work=""
if [ "${1:-}" = "--work" ]; then work=$2; shift 2; fi
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
models=()
for arg in "$@"; do
  if [ -f "$arg/model.pt" ] || [ -f "$arg" ]; then
    models+=("$arg")
  elif [ -d "$arg" ]; then
    while IFS= read -r f; do models+=("$f"); done < <(ls "$arg"/*.py | sort -V)
  else
    echo "shape_runs_check.sh: $arg: not a model file, an export or a directory of models" >&2
    exit 2
  fi
done
status=0
for model in "${models[@]}"; do
  name=$(basename "${model%.py}")
  export_dir=$model
  if [[ "$model" == *.py ]]; then
    export_dir=$work/$name/export
    if [ ! -f "$export_dir/model.pt" ] &&
       ! "$KDECOMP" export "$model" -o "$export_dir" >/dev/null 2>"$work/$name.export.err"; then
      echo "$name ERROR (export): $(tail -1 "$work/$name.export.err")"
      status=1
      continue
    fi
  fi
  rm -rf "$work/$name/meta" "$work/$name/exact"
  if ! "$KDECOMP" partition "$export_dir" -o "$work/$name/meta" >/dev/null 2>"$work/$name.meta.err" ||
     ! KDECOMP_EXACT_SHAPE_RUNS=1 "$KDECOMP" partition "$export_dir" -o "$work/$name/exact" >/dev/null \
       2>"$work/$name.exact.err"; then
    echo "$name ERROR (partition): $(tail -1 "$work/$name.meta.err" "$work/$name.exact.err" | grep -v '^==>' | tr '\n' ' ')"
    status=1
    continue
  fi
  if diff -r -I '"timestamp"' -I '^Generated' "$work/$name/meta" "$work/$name/exact" >"$work/$name.diff"; then
    note=$(grep -o 'the meta device stopped at: .*' "$work/$name.meta.err" | head -1 | cut -c1-160 || true)
    if [ -n "$note" ]; then echo "$name identical (exact: $note)"; else echo "$name identical (meta)"; fi
  else
    echo "$name DIFFERENT: $(head -3 "$work/$name.diff" | tr '\n' ' ' | cut -c1-300)"
    status=1
  fi
done
exit $status
