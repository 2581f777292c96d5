#!/usr/bin/env bash
# Runs kdecomp_import_bench over the model.pt files of export directories.
#
#   bench/import_bench.sh [--bin PATH] [BENCH OPTIONS] [DIR...]
#
# Each DIR is an export directory (DIR/model.pt) or a directory of them (DIR/*/model.pt, e.g.
# build/corpus after scripts/corpus.py); default build/corpus. Other options (--runs,
# --import-runs, --threads, --goal) go to the benchmark. The binary defaults to
# $KDECOMP_IMPORT_BENCH, else build/kdecomp_import_bench from the repository root.
# OMP_NUM_THREADS defaults to 2. Models run one at a time, in natural order.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${KDECOMP_IMPORT_BENCH:-$root/build/kdecomp_import_bench}"
opts=()
dirs=()
while (($#)); do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --runs|--import-runs|--threads|--goal) opts+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "import_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) dirs+=("$1"); shift ;;
  esac
done
((${#dirs[@]})) || dirs=("$root/build/corpus")

if [[ ! -x "$bin" ]]; then
  echo "import_bench.sh: no benchmark binary at $bin (build the kdecomp_import_bench target, or pass --bin)" >&2
  exit 2
fi

models=()
for d in "${dirs[@]}"; do
  if [[ -f "$d" ]]; then
    models+=("$d")
  elif [[ -f "$d/model.pt" ]]; then
    models+=("$d/model.pt")
  elif [[ -d "$d" ]]; then
    while IFS= read -r f; do models+=("$f"); done < <(find "$d" -mindepth 2 -maxdepth 2 -name model.pt | sort -V)
  else
    echo "import_bench.sh: no such file or directory: $d" >&2
    exit 2
  fi
done
if ((${#models[@]} == 0)); then
  echo "import_bench.sh: no model.pt under ${dirs[*]} (run scripts/corpus.py first)" >&2
  exit 2
fi

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec "$bin" "${opts[@]}" "${models[@]}"
