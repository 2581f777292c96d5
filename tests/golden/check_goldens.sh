#!/usr/bin/env bash
# Golden IR dumps of the example models (examples/models/*.py).
#
#   check_goldens.sh KDECOMP SOURCE_DIR            re-export every example into a temporary
#                                                  directory and diff `kdecomp inspect --ir`
#                                                  against tests/golden/<name>.ir (unified diff)
#   check_goldens.sh --update KDECOMP SOURCE_DIR   rewrite tests/golden/<name>.ir instead
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

work=$(mktemp -d "${TMPDIR:-/tmp}/kdecomp-golden-XXXXXX")
trap 'rm -rf "$work"' EXIT

shopt -s nullglob
models=("$models_dir"/*.py)
if [[ ${#models[@]} -eq 0 ]]; then
  echo "error: no example models in $models_dir (run examples/generate_models.py)" >&2
  exit 2
fi

status=0
for model in "${models[@]}"; do
  name=$(basename "$model" .py)
  # The IR names the graph after the export directory: export into <work>/<name>.
  if ! "$kdecomp" export "$model" -o "$work/$name" 2>"$work/$name.export.err"; then
    echo "FAIL $name: kdecomp export failed:" >&2
    cat "$work/$name.export.err" >&2
    status=2
    continue
  fi
  if ! "$kdecomp" inspect "$work/$name" --ir >"$work/$name.ir" 2>"$work/$name.inspect.err"; then
    echo "FAIL $name: kdecomp inspect --ir failed:" >&2
    cat "$work/$name.inspect.err" >&2
    status=2
    continue
  fi
  if [[ ! -s "$work/$name.ir" ]]; then
    echo "FAIL $name: kdecomp inspect --ir printed nothing" >&2
    status=2
    continue
  fi
  golden="$golden_dir/$name.ir"
  if [[ $update -eq 1 ]]; then
    cp "$work/$name.ir" "$golden"
    echo "wrote $golden"
    continue
  fi
  if [[ ! -f "$golden" ]]; then
    echo "FAIL $name: no golden file $golden (run scripts/regen_goldens.sh and review it)" >&2
    [[ $status -eq 0 ]] && status=1
    continue
  fi
  if diff -u --label "golden/$name.ir" --label "actual/$name.ir" "$golden" "$work/$name.ir"; then
    echo "ok   $name"
  else
    echo "FAIL $name: IR differs from $golden (if the change is intended: scripts/regen_goldens.sh)" >&2
    [[ $status -eq 0 ]] && status=1
  fi
done

# A golden without a model is stale.
for golden in "$golden_dir"/*.ir; do
  name=$(basename "$golden" .ir)
  if [[ ! -f "$models_dir/$name.py" ]]; then
    echo "FAIL $name: golden file without an example model ($models_dir/$name.py)" >&2
    [[ $status -eq 0 ]] && status=1
  fi
done
exit $status
