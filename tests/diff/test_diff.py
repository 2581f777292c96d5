#!/usr/bin/python3
"""End-to-end tests of `kdecomp diff`: version pairs from KernelBench level3 (each side exported,
imported and partitioned from its .py at exact dimensions) and generated pairs whose truth is
known by construction (every module renamed, one conv's kernel size changed, one block
inserted). Each test asserts the essential facts of its diff, from `--json`.

Environment: KDECOMP_BINARY (the kdecomp executable), KDECOMP_KERNELBENCH_DIR (level3),
KDECOMP_TEST_LARGE=1 (also the pairs of large networks, VGG, DenseNet, EfficientNet, ResNet101:
most of this file's time; `scripts/test.sh --large`).
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
# CI runs the pairs of small networks; the large ones export and import two networks of up to 100
# layers at exact dimensions each.
large = unittest.skipUnless(os.environ.get("KDECOMP_TEST_LARGE") == "1", "a large pair: KDECOMP_TEST_LARGE=1")

SMALL_CNN = """
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, channels, kernel_size):
        super().__init__()
        self.{conv} = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.{bn} = nn.BatchNorm2d(channels)
        self.{act} = nn.ReLU()

    def forward(self, x):
        return self.{act}(self.{bn}(self.{conv}(x)))


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.{stem} = nn.Conv2d(3, 16, 3, padding=1)
        self.{body} = nn.Sequential({blocks})
        self.{head} = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.{stem}(x))
        x = self.{body}(x)
        return self.{head}(x.mean((2, 3)))


def get_inputs():
    return [torch.randn(8, 3, 32, 32)]


def get_init_inputs():
    return []
"""

NAMES = {"conv": "conv", "bn": "bn", "act": "act", "stem": "stem", "body": "body", "head": "head"}
RENAMED = {"conv": "spatial", "bn": "norm", "act": "nonlin", "stem": "entry", "body": "trunk", "head": "classifier"}


def small_cnn(names, kernel_sizes):
    return SMALL_CNN.format(blocks=", ".join(f"Block(16, {k})" for k in kernel_sizes), **names)


def run_diff(a, b, *extra):
    r = subprocess.run([KDECOMP, "diff", a, b, "--json", "--threads", "2", *extra], capture_output=True, text=True,
                       timeout=900)
    if r.returncode == 2:
        raise AssertionError(f"kdecomp diff {a} {b} failed: {r.stderr}")
    return r.returncode, json.loads(r.stdout)


def corpus(name):
    return os.path.join(LEVEL3, name + ".py")


def changes(diff, tier, kind):
    return [c for c in diff["changes"] if c["tier"] == tier and c["change"] == kind]


class GeneratedPairs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kdecomp-diff-test-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def model(self, name, names, kernel_sizes):
        path = os.path.join(self.tmp, name + ".py")
        with open(path, "w") as f:
            f.write(small_cnn(names, kernel_sizes))
        return path

    def test_rename_every_module(self):
        rc, d = run_diff(self.model("base", NAMES, [3, 3]), self.model("renamed", RENAMED, [3, 3]))
        self.assertEqual(rc, 1)
        for tier in ("layer", "fusion", "kernel"):
            counts = d["counts"][tier]
            self.assertEqual((counts["added"], counts["removed"], counts["modified"]), (0, 0, 0), (tier, counts))
            self.assertGreater(counts["moved"], 0, tier)
            # Every module's id changed; only the two ops of forward() itself (relu, mean) keep theirs.
            self.assertEqual(counts["unchanged"], 2 if tier == "kernel" else 0, tier)
        self.assertTrue(all(v == 0 for v in d["totals"]["delta"].values()))

    def test_change_one_conv_kernel_size(self):
        rc, d = run_diff(self.model("base", NAMES, [3, 3]), self.model("k5", NAMES, [3, 5]))
        self.assertEqual(rc, 1)
        modified = changes(d, "kernel", "modified")
        self.assertEqual(len(modified), 1, modified)
        self.assertEqual(modified[0]["b"]["id"], "body.1.conv/conv2d#0")
        self.assertTrue(any("16,16,3,3" in x and "16,16,5,5" in x for x in modified[0]["boundary_diffs"]))
        self.assertTrue(any(x.startswith("conv2d.padding") for x in modified[0]["attribute_diffs"]), modified[0])
        # Exactly that kernel and its parents: its fusion, its layer, the model.
        changed = [(c["tier"], c["b"]["id"]) for c in d["changes"]]
        self.assertEqual(len(changed), 4, changed)
        self.assertEqual({t for t, _ in changed}, {"model", "layer", "fusion", "kernel"})
        for tier in ("layer", "fusion", "kernel"):
            self.assertEqual(d["counts"][tier]["added"] + d["counts"][tier]["removed"], 0)
        self.assertGreater(d["totals"]["delta"]["params"], 0)

    def test_insert_one_block(self):
        base, three = self.model("base", NAMES, [3, 3]), self.model("three", NAMES, [3, 3, 3])
        rc, d = run_diff(base, three)
        self.assertEqual(rc, 1)
        self.assertEqual(d["counts"]["layer"]["added"], 1, d["counts"])
        self.assertEqual(d["counts"]["layer"]["removed"], 0)
        self.assertEqual(d["totals"]["delta"]["layers"], 1)
        self.assertEqual(changes(d, "layer", "added")[0]["b"]["id"], "layer:body.2")
        # The same facts in the text and Markdown renderings.
        text = subprocess.run([KDECOMP, "diff", base, three], capture_output=True, text=True, timeout=300)
        self.assertEqual(text.returncode, 1)
        self.assertRegex(text.stdout, r"layer\s+\d+\s+\d+\s+\d+\s+1\s+0\n")
        self.assertIn("added layer", text.stdout)
        self.assertIn("+ layer", text.stdout)  # the tree view marks it
        self.assertIn("layers: 2 -> 3 (+1)", text.stdout)
        md = subprocess.run([KDECOMP, "diff", base, three, "--md"], capture_output=True, text=True, timeout=300)
        self.assertEqual(md.returncode, 1)
        self.assertIn("| layer |", md.stdout)
        self.assertIn("| layers | 2 | 3 | +1 |", md.stdout)
        self.assertIn("- added layer", md.stdout)

    def test_same_model_is_identical(self):
        base = self.model("base", NAMES, [3, 3])
        rc, d = run_diff(base, base)
        self.assertEqual(rc, 0)
        self.assertTrue(d["identical"])
        self.assertEqual(d["changes"], [])

    def test_bad_input(self):
        r = subprocess.run([KDECOMP, "diff", os.path.join(self.tmp, "missing.py"), os.path.join(self.tmp, "missing.py")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("missing.py", r.stderr)
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"nodes": {}}')
        r = subprocess.run([KDECOMP, "diff", bad, bad], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a decomposition tree", r.stderr)


class CorpusPairs(unittest.TestCase):
    @large
    def test_vgg16_to_vgg19(self):
        rc, d = run_diff(corpus("11_VGG16"), corpus("12_VGG19"))
        self.assertEqual(rc, 1)
        added = changes(d, "fusion", "added")
        self.assertEqual(len(added), 3)
        self.assertEqual({c["template"] for c in added}, {"conv_relu"})
        self.assertEqual(d["counts"]["kernel"]["added"], 6)  # three conv + three relu
        for tier in ("fusion", "kernel"):
            self.assertEqual(d["counts"][tier]["removed"], 0)
        self.assertEqual(d["counts"]["layer"]["modified"], 3)  # stages 3, 4 and 5
        # The classifier is unchanged.
        self.assertEqual([c for c in d["changes"] if (c["b"] or c["a"])["module"].startswith("classifier")], [])

    @large
    def test_densenet121_to_201(self):
        rc, d = run_diff(corpus("15_DenseNet121"), corpus("16_DenseNet201"))
        self.assertEqual(rc, 1)
        # 24 + 16 more dense layers in blocks 3 and 4, each a bn-relu-conv pair of fusions.
        self.assertEqual(d["counts"]["layer"]["added"], 40)
        self.assertEqual(d["counts"]["layer"]["removed"], 0)
        self.assertEqual(d["totals"]["delta"]["layers"], 40)
        templates_a = {c["template"] for c in d["changes"] if c["tier"] == "fusion" and c["change"] != "added"}
        added_templates = {c["template"] for c in changes(d, "fusion", "added")}
        self.assertTrue(added_templates <= {"bn_relu_conv", "bn_relu", None} | templates_a, added_templates)

    @large
    def test_efficientnet_b0_to_b1(self):
        # KernelBench's B1 is a shallower network (11 MBConv blocks against B0's 38 layers).
        rc, d = run_diff(corpus("22_EfficientNetB0"), corpus("23_EfficientNetB1"))
        self.assertEqual(rc, 1)
        t = d["totals"]
        self.assertEqual((t["a"]["layers"], t["b"]["layers"]), (38, 11))
        self.assertEqual(d["counts"]["layer"]["added"], 0)
        self.assertEqual(d["counts"]["layer"]["removed"], 27)
        self.assertEqual(d["counts"]["layer"]["modified"] + d["counts"]["layer"]["moved"], 11)
        self.assertLess(t["delta"]["params"], 0)

    @large
    def test_resnet18_to_resnet101(self):
        # Basic blocks against bottlenecks: every ResNet18 block matches a bottleneck by
        # similarity, the other 25 bottlenecks are added.
        rc, d = run_diff(corpus("9_ResNet18"), corpus("10_ResNet101"))
        self.assertEqual(rc, 1)
        layers = [c for c in d["changes"] if c["tier"] == "layer"]
        modified = [c for c in layers if c["change"] == "modified"]
        self.assertEqual(len(modified), 8)
        self.assertEqual(sum(c["a"]["name"].startswith("basic_block") for c in modified), 8)
        self.assertEqual(sum(c["b"]["name"].startswith("bottleneck") for c in modified), 8)
        added = [c for c in layers if c["change"] == "added"]
        self.assertEqual(len(added), 25)
        self.assertTrue(all(c["b"]["name"].startswith("bottleneck") for c in added))
        self.assertEqual(d["counts"]["layer"]["removed"], 0)

    def test_gru_to_bidirectional(self):
        # One aten::gru kernel either way; only its bidirectional flag (and weights) differ.
        rc, d = run_diff(corpus("39_GRU"), corpus("41_GRUBidirectional"))
        self.assertEqual(rc, 1)
        kernels = changes(d, "kernel", "modified")
        self.assertEqual(len(kernels), 1)
        self.assertIn("gru.bidirectional false -> true", [x.lower() for x in kernels[0]["attribute_diffs"]])
        self.assertEqual(d["totals"]["delta"]["kernels"], 0)
        self.assertGreater(d["totals"]["delta"]["params"], 0)

    def test_netvlad_ghost_clusters(self):
        # Same ops; the ghost clusters widen the cluster weights: one fusion and three kernels
        # change shape, nothing is added or removed.
        rc, d = run_diff(corpus("47_NetVladNoGhostClusters"), corpus("46_NetVladWithGhostClusters"))
        self.assertEqual(rc, 1)
        for tier in ("fusion", "kernel"):
            self.assertEqual(d["counts"][tier]["added"] + d["counts"][tier]["removed"], 0, tier)
        self.assertEqual(d["counts"]["kernel"]["modified"], 3)
        self.assertEqual(d["counts"]["fusion"]["modified"], 1)
        self.assertEqual(d["totals"]["delta"]["params"], 8256)

    def test_mamba2_return_y_vs_final_state(self):
        # Returning the final state skips the output path: kernels and one fusion are removed.
        rc, d = run_diff(corpus("48_Mamba2ReturnY"), corpus("49_Mamba2ReturnFinalState"))
        self.assertEqual(rc, 1)
        self.assertEqual((d["totals"]["a"]["kernels"], d["totals"]["b"]["kernels"]), (20, 12))
        self.assertEqual(d["counts"]["kernel"]["removed"], 8)
        self.assertEqual(d["counts"]["kernel"]["added"], 0)
        self.assertEqual(d["counts"]["fusion"]["removed"], 1)

    def test_model_against_itself(self):
        rc, d = run_diff(corpus("4_LeNet5"), corpus("4_LeNet5"))
        self.assertEqual(rc, 0)
        for tier, counts in d["counts"].items():
            self.assertEqual(counts["unchanged"], sum(counts.values()), tier)


if __name__ == "__main__":
    unittest.main(verbosity=2)
