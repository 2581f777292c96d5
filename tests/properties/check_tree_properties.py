#!/usr/bin/python3
"""Independent property checker for kdecomp's decomposition_tree.json (issue 3).

Reads only the JSON (no kdecomp code) and checks the output contract of
../shared/docs/DECOMPOSITION.md on every tree it is given:

  coverage   metadata source_op_count == covered_op_count == number of kernel nodes; every IR op
             id in a kernel's `ops` is in exactly one kernel; a kernel's own `op` is among its ops;
             a parent's ops contain its children's ops and siblings share none
  metadata   total_components, by_level, unique_kernels, unique_by_level match the nodes
  schema     node fields present and typed; `id` equals its key
  tree       exactly one model node, id "root"; allowed parent -> child levels (model -> layer |
             fusion | kernel, layer -> fusion | kernel, fusion -> kernel); kernels have no
             children; every non-root node has exactly one parent; every node reachable from root
  fusion     no fusion with fewer than 2 kernel children
  layer      no layer inside a layer; no layer covering every op of the model
  io         input/output shapes and dtypes: same tensor names in shapes and dtypes, every shape a
             list of non-negative ints, every dtype a known dtype string, no node without outputs,
             no node without inputs unless it only creates tensors; a child's inputs come from the
             parent's inputs, a sibling's outputs or the parent's glue; a parent's outputs come
             from its children or glue
  tensors    one tensor name has one shape and dtype everywhere (nodes and data_flow); data_flow
             edges join siblings of `parent` and name an output of `from` and an input of `to`; every
             child input that is a sibling's output has its edge
  names      a workload name (per level) has one signature: op / template, op kinds (glue
             included), children's workloads, input/output shapes and dtypes in order; one path
             per name and one name per path
  instances  every node of a name has instance_count == number of nodes of that name and
             instance_ids == exactly those node ids

Notes (printed with --notes, never failing): nodes with the same signature but different names
(a missed deduplication, or attributes the JSON does not show); child inputs that come through
the parent's glue and so have no data_flow edge from their producer.

Usage: /usr/bin/python3 check_tree_properties.py [-q] PATH...   (a tree file or a directory searched
recursively for decomposition_tree.json). One line per tree: `ok MODEL ...counts` or
`FAIL MODEL: N violations` followed by one indented line per violation. Exit 0 when every tree
holds, 1 on any violation, 2 on unreadable input or bad usage.
"""

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict

TREE_FILE = "decomposition_tree.json"
LEVELS = ("model", "layer", "fusion", "kernel")
ALLOWED_CHILDREN = {"model": {"layer", "fusion", "kernel"}, "layer": {"fusion", "kernel"}, "fusion": {"kernel"},
                    "kernel": set()}
KNOWN_DTYPES = {"float32", "float16", "bfloat16", "float64", "complex64", "complex128", "int8", "uint8", "int16",
                "int32", "int64", "bool"}
# Ops that create a tensor from nothing: the only kernels that may have no tensor inputs.
CREATION_OPS = re.compile(r"^(aten::)?(zeros|ones|empty|full|rand|randn|randint|randperm|normal|arange|linspace|"
                          r"logspace|eye|tensor|scalar_tensor|as_tensor|bernoulli)(_like)?_?$")
SOURCE_COUNT_KEYS = ("source_op_count", "source_ops")
COVERED_COUNT_KEYS = ("covered_op_count", "covered_ops")


class Violation:
    def __init__(self, check, node, message):
        self.check, self.node, self.message = check, node, message

    def __str__(self):
        return f"[{self.check}] {self.node}: {self.message}"


class Result:
    def __init__(self, path, model):
        self.path, self.model = path, model
        self.violations, self.notes, self.counts = [], [], {}

    @property
    def ok(self):
        return not self.violations

    def summary_line(self):
        if self.ok:
            c = self.counts
            return (f"ok {self.model} nodes={c.get('nodes', 0)} layer={c.get('layer', 0)} fusion={c.get('fusion', 0)} "
                    f"kernel={c.get('kernel', 0)} unique_kernels={c.get('unique_kernels', 0)} "
                    f"ops={c.get('covered', '?')}/{c.get('source', '?')}"
                    + (f" notes={len(self.notes)}" if self.notes else ""))
        return f"FAIL {self.model}: {len(self.violations)} violation{'s' if len(self.violations) != 1 else ''}"


def op_kind(op_id):
    """'block1.conv/conv2d#0' -> 'conv2d' (ids are module_path/kind#ordinal)."""
    tail = op_id.rsplit("/", 1)[-1]
    return tail.split("#", 1)[0]


def glue_producer(tensor_name):
    """A glue op's output is named by its op id, with ':k' for its k-th output."""
    m = re.match(r"^(.*):(\d+)$", tensor_name)
    return m.group(1) if m else tensor_name


def is_shape(x):
    return isinstance(x, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in x)


def freeze(x):
    if isinstance(x, list):
        return tuple(freeze(v) for v in x)
    if isinstance(x, dict):
        return tuple((k, freeze(v)) for k, v in x.items())
    return x


class Checker:
    def __init__(self, tree, result):
        self.tree, self.r = tree, result
        self.nodes = {}

    def bad(self, check, node, message):
        self.r.violations.append(Violation(check, node, message))

    # ------------------------------------------------------------------ schema
    def check_schema(self):
        tree = self.tree
        if not isinstance(tree, dict):
            self.bad("schema", "-", "top level is not an object")
            return False
        for key, kind in (("metadata", dict), ("nodes", dict), ("data_flow", list)):
            if not isinstance(tree.get(key), kind):
                self.bad("schema", "-", f"top-level '{key}' missing or not a{'n object' if kind is dict else ' list'}")
        if not isinstance(tree.get("nodes"), dict):
            return False
        for nid, node in tree["nodes"].items():
            if not isinstance(node, dict):
                self.bad("schema", nid, "node is not an object")
                continue
            ok = True
            if node.get("id") != nid:
                self.bad("schema", nid, f"id field {node.get('id')!r} differs from its key")
            if node.get("level") not in LEVELS:
                self.bad("schema", nid, f"level {node.get('level')!r} is not one of {', '.join(LEVELS)}")
                ok = False
            if not isinstance(node.get("name"), str) or not node.get("name"):
                self.bad("schema", nid, "missing or empty name")
                ok = False
            if not isinstance(node.get("children"), list) or not all(isinstance(c, str) for c in node["children"]):
                self.bad("schema", nid, "children missing or not a list of ids")
                ok = False
            if not isinstance(node.get("ops"), list) or not all(isinstance(o, str) for o in node["ops"]):
                self.bad("schema", nid, "ops missing or not a list of IR op ids")
                ok = False
            if not isinstance(node.get("path"), str) or not node.get("path"):
                self.bad("schema", nid, "missing or empty path")
            ic = node.get("instance_count")
            if not isinstance(ic, int) or isinstance(ic, bool) or ic < 1:
                self.bad("schema", nid, f"instance_count {ic!r} is not a positive integer")
            if not isinstance(node.get("instance_ids"), list):
                self.bad("schema", nid, "instance_ids missing or not a list")
            if node.get("level") == "fusion" and not node.get("template"):
                self.bad("schema", nid, "fusion without a template label")
            if node.get("level") == "kernel" and not node.get("op"):
                self.bad("schema", nid, "kernel without an op")
            if ok:
                self.nodes[nid] = node
        return True

    # ------------------------------------------------------------------ tree structure
    def check_tree(self):
        nodes = self.nodes
        models = [nid for nid, n in nodes.items() if n["level"] == "model"]
        if len(models) != 1:
            self.bad("tree", ",".join(models) or "-", f"{len(models)} model nodes, expected exactly 1")
        if "root" not in nodes:
            self.bad("tree", "root", "no node 'root'")
        elif nodes["root"]["level"] != "model":
            self.bad("tree", "root", f"root is a {nodes['root']['level']}, not the model")
        self.parents = defaultdict(list)
        for nid, n in nodes.items():
            seen = set()
            for c in n["children"]:
                if c in seen:
                    self.bad("tree", nid, f"child {c} listed twice")
                    continue
                seen.add(c)
                if c not in nodes:
                    self.bad("tree", nid, f"child {c} is not a node")
                    continue
                self.parents[c].append(nid)
                pl, cl = n["level"], nodes[c]["level"]
                if cl not in ALLOWED_CHILDREN[pl]:
                    if pl == "layer" and cl == "layer":
                        self.bad("layer", c, f"layer inside layer {nid}")
                    else:
                        self.bad("tree", c, f"a {cl} under the {pl} {nid} (allowed under a {pl}: "
                                            f"{', '.join(sorted(ALLOWED_CHILDREN[pl])) or 'nothing'})")
        for nid, n in nodes.items():
            ps = self.parents.get(nid, [])
            if nid == "root":
                if ps:
                    self.bad("tree", nid, f"root has parents {ps}")
            elif len(ps) != 1:
                self.bad("tree", nid, f"{len(ps)} parents{' ' + str(ps) if ps else ''}, expected exactly 1")
        # Reachability (iterative; a cycle cannot loop: visited set).
        reached = set()
        if "root" in nodes:
            stack = ["root"]
            while stack:
                nid = stack.pop()
                if nid in reached:
                    continue
                reached.add(nid)
                stack.extend(c for c in nodes[nid]["children"] if c in nodes)
        for nid in nodes:
            if nid not in reached:
                self.bad("tree", nid, "not reachable from root")
        # Layer nesting at any depth (a layer with a layer ancestor), and fusion arity.
        for nid, n in nodes.items():
            if n["level"] == "layer" and len(self.parents.get(nid, [])) == 1:
                # Direct nesting is reported above; look further up (through illegal edges).
                a, hops = self.parents[nid][0], 0
                while hops < len(nodes):
                    ps = self.parents.get(a)
                    if not ps:
                        break
                    a, hops = ps[0], hops + 1
                    if nodes[a]["level"] == "layer":
                        self.bad("layer", nid, f"layer inside layer {a} (indirectly)")
                        break
            if n["level"] == "fusion":
                k = sum(1 for c in n["children"] if c in nodes and nodes[c]["level"] == "kernel")
                if k < 2:
                    self.bad("fusion", nid, f"fusion with {k} kernel child{'ren' if k != 1 else ''} (needs 2 or more)")
        return reached

    # ------------------------------------------------------------------ coverage and metadata
    def check_coverage(self):
        nodes, md = self.nodes, self.tree.get("metadata") or {}
        kernels = [nid for nid, n in nodes.items() if n["level"] == "kernel"]
        source = next((md[k] for k in SOURCE_COUNT_KEYS if k in md), None)
        covered = next((md[k] for k in COVERED_COUNT_KEYS if k in md), None)
        self.r.counts.update(source=source, covered=covered)
        if source is None or covered is None:
            self.bad("coverage", "metadata", f"no source/covered op count (keys {', '.join(sorted(md))})")
        else:
            if source != covered:
                self.bad("coverage", "metadata", f"covered op count {covered} != source op count {source}")
            if covered != len(kernels):
                self.bad("coverage", "metadata", f"covered op count {covered} != {len(kernels)} kernel nodes")
        owner = defaultdict(list)
        for nid in kernels:
            if not nodes[nid]["ops"]:
                self.bad("coverage", nid, "kernel with no ops")
            # The kernel's own op is among its ops (the others are its glue).
            kind = str(nodes[nid].get("op", "")).split("::")[-1]
            if kind and not any(op_kind(o) == kind for o in nodes[nid]["ops"]):
                self.bad("coverage", nid, f"kernel op {nodes[nid].get('op')} is not among its ops "
                                          f"({', '.join(nodes[nid]['ops'][:5])})")
            for op in nodes[nid]["ops"]:
                owner[op].append(nid)
        for op, ks in owner.items():
            if len(ks) > 1:
                self.bad("coverage", ks[0], f"op {op} is in {len(ks)} kernels: {', '.join(ks)}")
        for nid, n in nodes.items():
            mine, seen = set(n["ops"]), {}
            if len(mine) != len(n["ops"]):
                dup = [o for o, c in Counter(n["ops"]).items() if c > 1]
                self.bad("coverage", nid, f"ops listed twice: {', '.join(dup[:5])}")
            for c in n["children"]:
                if c not in nodes:
                    continue
                missing = [o for o in nodes[c]["ops"] if o not in mine]
                if missing:
                    self.bad("coverage", c, f"{len(missing)} ops not in its parent {nid}'s ops: {', '.join(missing[:5])}")
                for o in nodes[c]["ops"]:
                    if o in seen and seen[o] != c and nodes[c]["level"] != "kernel":
                        self.bad("coverage", c, f"op {o} also in sibling {seen[o]}")
                    seen.setdefault(o, c)
        # Metadata tallies.
        by_level = Counter(n["level"] for n in nodes.values())
        names = {lvl: {n["name"] for n in nodes.values() if n["level"] == lvl} for lvl in LEVELS}
        self.r.counts.update(nodes=len(nodes), **{lvl: by_level.get(lvl, 0) for lvl in LEVELS},
                             unique_kernels=len(names["kernel"]))
        if md.get("total_components") != len(self.tree["nodes"]):
            self.bad("metadata", "metadata", f"total_components {md.get('total_components')!r} != {len(self.tree['nodes'])} nodes")
        if isinstance(md.get("by_level"), dict):
            for lvl in LEVELS:
                if md["by_level"].get(lvl, 0) != by_level.get(lvl, 0):
                    self.bad("metadata", "metadata", f"by_level.{lvl} {md['by_level'].get(lvl)!r} != {by_level.get(lvl, 0)} nodes")
        else:
            self.bad("metadata", "metadata", "no by_level")
        if "unique_kernels" in md and md["unique_kernels"] != len(names["kernel"]):
            self.bad("metadata", "metadata", f"unique_kernels {md['unique_kernels']} != {len(names['kernel'])} kernel names")
        if isinstance(md.get("unique_by_level"), dict):
            for lvl in LEVELS:
                if md["unique_by_level"].get(lvl, 0) != len(names[lvl]):
                    self.bad("metadata", "metadata",
                             f"unique_by_level.{lvl} {md['unique_by_level'].get(lvl)!r} != {len(names[lvl])} names")
        # A layer never equals the model.
        if "root" in nodes:
            root_ops = set(nodes["root"]["ops"])
            for nid, n in nodes.items():
                if n["level"] == "layer" and root_ops and set(n["ops"]) == root_ops:
                    self.bad("layer", nid, "layer covers every op of the model")

    # ------------------------------------------------------------------ shapes and dtypes
    def tensors_of(self, node, side):
        """{name: (shape, dtype)} of one side ('input' / 'output'), reporting schema problems."""
        nid = node["id"]
        shapes, dtypes = node.get(f"{side}_shapes"), node.get(f"{side}_dtypes")
        if not isinstance(shapes, dict):
            self.bad("io", nid, f"{side}_shapes missing or not an object")
            shapes = {}
        if not isinstance(dtypes, dict):
            self.bad("io", nid, f"{side}_dtypes missing or not an object")
            dtypes = {}
        out = {}
        for t in list(shapes) + [t for t in dtypes if t not in shapes]:
            s, d = shapes.get(t), dtypes.get(t)
            if t not in shapes:
                self.bad("io", nid, f"{side} {t} has a dtype but no shape")
            elif not is_shape(s):
                self.bad("io", nid, f"{side} {t} shape {s!r} is not a list of non-negative ints")
            if t not in dtypes:
                self.bad("io", nid, f"{side} {t} has a shape but no dtype")
            elif not isinstance(d, str) or d not in KNOWN_DTYPES:
                self.bad("io", nid, f"{side} {t} dtype {d!r} is not a dtype string")
            out[t] = (freeze(s), d)
        return out

    def check_io(self):
        nodes = self.nodes
        self.ins, self.outs, self.glue_routed = {}, {}, []
        for nid, n in nodes.items():
            self.ins[nid], self.outs[nid] = self.tensors_of(n, "input"), self.tensors_of(n, "output")
        # Which nodes only create tensors (no kernel below them reads one)?
        creates = {}

        def only_creates(nid, depth=0):
            if nid in creates:
                return creates[nid]
            n = nodes[nid]
            if n["level"] == "kernel":
                v = bool(CREATION_OPS.match(str(n.get("op", "")))) and not self.ins[nid]
            else:
                kids = [c for c in n["children"] if c in nodes]
                v = bool(kids) and depth < 64 and all(only_creates(c, depth + 1) for c in kids)
            creates[nid] = v
            return v

        for nid, n in nodes.items():
            if not self.outs[nid]:
                self.bad("io", nid, "no outputs")
            if not self.ins[nid] and not only_creates(nid):
                self.bad("io", nid, "no inputs" + (f" (op {n.get('op')})" if n["level"] == "kernel" else ""))
        # One tensor name, one type, across the tree.
        seen = {}
        for nid in sorted(nodes):
            for side in (self.ins[nid], self.outs[nid]):
                for t, typ in side.items():
                    if t in seen and seen[t][0] != typ:
                        self.bad("tensors", nid, f"tensor {t} is {fmt(typ)} here but {fmt(seen[t][0])} at {seen[t][1]}")
                    seen.setdefault(t, (typ, nid))
        self.tensor_types = {t: v[0] for t, v in seen.items()}
        # Closure: a child's inputs come from its parent's inputs, a sibling or the parent's glue;
        # a parent's outputs come from a child or its glue.
        for pid, p in nodes.items():
            kids = [c for c in p["children"] if c in nodes]
            if not kids:
                continue
            child_ops = {o for c in kids for o in nodes[c]["ops"]}
            glue = {o for o in p["ops"] if o not in child_ops}
            produced = {t for c in kids for t in self.outs[c]}
            for c in kids:
                for t in self.ins[c]:
                    if t in produced or t in self.ins[pid]:
                        continue
                    if glue_producer(t) in glue:
                        self.glue_routed.append((pid, c, t))
                    else:
                        self.bad("io", c, f"input {t} is neither an input of its parent {pid}, a sibling's output nor glue")
            for t in self.outs[pid]:
                if t not in produced and glue_producer(t) not in glue:
                    self.bad("io", pid, f"output {t} is produced by none of its children")

    def check_data_flow(self):
        nodes, flow = self.nodes, self.tree.get("data_flow")
        if not isinstance(flow, list):
            return
        # Completeness: a child reading a sibling's output has an edge from that sibling.
        edges = {(e.get("from"), e.get("to"), e.get("tensor_name")) for e in flow if isinstance(e, dict)}
        for pid, p in nodes.items():
            producer = {t: c for c in p["children"] if c in nodes for t in self.outs[c]}
            for c in p["children"]:
                for t in self.ins.get(c, {}):
                    src = producer.get(t)
                    if src is not None and src != c and (src, c, t) not in edges:
                        self.bad("tensors", c, f"no data_flow edge {src} -> {c} for {t}")
        if self.glue_routed:
            pid, c, t = self.glue_routed[0]
            self.r.notes.append(f"[tensors] {len(self.glue_routed)} child inputs come through their parent's glue and "
                                f"have no data_flow edge from the tensor's producer (first: {c} reads {t}, glue of {pid})")
        for i, e in enumerate(flow):
            where = f"data_flow[{i}]"
            if not isinstance(e, dict):
                self.bad("tensors", where, "edge is not an object")
                continue
            src, dst, par, t = e.get("from"), e.get("to"), e.get("parent"), e.get("tensor_name")
            if src not in nodes or dst not in nodes:
                self.bad("tensors", where, f"edge {src} -> {dst} names a missing node")
                continue
            if par is not None:
                if par not in nodes:
                    self.bad("tensors", where, f"parent {par} is not a node")
                elif src not in nodes[par]["children"] or dst not in nodes[par]["children"]:
                    self.bad("tensors", where, f"{src} -> {dst} are not both children of {par}")
            if t not in self.outs.get(src, {}):
                self.bad("tensors", where, f"{t} is not an output of {src}")
            if t not in self.ins.get(dst, {}):
                self.bad("tensors", where, f"{t} is not an input of {dst}")
            typ = (freeze(e.get("shape")), e.get("dtype"))
            if t in self.tensor_types and self.tensor_types[t] != typ:
                self.bad("tensors", where, f"{t} is {fmt(typ)} on the edge but {fmt(self.tensor_types[t])} on the nodes")

    # ------------------------------------------------------------------ workload names
    def signature(self, nid):
        n, nodes = self.nodes[nid], self.nodes
        return (n["level"], n.get("op"), n.get("template"), tuple(op_kind(o) for o in n["ops"]),
                tuple(nodes[c]["level"] + ":" + nodes[c]["name"] for c in n["children"] if c in nodes),
                tuple(v for v in self.ins[nid].values()), tuple(v for v in self.outs[nid].values()))

    def check_names(self):
        nodes = self.nodes
        groups = defaultdict(list)
        for nid, n in nodes.items():
            groups[(n["level"], n["name"])].append(nid)
        path_owner = {}
        for (lvl, name), ids in sorted(groups.items()):
            sigs = defaultdict(list)
            for nid in ids:
                sigs[self.signature(nid)].append(nid)
            if len(sigs) > 1:
                variants = sorted(sigs.values(), key=len, reverse=True)
                base_sig = self.signature(variants[0][0])
                for other in variants[1:]:
                    self.bad("names", other[0], f"{lvl} name {name} shared with {variants[0][0]} but the workloads "
                                                f"differ in {sig_diff(base_sig, self.signature(other[0]))}"
                                                + (f" ({len(other)} such nodes)" if len(other) > 1 else ""))
            paths = {nodes[nid]["path"] for nid in ids}
            if len(paths) > 1:
                self.bad("names", ids[0], f"{lvl} name {name} has {len(paths)} paths: {', '.join(sorted(paths))}")
            for p in paths:
                if p in path_owner and path_owner[p] != (lvl, name):
                    self.bad("names", ids[0], f"path {p} also used by {path_owner[p][0]} {path_owner[p][1]}")
                path_owner.setdefault(p, (lvl, name))
            # Instances.
            for nid in ids:
                n = nodes[nid]
                if n.get("instance_count") != len(ids):
                    self.bad("instances", nid, f"instance_count {n.get('instance_count')!r} but {len(ids)} nodes "
                                               f"named {name}")
                inst = n.get("instance_ids") if isinstance(n.get("instance_ids"), list) else []
                if sorted(inst) != sorted(ids):
                    extra, missing = sorted(set(inst) - set(ids)), sorted(set(ids) - set(inst))
                    self.bad("instances", nid, "instance_ids differ from the nodes named " + name
                             + (f"; not such nodes: {', '.join(extra[:5])}" if extra else "")
                             + (f"; missing: {', '.join(missing[:5])}" if missing else "")
                             + ("; duplicates" if len(set(inst)) != len(inst) else ""))
        # Same signature, different names: a note (the JSON does not show every attribute).
        by_sig = defaultdict(set)
        for nid in nodes:
            by_sig[self.signature(nid)].add(nodes[nid]["name"])
        for sig, names in by_sig.items():
            if len(names) > 1 and sig[0] != "model":
                names = sorted(names)
                self.r.notes.append(f"[names] same {sig[0]} signature, {len(names)} names: {', '.join(names[:4])}"
                                    + (f", ... (+{len(names) - 4})" if len(names) > 4 else ""))

    def run(self):
        if not self.check_schema():
            return
        self.check_tree()
        self.check_coverage()
        self.check_io()
        self.check_data_flow()
        self.check_names()


def fmt(typ):
    shape, dtype = typ
    return f"{list(shape) if isinstance(shape, tuple) else shape}:{dtype}"


def sig_diff(a, b):
    fields = ("level", "op", "template", "op kinds", "children", "inputs", "outputs")
    parts = []
    for f, x, y in zip(fields, a, b):
        if x != y:
            if f in ("inputs", "outputs"):
                x, y = [fmt(v) for v in x], [fmt(v) for v in y]
            parts.append(f"{f} {_short(x)} vs {_short(y)}")
    return "; ".join(parts)


def _short(x, limit=160):
    s = str(list(x) if isinstance(x, tuple) else x)
    return s if len(s) <= limit else s[:limit] + "..."


def check_tree(tree, path="<tree>"):
    """Checks a parsed tree; returns a Result."""
    md = tree.get("metadata") if isinstance(tree, dict) else None
    model = (md or {}).get("model_name") or os.path.basename(os.path.dirname(os.path.abspath(path))) or path
    result = Result(path, model)
    Checker(tree, result).run()
    return result


def check_file(path):
    """Reads and checks one tree file; raises OSError / ValueError when it cannot be read."""
    with open(path) as f:
        tree = json.load(f)
    return check_tree(tree, path)


def find_trees(paths):
    found, missing = [], []
    for p in paths:
        if os.path.isdir(p):
            hits = []
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                if TREE_FILE in filenames:
                    hits.append(os.path.join(dirpath, TREE_FILE))
            if not hits:
                missing.append(f"{p}: no {TREE_FILE} below it")
            found += hits
        elif os.path.exists(p):
            found.append(p)
        else:
            missing.append(f"{p}: no such file or directory")
    return found, missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help=f"{TREE_FILE} files or directories searched recursively")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the per-tree line")
    parser.add_argument("--notes", action="store_true", help="also print notes (same signature, different names)")
    args = parser.parse_args(argv)
    trees, missing = find_trees(args.paths)
    unreadable = len(missing)
    for m in missing:
        print(f"ERROR {m}", file=sys.stderr)
    failed = 0
    for path in trees:
        try:
            result = check_file(path)
        except (OSError, ValueError) as exc:
            print(f"ERROR {path}: unreadable: {exc}")
            unreadable += 1
            continue
        print(result.summary_line())
        if not args.quiet:
            for v in result.violations:
                print(f"  {v}")
            if args.notes:
                for n in result.notes:
                    print(f"  note {n}")
        failed += not result.ok
    if unreadable:
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
