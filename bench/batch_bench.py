#!/usr/bin/python3
"""Whole-corpus benchmark: `kdecomp batch DIR --jobs 2` against the plain forwards, same run.

  1. kdecomp batch DIR -o OUT --jobs J --keep-references none   (wall time, peak memory, disk)
  2. for each model the batch exported: kdecomp_forward_bench OUT/<level>/<model>/export/model.pt
     in a fresh process with LibTorch's default of one intra-op thread (Debian's torch): the
     plain forward's time and peak RSS.
Prints the per-model table, the sums and the ratio wall / sum(forward) with its goal (issue 6:
at most 6x with --jobs 2), and writes them as JSON with --json.

  /usr/bin/python3 bench/batch_bench.py [--build build] [--jobs 2] [--out DIR] [--json FILE] DIR

Exit status: 0 when the batch verified every model, 1 otherwise, 2 on bad usage.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL = 6.0


def forward(binary, model_pt, timeout):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([binary, model_pt], capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-300:])
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--kdecomp", help="the kdecomp binary (default: BUILD/kdecomp)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", help="batch output (default: a temporary directory, removed)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--skip-batch", action="store_true", help="reuse OUT's batch_report.json; measure forwards only")
    args = ap.parse_args()
    kdecomp = args.kdecomp or os.path.join(args.build, "kdecomp")
    forward_bench = os.path.join(args.build, "kdecomp_forward_bench")
    for b in (kdecomp, forward_bench):
        if not os.access(b, os.X_OK):
            sys.exit(f"batch_bench.py: {b} not built (bash scripts/build.sh)")
    out = args.out or tempfile.mkdtemp(prefix="kdecomp-batch-bench-")
    try:
        if not args.skip_batch:
            t0 = time.monotonic()
            r = subprocess.run([kdecomp, "batch", args.dir, "-o", out, "--jobs", str(args.jobs),
                                "--keep-references", "none", "--progress", "lines", "--force"])
            print(f"batch: exit {r.returncode} in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        with open(os.path.join(out, "batch_report.json")) as f:
            report = json.load(f)
        rows = []
        for m in report["models"]:
            row = {"model": m["name"], "status": m.get("status"), "batch_s": (m.get("times_s") or {}).get("total"),
                   "peak_rss_bytes": m.get("peak_rss_bytes"), "forward_s": None, "forward_rss_bytes": None}
            pt = os.path.join(out, m["output_dir"], "export", "model.pt") if m.get("output_dir") else None
            if pt and os.path.exists(pt):
                try:
                    fwd = forward(forward_bench, pt, args.timeout)
                    row["forward_s"], row["forward_rss_bytes"] = fwd["forward_s"], fwd["peak_rss_bytes"]
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    row["forward_error"] = str(e)
            rows.append(row)
            print(f"  {row['model']:36} {row['status']:8} model {row['batch_s'] or 0:8.1f} s   forward "
                  f"{row['forward_s'] or 0:7.2f} s", file=sys.stderr)
        sum_forward = sum(r["forward_s"] or 0 for r in rows)
        wall = report["wall_s"]
        result = {
            "jobs": args.jobs, "models": len(rows), "passed": report["totals"]["passed"], "wall_s": wall,
            "sum_model_s": report["totals"]["sum_model_seconds"], "sum_forward_s": sum_forward,
            "ratio_wall_to_forward": wall / sum_forward if sum_forward else None, "goal": GOAL,
            "peak_memory_used_bytes": report.get("peak_memory_used_bytes"), "disk_bytes": report.get("disk_bytes"),
            "reference_bytes_written": report["totals"]["reference_bytes"], "rows": rows,
        }
        print("| model | status | batch s | forward s | model/forward | peak RSS | forward RSS |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            ratio = f"{r['batch_s'] / r['forward_s']:.1f}x" if r["batch_s"] and r["forward_s"] else "-"
            gb = lambda b: f"{b / 1e9:.2f} GB" if b else "-"
            print(f"| {r['model']} | {r['status']} | {r['batch_s'] or 0:.1f} | {r['forward_s'] or 0:.2f} | {ratio} | "
                  f"{gb(r['peak_rss_bytes'])} | {gb(r['forward_rss_bytes'])} |")
        ok = result["ratio_wall_to_forward"] is not None and result["ratio_wall_to_forward"] <= GOAL
        print(f"\n{len(rows)} models, {result['passed']} passed; wall {wall:.1f} s with --jobs {args.jobs}; "
              f"sum of plain forwards {sum_forward:.1f} s; ratio {result['ratio_wall_to_forward'] or 0:.2f}x "
              f"(goal <= {GOAL}x: {'met' if ok else 'missed'}); peak memory used "
              f"{(result['peak_memory_used_bytes'] or 0) / 1e9:.1f} GB; disk {(result['disk_bytes'] or 0) / 1e9:.1f} GB")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        return 0 if result["passed"] == len(rows) else 1
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
