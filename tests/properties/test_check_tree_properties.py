#!/usr/bin/python3
"""The property checker accepts a real tree and catches each kind of broken tree.

Partitions examples/models/conv_bn_relu.py with the kdecomp binary (KDECOMP_BINARY, default
build/kdecomp) into a temporary directory, checks that the tree holds every property, then
mutates copies of it and asserts that each mutation is reported under the expected check.

Run: KDECOMP_BINARY=build/kdecomp /usr/bin/python3 -m unittest tests/properties/test_check_tree_properties.py
"""

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import check_tree_properties as ctp  # noqa: E402

MODEL = os.path.join(REPO_ROOT, "examples", "models", "conv_bn_relu.py")


def binary():
    path = os.environ.get("KDECOMP_BINARY", os.path.join(REPO_ROOT, "build", "kdecomp"))
    return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)


class TreePropertiesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kdecomp = binary()
        if not os.access(kdecomp, os.X_OK):
            raise unittest.SkipTest(f"no kdecomp binary at {kdecomp} (set KDECOMP_BINARY)")
        cls.tmp = tempfile.mkdtemp(prefix="kdecomp-props-")
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        proc = subprocess.run([kdecomp, "partition", MODEL, "-o", os.path.join(cls.tmp, "out"),
                               "--work-dir", os.path.join(cls.tmp, "export")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=600)
        if proc.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError(f"kdecomp partition failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
        cls.path = os.path.join(cls.tmp, "out", "models", "conv_bn_relu", ctp.TREE_FILE)
        with open(cls.path) as f:
            cls.tree = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def fresh(self):
        return copy.deepcopy(self.tree)

    def check(self, tree):
        return ctp.check_tree(tree, self.path)

    def assertCaught(self, tree, check, node=None, text=None):
        result = self.check(tree)
        self.assertFalse(result.ok, "mutation not caught")
        hits = [v for v in result.violations if v.check == check and (node is None or v.node == node)
                and (text is None or text in v.message)]
        self.assertTrue(hits, f"no [{check}] violation{' at ' + node if node else ''}"
                              f"{' mentioning ' + repr(text) if text else ''}; got:\n"
                        + "\n".join(str(v) for v in result.violations))
        return result

    def nodes_at(self, tree, level):
        return [nid for nid, n in tree["nodes"].items() if n["level"] == level]

    def fusion_with_kernels(self, tree, at_least=2):
        for nid in self.nodes_at(tree, "fusion"):
            if len(tree["nodes"][nid]["children"]) >= at_least:
                return nid
        self.skipTest("the tree has no fusion to mutate")

    def parent_of(self, tree, nid):
        return next(p for p, n in tree["nodes"].items() if nid in n["children"])

    def run_main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = ctp.main(list(argv))
        return rc, out.getvalue(), err.getvalue()

    def write(self, tree, name):
        d = os.path.join(self.tmp, "mutants", name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, ctp.TREE_FILE)
        with open(path, "w") as f:
            json.dump(tree, f)
        return path

    # ------------------------------------------------------------------ the real tree
    def test_real_tree_holds(self):
        result = self.check(self.fresh())
        self.assertEqual([str(v) for v in result.violations], [])
        self.assertEqual(result.counts["kernel"], result.counts["covered"])
        self.assertGreaterEqual(result.counts["layer"], 2)  # the layer mutation needs two
        self.assertGreaterEqual(result.counts["fusion"], 1)

    def test_cli_ok_fail_and_unreadable(self):
        rc, out, _ = self.run_main(self.path)
        self.assertEqual(rc, 0, out)
        self.assertTrue(out.startswith("ok conv_bn_relu "), out)
        rc, out, _ = self.run_main(os.path.dirname(os.path.dirname(self.path)))  # directory search
        self.assertEqual(rc, 0, out)
        tree = self.fresh()
        tree["metadata"]["covered_op_count"] -= 1
        bad = self.write(tree, "cli")
        rc, out, _ = self.run_main(self.path, bad)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL conv_bn_relu:", out)
        self.assertIn("[coverage] metadata:", out)
        broken = os.path.join(self.tmp, "broken.json")
        with open(broken, "w") as f:
            f.write("{not json")
        self.assertEqual(self.run_main(broken)[0], 2)
        self.assertEqual(self.run_main(os.path.join(self.tmp, "no-such-file.json"))[0], 2)
        empty = os.path.join(self.tmp, "empty-dir")
        os.makedirs(empty, exist_ok=True)
        self.assertEqual(self.run_main(empty)[0], 2)

    # ------------------------------------------------------------------ coverage
    def test_dropped_kernel_op(self):
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[0]
        kind = tree["nodes"][kernel]["op"].split("::")[-1]
        ops = tree["nodes"][kernel]["ops"]
        tree["nodes"][kernel]["ops"] = [o for o in ops if ctp.op_kind(o) != kind]
        self.assertLess(len(tree["nodes"][kernel]["ops"]), len(ops))
        self.assertCaught(tree, "coverage", kernel)

    def test_dropped_kernel_node(self):
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[-1]
        parent = self.parent_of(tree, kernel)
        tree["nodes"][parent]["children"].remove(kernel)
        del tree["nodes"][kernel]
        self.assertCaught(tree, "coverage", "metadata", "kernel nodes")

    def test_op_in_two_kernels(self):
        tree = self.fresh()
        a, b = self.nodes_at(tree, "kernel")[:2]
        tree["nodes"][b]["ops"].append(tree["nodes"][a]["ops"][0])
        self.assertCaught(tree, "coverage", text="2 kernels")

    def test_covered_count_differs_from_source(self):
        tree = self.fresh()
        tree["metadata"]["source_op_count"] += 1
        self.assertCaught(tree, "coverage", "metadata", "source op count")

    def test_metadata_tallies(self):
        tree = self.fresh()
        tree["metadata"]["by_level"]["fusion"] += 1
        self.assertCaught(tree, "metadata", "metadata", "by_level.fusion")

    # ------------------------------------------------------------------ tree shape
    def test_single_kernel_fusion(self):
        tree = self.fresh()
        fusion = self.fusion_with_kernels(tree)
        parent = self.parent_of(tree, fusion)
        kids = tree["nodes"][fusion]["children"]
        moved = kids[1:]
        tree["nodes"][fusion]["children"] = kids[:1]
        siblings = tree["nodes"][parent]["children"]
        at = siblings.index(fusion) + 1
        tree["nodes"][parent]["children"] = siblings[:at] + moved + siblings[at:]
        self.assertCaught(tree, "fusion", fusion, "1 kernel child")

    def test_layer_in_layer(self):
        tree = self.fresh()
        outer, inner = self.nodes_at(tree, "layer")[:2]
        self.parent_of(tree, inner)  # exists
        tree["nodes"][self.parent_of(tree, inner)]["children"].remove(inner)
        tree["nodes"][outer]["children"].append(inner)
        self.assertCaught(tree, "layer", inner, "layer inside layer")

    def test_two_parents_and_orphan(self):
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[0]
        tree["nodes"]["root"]["children"].append(kernel)
        self.assertCaught(tree, "tree", kernel, "2 parents")
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[0]
        tree["nodes"][self.parent_of(tree, kernel)]["children"].remove(kernel)
        self.assertCaught(tree, "tree", kernel, "not reachable")

    def test_kernel_with_children_and_second_model(self):
        tree = self.fresh()
        a, b = self.nodes_at(tree, "kernel")[:2]
        tree["nodes"][self.parent_of(tree, b)]["children"].remove(b)
        tree["nodes"][a]["children"].append(b)
        self.assertCaught(tree, "tree", b, "under the kernel")
        tree = self.fresh()
        layer = self.nodes_at(tree, "layer")[0]
        tree["nodes"][layer]["level"] = "model"
        self.assertCaught(tree, "tree", text="model nodes")

    # ------------------------------------------------------------------ shapes and dtypes
    def test_deleted_dtype(self):
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[0]
        dtypes = tree["nodes"][kernel]["input_dtypes"]
        del dtypes[next(iter(dtypes))]
        self.assertCaught(tree, "io", kernel, "no dtype")

    def test_missing_outputs_and_bad_shape(self):
        tree = self.fresh()
        fusion = self.nodes_at(tree, "fusion")[0]
        tree["nodes"][fusion]["output_shapes"] = {}
        tree["nodes"][fusion]["output_dtypes"] = {}
        self.assertCaught(tree, "io", fusion, "no outputs")
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[0]
        shapes = tree["nodes"][kernel]["output_shapes"]
        shapes[next(iter(shapes))] = None
        self.assertCaught(tree, "io", kernel, "not a list")

    def test_missing_inputs(self):
        tree = self.fresh()
        layer = self.nodes_at(tree, "layer")[0]
        tree["nodes"][layer]["input_shapes"] = {}
        tree["nodes"][layer]["input_dtypes"] = {}
        self.assertCaught(tree, "io", layer, "no inputs")

    def test_inconsistent_tensor_type(self):
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[0]
        dtypes = tree["nodes"][kernel]["output_dtypes"]
        dtypes[next(iter(dtypes))] = "float16"
        self.assertCaught(tree, "tensors")

    def test_missing_data_flow_edge(self):
        tree = self.fresh()
        self.assertTrue(tree["data_flow"])
        edge = tree["data_flow"].pop(0)
        self.assertCaught(tree, "tensors", edge["to"], "no data_flow edge")

    # ------------------------------------------------------------------ names and instances
    def test_colliding_workload_name(self):
        tree = self.fresh()
        nodes = tree["nodes"]
        kernels = self.nodes_at(tree, "kernel")
        # Two kernels of the same op with different shapes: same name, different workloads.
        by_op = {}
        for k in kernels:
            by_op.setdefault(nodes[k]["op"], []).append(k)
        a, b = next(v for v in by_op.values() if len(v) >= 2)[:2]
        self.assertNotEqual(nodes[a]["name"], nodes[b]["name"])
        for k in (a, b):  # keep the instance bookkeeping consistent: only the collision remains
            nodes[k]["instance_count"] = 2
            nodes[k]["instance_ids"] = [a, b]
        nodes[b]["name"], nodes[b]["path"] = nodes[a]["name"], nodes[a]["path"]
        tree["metadata"]["unique_kernels"] -= 1
        tree["metadata"]["unique_by_level"]["kernel"] -= 1
        result = self.assertCaught(tree, "names", text="differ in")
        self.assertEqual([v.check for v in result.violations], ["names"], [str(v) for v in result.violations])

    def test_renamed_without_instances(self):
        tree = self.fresh()
        nodes = tree["nodes"]
        a, b = self.nodes_at(tree, "kernel")[:2]
        nodes[b]["name"] = nodes[a]["name"]
        self.assertCaught(tree, "names", text="shared with")
        self.assertCaught(tree, "instances", text="instance_count")

    def test_wrong_instance_ids(self):
        tree = self.fresh()
        kernel = self.nodes_at(tree, "kernel")[0]
        tree["nodes"][kernel]["instance_ids"] = [kernel, "no/such#0"]
        self.assertCaught(tree, "instances", kernel, "instance_ids")

    def test_path_shared_by_two_names(self):
        tree = self.fresh()
        a, b = self.nodes_at(tree, "kernel")[:2]
        tree["nodes"][b]["path"] = tree["nodes"][a]["path"]
        self.assertCaught(tree, "names", text="also used by")


if __name__ == "__main__":
    unittest.main()
