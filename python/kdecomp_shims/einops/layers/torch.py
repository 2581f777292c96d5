"""einops.layers.torch stand-in (kdecomp): the modules over rearrange, reduce and repeat."""
import torch.nn as nn

from .. import rearrange, reduce, repeat

__all__ = ["Rearrange", "Reduce", "Repeat"]


class _PatternLayer(nn.Module):
    """A module holding an einops pattern and its axis lengths."""

    def __init__(self, pattern, **axes_lengths):
        super().__init__()
        self.pattern = pattern
        self.axes_lengths = axes_lengths


class Rearrange(_PatternLayer):
    def forward(self, x):
        return rearrange(x, self.pattern, **self.axes_lengths)


class Reduce(_PatternLayer):
    def __init__(self, pattern, reduction, **axes_lengths):
        super().__init__(pattern, **axes_lengths)
        self.reduction = reduction

    def forward(self, x):
        return reduce(x, self.pattern, self.reduction, **self.axes_lengths)


class Repeat(_PatternLayer):
    def forward(self, x):
        return repeat(x, self.pattern, **self.axes_lengths)
