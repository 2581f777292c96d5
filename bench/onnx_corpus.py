#!/usr/bin/python3
"""The ONNX path over a corpus: export every model with --onnx (or reuse exports), decompose each
model.onnx (import, partition, record, verify against the PyTorch outputs), partition each model.pt,
and print one table comparing the tiers of the two paths, with the ONNX composition's max abs diff
and what `kdecomp diff` (TorchScript tree -> ONNX tree) finds at the layer and fusion tiers.

    bench/onnx_corpus.py ../shared/kernelbench/level3 --work /tmp/onnx-corpus [--kdecomp build/kdecomp]
        [--only 4_LeNet5,9_ResNet18] [--no-verify] [--pt-summaries DIR --pt-trees DIR]

Models run one at a time (the largest need most of the machine's memory). Writes
WORK/onnx_corpus.json and WORK/onnx_corpus.md.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout=3600):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r, time.time() - t0


def last_error(text):
    lines = [l for l in text.strip().splitlines() if "error" in l.lower()]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "")[:200]


def tiers(summary):
    t = summary["tiers"]
    return f'{t["layer"]}/{t["fusion"]}/{t["kernel"]}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus")
    parser.add_argument("--work", required=True)
    parser.add_argument("--kdecomp", default=os.path.join(HERE, "..", "build", "kdecomp"))
    parser.add_argument("--only", default="")
    parser.add_argument("--no-verify", action="store_true", help="import and partition only")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--pt-summaries", default="",
                        help="TorchScript tiers from an earlier run's summaries (OUT/batch/summaries) instead of partitioning model.pt")
    parser.add_argument("--pt-trees", default="",
                        help="TorchScript trees (DIR/<model>.json) to diff against, instead of the model.pt partitions")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    models = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(args.corpus, "*.py")))
    models = [m for m in models if not only or m in only]
    rows = []
    for name in models:
        export = os.path.join(args.work, "exports", name)
        row = {"model": name}
        if not os.path.exists(os.path.join(export, "meta.json")):
            r, s = run([args.kdecomp, "export", os.path.join(args.corpus, name + ".py"), "-o", export, "--onnx"])
            row["export_s"] = round(s, 1)
            if r.returncode != 0:
                row.update(status="export_error", reason=last_error(r.stderr))
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
        with open(os.path.join(export, "meta.json")) as f:
            onnx_meta = json.load(f).get("onnx", {})
        if onnx_meta.get("status") != "ok":
            row.update(status="onnx_export_failed", reason=onnx_meta.get("reason", "no ONNX export"))
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        row["external_data"] = onnx_meta.get("external_data", False)
        # TorchScript tiers (partition only).
        if args.pt_summaries:
            pt_summary = os.path.join(args.pt_summaries, name + ".json")
            row["pt_tiers"] = tiers(json.load(open(pt_summary))) if os.path.exists(pt_summary) else "missing"
        else:
            pt_summary = os.path.join(args.work, "pt", name + ".json")
            r, s = run([args.kdecomp, "partition", os.path.join(export, "model.pt"), "-o", os.path.join(args.work, "pt"),
                        "--summary-json", pt_summary, "--threads", args.threads])
            row["pt_tiers"] = tiers(json.load(open(pt_summary))) if r.returncode == 0 else "error"
        # ONNX: the whole job, or import + partition.
        onnx_summary = os.path.join(args.work, "onnx", name + ".json")
        command = "partition" if args.no_verify else "decompose"
        r, s = run([args.kdecomp, command, os.path.join(export, "model.onnx"), "-o", os.path.join(args.work, "onnx"),
                    "--summary-json", onnx_summary, "--threads", args.threads])
        row["onnx_s"] = round(s, 1)
        row["rc"] = r.returncode
        if not os.path.exists(onnx_summary):
            row.update(status="onnx_error", reason=last_error(r.stderr))
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        summary = json.load(open(onnx_summary))
        row["onnx_tiers"] = tiers(summary)
        v = summary.get("verification", {})
        row["status"] = v.get("status", "partitioned") if not args.no_verify else "partitioned"
        if "composition" in v:
            row["composition_max_abs_diff"] = v["composition"].get("max_abs_diff")
            row["checks"] = f'{sum(t["passed"] for t in v["totals"].values())}/{sum(t["total"] for t in v["totals"].values())}'
        if v.get("reason"):
            row["reason"] = v["reason"]
        if r.returncode not in (0, 1):
            row["reason"] = last_error(r.stderr)
        # Cross-format diff: structural changes (modified/moved/added/removed) per tier.
        pt_tree = (os.path.join(args.pt_trees, name + ".json") if args.pt_trees else
                   os.path.join(args.work, "pt", "level3", name, "decomposition_tree.json"))
        onnx_dir = summary.get("output_dir") or os.path.join(args.work, "onnx", "level3", name)
        onnx_tree = os.path.join(onnx_dir, "decomposition_tree.json")
        if os.path.exists(pt_tree) and os.path.exists(onnx_tree):
            r, _ = run([args.kdecomp, "diff", pt_tree, onnx_tree, "--json"])
            if r.returncode in (0, 1):
                counts = json.loads(r.stdout)["counts"]
                structural = lambda t: sum(counts[t][k] for k in ("modified", "moved", "added", "removed"))
                row["diff_structural_lf"] = f'{structural("layer")}/{structural("fusion")}'
                row["diff_kernels_differ_lf"] = f'{counts["layer"]["kernels_differ"]}/{counts["fusion"]["kernels_differ"]}'
        rows.append(row)
        print(json.dumps(row), flush=True)
        # References can be tens of GB: keep only the results.
        if "output_dir" in summary:
            subprocess.run(["rm", "-rf", os.path.join(summary["output_dir"], "reference")])

    with open(os.path.join(args.work, "onnx_corpus.json"), "w") as f:
        json.dump(rows, f, indent=2)
    lines = ["| model | status | TorchScript L/F/K | ONNX L/F/K | same L/F | diff: structural L/F | diff: kernels_differ L/F | "
             "composition max abs diff | checks | ONNX s | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        same = ""
        if "pt_tiers" in row and "onnx_tiers" in row:
            same = "yes" if row["pt_tiers"].split("/")[:2] == row["onnx_tiers"].split("/")[:2] else "no"
        diff = row.get("composition_max_abs_diff")
        lines.append(f'| {row["model"]} | {row.get("status", "")} | {row.get("pt_tiers", "")} | {row.get("onnx_tiers", "")} | '
                     f'{same} | {row.get("diff_structural_lf", "")} | {row.get("diff_kernels_differ_lf", "")} | {"" if diff is None else f"{diff:.1e}"} | {row.get("checks", "")} | {row.get("onnx_s", "")} | '
                     f'{row.get("reason", "")} |')
    with open(os.path.join(args.work, "onnx_corpus.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
