#!/usr/bin/python3
"""Record + verify benchmark: `kdecomp decompose` against one plain forward, in the same run.

For each export directory (DIR/model.pt, or DIR/*/model.pt), one model at a time:
  1. kdecomp_forward_bench DIR/model.pt   one plain forward in a fresh process: time, peak RSS
  2. kdecomp decompose DIR -o WORK --summary-json ...   under /usr/bin/time: peak RSS
(models whose forward takes under a second: 3 runs of each, the median run reported)
and prints, per model, the partitions per tier, checks passed, worst difference, reference
bytes, record s, verify s, peak RSS, the forward's time and peak RSS, and the two ratios with
their goals (issue 4): (record + verify) / forward <= 6x, peak RSS / forward peak RSS <= 1.5x.
References are deleted after each model unless --keep-references (they reach gigabytes).

  /usr/bin/python3 bench/verify_bench.py [--build build] [--work DIR] [--json OUT] [--threads 2] DIR...

Exit status: 0 when every model verified, 1 when any failed, 2 on bad usage.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME_GOAL = 6.0
RSS_GOAL = 1.5


def natural_key(path):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", os.path.basename(path))]


def export_dirs(args):
    dirs = []
    for d in args:
        if os.path.isfile(os.path.join(d, "model.pt")):
            dirs.append(d)
        elif os.path.isdir(d):
            dirs += sorted((os.path.join(d, e) for e in os.listdir(d) if os.path.isfile(os.path.join(d, e, "model.pt"))),
                           key=natural_key)
        else:
            sys.exit(f"verify_bench.py: {d}: not an export directory")
    return dirs


def run_forward(binary, model_dir, env, timeout):
    r = subprocess.run([binary, os.path.join(model_dir, "model.pt")], capture_output=True, text=True, env=env,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"forward bench failed: {r.stderr.strip()[-300:]}")
    return json.loads(r.stdout)


def run_decompose(kdecomp, model_dir, work, env, timeout):
    summary = os.path.join(work, "summary.json")
    if os.path.exists(summary):
        os.remove(summary)  # never report the previous model's summary for a run that wrote none
    cmd = ["/usr/bin/time", "-f", "KDECOMP_MAXRSS_KB %M", kdecomp, "decompose", model_dir, "-o", work,
           "--summary-json", summary]
    start = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.time() - start
    m = re.search(r"KDECOMP_MAXRSS_KB (\d+)", r.stderr)
    record = {"exit_code": r.returncode, "wall_s": wall, "peak_rss_bytes": int(m.group(1)) * 1024 if m else None}
    if os.path.exists(summary):
        with open(summary) as f:
            record["summary"] = json.load(f)
    else:
        record["error"] = r.stderr.strip()[-500:]
    return record


def drop_references(dec):
    out_dir = dec.get("summary", {}).get("output_dir")
    if out_dir:
        shutil.rmtree(os.path.join(out_dir, "reference"), ignore_errors=True)


def median_run(runs, key):
    return sorted(runs, key=key)[len(runs) // 2]


def human_bytes(n):
    if n is None:
        return "-"
    for unit in ["B", "KB", "MB", "GB"]:
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def row_of(name, fwd, dec):
    s = dec.get("summary", {})
    t = s.get("timings", {})
    v = s.get("verification", {})
    totals = v.get("totals", {})
    tiers = s.get("tiers", {})
    passed = sum(x.get("passed", 0) for x in totals.values())
    total = sum(x.get("total", 0) for x in totals.values())
    failed = sum(x.get("failed", 0) for x in totals.values())
    skipped = sum(x.get("skipped", 0) for x in totals.values())
    flagged = sum(x.get("flagged", 0) for x in totals.values())
    rv = t.get("record_s", 0) + t.get("verify_s", 0)
    ratio = rv / fwd["forward_s"] if fwd and fwd["forward_s"] > 0 and "verify_s" in t else None
    rss_ratio = dec["peak_rss_bytes"] / fwd["peak_rss_bytes"] if fwd and dec.get("peak_rss_bytes") else None
    return {
        "model": name,
        "status": v.get("status", "error"),
        "tiers": f"{tiers.get('layer', '-')}/{tiers.get('fusion', '-')}/{tiers.get('kernel', '-')}",
        "passed": f"{passed}/{total}" + (f" ({skipped} skip)" if skipped else "") + (f" ({flagged} flag)" if flagged else ""),
        "failed": failed,
        "worst_diff": v.get("worst_max_abs_diff"),
        "composition_diff": v.get("composition", {}).get("max_abs_diff"),
        "reference_bytes": s.get("reference", {}).get("bytes"),
        "record_s": t.get("record_s"),
        "verify_s": t.get("verify_s"),
        "peak_rss_bytes": dec.get("peak_rss_bytes"),
        "forward_s": fwd["forward_s"] if fwd else None,
        "forward_peak_rss_bytes": fwd["peak_rss_bytes"] if fwd else None,
        "time_ratio": ratio,
        "rss_ratio": rss_ratio,
    }


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def print_table(rows, out):
    out.write("| model | status | layers/fusions/kernels | checks passed | worst diff | composition diff | references |"
              " record s | verify s | peak RSS | forward s | forward RSS | (rec+ver)/fwd | RSS/fwd |\n")
    out.write("|" + "---|" * 14 + "\n")
    for r in rows:
        out.write(f"| {r['model']} | {r['status']} | {r['tiers']} | {r['passed']} | {fmt(r['worst_diff'], '.1e')} | "
                  f"{fmt(r['composition_diff'], '.1e')} | {human_bytes(r['reference_bytes'])} | {fmt(r['record_s'], '.1f')} | "
                  f"{fmt(r['verify_s'], '.1f')} | {human_bytes(r['peak_rss_bytes'])} | {fmt(r['forward_s'], '.2f')} | "
                  f"{human_bytes(r['forward_peak_rss_bytes'])} | {fmt(r['time_ratio'], '.1f')}x | {fmt(r['rss_ratio'], '.2f')}x |\n")
    ok = [r for r in rows if r["status"] == "passed"]
    timed = [r for r in rows if r["time_ratio"] is not None]
    out.write(f"\n{len(ok)}/{len(rows)} models verified at every tier.\n")
    if timed:
        met_t = sum(r["time_ratio"] <= TIME_GOAL for r in timed)
        met_m = sum(r["rss_ratio"] is not None and r["rss_ratio"] <= RSS_GOAL for r in timed)
        geo = 1.0
        for r in timed:
            geo *= r["time_ratio"]
        geo **= 1.0 / len(timed)
        out.write(f"(record + verify) / forward: geomean {geo:.1f}x, {met_t}/{len(timed)} within {TIME_GOAL:.0f}x; "
                  f"peak RSS within {RSS_GOAL}x of the forward's: {met_m}/{len(timed)}.\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", help="export directories, or directories of them")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory (kdecomp, kdecomp_forward_bench)")
    ap.add_argument("--work", help="where decompositions are written (default: a temporary directory)")
    ap.add_argument("--json", help="write the rows here (rewritten after every model)")
    ap.add_argument("--threads", default="2", help="OMP_NUM_THREADS for both runs (default 2)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--keep-references", action="store_true", help="keep each model's reference store")
    ap.add_argument("--repeat", type=int, default=3,
                    help="models whose forward takes under --repeat-below seconds run this many times, both the "
                         "forward and decompose, and report the median run of each (default 3)")
    ap.add_argument("--repeat-below", type=float, default=1.0, help="see --repeat (default 1.0 s)")
    args = ap.parse_args()

    kdecomp = os.path.join(args.build, "kdecomp")
    forward = os.path.join(args.build, "kdecomp_forward_bench")
    for b in (kdecomp, forward):
        if not os.access(b, os.X_OK):
            sys.exit(f"verify_bench.py: no {b} (build the project first)")
    env = dict(os.environ, OMP_NUM_THREADS=args.threads)
    work = args.work or tempfile.mkdtemp(prefix="kdecomp-verify-bench-")
    rows = []
    for d in export_dirs(args.dirs):
        name = os.path.basename(os.path.normpath(d))
        print(f"[verify_bench] {name}", file=sys.stderr, flush=True)
        fwd = None
        try:
            fwd = run_forward(forward, d, env, args.timeout)
            dec = run_decompose(kdecomp, d, work, env, args.timeout)
            if fwd["forward_s"] < args.repeat_below and args.repeat > 1 and "summary" in dec:
                # A forward of tens of milliseconds varies by 2x from run to run: medians of
                # both sides, each run in a fresh process as before.
                fwds = [fwd] + [run_forward(forward, d, env, args.timeout) for _ in range(args.repeat - 1)]
                # Each run writes its store into a work directory of its own, as the first did:
                # deleting thousands of files just before creating as many costs a journal-less
                # ext4 (this machine's) up to 0.6 s of inode search (34_VanillaRNNHidden).
                decs = [dec] + [run_decompose(kdecomp, d, os.path.join(work, f"repeat{i}"), env, args.timeout)
                                for i in range(1, args.repeat)]
                fwd = median_run(fwds, lambda f: f["forward_s"])
                if all("summary" in x for x in decs):
                    dec = median_run(decs, lambda x: x["summary"]["timings"].get("record_s", 0) +
                                     x["summary"]["timings"].get("verify_s", 0))
                else:
                    dec = next(x for x in decs if "summary" not in x)  # report the failure
                for x in decs:
                    if x is not dec:
                        drop_references(x)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            dec = {"error": str(e), "peak_rss_bytes": None}
        row = row_of(name, fwd, dec)
        if "error" in dec:
            row["error"] = dec["error"]
        rows.append(row)
        if not args.keep_references:
            drop_references(dec)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
        print(f"[verify_bench] {name}: {row['status']}, (record+verify)/forward {fmt(row['time_ratio'], '.1f')}x, "
              f"RSS {fmt(row['rss_ratio'], '.2f')}x", file=sys.stderr, flush=True)
    print_table(rows, sys.stdout)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["status"] == "passed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
