"""Reference implementations of PyTorch APIs newer than the torch this exporter runs (Debian's
1.13), installed only where torch lacks them, so that a model written for a newer PyTorch runs,
scripts and decomposes here. Each follows the math PyTorch documents for the API (the
"equivalent to" code of its docs), written in TorchScript so that scripting compiles it into the
model's graph as plain ops; none changes what an existing torch function does.

| API | since | here |
|---|---|---|
| torch.nn.functional.scaled_dot_product_attention | 2.0 | softmax(Q K^T * scale + mask) V, dropout as documented |
| torch.nn.functional.rms_norm, torch.nn.RMSNorm | 2.4 | x * rsqrt(mean(x^2) + eps) * weight |
| torch.compile | 2.0 | the model or function itself (compilation changes no value) |
| torch.compiler.disable, is_compiling | 2.1 | the function itself; False |
"""
import math
import sys
import types
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Optional[Tensor] = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: Optional[float] = None,
    enable_gqa: bool = False,
) -> Tensor:
    scale_factor = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    if enable_gqa:
        # Grouped-query attention: each key/value head serves query.size(-3) // key.size(-3) heads.
        key = key.repeat_interleave(query.size(-3) // key.size(-3), -3)
        value = value.repeat_interleave(query.size(-3) // value.size(-3), -3)
    attn = torch.matmul(query, key.transpose(-2, -1)) * scale_factor
    if is_causal:
        keep = torch.ones(query.size(-2), key.size(-2), dtype=torch.bool, device=query.device).tril()
        attn = attn.masked_fill(keep.logical_not(), float("-inf"))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            attn = attn.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            attn = attn + attn_mask
    attn = torch.softmax(attn, dim=-1)
    if dropout_p > 0.0:
        # As documented: the function drops out whenever dropout_p > 0, in eval mode too.
        attn = torch.dropout(attn, dropout_p, True)
    return torch.matmul(attn, value)


def _machine_epsilon(dtype: torch.dtype) -> float:
    # torch.finfo(dtype).eps, which TorchScript cannot call.
    if dtype == torch.float64:
        return 2.220446049250313e-16
    if dtype == torch.float16:
        return 0.0009765625
    if dtype == torch.bfloat16:
        return 0.0078125
    return 1.1920928955078125e-07


def rms_norm(input: Tensor, normalized_shape: List[int], weight: Optional[Tensor] = None, eps: Optional[float] = None) -> Tensor:
    dims: List[int] = []
    for i in range(len(normalized_shape)):
        dims.append(-1 - i)
    epsilon = _machine_epsilon(input.dtype) if eps is None else eps
    result = input * torch.rsqrt(input.pow(2).mean(dims, keepdim=True) + epsilon)
    if weight is not None:
        result = result * weight
    return result


class RMSNorm(torch.nn.Module):
    """torch.nn.RMSNorm: normalises over the last len(normalized_shape) dimensions."""

    def __init__(self, normalized_shape, eps: Optional[float] = None, elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape: List[int] = [int(d) for d in normalized_shape]
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = torch.nn.Parameter(torch.ones(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, x: Tensor) -> Tensor:
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{tuple(self.normalized_shape)}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


def compile(model=None, **_options):
    """torch.compile: compilation changes no value, so the model (or function) is itself."""
    if model is None:
        return lambda m: m
    return model


def disable(fn=None, recursive: bool = True):
    """torch.compiler.disable: nothing is compiled here, so the function itself."""
    if fn is None:
        return lambda f: f
    return fn


def is_compiling() -> bool:
    return False


def _compiler_module():
    module = types.ModuleType("torch.compiler")
    module.disable = disable
    module.is_compiling = is_compiling
    module.is_dynamo_compiling = is_compiling
    return module


# (where torch keeps it, attribute, the stand-in)
_STAND_INS = [
    (F, "scaled_dot_product_attention", scaled_dot_product_attention),
    (F, "rms_norm", rms_norm),
    (torch.nn, "RMSNorm", RMSNorm),
    (torch, "compile", compile),
    (torch, "compiler", _compiler_module()),
]


def install():
    """Installs every stand-in whose API this torch lacks; returns their qualified names."""
    installed = []
    for owner, name, stand_in in _STAND_INS:
        if not hasattr(owner, name):
            setattr(owner, name, stand_in)
            if isinstance(stand_in, types.ModuleType):
                sys.modules[stand_in.__name__] = stand_in  # `from torch.compiler import disable`
            installed.append(f"{owner.__name__}.{name}")
    return installed
