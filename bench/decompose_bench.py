#!/usr/bin/python3
"""Whole-decomposition benchmark (issue 19): `kdecomp decompose MODEL.py` as a user runs it, against
what it costs that user to run the model once, measured in the same run.

For each KernelBench-format model file (MODEL.py, or every *.py of a directory), one at a time:
  1. the baseline: a fresh /usr/bin/python3 process that imports the model file, builds
     Model(*get_init_inputs()), draws get_inputs() (seed 42) and runs one forward under no_grad,
     at the same thread count; its wall time, the forward's own share, and its peak RSS;
  2. `kdecomp decompose MODEL.py -o WORK --summary-json ...` (export through verify): its wall
     time, the stage times the summary reports (the rest is export, Python start-up included),
     its peak RSS (of its largest process: kdecomp itself or the exporter it starts) and the
     reference bytes it wrote.
Short models (baseline under --repeat-below seconds) run --repeat times each, medians reported.
With --before BUILD_DIR[:PYTHON_DIR], an earlier kdecomp (and its exporter) decomposes each model
too, in the same run and alternating with the current one, so before and after share the machine's
state; its columns follow the current ones. Which side runs first alternates from model to model
and from run to run: the second of two decompositions in a row found the memory and page cache
the first one freed, which favours it on models that write gigabytes.
The disk's sequential write speed is measured once with dd (direct I/O, 1 GiB), so the reference
bytes can be read as seconds at the disk's speed.

Prints a table per model, the distribution of decompose / baseline (goal: at most 3x) and of
peak RSS / baseline peak RSS (goal: at most 1.5x), and the worst ten.

  /usr/bin/python3 bench/decompose_bench.py [--build build] [--before DIR[:PYDIR]] [--threads 2] [--json OUT]
      MODEL.py|DIR...

Exit status: 0 when every model decomposed and verified, 1 otherwise, 2 on bad usage.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_bench import fmt, human_bytes, natural_key  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.environ.get("KDECOMP_PYTHON", "/usr/bin/python3")
TIME_GOAL = 3.0
RSS_GOAL = 1.5

# What a user runs to use the model once; prints its phases as JSON on its last line. Where
# Debian's torch 1.13 lacks what a model needs (einops, APIs newer than 1.13), the user's run
# gets the stand-ins kdecomp's exporter uses (python/kdecomp_shims, argv[2]), loaded only then.
BASELINE = r"""
import importlib.util, json, os, sys, time
t0 = time.perf_counter()
import torch
t_torch = time.perf_counter()
shims = sys.argv[2]
try:
    import einops  # noqa: F401
except ImportError:
    sys.path.insert(0, shims)
compat_spec = importlib.util.spec_from_file_location("kdecomp_torch_compat", os.path.join(shims, "torch_compat.py"))
compat = importlib.util.module_from_spec(compat_spec)
sys.modules[compat_spec.name] = compat
compat_spec.loader.exec_module(compat)
compat.install()
spec = importlib.util.spec_from_file_location("model_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
torch.manual_seed(42)
model = module.Model(*module.get_init_inputs()).eval()
torch.manual_seed(42)
inputs = module.get_inputs()
t_ready = time.perf_counter()
with torch.no_grad():
    model(*inputs)
t_done = time.perf_counter()
print(json.dumps({"import_torch_s": t_torch - t0, "build_s": t_ready - t_torch, "forward_s": t_done - t_ready}))
"""


def model_files(paths):
    files = []
    for p in paths:
        if os.path.isfile(p) and p.endswith(".py"):
            files.append(p)
        elif os.path.isdir(p):
            files += sorted((os.path.join(p, e) for e in os.listdir(p) if e.endswith(".py")), key=natural_key)
        else:
            sys.exit(f"decompose_bench.py: {p}: not a model file or a directory of them")
    return files


def timed(cmd, env, timeout):
    """Runs cmd under /usr/bin/time: (completed process, wall seconds, peak RSS bytes or None)."""
    start = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-f", "KDECOMP_MAXRSS_KB %M"] + cmd, capture_output=True, text=True, env=env,
                       timeout=timeout)
    wall = time.perf_counter() - start
    m = re.search(r"KDECOMP_MAXRSS_KB (\d+)", r.stderr)
    return r, wall, int(m.group(1)) * 1024 if m else None


def run_baseline(model, env, timeout):
    r, wall, rss = timed([PYTHON, "-c", BASELINE, model, os.path.join(ROOT, "python", "kdecomp_shims")], env, timeout)
    if r.returncode != 0:
        lines = [l for l in r.stderr.strip().splitlines() if not l.startswith("KDECOMP_MAXRSS_KB")]
        raise RuntimeError("baseline failed: " + (lines or ["?"])[-1][:300])
    phases = json.loads(r.stdout.strip().splitlines()[-1])
    return dict(phases, wall_s=wall, peak_rss_bytes=rss)


def run_decompose(kdecomp, model, work, env, timeout):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    summary_path = os.path.join(work, "summary.json")
    r, wall, rss = timed([kdecomp, "decompose", model, "-o", work, "--summary-json", summary_path], env, timeout)
    run = {"exit_code": r.returncode, "wall_s": wall, "peak_rss_bytes": rss}
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            run["summary"] = json.load(f)
    if r.returncode != 0:
        # kdecomp's own "error:" line, not /usr/bin/time's "Command exited with non-zero status".
        lines = [l for l in r.stderr.strip().splitlines()
                 if not l.startswith(("KDECOMP_MAXRSS_KB", "Command exited", "Command terminated"))]
        errors = [l for l in lines if "error:" in l]
        run["error"] = ((errors or lines) or ["?"])[-1][:300]
    return run


def disk_write_speed(directory):
    """Sequential write speed in bytes/s: 1 GiB with direct I/O (the store writes that way)."""
    path = os.path.join(directory, "dd-probe")
    try:
        start = time.perf_counter()
        subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=8M", "count=128", "oflag=direct", "conv=fsync"],
                       capture_output=True, check=True)
        return (1 << 30) / (time.perf_counter() - start)
    except (subprocess.CalledProcessError, OSError):
        return None
    finally:
        if os.path.exists(path):
            os.remove(path)


def row_of(model, base, dec, disk_bps, before=None):
    s = dec.get("summary", {})
    t = s.get("timings", {})
    staged = sum(t.get(k, 0) for k in ("import_s", "partition_s", "record_s", "verify_s"))
    ref_bytes = s.get("reference", {}).get("bytes")
    # Input files the store linked from the export (written once, by the exporter) are not
    # written again: the store wrote the rest.
    linked = s.get("reference", {}).get("linked_bytes", 0) or 0
    written = ref_bytes - linked if ref_bytes is not None else None
    before_ref = before.get("summary", {}).get("reference", {}) if before else {}
    return {
        "model": os.path.splitext(os.path.basename(model))[0],
        "status": s.get("verification", {}).get("status", "error") if dec["exit_code"] in (0, 1) else "error",
        "baseline_s": base["wall_s"],
        "forward_s": base["forward_s"],
        "decompose_s": dec["wall_s"],
        "ratio": dec["wall_s"] / base["wall_s"] if base["wall_s"] > 0 else None,
        "export_other_s": dec["wall_s"] - staged,
        "import_s": t.get("import_s"),
        "record_s": t.get("record_s"),
        "verify_s": t.get("verify_s"),
        "peak_rss_bytes": dec.get("peak_rss_bytes"),
        "baseline_peak_rss_bytes": base.get("peak_rss_bytes"),
        "rss_ratio": dec["peak_rss_bytes"] / base["peak_rss_bytes"]
        if dec.get("peak_rss_bytes") and base.get("peak_rss_bytes") else None,
        "reference_bytes": ref_bytes,
        "reference_linked_bytes": linked,
        "reference_written_bytes": written,
        "reference_at_disk_s": written / disk_bps if written and disk_bps else None,
        "error": dec.get("error"),
        "before_decompose_s": before["wall_s"] if before else None,
        "before_ratio": before["wall_s"] / base["wall_s"] if before and base["wall_s"] > 0 else None,
        "before_peak_rss_bytes": before.get("peak_rss_bytes") if before else None,
        "before_reference_written_bytes": (before_ref.get("bytes", 0) - (before_ref.get("linked_bytes", 0) or 0)
                                           if before_ref.get("bytes") is not None else None),
        "before_status": (before.get("summary", {}).get("verification", {}).get("status", "error")
                          if before and before["exit_code"] in (0, 1) else ("error" if before else None)),
    }


def print_report(rows, disk_bps, threads, out):
    out.write(f"Threads {threads}; disk sequential write (dd, direct) "
              f"{fmt(disk_bps / 1e9 if disk_bps else None, '.2f')} GB/s.\n\n")
    out.write("| model | status | baseline s | forward s | decompose s | ratio | export+other / import / record / verify s"
              " | peak RSS | baseline RSS | RSS ratio | references written (+ linked) | written at disk speed s |\n")
    out.write("|" + "---|" * 12 + "\n")
    for r in rows:
        out.write(f"| {r['model']} | {r['status']} | {fmt(r['baseline_s'], '.2f')} | {fmt(r['forward_s'], '.2f')} | "
                  f"{fmt(r['decompose_s'], '.2f')} | {fmt(r['ratio'], '.2f')}x | {fmt(r['export_other_s'], '.1f')} / "
                  f"{fmt(r['import_s'], '.1f')} / {fmt(r['record_s'], '.1f')} / {fmt(r['verify_s'], '.1f')} | "
                  f"{human_bytes(r['peak_rss_bytes'])} | {human_bytes(r['baseline_peak_rss_bytes'])} | "
                  f"{fmt(r['rss_ratio'], '.2f')}x | {human_bytes(r.get('reference_written_bytes'))}"
                  f"{' (+ ' + human_bytes(r['reference_linked_bytes']) + ')' if r.get('reference_linked_bytes') else ''} | "
                  f"{fmt(r['reference_at_disk_s'], '.1f')} |\n")
    if any(r.get("before_ratio") is not None for r in rows):
        out.write("\nBefore (the --before kdecomp, same run):\n\n| model | status | decompose s | ratio | peak RSS |"
                  " references written | after / before |\n|---|---|---|---|---|---|---|\n")
        for r in rows:
            if r.get("before_ratio") is None:
                continue
            speedup = r["before_decompose_s"] / r["decompose_s"] if r.get("decompose_s") else None
            out.write(f"| {r['model']} | {r['before_status']} | {fmt(r['before_decompose_s'], '.2f')} | "
                      f"{fmt(r['before_ratio'], '.2f')}x | {human_bytes(r['before_peak_rss_bytes'])} | "
                      f"{human_bytes(r.get('before_reference_written_bytes'))} | "
                      f"{fmt(1 / speedup if speedup else None, '.2f')} |\n")
        before = [r["before_ratio"] for r in rows if r.get("before_ratio") is not None]
        out.write(f"\nbefore: decompose / baseline median {statistics.median(before):.2f}x, max {max(before):.2f}x; "
                  f"within {TIME_GOAL:.0f}x: {sum(x <= TIME_GOAL for x in before)}/{len(before)}.\n")
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None and r["status"] != "error"]
    if ratios:
        q = statistics.quantiles(ratios, n=10, method="inclusive") if len(ratios) > 1 else [ratios[0]] * 9
        out.write(f"\ndecompose / baseline: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x, "
                  f"p90 {q[8]:.2f}x, max {max(ratios):.2f}x; within {TIME_GOAL:.0f}x: "
                  f"{sum(x <= TIME_GOAL for x in ratios)}/{len(ratios)}.\n")
    rss = [r["rss_ratio"] for r in rows if r["rss_ratio"] is not None]
    if rss:
        out.write(f"peak RSS / baseline peak RSS: max {max(rss):.2f}x; within {RSS_GOAL}x: "
                  f"{sum(x <= RSS_GOAL for x in rss)}/{len(rss)}.\n")
    worst = sorted((r for r in rows if r["ratio"] is not None), key=lambda r: -r["ratio"])[:10]
    if worst:
        out.write("Worst ten: " + ", ".join(f"{r['model']} {r['ratio']:.2f}x" for r in worst) + ".\n")
    for r in rows:
        if r["error"]:
            out.write(f"- {r['model']}: {r['error']}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model files, or directories of them")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="build directory holding kdecomp")
    ap.add_argument("--before", help="BUILD_DIR[:PYTHON_DIR]: an earlier kdecomp (and exporter) run beside it")
    ap.add_argument("--work", help="where decompositions are written (default: a temporary directory)")
    ap.add_argument("--json", help="write the rows here (rewritten after every model)")
    ap.add_argument("--threads", default="2", help="OMP_NUM_THREADS for both sides (default 2)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side for short models (default 3)")
    ap.add_argument("--repeat-below", type=float, default=10.0,
                    help="baselines shorter than this many seconds are repeated (default 10)")
    args = ap.parse_args()

    kdecomp = os.path.join(args.build, "kdecomp")
    if not os.access(kdecomp, os.X_OK):
        sys.exit(f"decompose_bench.py: no {kdecomp} (build the project first)")
    env = dict(os.environ, OMP_NUM_THREADS=args.threads)
    before_kdecomp, before_env = None, None
    if args.before:
        before_build, _, before_python = args.before.partition(":")
        before_kdecomp = os.path.join(before_build, "kdecomp")
        if not os.access(before_kdecomp, os.X_OK):
            sys.exit(f"decompose_bench.py: no {before_kdecomp}")
        before_env = dict(env, KDECOMP_PYTHON_DIR=before_python) if before_python else env
    work = args.work or tempfile.mkdtemp(prefix="kdecomp-decompose-bench-")
    os.makedirs(work, exist_ok=True)
    disk_bps = disk_write_speed(work)
    rows = []
    for index, model in enumerate(model_files(args.models)):
        name = os.path.splitext(os.path.basename(model))[0]
        print(f"[decompose_bench] {name}", file=sys.stderr, flush=True)
        out = os.path.join(work, "out")
        try:
            def both_sides(turn):
                """The current kdecomp and the --before one, in an order that alternates with `turn`."""
                if before_kdecomp and turn % 2 == 1:
                    earlier = run_decompose(before_kdecomp, model, out, before_env, args.timeout)
                    return run_decompose(kdecomp, model, out, env, args.timeout), earlier
                current = run_decompose(kdecomp, model, out, env, args.timeout)
                earlier = run_decompose(before_kdecomp, model, out, before_env, args.timeout) if before_kdecomp else None
                return current, earlier

            base = run_baseline(model, env, args.timeout)
            dec, before = both_sides(index)
            if base["wall_s"] < args.repeat_below and args.repeat > 1 and dec["exit_code"] == 0:
                # Fresh processes each time, alternating, medians of each side.
                bases, decs, befores = [base], [dec], [before]
                for rep in range(1, args.repeat):
                    bases.append(run_baseline(model, env, args.timeout))
                    dec, before = both_sides(index + rep)
                    decs.append(dec)
                    befores.append(before)
                base = sorted(bases, key=lambda b: b["wall_s"])[len(bases) // 2]
                dec = sorted(decs, key=lambda d: d["wall_s"])[len(decs) // 2]
                if before_kdecomp:
                    before = sorted(befores, key=lambda d: d["wall_s"])[len(befores) // 2]
            row = row_of(model, base, dec, disk_bps, before)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            row = {"model": name, "status": "error", "error": str(e)}
            for key in ("baseline_s", "forward_s", "decompose_s", "ratio", "export_other_s", "import_s", "record_s",
                        "verify_s", "peak_rss_bytes", "baseline_peak_rss_bytes", "rss_ratio", "reference_bytes",
                        "reference_linked_bytes", "reference_written_bytes", "before_reference_written_bytes",
                        "reference_at_disk_s", "before_decompose_s", "before_ratio", "before_peak_rss_bytes",
                        "before_status"):
                row.setdefault(key, None)
        shutil.rmtree(out, ignore_errors=True)
        rows.append(row)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"threads": args.threads, "disk_write_bytes_per_s": disk_bps, "rows": rows}, f, indent=1)
        print(f"[decompose_bench] {name}: {row['status']}, decompose/baseline {fmt(row['ratio'], '.2f')}x",
              file=sys.stderr, flush=True)
    print_report(rows, disk_bps, args.threads, sys.stdout)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if rows and all(r["status"] == "passed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
