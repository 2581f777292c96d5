"""Minimal einops stand-in used by the kdecomp exporter when the real package is missing.

`rearrange`, `reduce` and `repeat` (and the `einops.layers.torch` modules over them), built on
reshape/permute/reductions/expand so that scripting and tracing see ordinary aten ops. Supported
patterns: named axes, parenthesised groups on either side, one `...` per side, and axis sizes
given as keyword arguments; reductions "mean", "sum", "max", "min", "prod".
"""

import math

__all__ = ["rearrange", "reduce", "repeat"]
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


def _sides(tensor, pattern, axes_lengths):
    """The pattern's two sides as groups of elementary axes, `...` expanded, and the size of
    every axis of the left side (from the tensor and the keyword sizes)."""
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
    # An anonymous axis of literal size on the left ("(h 2)") gets a name of its own.
    anonymous = 0
    for group in lhs:
        for i, name in enumerate(group):
            if name.isdigit():
                group[i] = f"{name}#{anonymous}"
                sizes[group[i]] = int(name)
                anonymous += 1
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
    # A group of one literal size ("1" or "()") stands for an axis of that size.
    for group in rhs:
        for name in group:
            if name.isdigit():
                sizes[name] = int(name)
    return lhs, rhs, sizes


def _as_tensor(tensor):
    if isinstance(tensor, (list, tuple)):
        import torch

        return torch.stack(list(tensor))
    return tensor


def rearrange(tensor, pattern, **axes_lengths):
    tensor = _as_tensor(tensor)
    lhs, rhs, sizes = _sides(tensor, pattern, axes_lengths)
    elementary = [n for g in lhs for n in g]
    rhs_order = [n for g in rhs for n in g if not n.isdigit()]
    if sorted(elementary) != sorted(rhs_order):
        raise ValueError(f"axes differ between the sides of '{pattern}'")
    x = tensor.reshape([sizes[n] for n in elementary])
    permutation = [elementary.index(n) for n in rhs_order]
    if permutation != list(range(len(permutation))):
        x = x.permute(permutation)
    return x.reshape([math.prod(sizes[n] for n in g) for g in rhs])


def reduce(tensor, pattern, reduction, **axes_lengths):
    tensor = _as_tensor(tensor)
    lhs, rhs, sizes = _sides(tensor, pattern, axes_lengths)
    elementary = [n for g in lhs for n in g]
    kept = [n for g in rhs for n in g if not n.isdigit()]
    if any(n not in elementary for n in kept):
        raise ValueError(f"reduce cannot add axes: '{pattern}'")
    reduced = [i for i, n in enumerate(elementary) if n not in kept]
    x = tensor.reshape([sizes[n] for n in elementary])
    if reduced:
        if reduction == "mean":
            x = x.mean(dim=reduced)
        elif reduction == "sum":
            x = x.sum(dim=reduced)
        elif reduction in ("max", "min", "prod"):
            for dim in reversed(reduced):
                x = getattr(x, "amax" if reduction == "max" else "amin" if reduction == "min" else "prod")(dim)
        else:
            raise ValueError(f"einops reduction '{reduction}' is not supported by kdecomp's stand-in")
    remaining = [n for n in elementary if n in kept]
    permutation = [remaining.index(n) for n in kept]
    if permutation != list(range(len(permutation))):
        x = x.permute(permutation)
    return x.reshape([math.prod(sizes[n] for n in g) for g in rhs])


def repeat(tensor, pattern, **axes_lengths):
    tensor = _as_tensor(tensor)
    lhs, rhs, sizes = _sides(tensor, pattern, axes_lengths)
    elementary = [n for g in lhs for n in g]
    wanted = [n for g in rhs for n in g]
    missing = [n for n in wanted if n not in sizes]
    if missing:
        raise ValueError(f"repeat needs the sizes of {missing} in '{pattern}'")
    if any(n not in wanted for n in elementary):
        raise ValueError(f"repeat cannot drop axes: '{pattern}'")
    x = tensor.reshape([sizes[n] for n in elementary])
    x = x.permute([elementary.index(n) for n in wanted if n in elementary])
    # New axes as size-1 dimensions in their places, then expanded.
    shape = []
    for n in wanted:
        shape.append(sizes[n] if n in elementary else 1)
    x = x.reshape(shape).expand([sizes[n] for n in wanted])
    return x.reshape([math.prod(sizes[n] for n in g) for g in rhs])
