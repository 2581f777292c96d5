"""The exporter's check before scripting (python/kdecomp_export.py, module_list_index_failure): a
forward that indexes an nn.ModuleList or nn.Sequential with a non-literal index is one TorchScript
refuses, after compiling every submodule; the exporter traces it without trying. Each case that
the check names is also scripted here, to show that TorchScript does refuse it, and each case
it lets through is scripted to show that TorchScript takes it."""
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import kdecomp_export  # noqa: E402


class IndexedByLoopVariable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])

    def forward(self, x):
        n = 3
        for i in range(n):  # a bound in a local: not a loop the amendments unroll
            x = self.blocks[i](x)
        return x


def unrolled_by_the_amendments():
    """Indexed by loop indices the exporter's source amendments unroll into literals (a class
    of its own per call: TorchScript cannot compile a class again after it failed)."""

    class UnrolledByTheAmendments(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])
            self.gates = torch.nn.ModuleList([torch.nn.ReLU() for _ in range(2)])

        def forward(self, x):
            for i in range(3):
                x = self.blocks[i](x)
            for i, block in enumerate(self.blocks):
                x = block(x)
                if i != len(self.blocks) - 1:
                    x = self.gates[i](x)
            return x

    return UnrolledByTheAmendments()


class Inner(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Tanh())

    def forward(me, x):  # not named `self`
        n = 1
        return me.stages[n](x)


class Outer(torch.nn.Module):
    """The refused forward is a submodule's."""

    def __init__(self):
        super().__init__()
        self.inner = Inner()

    def forward(self, x):
        return self.inner(x) + 1


class LiteralAndEnumerate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(3)])
        self.table = [1, 2, 3]

    def forward(self, x):
        x = self.blocks[0](x) + self.blocks[-1](x)
        for i, block in enumerate(self.blocks):
            x = block(x) * self.table[i]  # a plain list, not a module container
        return x


class ScriptingAware(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(2)])

    def forward(self, x):
        if torch.jit.is_scripting():
            return self.blocks[0](x)
        i = 1
        return self.blocks[i](x)


class ScriptPredictionTest(unittest.TestCase):
    def assert_refused_by_torchscript(self, model):
        with self.assertRaises(Exception) as caught:
            torch.jit.script(model)
        self.assertIn("integer literal", str(caught.exception))

    def test_loop_index_into_module_list_is_named(self):
        model = IndexedByLoopVariable()
        reason = kdecomp_export.module_list_index_failure(model)
        self.assertEqual(
            reason,
            "torch.jit.script would fail: IndexedByLoopVariable.forward indexes nn.ModuleList self.blocks with a "
            "non-literal index (TorchScript takes integer literals only); not tried")
        self.assert_refused_by_torchscript(model)

    def test_loops_the_amendments_unroll_are_tried(self):
        self.assertIsNone(kdecomp_export.module_list_index_failure(unrolled_by_the_amendments()))
        self.assert_refused_by_torchscript(unrolled_by_the_amendments())  # alone
        model = unrolled_by_the_amendments()
        scripted, failure = kdecomp_export.try_script(model)
        self.assertIsNone(failure)
        x = torch.rand(2, 4)
        self.assertTrue(torch.equal(scripted(x), model(x)))

    def test_a_submodules_forward_and_its_own_receiver_name(self):
        model = Outer()
        reason = kdecomp_export.module_list_index_failure(model)
        self.assertIsNotNone(reason)
        self.assertIn("Inner.forward indexes nn.Sequential me.stages", reason)
        self.assert_refused_by_torchscript(model)

    def test_literal_indices_enumeration_and_plain_lists_pass(self):
        model = LiteralAndEnumerate()
        self.assertIsNone(kdecomp_export.module_list_index_failure(model))
        torch.jit.script(model)  # TorchScript takes it

    def test_a_forward_that_asks_is_scripting_is_left_to_torchscript(self):
        self.assertIsNone(kdecomp_export.module_list_index_failure(ScriptingAware()))

    def test_generated_code_without_source_is_left_to_torchscript(self):
        graph_module = torch.fx.symbolic_trace(IndexedByLoopVariable())  # forward generated, no file
        self.assertIsNone(kdecomp_export.module_list_index_failure(graph_module))

    def test_pytorch_modules_are_not_read(self):
        self.assertIsNone(kdecomp_export.module_list_index_failure(torch.nn.Sequential(torch.nn.Linear(2, 2))))


if __name__ == "__main__":
    unittest.main()
