#!/usr/bin/python3
"""End-to-end tests of the FX path: real KernelBench models decomposed with `kdecomp decompose --fx`
(make_fx at aten level, exact dimensions), verified against the PyTorch model's own outputs;
`kdecomp diff model.pt model.fx.json` across formats; and bad input (a graph that does not
parse, a missing tensor file, an op without a replay).

4_LeNet5 and 9_ResNet18 script in TorchScript; 15_DenseNet121 can only be traced there (its
ModuleList indexing fails to script); 28_VisionTransformer's attention checks the matmul and
linear canonical forms.

Environment: KDECOMP_BINARY (the kdecomp executable), KDECOMP_KERNELBENCH_DIR (level3).
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
KDECOMP = os.environ.get("KDECOMP_BINARY", os.path.join(HERE, "..", "..", "build", "kdecomp"))
LEVEL3 = os.environ.get("KDECOMP_KERNELBENCH_DIR", os.path.join(HERE, "..", "..", "..", "shared", "kernelbench", "level3"))
MODELS = ["4_LeNet5", "9_ResNet18", "15_DenseNet121", "28_VisionTransformer"]


def run(*args, timeout=1200):
    return subprocess.run([KDECOMP, *args], capture_output=True, text=True, timeout=timeout)


def read_json(path):
    with open(path) as f:
        return json.load(f)


class FxPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="kdecomp-fx-test-")
        cls.results = {}
        for name in MODELS:
            summary = os.path.join(cls.work, name + ".json")
            r = run("decompose", os.path.join(LEVEL3, name + ".py"), "--fx", "-o", os.path.join(cls.work, "out"),
                    "--summary-json", summary, "--threads", "2")
            cls.results[name] = (r, read_json(summary) if os.path.exists(summary) else None)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_composition_matches_pytorch(self):
        for name in MODELS:
            with self.subTest(model=name):
                r, summary = self.results[name]
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                self.assertEqual(summary["format"], "fx")
                verification = summary["verification"]
                self.assertEqual(verification["status"], "passed")
                # The model outputs recorded are PyTorch's own (export's outputs.pt), not the replay's.
                self.assertEqual(verification["composition"]["status"], "passed")
                self.assertLess(verification["composition"]["max_abs_diff"], 1e-4)
                for tier, totals in verification["totals"].items():
                    self.assertEqual(totals["failed"], 0, tier)
                meta = read_json(os.path.join(summary["output_dir"], "export", "meta.json"))
                self.assertEqual(meta["fx"]["status"], "ok")
                self.assertEqual(meta["fx"]["tracing_mode"], "fake")  # no forward ran to capture it
                tree = read_json(os.path.join(summary["output_dir"], "decomposition_tree.json"))
                self.assertEqual(tree["metadata"]["input_format"], "fx")

    def test_module_paths_and_parameter_names_come_from_the_model(self):
        r, summary = self.results["9_ResNet18"]
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        tree = read_json(os.path.join(summary["output_dir"], "decomposition_tree.json"))
        modules = {n.get("module_path") for n in tree["nodes"].values()}
        self.assertIn("layer1.0.conv1", modules)
        self.assertIn("layer4.1.bn2", modules)
        doc = read_json(os.path.join(summary["output_dir"], "export", "model.fx.json"))
        targets = {s["target"] for s in doc["graph_signature"]["input_specs"]}
        self.assertIn("layer1.0.conv1.weight", targets)
        self.assertIn("layer1.0.bn1.running_mean", targets)

    def test_diff_pt_vs_fx_has_no_structural_change_above_kernels(self):
        for name in MODELS:
            with self.subTest(model=name):
                r, summary = self.results[name]
                self.assertEqual(r.returncode, 0, r.stderr[-3000:])
                export = os.path.join(summary["output_dir"], "export")
                r = run("diff", os.path.join(export, "model.pt"), os.path.join(export, "model.fx.json"), "--json")
                self.assertNotEqual(r.returncode, 2, r.stderr[-3000:])
                diff = json.loads(r.stdout)
                self.assertEqual(diff["cross_format"]["b"], "fx")
                for tier in ("layer", "fusion"):
                    counts = diff["counts"][tier]
                    self.assertGreater(counts["unchanged"] + counts["kernels_differ"], 0, tier)
                    for kind in ("moved", "added", "removed"):
                        self.assertEqual(counts[kind], 0, (tier, kind, [c for c in diff["changes"] if c["tier"] == tier][:3]))
                if name == "4_LeNet5":  # the same kernels too
                    for tier in ("layer", "fusion", "kernel"):
                        for kind in ("modified", "moved", "added", "removed", "kernels_differ"):
                            self.assertEqual(diff["counts"][tier][kind], 0, (tier, kind, diff["changes"][:3]))

    def write_model(self, file_name, init_line, forward_lines):
        """A KernelBench-format model file with one submodule, on a [2, 3000, 8] input."""
        path = os.path.join(self.work, file_name)
        body = "".join("        " + line + "\n" for line in forward_lines)
        with open(path, "w") as f:
            f.write("import torch\n\nclass Model(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    f"        {init_line}\n\n    def forward(self, x):\n{body}\n"
                    "def get_inputs():\n    return [torch.randn(2, 3000, 8)]\n\ndef get_init_inputs():\n    return []\n")
        return path

    def test_recurrent_modules_stay_one_op(self):
        # nn.GRU is one aten::gru node, as in TorchScript (make_fx alone records its cells per step).
        model = self.write_model("gru_model.py", "self.rnn = torch.nn.GRU(8, 16, 2, batch_first=True, bidirectional=True)",
                                 ["return self.rnn(x)[0]"])
        summary = os.path.join(self.work, "gru.json")
        r = run("decompose", model, "--fx", "-o", os.path.join(self.work, "gru_out"), "--summary-json", summary)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        s = read_json(summary)
        self.assertEqual(s["verification"]["composition"]["max_abs_diff"], 0)
        doc = read_json(os.path.join(s["output_dir"], "export", "model.fx.json"))
        targets = [(n["target"], n["overload"]) for n in doc["graph"]["nodes"]]
        self.assertEqual(targets.count(("aten::gru", "input")), 1, targets)
        self.assertLessEqual(len(targets), 3, targets)  # the initial state (zeros) and the one gru

    def test_a_capture_that_unrolls_a_python_loop_is_refused_naming_the_module(self):
        model = self.write_model("cell_loop.py", "self.cell = torch.nn.GRUCell(8, 16)",
                                 ["h = torch.zeros(x.shape[0], 16)", "for t in range(x.shape[1]):",
                                  "    h = self.cell(x[:, t], h)", "return h"])
        r = run("decompose", model, "--fx", "-o", os.path.join(self.work, "cell_out"))
        self.assertEqual(r.returncode, 2, r.stderr[-2000:])
        self.assertIn("the FX capture failed", r.stderr)
        self.assertIn("inside GRUCell modules", r.stderr)
        self.assertNotIn("Traceback", r.stderr)

    def test_a_users_own_graph_module_goes_through_the_same_writer(self):
        # A model file may define get_graph_module(*get_init_inputs()) returning a torch.fx
        # GraphModule (here symbolic_trace's); --fx decomposes that instead of Model.
        model = os.path.join(self.work, "user_gm.py")
        with open(model, "w") as f:
            f.write("import torch\nimport torch.fx\n\nclass Model(torch.nn.Module):\n    def __init__(self, c):\n"
                    "        super().__init__()\n        self.conv = torch.nn.Conv2d(3, c, 3)\n"
                    "        self.bn = torch.nn.BatchNorm2d(c)\n\n    def forward(self, x):\n"
                    "        return torch.relu(self.bn(self.conv(x)))\n\n"
                    "def get_graph_module(c):\n    gm = torch.fx.symbolic_trace(Model(c))\n"
                    "    for n in gm.graph.nodes:  # a user's pass: relu becomes sigmoid\n"
                    "        if n.target is torch.relu:\n            n.target = torch.sigmoid\n"
                    "    gm.recompile()\n    return gm\n\n"
                    "def get_inputs():\n    return [torch.randn(2, 3, 32, 32)]\n\ndef get_init_inputs():\n    return [8]\n")
        summary = os.path.join(self.work, "user_gm.json")
        r = run("decompose", model, "--fx", "-o", os.path.join(self.work, "user_gm_out"), "--summary-json", summary)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        s = read_json(summary)
        self.assertEqual(s["verification"]["composition"]["max_abs_diff"], 0)
        tree = read_json(os.path.join(s["output_dir"], "decomposition_tree.json"))
        self.assertEqual({n.get("module_path") for n in tree["nodes"].values()}, {"", "conv", "bn"})
        targets = [n["target"] for n in read_json(os.path.join(s["output_dir"], "export", "model.fx.json"))["graph"]["nodes"]]
        self.assertIn("aten::sigmoid", targets)  # the GraphModule was decomposed, not Model
        self.assertNotIn("aten::relu", targets)

    def test_bad_input_is_named_with_its_cause(self):
        r, summary = self.results["4_LeNet5"]
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        bad = os.path.join(self.work, "bad")
        shutil.copytree(os.path.join(summary["output_dir"], "export"), bad)
        graph = os.path.join(bad, "model.fx.json")
        doc = read_json(graph)

        def expect_error(words):
            r = run("inspect", graph)
            self.assertEqual(r.returncode, 2, r.stdout[-1000:] + r.stderr[-2000:])
            self.assertIn(graph, r.stderr)
            for w in words:
                self.assertIn(w, r.stderr)
            self.assertNotIn("terminate called", r.stderr)

        with open(graph, "w") as f:
            f.write(json.dumps(doc)[:200])
        expect_error(["not valid JSON"])
        unknown = json.loads(json.dumps(doc))
        unknown["graph"]["nodes"][1]["target"] = "aten::not_an_op"
        with open(graph, "w") as f:
            json.dump(unknown, f)
        expect_error(["no replay for aten::not_an_op"])
        with open(graph, "w") as f:
            json.dump(doc, f)
        os.remove(os.path.join(bad, "fx_state.pt"))
        expect_error(["fx_state.pt", "missing"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
