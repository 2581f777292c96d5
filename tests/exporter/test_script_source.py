"""The source amendments that let TorchScript compile what Python runs
(python/kdecomp_script_source.py). Each rule is checked twice against TorchScript itself: the
pattern fails to script without the amendments, and with them it scripts and the scripted module
gives the eager module's outputs bit for bit. Where a rule must not apply, the failure stays.
TorchScript keeps every class it compiled (and a class whose compilation failed cannot be
compiled again), so each case builds its classes afresh."""
import os
import sys
import unittest

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import kdecomp_script_source as source  # noqa: E402

SCALE = 0.5  # a global TorchScript refuses as a value
SHIFT = 2
CLAMP_TO_UNIT = True
PAD_MODE = "constant"


def int_literals_for_floats():

    class IntLiterals(torch.nn.Module):

        def forward(self, x):
            y = F.hardtanh(x, min_val=-1, max_val=1)  # a Python function's float parameters
            return F.pad(y, [1, 1], "constant", 0)  # a builtin's float? parameter, positional

    return IntLiterals()


def global_constants():

    class GlobalConstants(torch.nn.Module):

        def forward(self, x):
            SHIFT = 3  # a local of the same name is the local
            y = x * SCALE + SHIFT
            if CLAMP_TO_UNIT:
                y = y.clamp(0, 1)
            return F.pad(y, [1, 1], PAD_MODE)

    return GlobalConstants()


def factory_with_requires_grad():

    class FactoryWithRequiresGrad(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.rand(4))

        def forward(self, x):
            return x + torch.cat((self.bias, torch.zeros_like(self.bias, requires_grad=False)))

    return FactoryWithRequiresGrad()


def lambda_attribute(argument_used_twice=False):

    class Block(torch.nn.Module):
        """The minGPT pattern: an MLP as a lambda over a ModuleDict."""

        def __init__(self):
            super().__init__()
            self.norm = torch.nn.LayerNorm(8)
            self.mlp = torch.nn.ModuleDict(dict(fc=torch.nn.Linear(8, 16), proj=torch.nn.Linear(16, 8)))
            m = self.mlp
            if argument_used_twice:
                self.mlpf = lambda x: m.proj(torch.relu(m.fc(x))) + x
            else:
                self.mlpf = lambda x: m.proj(torch.relu(m.fc(x)))
            self.scaled = lambda x: self.norm(x) * SHIFT

        def forward(self, x):
            return x + self.mlpf(self.norm(x)) + self.scaled(x)

    class Outer(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.Sequential(Block(), Block())

        def forward(self, x):
            return self.blocks(x)

    return Outer()


def float_constant_holding_int():
    return torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Hardtanh(-2, 2))


def helper_called_with_ints():

    def window_partition(x, window_size, flatten):
        # Unannotated: TorchScript takes window_size and flatten to be Tensors.
        B, L = x.shape
        x = x.view(B, L // window_size, window_size)
        return x.flatten(1) if flatten else x

    class Windows(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.window_size = 4

        def forward(self, x):
            return window_partition(x, self.window_size, True) * 2

    return Windows()


def checkpoint_switch(flags=(False,)):

    class Layer(torch.nn.Module):

        def __init__(self, use_checkpoint):
            super().__init__()
            self.use_checkpoint = use_checkpoint
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x):
            if self.use_checkpoint:
                x = checkpoint.checkpoint(self.fc, x)  # noqa: F821 (never imported: never run)
            else:
                x = self.fc(x)
            return x

    return torch.nn.Sequential(*[Layer(flag) for flag in flags])


def loop_index_read_after():

    class ReadsItsLastIndex(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(2)])

        def forward(self, x):
            for i in range(2):
                x = self.blocks[i](x)
            return x * i  # the loop's last index: unrolled, `i` would be unbound

    return ReadsItsLastIndex()


def script_plain(model):
    try:
        torch.jit.script(model)
    except Exception as exc:
        return str(exc)
    return None


def argument_types_of(model, inputs):
    """What the exporter's meta run records: the model run on meta tensors."""
    types_seen = source.ArgumentTypes()
    with torch.no_grad(), types_seen.recording():
        model(*[t.to("meta") for t in inputs])
    return types_seen


class ScriptSourceTest(unittest.TestCase):

    def assert_scripts_alike(self, make, inputs, with_argument_types=False):
        self.assertIsNotNone(script_plain(make()), "TorchScript alone scripts this: the case shows nothing")
        model = make().eval()
        argument_types = argument_types_of(make().eval(), inputs) if with_argument_types else None
        with source.scriptable_source(model, argument_types):
            scripted = torch.jit.script(model)
        with torch.no_grad():
            expected = model(*inputs)
            actual = scripted(*inputs)
        self.assertTrue(torch.equal(expected, actual))
        return scripted

    def assert_still_refused(self, model, message):
        """Where no rule applies, TorchScript's own error stays."""
        with self.assertRaisesRegex(Exception, message):
            with source.scriptable_source(model):
                torch.jit.script(model)

    def test_int_literals_for_float_parameters(self):
        scripted = self.assert_scripts_alike(int_literals_for_floats, [torch.randn(3, 5) * 3])
        self.assertIn("(x, -1., 1., False, )", scripted.code)
        self.assertIn('"constant", 0.)', scripted.code)

    def test_global_constants_are_literals(self):
        self.assert_scripts_alike(global_constants, [torch.randn(3, 5)])

    def test_requires_grad_no_builtin_takes_is_dropped(self):
        self.assert_scripts_alike(factory_with_requires_grad, [torch.randn(2, 8)])

    def test_lambda_attributes_are_inlined(self):
        scripted = self.assert_scripts_alike(lambda_attribute, [torch.randn(2, 8)])
        code = getattr(scripted.blocks, "0").code
        self.assertIn("proj = mlp.proj", code)  # the closure's ModuleDict, by its path
        self.assertIn("torch.mul((norm0).forward(x, ), 2)", code)  # a closure on self; a global

    def test_lambda_argument_used_twice_is_not_duplicated(self):
        # `self.mlpf(self.norm(x))` with x used twice in the lambda would run self.norm twice.
        self.assert_still_refused(lambda_attribute(argument_used_twice=True), "mlpf")

    def test_float_constant_holding_int(self):
        model = float_constant_holding_int()
        self.assert_scripts_alike(float_constant_holding_int, [torch.randn(2, 8) * 4])
        with source.scriptable_source(model):
            self.assertEqual(type(model[1].min_val), float)
        self.assertEqual(type(model[1].min_val), int)  # the model is as it was

    def test_helper_parameters_typed_by_their_calls(self):
        self.assert_scripts_alike(helper_called_with_ints, [torch.randn(2, 16)], with_argument_types=True)

    def test_helper_without_a_run_stays_unscriptable(self):
        self.assert_still_refused(helper_called_with_ints(), "window_size")

    def test_branch_decided_by_module_settings(self):
        self.assert_scripts_alike(checkpoint_switch, [torch.randn(2, 8)])

    def test_branch_settings_that_differ_between_modules_stay(self):
        self.assert_still_refused(checkpoint_switch(flags=(False, True)), "checkpoint")

    def test_loop_index_read_after_the_loop_is_not_unrolled(self):
        self.assert_still_refused(loop_index_read_after(), "integer literal")

    def test_parameters_called_with_mixed_types_are_not_typed(self):
        def helper(x, k):
            return x

        types_seen = source.ArgumentTypes()
        with types_seen.recording():
            helper(torch.ones(1), 2)
            helper(torch.ones(1), (3, 4))
            helper(torch.ones(1), None)
        self.assertIsNone(types_seen.annotation_for(helper, "k", False))
        self.assertIsNone(types_seen.annotation_for(helper, "x", False))  # a Tensor: TorchScript's default
        with types_seen.recording():
            helper(2, [torch.Size([2, 3])])
        self.assertIsNone(types_seen.annotation_for(helper, "x", False))  # Tensor and int

        def sized(x, size=None):
            return x.view(size)

        types_seen = source.ArgumentTypes()
        with types_seen.recording():
            sized(torch.ones(6), (2, 3))
        self.assertEqual(types_seen.annotation_for(sized, "size", True), "Optional[Tuple[int, int]]")

    def test_the_parser_is_restored(self):
        import torch.jit.frontend as frontend

        before = frontend.parse_def
        with source.scriptable_source(global_constants()):
            self.assertIsNot(frontend.parse_def, before)
        self.assertIs(frontend.parse_def, before)


if __name__ == "__main__":
    unittest.main()
