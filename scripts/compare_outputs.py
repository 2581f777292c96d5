#!/usr/bin/python3
"""Shows that two kdecomp binaries write the same decomposition: a restructuring must leave the
outputs byte for byte as they were.

    scripts/compare_outputs.py --before OLD_KDECOMP --after NEW_KDECOMP -o WORK MODEL.py [MODEL.py ...]

Each model is decomposed once by each binary (`kdecomp decompose`, exact dimensions, references
kept), into WORK/before and WORK/after. The exporter is the same Python for both; its TorchScript
archive (export/model.pt) is not compared, since its zip differs between two exports. Then every file the two wrote is compared:
  - decomposition trees, analyses, emitted C++ tests, Python twins, CMake lists: byte for byte,
    except the fields that record when or how fast a run was (timestamps, seconds, peak RSS),
    which are removed from JSON and Markdown before comparing;
  - the reference store: each manifest (minus those fields) and every reference file byte for
    byte;
  - test_results.json: statuses and differences, without the timings.
Exit status: 0 identical, 1 a difference (listed), 2 a decompose failed.
"""
import argparse
import filecmp
import json
import os
import re
import subprocess
import sys

# Keys whose values record when or how fast a run was, not what it computed.
VOLATILE_KEY = re.compile(r"(timestamp|seconds|_s$|^s$|time|wall|elapsed|peak|rss|tool_version|^host|threads)",
                          re.IGNORECASE)
# Markdown lines that carry the same.
VOLATILE_LINE = re.compile(r"(timestamp|generated|seconds|\d+(\.\d+)? ?s\b|peak|rss)", re.IGNORECASE)


def scrub(value):
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not VOLATILE_KEY.search(k)}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def normalised(path):
    """The comparable content of a file: bytes, or JSON/Markdown without run-dependent fields."""
    if path.endswith(".json"):
        with open(path) as f:
            try:
                return json.dumps(scrub(json.load(f)), sort_keys=True, indent=1)
            except json.JSONDecodeError:
                pass
    if path.endswith(".md") or path.endswith(".txt") or path.endswith(".log"):
        with open(path, errors="replace") as f:
            return "".join(line for line in f if not VOLATILE_LINE.search(line))
    return None  # compared byte for byte


def files_under(root):
    found = set()
    for directory, _, names in os.walk(root):
        for name in names:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


# Files that are records of one run, not outputs: run summaries, stage files, logs; and the
# TorchScript archive the (Python) exporter writes, whose zip differs from export to export
# (what the binaries compared read from it is compared: the tree, the IR-derived sources).
SKIPPED = re.compile(r"(summary\.json$|(^|/)stage|\.log$|/export/model\.pt$)")


def compare_trees(before, after):
    differences = []
    a, b = files_under(before), files_under(after)
    for rel in sorted(a ^ b):
        if not SKIPPED.search(rel):
            differences.append(f"only in {'before' if rel in a else 'after'}: {rel}")
    compared = 0
    for rel in sorted(a & b):
        if SKIPPED.search(rel):
            continue
        pa, pb = os.path.join(before, rel), os.path.join(after, rel)
        na, nb = normalised(pa), normalised(pb)
        same = (na == nb) if na is not None else filecmp.cmp(pa, pb, shallow=False)
        compared += 1
        if not same:
            differences.append(f"differs: {rel}")
    return compared, differences


def decompose(binary, model, out, threads):
    summary = os.path.join(out, os.path.basename(model) + ".summary.json")
    command = [binary, "decompose", model, "-o", out, "--threads", str(threads), "--summary-json", summary]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.stderr.write(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n")
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the kdecomp binary before the change")
    parser.add_argument("--after", required=True, help="the kdecomp binary after the change")
    parser.add_argument("-o", "--work", required=True, help="a new directory for both outputs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    if os.path.exists(args.work) and os.listdir(args.work):
        parser.error(f"{args.work} is not empty")
    status = 0
    total = 0
    for model in args.models:
        name = os.path.splitext(os.path.basename(model))[0]
        dirs = {}
        for side, binary in (("before", args.before), ("after", args.after)):
            dirs[side] = os.path.join(args.work, side, name)
            os.makedirs(dirs[side], exist_ok=True)
            if not decompose(binary, os.path.abspath(model), dirs[side], args.threads):
                return 2
        compared, differences = compare_trees(dirs["before"], dirs["after"])
        total += compared
        print(f"{name}: {compared} files compared, {'identical' if not differences else f'{len(differences)} differ'}")
        for d in differences:
            print(f"  {d}")
        if differences:
            status = 1
    print(f"{len(args.models)} models, {total} files: {'identical' if status == 0 else 'DIFFERENT'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
