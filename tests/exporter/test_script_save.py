"""Scripting that torch.jit.save can finish (python/kdecomp_export.py): a parameter without
annotation that defaults to None is compiled as Optional[Tensor] (kdecomp_script_source.py),
and a scripted module whose code cannot be printed is found before any parameter is written
(unsaveable_reason). Each case is checked against TorchScript itself: what the rule changes is
shown to fail without it."""
import io
import os
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import kdecomp_export  # noqa: E402


def hidden_defaults_to_none():
    """A model of a class of its own: TorchScript keeps a class it compiled, so a class scripted
    without the rule would be reused with the rule."""

    class HiddenDefaultsToNone(torch.nn.Module):
        """The pattern of a recurrent model: an optional initial state, unannotated."""

        def __init__(self):
            super().__init__()
            self.cell = torch.nn.Linear(8, 4)

        def forward(self, x, h0=None, scale=None):
            if h0 is None:
                h0 = torch.zeros(x.shape[0], 4)
            out = torch.tanh(self.cell(torch.cat((x, h0), 1)))
            if scale is not None:
                out = out * scale
            return out

    return HiddenDefaultsToNone()


class MaskedInner(torch.nn.Module):
    def forward(self, x, mask=None):
        return x if mask is None else x.masked_fill(mask, 0.0)


class Outer(torch.nn.Module):
    """The unannotated None default is a submodule's, passed explicitly."""

    def __init__(self):
        super().__init__()
        self.inner = MaskedInner()

    def forward(self, x):
        return self.inner(x, None) + 1


class AnnotatedAndTypeCommented(torch.nn.Module):
    def forward(self, x, y: int = 3, z=None):
        # type: (Tensor, int, Optional[Tensor]) -> Tensor
        return x * y if z is None else x * y + z


class ScriptSaveTest(unittest.TestCase):
    def test_unannotated_none_default_scripts_saves_and_loads(self):
        model = hidden_defaults_to_none()
        with self.assertRaises(RuntimeError):  # TorchScript alone: scripts, then cannot save
            torch.jit.save(torch.jit.script(hidden_defaults_to_none()), io.BytesIO())
        scripted, failure = kdecomp_export.try_script(model)
        self.assertIsNone(failure)
        self.assertIsNone(kdecomp_export.unsaveable_reason(scripted))
        self.assertIn("Tensor? h0=None, Tensor? scale=None", str(scripted.forward.schema))
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        x, h0 = torch.rand(2, 4), torch.rand(2, 4)
        torch.testing.assert_close(loaded(x, h0), model(x, h0), rtol=0, atol=0)
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)

    def test_a_submodules_none_default(self):
        scripted, failure = kdecomp_export.try_script(Outer())
        self.assertIsNone(failure)
        self.assertIsNone(kdecomp_export.unsaveable_reason(scripted))
        torch.jit.save(scripted, io.BytesIO())

    def test_a_type_comment_keeps_its_types(self):
        scripted, failure = kdecomp_export.try_script(AnnotatedAndTypeCommented())
        self.assertIsNone(failure)
        self.assertIn("int y=3", str(scripted.forward.schema))
        torch.jit.save(scripted, io.BytesIO())

    def test_the_parser_is_restored(self):
        import torch.jit.frontend as frontend

        before = frontend.parse_def
        kdecomp_export.try_script(hidden_defaults_to_none())
        self.assertIs(frontend.parse_def, before)

    def test_unprintable_code_is_found_before_writing(self):
        scripted = torch.jit.script(hidden_defaults_to_none())  # without the rule: an undefined default
        reason = kdecomp_export.unsaveable_reason(scripted)
        self.assertIsNotNone(reason)
        self.assertTrue(reason.startswith("torch.jit.save of the scripted module would fail: RuntimeError:"), reason)

    def test_export_falls_back_to_a_trace_without_writing_the_failed_save(self):
        scripted = torch.jit.script(hidden_defaults_to_none())
        model = hidden_defaults_to_none()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.pt")
            method, reason = kdecomp_export.export_torchscript(
                model, [torch.rand(2, 4), torch.rand(2, 4)], path, {}, "auto", scripted=scripted)
            self.assertEqual(method, "trace")
            self.assertIn("would fail", reason)
            self.assertTrue(os.path.isfile(path))


if __name__ == "__main__":
    unittest.main()
