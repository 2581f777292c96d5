#!/usr/bin/python3
"""kdecomp corpus run: export and import every model of a KernelBench corpus, one at a time.

For each model file: `kdecomp export MODEL.py -o OUT/<model>` (timed), then
`kdecomp inspect OUT/<model> --json` (timed), then compare the importer's output shapes with
the shapes the exporter recorded in meta.json, and check the tree's properties with
tests/properties/check_tree_properties.py (coverage, allowed tiers, no single-op fusion, no
layer in a layer, shapes and dtypes on every node, one workload per name: the `props` column).
Prints a Markdown table and a summary, writes the table to OUT/corpus.md and the raw records to
OUT/corpus.json (rewritten after every model, so a long run can be watched and an interrupted
one still leaves its records).

Models run strictly one after another: some need ~17 GB and a minute in one forward.
A model's failure (non-zero exit, timeout, unparsable output, a violated tree property) is
recorded in its row and never stops the run; the exit status is 1 when any model failed, 2 on
bad usage.

Run with Debian's interpreter:  /usr/bin/python3 scripts/corpus.py [CORPUS] [--models 4_LeNet5 1_MLP]

Extending: a stage is a function (record, ctx) -> None that adds fields to the record (see
STAGES); a column is a Column(header, cell) where cell(record) -> str (see COLUMNS and
add_column). The partitioner adds its stage and its layers/fusions/kernels columns there.
"""

import argparse
import fnmatch
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- helpers


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def natural_key(name):
    """'4_LeNet5' sorts before '10_ResNet101'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def first_line(text):
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def human(x, unit=""):
    if x is None:
        return "-"
    units = ["", "K", "M", "G", "T", "P"]
    value, i = float(x), 0
    while abs(value) >= 1000 and i + 1 < len(units):
        value /= 1000
        i += 1
    return (f"{value:.0f}" if i == 0 else f"{value:.1f}{units[i]}") + unit


def count(x):
    return "-" if x is None else str(x)


def gflops(flops):
    return "-" if flops is None else f"{flops / 1e9:.2f}"


def seconds(x):
    return "-" if x is None else f"{x:.2f}"


class StageResult:
    """What one subprocess did: exit code (None on timeout), wall time, output."""

    def __init__(self, rc, wall_s, stdout, stderr, timed_out):
        self.rc, self.wall_s, self.stdout, self.stderr, self.timed_out = rc, wall_s, stdout, stderr, timed_out

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out


def run_timed(argv, timeout, env):
    """Runs argv in its own process group (kdecomp export spawns Python: a timeout must kill
    both), returns a StageResult."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        timed_out = True
    except BaseException:  # Ctrl-C: take the children down with us
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise
    wall = time.perf_counter() - t0
    return StageResult(None if timed_out else proc.returncode, wall, stdout.decode(errors="replace"),
                       stderr.decode(errors="replace"), timed_out)


def failure_text(stage, result, timeout):
    if result.timed_out:
        return f"{stage} timeout ({timeout:g} s)"
    if result.rc is not None and result.rc < 0:
        detail = f"killed by signal {-result.rc}"
        try:
            detail += f" ({signal.Signals(-result.rc).name})"
        except ValueError:
            pass
    else:
        detail = f"exit {result.rc}"
    line = first_line(result.stderr)
    return f"{stage} failed ({detail})" + (f": {line}" if line else "")


# ----------------------------------------------------------------------------- stages


def stage_export(record, ctx):
    out_dir = record["dir"]
    meta_path = os.path.join(out_dir, "meta.json")
    if ctx.args.reuse_exports and os.path.isfile(meta_path) and os.path.isfile(os.path.join(out_dir, "model.pt")):
        try:
            with open(meta_path) as f:
                meta = json.load(f)
            if meta.get("source_sha256") == record["source_sha256"]:
                record["export"] = {"status": "reused", "wall_s": None}
                record["meta"] = meta
                return
        except (OSError, ValueError):
            pass  # unreadable: export again
    result = run_timed([ctx.kdecomp, "export", record["source"], "-o", out_dir], ctx.args.timeout, ctx.env)
    record["export"] = {"status": "ok" if result.ok else "failed", "wall_s": round(result.wall_s, 3), "rc": result.rc,
                        "timed_out": result.timed_out, "stderr_tail": result.stderr[-2000:]}
    if not result.ok:
        record["failure"] = failure_text("export", result, ctx.args.timeout)
        return
    try:
        with open(meta_path) as f:
            record["meta"] = json.load(f)
    except (OSError, ValueError) as exc:
        record["failure"] = f"export wrote no readable meta.json: {exc}"


def stage_inspect(record, ctx):
    """Import + partition in one process (one shape-recording forward); the summary carries the
    analysis totals, import timings and tier counts."""
    summary_path = os.path.join(ctx.args.out, "summaries", record["model"] + ".json")
    os.makedirs(os.path.dirname(summary_path), exist_ok=True)
    argv = [ctx.kdecomp, "partition", record["dir"], "-o", os.path.join(ctx.args.out, "trees"),
            "--summary-json", summary_path]
    result = run_timed(argv, ctx.args.timeout, ctx.env)
    record["inspect"] = {"status": "ok" if result.ok else "failed", "wall_s": round(result.wall_s, 3), "rc": result.rc,
                         "timed_out": result.timed_out, "stderr_tail": result.stderr[-2000:]}
    if not result.ok:
        record["failure"] = failure_text("import/partition", result, ctx.args.timeout)
        return
    try:
        with open(summary_path) as f:
            report = json.load(f)
    except (OSError, ValueError) as exc:
        record["inspect"]["status"] = "failed"
        record["failure"] = f"partition wrote no readable summary: {exc}"
        return
    keep = ("model", "format", "totals", "parameters", "import", "warnings", "tiers", "unique_kernels",
            "source_ops", "covered_ops")
    record["inspect"].update({k: report.get(k) for k in keep})
    record["inspect"]["outputs"] = [{"shape": shape} for shape in report.get("outputs", [])]


def load_property_checker():
    """tests/properties/check_tree_properties.py, imported once (stdlib only; independent of kdecomp)."""
    global _PROPERTY_CHECKER
    if _PROPERTY_CHECKER is None:
        import importlib.util
        path = os.path.join(REPO_ROOT, "tests", "properties", "check_tree_properties.py")
        spec = importlib.util.spec_from_file_location("check_tree_properties", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _PROPERTY_CHECKER = module
    return _PROPERTY_CHECKER


_PROPERTY_CHECKER = None


def stage_props(record, ctx):
    """Checks the partition's decomposition_tree.json. Records the result without setting
    "failure", so the later stages still run; failure_of() reports violated properties."""
    checker = load_property_checker()
    trees_root = os.path.join(ctx.args.out, "trees")
    candidates = []
    if os.path.isdir(trees_root):
        for level in sorted(os.listdir(trees_root)):
            path = os.path.join(trees_root, level, record["model"], checker.TREE_FILE)
            if os.path.isfile(path):
                candidates.append(path)
    if not candidates:
        record["props"] = {"ok": False, "violations": None, "error": f"no {checker.TREE_FILE} under {trees_root}"}
        return
    path = max(candidates, key=os.path.getmtime)  # the one this run just wrote
    t0 = time.perf_counter()
    try:
        result = checker.check_file(path)
    except (OSError, ValueError) as exc:
        record["props"] = {"ok": False, "violations": None, "tree": path, "error": f"unreadable tree: {exc}"}
        return
    record["props"] = {"ok": result.ok, "violations": len(result.violations), "notes": len(result.notes),
                       "tree": path, "wall_s": round(time.perf_counter() - t0, 3),
                       "first_violations": [str(v) for v in result.violations[:20]], "counts": result.counts}


def stage_compare_shapes(record, ctx):
    expected = [o.get("shape") for o in record["meta"].get("outputs", [])]
    actual = [o.get("shape") for o in record["inspect"].get("outputs") or []]
    record["shapes"] = {"ok": expected == actual, "expected": expected, "actual": actual}
    if expected != actual:
        record["failure"] = f"output shapes differ: importer {actual}, exporter {expected}"


# Run in order; a stage runs only while the record has no "failure". Append to extend.
STAGES = [stage_export, stage_inspect, stage_props, stage_compare_shapes]


# ----------------------------------------------------------------------------- table


class Column:
    def __init__(self, header, cell, align="right", total=None):
        """cell(record) -> str; total(records) -> str for the totals row (None: blank)."""
        self.header, self.cell, self.align, self.total = header, cell, align, total


def get(record, *path):
    node = record
    for key in path:
        if not isinstance(node, dict) or node.get(key) is None:
            return None
        node = node[key]
    return node


def import_s(record):
    """The import excluding the shape-recording forward: load + transform (+ reading the
    inputs, where the importer times that separately)."""
    load, transform = get(record, "inspect", "import", "load_s"), get(record, "inspect", "import", "transform_s")
    if load is None or transform is None:
        return None
    return load + transform + (get(record, "inspect", "import", "inputs_s") or 0)


def method_cell(record):
    return get(record, "meta", "method") or "-"


def export_cell(record):
    if get(record, "export", "status") == "reused":
        return "reused"
    return seconds(get(record, "export", "wall_s"))


def shapes_cell(record):
    ok = get(record, "shapes", "ok")
    return "-" if ok is None else ("yes" if ok else "**NO**")


def props_failure(record):
    props = record.get("props")
    if not props or props.get("ok"):
        return None
    if props.get("violations") is None:
        return "properties not checked: " + props.get("error", "?")
    first = (props.get("first_violations") or ["?"])[0]
    return f"{props['violations']} tree property violation{'s' if props['violations'] != 1 else ''} (first: {first})"


def failure_of(record):
    """The model's failure: a failed stage, else violated tree properties, else None."""
    return record.get("failure") or props_failure(record)


def status_cell(record):
    return failure_of(record) or "ok"


def props_cell(record):
    props = record.get("props")
    if props is None:
        return "-"
    if props.get("ok"):
        return "ok"
    return "**?**" if props.get("violations") is None else f"**{props['violations']}**"


def sum_of(fn):
    def total(records):
        values = [fn(r) for r in records if fn(r) is not None]
        return sum(values) if values else None
    return total


COLUMNS = [
    Column("model", lambda r: r["model"], "left", lambda rs: f"**total ({len(rs)})**"),
    Column("method", method_cell, "left"),
    Column("nodes", lambda r: count(get(r, "inspect", "totals", "nodes")),
           total=lambda rs: count(sum_of(lambda r: get(r, "inspect", "totals", "nodes"))(rs))),
    Column("compute ops", lambda r: count(get(r, "inspect", "totals", "compute_ops")),
           total=lambda rs: count(sum_of(lambda r: get(r, "inspect", "totals", "compute_ops"))(rs))),
    Column("params", lambda r: human(get(r, "inspect", "parameters", "count")),
           total=lambda rs: human(sum_of(lambda r: get(r, "inspect", "parameters", "count"))(rs))),
    Column("GFLOPs", lambda r: gflops(get(r, "inspect", "totals", "flops")),
           total=lambda rs: gflops(sum_of(lambda r: get(r, "inspect", "totals", "flops"))(rs))),
    Column("export s", export_cell, total=lambda rs: seconds(sum_of(lambda r: get(r, "export", "wall_s"))(rs))),
    Column("import s", lambda r: seconds(import_s(r)), total=lambda rs: seconds(sum_of(import_s)(rs))),
    Column("forward s", lambda r: seconds(get(r, "inspect", "import", "forward_s")),
           total=lambda rs: seconds(sum_of(lambda r: get(r, "inspect", "import", "forward_s"))(rs))),
    Column("layers", lambda r: count(get(r, "inspect", "tiers", "layer")),
           total=lambda rs: count(sum_of(lambda r: get(r, "inspect", "tiers", "layer"))(rs))),
    Column("fusions", lambda r: count(get(r, "inspect", "tiers", "fusion")),
           total=lambda rs: count(sum_of(lambda r: get(r, "inspect", "tiers", "fusion"))(rs))),
    Column("kernels", lambda r: count(get(r, "inspect", "tiers", "kernel")),
           total=lambda rs: count(sum_of(lambda r: get(r, "inspect", "tiers", "kernel"))(rs))),
    Column("unique kernels", lambda r: count(get(r, "inspect", "unique_kernels")),
           total=lambda rs: count(sum_of(lambda r: get(r, "inspect", "unique_kernels"))(rs))),
    Column("covered/total ops", lambda r: (f"{get(r, 'inspect', 'covered_ops')}/{get(r, 'inspect', 'source_ops')}"
                                           if get(r, "inspect", "source_ops") is not None else "-")),
    Column("partition ms", lambda r: (f"{1000 * get(r, 'inspect', 'import', 'partition_s'):.1f}"
                                      if get(r, "inspect", "import", "partition_s") is not None else "-")),
    Column("shapes ok", shapes_cell, "left"),
    Column("props", props_cell, "left",
           total=lambda rs: f"{sum(1 for r in rs if get(r, 'props', 'ok'))}/{len(rs)} ok"),
    Column("status", status_cell, "left"),
]


def add_column(column, after=None):
    """Inserts `column` after the column headed `after` (default: before "status")."""
    headers = [c.header for c in COLUMNS]
    index = headers.index(after) + 1 if after else headers.index("status")
    COLUMNS.insert(index, column)


def md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_table(records, columns=None):
    columns = columns or COLUMNS
    rows = [[md_escape(c.cell(r)) for c in columns] for r in records]
    if len(records) > 1:
        rows.append([md_escape(c.total(records)) if c.total else "" for c in columns])
    widths = [max([len(c.header)] + [len(row[i]) for row in rows]) for i, c in enumerate(columns)]

    def line(cells):
        out = []
        for cell, width, col in zip(cells, widths, columns):
            # The status column holds long messages: no padding, keeps the file readable.
            if col is columns[-1]:
                out.append(cell)
            else:
                out.append(cell.ljust(width) if col.align == "left" else cell.rjust(width))
        return "| " + " | ".join(out) + " |"

    rule = "|" + "|".join(
        ("-" * (w + 2) if c.align == "left" else "-" * (w + 1) + ":") if c is not columns[-1] else "---"
        for w, c in zip(widths, columns)) + "|"
    return "\n".join([line([c.header for c in columns]), rule] + [line(row) for row in rows])


def summary(records, corpus_size):
    exported = [r for r in records if get(r, "meta", "method")]
    imported = [r for r in records if get(r, "inspect", "status") == "ok"]
    matched = [r for r in records if get(r, "shapes", "ok")]
    scripted = sum(1 for r in exported if r["meta"]["method"] == "script")
    traced = sum(1 for r in exported if r["meta"]["method"] == "trace")
    props_hold = [r for r in records if get(r, "props", "ok")]
    failed = [r for r in records if failure_of(r)]
    total = lambda fn: sum_of(fn)(records) or 0  # noqa: E731
    selected = "" if len(records) == corpus_size else f"{len(records)} of {corpus_size} corpus models selected; "
    text = (f"{selected}{len(exported)}/{len(records)} exported ({scripted} scripted, {traced} traced), "
            f"{len(imported)} imported, {len(matched)} shapes match, {len(props_hold)} tree properties hold, "
            f"{len(failed)} failed; "
            f"totals: {total(lambda r: get(r, 'inspect', 'totals', 'nodes'))} nodes, "
            f"{total(lambda r: get(r, 'inspect', 'totals', 'compute_ops'))} compute ops, "
            f"{human(total(lambda r: get(r, 'inspect', 'parameters', 'count')))} params, "
            f"{total(lambda r: get(r, 'inspect', 'totals', 'flops')) / 1e9:.1f} GFLOPs, "
            f"export {total(lambda r: get(r, 'export', 'wall_s')):.1f} s, "
            f"import {total(import_s):.1f} s, "
            f"forward {total(lambda r: get(r, 'inspect', 'import', 'forward_s')):.1f} s")
    if failed:
        text += "\nfailed: " + ", ".join(r["model"] for r in failed)
    return text


# ----------------------------------------------------------------------------- main


class Context:
    def __init__(self, args, kdecomp, env):
        self.args, self.kdecomp, self.env = args, kdecomp, env


def select_models(corpus, patterns):
    files = sorted((f for f in os.listdir(corpus) if f.endswith(".py") and not f.startswith("_")), key=natural_key)
    stems = [f[:-3] for f in files]
    if not patterns:
        return stems, len(stems), []
    chosen, unknown = [], []
    for pattern in patterns:
        # "4_LeNet5", "4_LeNet5.py", "4" (the KernelBench number) or a glob ("*ResNet*").
        pattern = pattern[:-3] if pattern.endswith(".py") else pattern
        hits = [s for s in stems if s == pattern or s.split("_", 1)[0] == pattern or fnmatch.fnmatchcase(s, pattern)]
        if not hits:
            unknown.append(pattern)
        chosen += [s for s in hits if s not in chosen]
    return chosen, len(stems), unknown


def write_outputs(out, records, corpus_size, table, text):
    with open(os.path.join(out, "corpus.json.tmp"), "w") as f:
        json.dump({"corpus_size": corpus_size, "records": records}, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(os.path.join(out, "corpus.json.tmp"), os.path.join(out, "corpus.json"))
    if table is not None:
        with open(os.path.join(out, "corpus.md"), "w") as f:
            f.write(table + "\n\n" + text + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", default="../shared/kernelbench/level3", help="directory of model .py files")
    parser.add_argument("--out", default="build/corpus", help="work directory: OUT/<model>/, corpus.md, corpus.json")
    parser.add_argument("--kdecomp", default="build/kdecomp", help="the kdecomp binary")
    parser.add_argument("--models", nargs="+", metavar="NAME", help="only these (name, number or glob)")
    parser.add_argument("--reuse-exports", action="store_true",
                        help="skip the export when OUT/<model>/meta.json matches the source's sha256")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per model and stage (default 900)")
    args = parser.parse_args(argv)

    if not os.path.isdir(args.corpus):
        parser.error(f"no corpus directory {args.corpus}")
    kdecomp = os.path.abspath(args.kdecomp)
    if not os.access(kdecomp, os.X_OK):
        parser.error(f"no kdecomp binary at {args.kdecomp} (build it, or pass --kdecomp)")
    models, corpus_size, unknown = select_models(args.corpus, args.models)
    if unknown:
        parser.error("no model matches " + ", ".join(unknown))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    ctx = Context(args, kdecomp, env)

    records = []
    for i, model in enumerate(models, 1):
        source = os.path.abspath(os.path.join(args.corpus, model + ".py"))
        record = {"model": model, "source": source, "source_sha256": sha256_of(source), "dir": os.path.join(out, model)}
        records.append(record)
        print(f"[{i}/{len(models)}] {model} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        for stage in STAGES:
            if record.get("failure"):
                break
            try:
                stage(record, ctx)
            except Exception as exc:  # a bug in a stage must not lose the other models
                record["failure"] = f"{stage.__name__} raised {type(exc).__name__}: {first_line(str(exc))}"
        record["wall_s"] = round(time.perf_counter() - t0, 3)
        print(f"[{i}/{len(models)}] {model}: {status_cell(record)} ({record['wall_s']:.1f} s)", file=sys.stderr, flush=True)
        write_outputs(out, records, corpus_size, None, None)

    table = render_table(records)
    text = summary(records, corpus_size)
    write_outputs(out, records, corpus_size, table, text)
    print(table)
    print()
    print(text)
    return 1 if any(failure_of(r) for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
