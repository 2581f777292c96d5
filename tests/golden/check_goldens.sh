#!/usr/bin/env bash
# Golden files: the IR dump and the tier tree of the example models (examples/models/*.py), and
# the tier tree of real KernelBench models at their exact dimensions (tests/golden/kernelbench.txt).
#
#   check_goldens.sh KDECOMP SOURCE_DIR            export each model into a temporary directory and
#                                                  diff `kdecomp inspect --ir` / `--partitions`
#                                                  against tests/golden/<name>.ir / .tree
#   check_goldens.sh --update KDECOMP SOURCE_DIR   rewrite the golden files instead
#                                                  (scripts/regen_goldens.sh calls this)
#
# Exit status: 0 all match, 1 a golden differs or is missing, 2 an export or inspect failed.
set -u

update=0
if [[ "${1:-}" == "--update" ]]; then
  update=1
  shift
fi
if [[ $# -ne 2 ]]; then
  echo "usage: $0 [--update] KDECOMP SOURCE_DIR" >&2
  exit 2
fi
kdecomp=$1
src=$2
models_dir="$src/examples/models"
golden_dir="$src/tests/golden"
kernelbench_dir="${KDECOMP_KERNELBENCH_DIR:-$src/../shared/kernelbench/level3}"

work=$(mktemp -d "${TMPDIR:-/tmp}/kdecomp-golden-XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0

fail() {
  echo "FAIL $1" >&2
  [[ $status -eq 0 || $2 -eq 2 ]] && status=$2
}

# compare NAME EXT: the freshly written $work/NAME.EXT against $golden_dir/NAME.EXT
compare() {
  local name=$1 ext=$2 golden="$golden_dir/$1.$2"
  if [[ $update -eq 1 ]]; then
    mkdir -p "$(dirname "$golden")"
    cp "$work/$name.$ext" "$golden"
    echo "wrote $golden"
  elif [[ ! -f "$golden" ]]; then
    fail "$name.$ext: no golden file $golden (run scripts/regen_goldens.sh and review it)" 1
  elif diff -u --label "golden/$name.$ext" --label "actual/$name.$ext" "$golden" "$work/$name.$ext"; then
    echo "ok   $name.$ext"
  else
    fail "$name.$ext differs from $golden (if the change is intended: scripts/regen_goldens.sh)" 1
  fi
}

# golden NAME MODEL.py FLAG EXT...: export MODEL.py and write `inspect FLAG` per (FLAG, EXT) pair
golden() {
  local name=$1 model=$2
  shift 2
  mkdir -p "$(dirname "$work/$name")"
  # The IR names the graph after the export directory: export into <work>/<name>.
  if ! "$kdecomp" export "$model" -o "$work/$name" 2>"$work/$name.export.err"; then
    fail "$name: kdecomp export failed: $(tail -1 "$work/$name.export.err")" 2
    return
  fi
  while [[ $# -gt 0 ]]; do
    local flag=$1 ext=$2
    shift 2
    if ! "$kdecomp" inspect "$work/$name" "$flag" >"$work/$name.$ext" 2>"$work/$name.err" || [[ ! -s "$work/$name.$ext" ]]; then
      fail "$name: kdecomp inspect $flag failed: $(tail -1 "$work/$name.err")" 2
      continue
    fi
    compare "$name" "$ext"
  done
  rm -rf "${work:?}/$name"  # exports of real models are large
}

shopt -s nullglob
models=("$models_dir"/*.py)
if [[ ${#models[@]} -eq 0 ]]; then
  echo "error: no example models in $models_dir (run examples/generate_models.py)" >&2
  exit 2
fi
for model in "${models[@]}"; do
  golden "$(basename "$model" .py)" "$model" --ir ir --partitions tree
done
while read -r name; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  golden "kernelbench/$name" "$kernelbench_dir/$name.py" --partitions tree
done <"$golden_dir/kernelbench.txt"

# A golden without a model is stale.
for golden in "$golden_dir"/*.ir "$golden_dir"/*.tree; do
  name=$(basename "${golden%.*}")
  [[ -f "$models_dir/$name.py" ]] || fail "$name: golden file without an example model ($models_dir/$name.py)" 1
done
for golden in "$golden_dir"/kernelbench/*.tree; do
  name=$(basename "$golden" .tree)
  grep -qx "$name" "$golden_dir/kernelbench.txt" || fail "$name: golden tree not listed in kernelbench.txt" 1
done
exit $status
