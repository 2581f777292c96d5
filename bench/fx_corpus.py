#!/usr/bin/python3
"""The FX path over a corpus, from a finished `kdecomp batch DIR --fx -o FX_OUT`: per model its FX
nodes and capture mode, tiers, verification (the composition against PyTorch's own outputs), and
what `kdecomp diff` (TorchScript tree -> FX tree) finds at the layer and fusion tiers: with --ts
TS_OUT (a TorchScript batch of the same directory) the two batches' trees (and their model times
side by side), else export/model.pt against export/model.fx.json of the same export.

    bench/fx_corpus.py FX_OUT [--ts TS_OUT] [--kdecomp build/kdecomp] [--json OUT.json]

A structural change is a layer or fusion moved, added or removed (matched by structure across
formats); `kernels_differ` and `modified` groups hold the same partitions with other kernels.
Prints a Markdown table and the totals. Exit 0.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from verify_bench import natural_key  # noqa: E402


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def records(out):
    report = read_json(os.path.join(out, "batch_report.json")) or {}
    return {m["name"]: m for m in report.get("models", []) if isinstance(m, dict) and "name" in m}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fx_out")
    ap.add_argument("--ts", help="a TorchScript batch of the same models, for times")
    ap.add_argument("--kdecomp", default=os.path.join(HERE, "..", "build", "kdecomp"))
    ap.add_argument("--json")
    args = ap.parse_args()
    fx = records(args.fx_out)
    ts = records(args.ts) if args.ts else {}
    rows = []
    for name in sorted(fx, key=natural_key):
        m = fx[name]
        row = {"model": name, "status": m.get("status"), "reason": m.get("reason"), "tiers": m.get("tiers"),
               "composition_max_abs_diff": m.get("composition_max_abs_diff"),
               "fx_s": (m.get("times_s") or {}).get("total"),
               "ts_s": ((ts.get(name) or {}).get("times_s") or {}).get("total"), "ts_status": (ts.get(name) or {}).get("status")}
        out_dir = os.path.join(args.fx_out, m["output_dir"]) if m.get("output_dir") else None
        export = os.path.join(out_dir, "export") if out_dir else None
        meta = read_json(os.path.join(export, "meta.json")) if export else None
        fx_meta = (meta or {}).get("fx") or {}
        row["fx_nodes"] = fx_meta.get("nodes")
        row["tracing_mode"] = fx_meta.get("tracing_mode")
        row["fx_reason"] = fx_meta.get("reason")
        ts_dir = os.path.join(args.ts, (ts.get(name) or {}).get("output_dir") or "-") if args.ts else None
        if ts_dir and out_dir and os.path.exists(os.path.join(ts_dir, "decomposition_tree.json")) and \
                os.path.exists(os.path.join(out_dir, "decomposition_tree.json")):
            # The two batches' trees: no import needed.
            sides = [ts_dir, out_dir]
        elif export and os.path.exists(os.path.join(export, "model.fx.json")) and os.path.exists(os.path.join(export, "model.pt")):
            sides = [os.path.join(export, "model.pt"), os.path.join(export, "model.fx.json")]
        else:
            sides = None
        if sides:
            r = subprocess.run([args.kdecomp, "diff", *sides, "--json", "--threads", "1"], capture_output=True, text=True,
                               timeout=1800)
            if r.returncode in (0, 1):
                d = json.loads(r.stdout)
                counts = d["counts"]
                row["diff"] = {t: counts[t] for t in ("layer", "fusion", "kernel")}
                row["structural"] = sum(counts[t][k] for t in ("layer", "fusion") for k in ("moved", "added", "removed"))
                row["structural_changes"] = [f'{c["tier"]} {c["change"]} {(c.get("b") or c.get("a") or {}).get("name", "")}'
                                             for c in d["changes"] if c["tier"] in ("layer", "fusion")
                                             and c["change"] in ("moved", "added", "removed")][:4]
            else:
                row["diff_error"] = r.stderr.strip()[-300:]
        rows.append(row)
        print(f"[fx_corpus] {name}: {row['status']}, structural {row.get('structural')}", file=sys.stderr, flush=True)

    def fmt(v, spec="{:.1f}"):
        return "-" if v is None else spec.format(v)

    print("| model | FX nodes | capture | L/F/K | verify | composition max abs diff | layer/fusion: unchanged + kernels_differ + modified | structural changes | FX s | TorchScript s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["tiers"] or {}
        lfk = f'{t.get("layer")}/{t.get("fusion")}/{t.get("kernel")}' if t else "-"
        d = r.get("diff")
        same = "-" if not d else " / ".join(
            str(d[tier]["unchanged"] + d[tier].get("kernels_differ", 0) + d[tier]["modified"]) for tier in ("layer", "fusion"))
        status = r["status"] + ("" if r["status"] == "passed" else f' ({(r.get("reason") or r.get("fx_reason") or "")[:90]})')
        structural = "-" if r.get("structural") is None else str(r["structural"]) + (
            ": " + "; ".join(r["structural_changes"]) if r.get("structural_changes") else "")
        print(f'| {r["model"]} | {fmt(r["fx_nodes"], "{}")} | {r["tracing_mode"] or "-"} | {lfk} | {status} | '
              f'{fmt(r["composition_max_abs_diff"], "{:.1e}")} | {same} | {structural} | {fmt(r["fx_s"])} | {fmt(r["ts_s"])} |')
    passed = [r for r in rows if r["status"] == "passed"]
    clean = [r for r in rows if r.get("structural") == 0]
    print(f"\n{len(rows)} models: {len(passed)} passed through FX; {len(clean)} without a structural change at the "
          f"layer and fusion tiers against their TorchScript tree; worst composition max abs diff "
          f"{max((r['composition_max_abs_diff'] or 0) for r in passed) if passed else '-'}")
    both = [r for r in rows if r["fx_s"] and r["ts_s"]]
    if both:
        print(f"sum of model times: FX {sum(r['fx_s'] for r in both):.1f} s, TorchScript {sum(r['ts_s'] for r in both):.1f} s "
              f"({len(both)} models in both)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
