"""The exporter's einops stand-in (python/kdecomp_shims/einops), used when einops is missing:
rearrange, reduce and repeat against the plain torch ops they stand for."""
import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "kdecomp_shims"))
import einops  # noqa: E402
from einops.layers.torch import Rearrange, Reduce, Repeat  # noqa: E402


class EinopsShimTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.x = torch.randn(2, 8, 4, 6)

    def test_it_is_the_stand_in(self):
        self.assertTrue(getattr(einops, "__kdecomp_shim__", False))

    def test_rearrange_patches(self):
        got = einops.rearrange(self.x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=2, p2=3)
        want = self.x.reshape(2, 8, 2, 2, 2, 3).permute(0, 2, 4, 3, 5, 1).reshape(2, 4, 48)
        self.assertTrue(torch.equal(got, want))

    def test_reduce(self):
        self.assertTrue(torch.equal(einops.reduce(self.x, "b c h w -> b c", "max"), self.x.amax((2, 3))))
        self.assertTrue(torch.allclose(einops.reduce(self.x, "b c h w -> b h w", "mean"), self.x.mean(1)))
        pooled = einops.reduce(self.x, "b c (h 2) (w 2) -> b c h w", "sum")
        self.assertTrue(torch.allclose(pooled, self.x.reshape(2, 8, 2, 2, 3, 2).sum((3, 5))))
        # Kept axes in another order, and a literal axis of size 1.
        self.assertTrue(torch.allclose(einops.reduce(self.x, "b c h w -> c b", "min"), self.x.amin((2, 3)).t()))
        self.assertEqual(einops.reduce(self.x, "b c h w -> b c 1 1", "mean").shape, (2, 8, 1, 1))
        with self.assertRaises(ValueError):
            einops.reduce(self.x, "b c h w -> b c", "median")

    def test_repeat(self):
        v = torch.arange(6.0).reshape(2, 3)
        self.assertTrue(torch.equal(einops.repeat(v, "b d -> b n d", n=4), v.unsqueeze(1).expand(2, 4, 3)))
        self.assertTrue(torch.equal(einops.repeat(v, "b d -> (b r) d", r=2), v.repeat_interleave(2, dim=0)))
        self.assertTrue(torch.equal(einops.repeat(v, "b d -> d (r b)", r=2), v.t().repeat(1, 2)))
        with self.assertRaises(ValueError):
            einops.repeat(v, "b d -> b n d")  # the new axis needs a size

    def test_layers(self):
        self.assertTrue(torch.equal(Rearrange("b c h w -> b (c h w)")(self.x), self.x.flatten(1)))
        self.assertTrue(torch.allclose(Reduce("b c h w -> b c", "mean")(self.x), self.x.mean((2, 3))))
        self.assertEqual(Repeat("b c h w -> b c h w k", k=2)(self.x).shape, (2, 8, 4, 6, 2))


if __name__ == "__main__":
    unittest.main()
