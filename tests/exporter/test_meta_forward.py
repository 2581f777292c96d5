"""The exporter's meta-device forward (python/kdecomp_export.py): no eager forward runs in Python
where the meta run describes the outputs (a scripted model runs none, a trace only the forward
it records); the meta run also estimates the forward's peak memory. Where it cannot serve (an
ONNX export, an op the meta device lacks, Python that reads data), the eager forward runs as
before."""
import json
import os
import sys
import tempfile
import textwrap
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import kdecomp_export  # noqa: E402

MIB = 1 << 20


class Chain(torch.nn.Module):
    """Three activations of 4 MiB, each dropped once the next exists: at most two are alive."""

    def forward(self, x):
        x = x * 2
        x = x + 1
        return x.relu()


class Nested(torch.nn.Module):
    def forward(self, x):
        return {"sum": x.sum(1), "parts": [x[:, :2], x.t()]}


class CachesOnFirstCall(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = None

    def forward(self, x):
        if self.scale is None:
            self.scale = 2.0
        return x * self.scale


class ReadsData(torch.nn.Module):
    def forward(self, x):
        n = int(x.abs().max().item() > 0) + 1  # .item() reads data: the meta device cannot
        return x.repeat(n, 1)


class MetaForwardTest(unittest.TestCase):
    def test_live_bytes_peak_counts_tensors_alive_at_once(self):
        x = torch.randn(1024, 1024)  # 4 MiB
        run = kdecomp_export.meta_forward(Chain(), [x])
        self.assertIsNotNone(run)
        # Each op's output is made while its operand is alive; the input is not counted.
        self.assertEqual(run.live_peak_bytes, 8 * MIB)
        self.assertEqual([tuple(t.shape) for t in run.outputs], [(1024, 1024)])
        self.assertFalse(run.nested)

    def test_views_share_their_storage(self):
        class Views(torch.nn.Module):
            def forward(self, x):
                y = x + 1
                return y.view(-1), y.t(), y[0]

        run = kdecomp_export.meta_forward(Views(), [torch.randn(512, 512)])
        self.assertEqual(run.live_peak_bytes, 512 * 512 * 4)

    def test_nested_outputs_are_described_as_the_eager_forward_would(self):
        x = torch.randn(3, 4)
        run = kdecomp_export.meta_forward(Nested(), [x])
        eager = Nested()(x)
        self.assertTrue(run.nested)
        self.assertEqual(run.structure, kdecomp_export.output_structure(eager))
        self.assertEqual([tuple(t.shape) for t in run.outputs],
                         [tuple(t.shape) for t in kdecomp_export.flatten_tensors(eager)])

    def test_a_forward_that_assigns_module_attributes_is_seen(self):
        self.assertTrue(kdecomp_export.meta_forward(CachesOnFirstCall(), [torch.randn(2, 3)]).mutates_module)
        self.assertFalse(kdecomp_export.meta_forward(Chain(), [torch.randn(2, 3)]).mutates_module)

    def test_a_forward_that_reads_data_has_no_meta_run(self):
        self.assertIsNone(kdecomp_export.meta_forward(ReadsData(), [torch.randn(2, 3)]))


def write_model(directory, body):
    path = os.path.join(directory, "m.py")
    with open(path, "w") as f:
        f.write(textwrap.dedent(body))
    return path


MODEL = """
import torch
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 32)
    def forward(self, x):
        return torch.relu(self.fc(x))
def get_inputs():
    return [torch.randn(16, 64)]
def get_init_inputs():
    return []
"""

READS_DATA_MODEL = """
import torch
class Model(torch.nn.Module):
    def forward(self, x):
        n = int(x.abs().max().item() > 0) + 1
        return x.repeat(n, 1)
def get_inputs():
    return [torch.randn(4, 8)]
def get_init_inputs():
    return []
"""


FIRST_CALL_MODEL = """
import torch
from typing import Optional
class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.cache = None
    def forward(self, x):
        if self.cache is None:
            self.cache = torch.ones(8)
        return self.fc(x) + self.cache
def get_inputs():
    return [torch.randn(4, 8)]
def get_init_inputs():
    return []
"""


class RunExportTest(unittest.TestCase):
    def export(self, body, *flags, env=None):
        directory = tempfile.mkdtemp(prefix="kdecomp-meta-forward-test-")
        self.addCleanup(lambda: __import__("shutil").rmtree(directory, ignore_errors=True))
        model = write_model(directory, body)
        out = os.path.join(directory, "export")
        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            self.assertEqual(kdecomp_export.main([model, "-o", out, *flags]), 0)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        with open(os.path.join(out, "meta.json")) as f:
            return json.load(f)

    def test_a_scripted_model_runs_no_eager_forward(self):
        meta = self.export(MODEL)
        self.assertEqual(meta["method"], "script")
        self.assertNotIn("forward_s", meta["timings"])
        self.assertTrue(meta["peak_rss_estimated"])
        self.assertLess(meta["peak_rss_at_least_bytes"], meta["peak_rss_bytes"])  # no margin
        self.assertGreater(meta["peak_rss_at_least_bytes"], 0)
        self.assertEqual(meta["outputs"], [{"name": "output0", "shape": [16, 32], "dtype": "float32"}])

    def test_the_same_description_as_the_eager_forward(self):
        fast = self.export(MODEL)
        eager = self.export(MODEL, env={"KDECOMP_EXPORT_EAGER_FORWARD": "1"})
        self.assertIn("forward_s", eager["timings"])
        self.assertNotIn("peak_rss_estimated", eager)
        self.assertNotIn("peak_rss_at_least_bytes", eager)
        for key in ("inputs", "outputs", "output_structure", "method"):
            self.assertEqual(fast[key], eager[key], key)

    def test_a_trace_runs_only_the_forward_it_records(self):
        meta = self.export(MODEL, "--method", "trace")
        self.assertEqual(meta["method"], "trace")
        self.assertNotIn("forward_s", meta["timings"])
        self.assertEqual(meta["outputs"], [{"name": "output0", "shape": [16, 32], "dtype": "float32"}])

    def test_a_forward_that_sets_state_on_its_first_call_runs_eagerly_before_scripting(self):
        meta = self.export(FIRST_CALL_MODEL)
        self.assertIn("forward_s", meta["timings"])
        self.assertEqual(meta["method"], "script")  # it scripts once its first call set the cache

    def test_onnx_and_a_data_reading_forward_run_eagerly(self):
        self.assertIn("forward_s", self.export(READS_DATA_MODEL)["timings"])
        self.assertIn("forward_s", self.export(MODEL, "--onnx")["timings"])


if __name__ == "__main__":
    unittest.main()
