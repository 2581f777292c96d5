#!/usr/bin/python3
"""Builds the batch index.html (or just its data) from existing decomposition outputs.

For developing batch/src/index_template.html and for a fast ctest of the page that needs no
batch run: each DIR is one `kdecomp decompose` output (OUT/level3/MODEL, holding
decomposition_tree.json and, when verified, verification/test_results.json). It writes the same
{"report": <batch_report.json>, "trees": {MODEL: <node>}} document the C++ embeds
(batch/src/html_report.cpp), with null wherever a decomposition output does not say (times, RSS,
exit codes), and substitutes it for the template's placeholder the same way.

  make_fixture.py --template batch/src/index_template.html -o out/index.html DIR... \
      [--data-out data.json] [--synthetic-failures]

--synthetic-failures appends two models without trees (an export error and a timeout, most
fields null) so the page's handling of failures and missing data is exercised too.
Stdlib only; run with /usr/bin/python3.
"""
import argparse
import collections
import json
import os
import sys

PLACEHOLDER = "/*KDECOMP_DATA*/null"


def shape_str(dtype, shape):
    dims = ",".join(str(d) for d in shape) if isinstance(shape, list) else str(shape)
    return "%s[%s]" % (dtype or "?", dims)


def shape_list(node, which):
    shapes = node.get(which + "_shapes") or {}
    dtypes = node.get(which + "_dtypes") or {}
    return [shape_str(dtypes.get(name), shape) for name, shape in shapes.items()]


def op_kind(node):
    """aten::conv2d for a kernel node: its "op" field, else guessed from the node id (conv1/conv2d#0)."""
    op = node.get("op")
    if isinstance(op, str) and op:
        return op if "::" in op else "aten::" + op
    base = node.get("id", "").rsplit("/", 1)[-1].split("#", 1)[0]
    return "aten::" + base if base else None


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def load_model(out_dir):
    with open(os.path.join(out_dir, "decomposition_tree.json")) as f:
        tree = json.load(f)
    results = None
    results_path = os.path.join(out_dir, "verification", "test_results.json")
    if os.path.exists(results_path):
        with open(results_path) as f:
            results = json.load(f)
    meta = tree.get("metadata", {})
    nodes = tree["nodes"]
    verdicts = {p["id"]: p for p in (results or {}).get("partitions", []) if "id" in p}

    def convert(node_id):
        n = nodes[node_id]
        v = verdicts.get(node_id, {})
        return {
            "id": n.get("id", node_id),
            "level": n.get("level"),
            "name": n.get("name"),
            "module": n.get("module_path"),
            "template": n.get("template"),
            "in": shape_list(n, "input"),
            "out": shape_list(n, "output"),
            "flops": n.get("flops"),
            "status": v.get("status"),
            "max_abs_diff": v.get("max_abs_diff"),
            "children": [convert(c) for c in n.get("children", [])],
        }

    root_id = "root" if "root" in nodes else next(i for i, n in nodes.items() if n.get("level") == "model")
    root = convert(root_id)
    name = meta.get("model_name") or os.path.basename(os.path.normpath(out_dir))

    op_kinds = collections.Counter()
    for n in nodes.values():
        if n.get("level") == "kernel" and op_kind(n):
            op_kinds[op_kind(n)] += n.get("instance_count", 1) or 1

    diffs = [p["max_abs_diff"] for p in verdicts.values() if isinstance(p.get("max_abs_diff"), (int, float))]
    status = (results or {}).get("status") or meta.get("verification_status")
    checks = None
    if results:
        checks = {k: results.get(k) for k in ("passed", "failed", "skipped", "flagged")}
    export_method = {"scripted": "script", "traced": "trace"}.get(meta.get("input_format"), meta.get("input_format"))
    ref_dir = os.path.join(out_dir, "reference")
    record = {
        "name": name,
        "source": meta.get("source_file"),
        "source_sha256": None,
        # Partition-only outputs say "not_run": kept as is, an unknown status the page must show.
        "status": status,
        "failure_stage": "verify" if status == "failed" else None,
        "reason": "a check failed (verification/test_results.json)" if status == "failed" else None,
        "exit_code": None,
        "signal": None,
        "export_method": export_method,
        "nodes": len(nodes),
        "tiers": meta.get("by_level"),
        "unique_kernels": meta.get("unique_kernels"),
        "flops": nodes[root_id].get("flops"),
        "params": nodes[root_id].get("params"),
        "worst_max_abs_diff": max(diffs) if diffs else None,
        "checks": checks,
        "composition_max_abs_diff": ((results or {}).get("composition") or {}).get("max_abs_diff"),
        "reference_bytes": dir_bytes(ref_dir) if os.path.isdir(ref_dir) else None,
        "references_kept": os.path.isdir(ref_dir),
        "times_s": {"verify": (results or {}).get("verify_time_s"), "total": None} if results else None,
        "peak_rss_bytes": None,
        "attempts": 1,
        "reused": False,
        "output_dir": os.path.abspath(out_dir),
        "log": None,
        "op_kinds": dict(sorted(op_kinds.items())),
    }
    return record, root


def synthetic_failures():
    base = {"source_sha256": None, "exit_code": 1, "signal": None, "export_method": None, "nodes": None,
            "tiers": None, "unique_kernels": None, "flops": None, "params": None, "worst_max_abs_diff": None,
            "checks": None, "composition_max_abs_diff": None, "reference_bytes": None, "references_kept": False,
            "peak_rss_bytes": None, "attempts": 1, "reused": False, "log": None, "op_kinds": None}
    err = dict(base, name="zz_synthetic_export_error", source="/nonexistent/zz_synthetic_export_error.py",
               status="error", failure_stage="export",
               reason="RuntimeError: could not script or trace the model </script><!-- (synthetic)\nsecond line",
               times_s={"export": 1.5, "total": 1.5}, output_dir=None)
    tmo = dict(base, name="zz_synthetic_timeout", source="/nonexistent/zz_synthetic_timeout.py",
               status="timeout", failure_stage="record", reason="timed out after 3600 s", exit_code=None,
               signal="SIGKILL", tiers={"model": 1, "layer": None, "fusion": None, "kernel": None},
               times_s=None, output_dir=None)
    # A record with most keys missing altogether, not just null.
    bare = {"name": "zz_synthetic_bare", "status": "killed"}
    return [err, tmo, bare]


def build_data(dirs, with_failures):
    models, trees = [], {}
    for d in dirs:
        record, root = load_model(d)
        models.append(record)
        trees[record["name"]] = root
    if with_failures:
        models.extend(synthetic_failures())
    op_kinds = collections.defaultdict(list)
    for m in models:
        for k in (m.get("op_kinds") or {}):
            op_kinds[k].append(m["name"])
    statuses = collections.Counter(m.get("status") for m in models)
    report = {
        "kdecomp_batch_version": 1,
        "input_dir": os.path.commonpath([os.path.abspath(d) for d in dirs]) if dirs else None,
        "output_dir": None,
        "started": None,
        "wall_s": None,
        "options": {"jobs": 1, "timeout_s": 3600, "keep_references": "failed", "shard": "1/1",
                    "threads_per_job": 1, "memory_budget_bytes": None},
        "totals": dict({"models": len(models), "reused": 0,
                        "reference_bytes": sum(m.get("reference_bytes") or 0 for m in models),
                        "kept_reference_bytes": None, "sum_model_seconds": None},
                       **{s: statuses.get(s, 0) for s in ("passed", "failed", "error", "crashed", "timeout", "killed")}),
        "models": models,
        "op_kinds": dict(sorted(op_kinds.items())),
    }
    return {"report": report, "trees": trees}


def embed(template_text, data):
    # Same contract as renderIndexHtml: exactly one placeholder; "</" escaped so the data cannot
    # close the <script> element (and "<!--" so it cannot open an HTML comment state).
    if template_text.count(PLACEHOLDER) != 1:
        raise SystemExit("template must contain the placeholder %s exactly once" % PLACEHOLDER)
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "\\u003c!--")
    return template_text.replace(PLACEHOLDER, text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", metavar="DIR", help="a decomposition output (holds decomposition_tree.json)")
    ap.add_argument("--template", required=True, help="batch/src/index_template.html")
    ap.add_argument("-o", "--out", help="index.html to write")
    ap.add_argument("--data-out", help="also write the data JSON here")
    ap.add_argument("--synthetic-failures", action="store_true", help="append failed models without trees")
    args = ap.parse_args()
    for d in args.dirs:
        if not os.path.exists(os.path.join(d, "decomposition_tree.json")):
            print("make_fixture.py: %s has no decomposition_tree.json" % d, file=sys.stderr)
            return 2
    data = build_data(args.dirs, args.synthetic_failures)
    if args.data_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.data_out)), exist_ok=True)
        with open(args.data_out, "w") as f:
            json.dump(data, f, indent=1)
    if args.out:
        with open(args.template) as f:
            page = embed(f.read(), data)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(page)
        print("wrote %s (%d models, %d trees, %d bytes)" % (args.out, len(data["report"]["models"]),
                                                           len(data["trees"]), len(page)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
