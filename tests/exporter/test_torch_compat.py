"""The exporter's stand-ins for PyTorch APIs newer than Debian's torch 1.13
(python/kdecomp_shims/torch_compat.py): each against the math it stands for, in eager mode and
scripted (the exporter scripts models first)."""
import math
import os
import sys
import unittest

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "kdecomp_shims"))
import torch_compat  # noqa: E402


def attention_by_hand(q, k, v, mask=None, scale=None):
    s = q @ k.transpose(-2, -1) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s + mask
    return s.softmax(-1) @ v


class TorchCompatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.installed = torch_compat.install()

    def setUp(self):
        torch.manual_seed(0)
        self.q, self.k, self.v = (torch.randn(2, 4, 5, 8) for _ in range(3))

    def test_installs_only_what_torch_lacks(self):
        for owner, name, stand_in in torch_compat._STAND_INS:
            qualified = f"{owner.__name__}.{name}"
            # Torch's own where it has one, the stand-in where it did not.
            self.assertIs(getattr(owner, name) is stand_in, qualified in self.installed, qualified)
        # A second install finds everything present and changes nothing.
        self.assertEqual(torch_compat.install(), [])

    def test_attention_matches_the_math(self):
        sdpa = torch_compat.scaled_dot_product_attention
        torch.testing.assert_close(sdpa(self.q, self.k, self.v), attention_by_hand(self.q, self.k, self.v))
        torch.testing.assert_close(sdpa(self.q, self.k, self.v, scale=0.5), attention_by_hand(self.q, self.k, self.v, scale=0.5))
        additive = torch.randn(5, 5)
        torch.testing.assert_close(sdpa(self.q, self.k, self.v, attn_mask=additive), attention_by_hand(self.q, self.k, self.v, additive))

    def test_causal_and_boolean_masks_agree(self):
        sdpa = torch_compat.scaled_dot_product_attention
        causal = sdpa(self.q, self.k, self.v, is_causal=True)
        keep = torch.ones(5, 5, dtype=torch.bool).tril()
        torch.testing.assert_close(causal, sdpa(self.q, self.k, self.v, attn_mask=keep))
        additive = torch.zeros(5, 5).masked_fill(~keep, float("-inf"))
        torch.testing.assert_close(causal, attention_by_hand(self.q, self.k, self.v, additive))
        # The first query sees only the first key.
        torch.testing.assert_close(causal[..., 0, :], self.v[..., 0, :])

    def test_grouped_query_attention_repeats_key_value_heads(self):
        k, v = self.k[:, :2], self.v[:, :2]
        got = torch_compat.scaled_dot_product_attention(self.q, k, v, enable_gqa=True)
        want = attention_by_hand(self.q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1))
        torch.testing.assert_close(got, want)

    def test_rms_norm(self):
        x = torch.randn(3, 4, 6)
        w = torch.randn(6)
        want = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
        torch.testing.assert_close(torch_compat.rms_norm(x, [6], w, 1e-5), want)
        both = x / torch.sqrt(x.pow(2).mean((-2, -1), keepdim=True) + torch.finfo(torch.float32).eps)
        torch.testing.assert_close(torch_compat.rms_norm(x, [4, 6]), both)

    def test_scripted_model_uses_them_as_plain_ops(self):
        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.norm = torch_compat.RMSNorm(8)
                self.norm.weight.data.uniform_(0.5, 1.5)

            def forward(self, q, k, v):
                return F.scaled_dot_product_attention(self.norm(q), k, v, is_causal=True)

        model = torch_compat.compile(Block().eval())
        scripted = torch.jit.script(model)
        with torch.no_grad():
            torch.testing.assert_close(scripted(self.q, self.k, self.v), model(self.q, self.k, self.v))
        kinds = {n.kind() for n in scripted.graph.nodes()}
        self.assertNotIn("prim::PythonOp", kinds)

    def test_compiler_namespace(self):
        from torch.compiler import disable, is_compiling  # noqa: F401 (importable as in 2.x)

        f = lambda x: x * 2  # noqa: E731
        self.assertIs(torch.compiler.disable(f), f)
        self.assertIs(torch.compiler.disable(recursive=False)(f), f)

        class Gate(torch.nn.Module):
            def forward(self, x):
                if torch.compiler.is_compiling():
                    return x
                return x + 1

        scripted = torch.jit.script(Gate())
        self.assertTrue(torch.equal(scripted(torch.zeros(2)), torch.ones(2)))

    def test_compile_returns_what_it_is_given(self):
        f = lambda x: x + 1  # noqa: E731
        self.assertIs(torch_compat.compile(f), f)
        self.assertIs(torch_compat.compile(mode="max-autotune")(f), f)


if __name__ == "__main__":
    unittest.main()
