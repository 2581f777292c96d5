"""Minimal einops stand-in used by the kdecomp exporter when the real package is missing.

Only `rearrange` is provided (what the KernelBench corpus needs), built on reshape/permute so
that scripting and tracing see ordinary aten ops. Supported patterns: named axes, parenthesised
groups on either side, one `...` per side, and axis sizes given as keyword arguments.
"""

import math

__all__ = ["rearrange"]
__kdecomp_shim__ = True


# A standalone `...` stands for several axes, each its own group; `(...)` is one merged group.
_STANDALONE_ELLIPSIS = ("...",)


def _parse_side(side):
    """'b (c l) ... h' -> [['b'], ['c', 'l'], ['...'], ['h']]"""
    groups, current, depth = [], None, 0
    for token in side.replace("(", " ( ").replace(")", " ) ").split():
        if token == "(":
            if depth:
                raise ValueError(f"nested parentheses in einops pattern side '{side}'")
            depth, current = 1, []
        elif token == ")":
            if not depth:
                raise ValueError(f"unbalanced ')' in einops pattern side '{side}'")
            groups.append(current)
            depth, current = 0, None
        elif depth:
            current.append(token)
        elif token == "...":
            groups.append(_STANDALONE_ELLIPSIS)
        else:
            groups.append([token])
    if depth:
        raise ValueError(f"unbalanced '(' in einops pattern side '{side}'")
    return groups


def _expand_ellipsis(groups, ellipsis_names):
    out = []
    for group in groups:
        if group is _STANDALONE_ELLIPSIS:
            out.extend([name] for name in ellipsis_names)
            continue
        expanded = []
        for name in group:
            expanded.extend(ellipsis_names if name == "..." else [name])
        out.append(expanded)
    return out


def rearrange(tensor, pattern, **axes_lengths):
    if isinstance(tensor, (list, tuple)):
        import torch

        tensor = torch.stack(list(tensor))
    if "->" not in pattern:
        raise ValueError(f"einops pattern '{pattern}' has no '->'")
    lhs, rhs = (_parse_side(s.strip()) for s in pattern.split("->"))
    lhs_has_ellipsis = any(g is _STANDALONE_ELLIPSIS for g in lhs)
    n_ellipsis = tensor.dim() - len(lhs) + 1 if lhs_has_ellipsis else 0
    if n_ellipsis < 0 or (not lhs_has_ellipsis and len(lhs) != tensor.dim()):
        raise ValueError(f"pattern '{pattern}' does not match a tensor of rank {tensor.dim()}")
    ellipsis_names = [f"...{i}" for i in range(n_ellipsis)]
    lhs = _expand_ellipsis(lhs, ellipsis_names)
    rhs = _expand_ellipsis(rhs, ellipsis_names)

    sizes = dict(axes_lengths)
    for group, dim_size in zip(lhs, tensor.shape):
        unknown = [n for n in group if n not in sizes]
        known = math.prod(sizes[n] for n in group if n in sizes)
        if len(unknown) > 1:
            raise ValueError(f"cannot infer sizes of {unknown} in '{pattern}'")
        if unknown:
            if dim_size % known:
                raise ValueError(f"axis of size {dim_size} not divisible by {known} in '{pattern}'")
            sizes[unknown[0]] = dim_size // known
        elif known != dim_size:
            raise ValueError(f"axis of size {dim_size} does not match {group} in '{pattern}'")

    elementary = [n for g in lhs for n in g]
    rhs_order = [n for g in rhs for n in g]
    if sorted(elementary) != sorted(rhs_order):
        raise ValueError(f"axes differ between the sides of '{pattern}'")
    x = tensor.reshape([sizes[n] for n in elementary])
    permutation = [elementary.index(n) for n in rhs_order]
    if permutation != list(range(len(permutation))):
        x = x.permute(permutation)
    return x.reshape([math.prod(sizes[n] for n in g) for g in rhs])
