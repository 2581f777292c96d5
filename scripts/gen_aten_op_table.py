#!/usr/bin/python3
"""Generates graph/src/generated/aten_ops.inc, one row per aten:: op of the installed PyTorch;
graph/src/generated/onnx_ops.inc, one row per onnx:: op of the installed ONNX; and
emit/src/generated/aten_variants.inc, how LibTorch spells the ops that are not `at::op(...)`.

The way torch-mlir generates its op definitions from the JIT registry (torch_ods_gen.py), the
rows are derived from what PyTorch ships, never typed:

  * the JIT operator registry (torch._C._jit_get_all_schemas()): every schema with its alias
    annotations. A result `Tensor(a)` that shares an input's alias set is a view (glue); a first
    argument `Tensor(a!)` is an in-place write, whose functional twin is the name without the
    trailing underscore (`__iand__` -> `__and__`);
  * torchgen's native_functions.yaml: `structured_inherits: TensorIteratorBase` on the kernel an
    op delegates to marks the elementwise and broadcasting ops; the tags `nondeterministic_seeded`,
    `view_copy` and `inplace_view`;
  * the Python reference implementations (torch._refs): a reference wrapped in
    elementwise_type_promotion_wrapper is elementwise (relu, where, abs: kernels that are not
    structured TensorIterators in the yaml).

Each op gets a category (compute / data movement / metadata), a fusion pattern, a FLOP rule and
whether it draws random numbers, with the rule that placed it. The first rule that matches wins
(RULES below, in order); an op no rule places is an opaque compute kernel with unknown FLOPs.
Hand-written rows in graph/src/aten_op_table.cpp override a generated row where a rule is wrong
or a formula must be stated, each with its reason.

ONNX's op schemas (onnx.defs) say less: an attribute `seed` draws random numbers, `keepdims`
reduces, `kernel_shape` with a weight input `W` convolves and without one pools, a doc that
promises multidirectional (Numpy-style) broadcasting broadcasts, a one-input one-output op whose
doc says element-wise is elementwise. The hand rows of graph/src/onnx_op_table.cpp (each with its
ATen twin) come first; a generated onnx row places only an op they do not list.

The emitted tests spell an op `at::op(...)`, an in-place op `self.op_(...)`; native_functions.yaml's
`variants` names the exceptions: ops with no at:: function (Tensor methods only) and in-place ops
with no Tensor method (the torch.nn in-place activations: at::hardtanh_(x, ...)).

  /usr/bin/python3 scripts/gen_aten_op_table.py            rewrite the generated files
  /usr/bin/python3 scripts/gen_aten_op_table.py --check    exit 1 if a committed file differs
                                                           from what this PyTorch gives (ctest)
  /usr/bin/python3 scripts/gen_aten_op_table.py --stdout   print them instead
"""
import argparse
import difflib
import os
import re
import sys
from collections import defaultdict

import torch
import torchgen
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(REPO, "graph", "src", "generated", "aten_ops.inc")
VARIANTS_OUTPUT = os.path.join(REPO, "emit", "src", "generated", "aten_variants.inc")
ONNX_OUTPUT = os.path.join(REPO, "graph", "src", "generated", "onnx_ops.inc")
# The ONNX importer folds these two away: a row would hide an importer bug.
ONNX_FOLDED_BY_IMPORTER = {"Constant", "Identity"}
NATIVE_FUNCTIONS = os.path.join(os.path.dirname(torchgen.__file__), "packaged", "ATen", "native",
                                "native_functions.yaml")


# ---- the sources

def load_native_functions():
    """native_functions.yaml as {overload name ("add.out"): entry}."""
    with open(NATIVE_FUNCTIONS) as f:
        entries = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {e["func"].split("(", 1)[0]: e for e in entries}


def tags_of(entry):
    tags = entry.get("tags", [])
    return set([tags] if isinstance(tags, str) else tags)


class Op:
    """One aten:: op name with all its overloads."""

    def __init__(self, name):
        self.name = name  # without "aten::"
        self.schemas = []  # torch._C.FunctionSchema, every overload
        self.yaml = []  # native_functions.yaml entries of this name

    # Overloads that compute a result: not the out= variants (`Tensor(a!) out` arguments).
    def functional_schemas(self):
        return [s for s in self.schemas if not any(a.is_out for a in s.arguments)]

    def tags(self):
        t = set()
        for e in self.yaml:
            t |= tags_of(e)
        return t

    def argument_names(self):
        return {a.name for s in self.functional_schemas() for a in s.arguments}

    def arguments(self):
        return [a for s in self.functional_schemas() for a in s.arguments]


def is_tensor_type(t):
    return t.kind() == "TensorType" or (t.kind() == "OptionalType" and t.getElementType().kind() == "TensorType")


def is_tensor_list_type(t):
    return t.kind() == "ListType" and is_tensor_type(t.getElementType())


def returns_tensor(schema):
    return any(is_tensor_type(r.type) or is_tensor_list_type(r.type) for r in schema.returns)


def writes_first_argument(schema):
    return bool(schema.arguments) and schema.arguments[0].alias_info is not None and schema.arguments[0].alias_info.is_write


def return_alias_sets(schema):
    """Per result, its alias annotation as (sets, written), parsed from the schema text: the
    bindings expose no annotation on a list's elements (`Tensor(a)[]`). None: not annotated."""
    text = str(schema).rsplit(" -> ", 1)[1].strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    parsed = []
    for piece in re.split(r",\s*(?![^()]*\))", text):
        m = re.match(r"^\w+\(([\w|]+)(!?)\)", piece.strip())
        parsed.append((set(m.group(1).split("|")), m.group(2) == "!") if m else None)
    return parsed


def result_aliasing(schema):
    """'view' when every tensor result aliases an input and nothing is written, 'maybe' when a
    result may alias an input or be fresh (`Tensor(b|a)`), None when a result is fresh."""
    input_sets = set()
    for a in schema.arguments:
        if a.alias_info is not None:
            if a.alias_info.is_write:
                return None
            input_sets |= set(a.alias_info.before_set)
    kind = "view"
    for r, annotation in zip(schema.returns, return_alias_sets(schema)):
        if not (is_tensor_type(r.type) or is_tensor_list_type(r.type)):
            continue
        if annotation is None or annotation[1]:
            return None
        sets = annotation[0]
        if not sets & input_sets:
            return None
        if sets - input_sets:
            kind = "maybe"
    return kind


def pointwise_arity(op, native):
    """The largest number of tensor operands of an overload whose kernel is a TensorIterator
    (structured_inherits: TensorIteratorBase, directly or through structured_delegate); 0 if none."""
    arity = 0
    for entry in op.yaml:
        kernel = native.get(entry.get("structured_delegate", ""), entry)
        if kernel.get("structured_inherits") != "TensorIteratorBase":
            continue
        # The tensor operands of this overload, the out= kernel's `out` argument not counted.
        args = entry["func"].split("(", 1)[1].rsplit(")", 1)[0]
        tensors = len(re.findall(r"(?:^|,\s*|\*,\s*)Tensor(?:\([a-z]!?\))?\??\s+(?!out\b)\w+", args))
        arity = max(arity, tensors)
    return arity


def elementwise_references():
    """Names of the torch._refs functions that are wrapped in elementwise_type_promotion_wrapper."""
    import types
    import torch._refs
    import torch._refs.nn.functional
    import torch._refs.special
    from torch._prims_common.wrappers import elementwise_type_promotion_wrapper

    def wrapped(f, depth=0):
        if isinstance(f, elementwise_type_promotion_wrapper):
            return True
        if depth > 6 or not callable(f):
            return False
        for cell in getattr(f, "__closure__", None) or []:
            try:
                if wrapped(cell.cell_contents, depth + 1):
                    return True
            except ValueError:  # an empty cell
                continue
        return wrapped(getattr(f, "__wrapped__", None), depth + 1)

    names = set()
    for module in (torch._refs, torch._refs.nn.functional, torch._refs.special):
        for name in dir(module):
            f = getattr(module, name)
            if isinstance(f, types.FunctionType) and f.__module__ == module.__name__ and wrapped(f):
                names.add(name)
    return names


def tensor_arity(op):
    """The largest number of tensor operands of one functional overload."""
    return max((sum(1 for a in s.arguments if is_tensor_type(a.type)) for s in op.functional_schemas()), default=0)


# ---- the rules: (name, predicate, row); the first that matches places the op.
# A row is (category, pattern, flop rule, flops per element).

C, D, M = "C", "D", "M"
# The dropout family's row: metadata, as the identity it is in eval mode.
EVAL_IDENTITY = (M, "INJ", "Zero", 0)


def rule_rows(op, native, references):
    """Yields (rule description, row) for the first rule that matches."""
    name = op.name
    functional = op.functional_schemas()
    argnames = op.argument_names()
    tags = op.tags()
    tensor_results = [s for s in functional if returns_tensor(s)]

    if "backward" in name:
        return "gradient kernel (not in inference graphs)", (C, "OPQ", "None", 0)
    if not tensor_results:
        return "no tensor result: interpreter plumbing", (M, "INJ", "Zero", 0)
    aliasing = {result_aliasing(s) for s in tensor_results}
    if aliasing == {"view"}:
        return "view: every result aliases an input (Tensor(a))", (M, "INJ", "Zero", 0)
    if aliasing <= {"view", "maybe"}:
        return "may alias or copy its input (Tensor(b|a))", (D, "INJ", "Zero", 0)
    if "view_copy" in tags:
        return "view_copy tag: a view's copying twin", (D, "INJ", "Zero", 0)
    if "nondeterministic_seeded" in tags and "train" in argnames:
        return "dropout (bool train): the identity in eval mode", EVAL_IDENTITY
    if {"layout", "device", "pin_memory"} <= argnames:
        return "factory (TensorOptions arguments): writes a new tensor", (D, "OPQ", "Zero", 0)
    if "nondeterministic_seeded" in tags:
        return "nondeterministic_seeded tag: draws random numbers", (D, "OPQ", "Zero", 0)
    if not any(is_tensor_type(a.type) or is_tensor_list_type(a.type) for s in tensor_results for a in s.arguments):
        return "no tensor operand: creates a tensor", (D, "OPQ", "Zero", 0)
    if {"weight", "stride", "padding"} <= argnames:
        return "convolution (weight, stride, padding)", (C, "OEF", "Convolution", 0)
    if "pool" in name and "unpool" not in name and "kernel_size" in argnames:
        return "pooling (kernel_size)", (C, "OEF", "Pool", 0)
    if "pool" in name and "unpool" not in name and "output_size" in argnames:
        return "adaptive pooling (output_size)", (C, "OEF", "AdaptivePool", 0)
    if {"weight", "eps"} <= argnames:
        return "normalisation (weight, eps)", (C, "RED", "LayerNorm", 0)
    if "reduction" in argnames:
        return "loss (int reduction): an elementwise term reduced, 2 per input element", (C, "RED", "PerInput", 2)
    if argnames & {"mat1", "mat2", "batch1", "batch2", "vec", "vec1", "vec2", "mat"}:
        return "matrix product (mat/vec operands)", (C, "OEF", "Matmul", 0)
    if "softmax" in name and "dim" in argnames:
        return "softmax over a dimension: 5 per output element", (C, "RED", "PerOutput", 5)
    if re.match(r"^_?(cum|logcum)", name) and "dim" in argnames:
        return "scan along a dimension: 1 per input element", (C, "OPQ", "PerInput", 1)
    if "keepdim" in argnames:
        return "reduction (keepdim): 1 per input element", (C, "RED", "PerInput", 1)
    args = op.arguments()
    if any(a.name == "tensors" and is_tensor_list_type(a.type) for a in args) and "dim" in argnames:
        return "concatenation (Tensor[] tensors, dim)", (D, "INJ", "Zero", 0)
    if any(a.name in ("index", "indices") and (is_tensor_type(a.type) or a.type.kind() == "ListType") for a in args):
        return "indexed access (index / indices operand)", (D, "INJ", "Zero", 0)
    arity = pointwise_arity(op, native)
    if arity == 1:
        return "TensorIterator kernel, one tensor operand: elementwise", (C, "EW", "PerOutput", 1)
    if arity >= 2:
        return "TensorIterator kernel, several tensor operands: broadcast", (C, "BC", "PerOutput", 1)
    if name in references and "dim" not in argnames:
        if tensor_arity(op) >= 2:
            return "elementwise reference (torch._refs), several tensor operands: broadcast", (C, "BC", "PerOutput", 1)
        return "elementwise reference (torch._refs), one tensor operand: elementwise", (C, "EW", "PerOutput", 1)
    if "pad" in argnames or ("pad" in name and "padding" in argnames):
        return "padding", (D, "INJ", "Zero", 0)
    if re.match(r"^_?upsample_", name):
        if "nearest" in name:
            return "nearest upsampling: copies", (D, "INJ", "Zero", 0)
        per = {"linear": 2, "bilinear": 4, "trilinear": 8, "bicubic": 16}[re.match(r"^_?upsample_([a-z]+?)[123]d", name).group(1)]
        return "interpolating upsampling: 2^dims taps per output element", (D, "INJ", "PerOutput", per)
    return "no rule: opaque compute kernel, FLOPs unknown", (C, "OPQ", "None", 0)


def functional_twin(name, ops):
    """The op an in-place op computes, or None."""
    m = re.match(r"^__i(\w+)__$", name)
    if m and "__" + m.group(1) + "__" in ops:
        return "__" + m.group(1) + "__"
    if name.endswith("_") and not name.endswith("__") and name[:-1] in ops:
        return name[:-1]
    return None


def is_inplace(op):
    if not (op.name.endswith("_") and not op.name.endswith("__")) and not re.match(r"^__i\w+__$", op.name):
        return False
    return any(writes_first_argument(s) for s in op.schemas)


def collect():
    native = load_native_functions()
    ops = {}
    for schema in torch._C._jit_get_all_schemas():
        if not schema.name.startswith("aten::"):
            continue
        name = schema.name[len("aten::"):]
        ops.setdefault(name, Op(name)).schemas.append(schema)
    by_base = defaultdict(list)
    for overload, entry in native.items():
        by_base[overload.split(".", 1)[0]].append(entry)
    for name, op in ops.items():
        op.yaml = by_base.get(name, [])
    references = elementwise_references()
    rows = {}
    for name in sorted(ops):
        op = ops[name]
        random = "nondeterministic_seeded" in op.tags()
        # torch.empty and its kin return uninitialised memory: what a replay computes differs from
        # the record as a fresh random draw would, so they are read as draws (the record stands in).
        random = random or re.match(r"^(new_)?empty(_like|_strided|_quantized)?$", name) is not None
        twin = functional_twin(name, ops) if is_inplace(op) else None
        rule, row = rule_rows(ops[twin] if twin else op, native, references)
        if twin:
            random = random or "nondeterministic_seeded" in ops[twin].tags()
            rule = "in-place " + twin + ": " + rule
        elif is_inplace(op):
            rule = "in-place without a functional twin: " + rule
        if row is EVAL_IDENTITY:
            random = False  # the dropout family draws only in training; kdecomp runs eval mode
        rows[name] = (row, random, twin, rule)
    return rows


def render(rows):
    version = torch.__version__
    out = [
        "// GENERATED by scripts/gen_aten_op_table.py from PyTorch " + version + "'s JIT operator registry and",
        "// torchgen's native_functions.yaml. Do not edit: change a rule in the script, or override a row",
        "// (with its reason) in graph/src/aten_op_table.cpp, and regenerate. ctest checks it is current.",
        "// {kind, category, pattern, FLOP rule, FLOPs per element, random, functional twin, rule}",
        "// clang-format off",
    ]
    for name, (row, random, twin, rule) in rows.items():
        category, pattern, flops, per = row
        twin_text = '"aten::' + twin + '"' if twin else "nullptr"
        out.append('{"aten::%s", %s, %s, F::%s, %s, %s, %s, "%s"},' %
                   (name, category, pattern, flops, per, "true" if random else "false", twin_text, rule))
    out.append("// clang-format on")
    return "\n".join(out) + "\n"


def onnx_rule(schema):
    """(rule, row, random) for one ONNX op schema; row as in rule_rows."""
    attrs = set(schema.attributes.keys())
    doc = (schema.doc or "").lower()
    inputs = [i.name for i in schema.inputs]
    sequence_output = any("seq" in str(c.allowed_type_strs) for c in schema.type_constraints
                          if any(o.typeStr == c.type_param_str for o in schema.outputs))
    if "seed" in attrs:
        return "attribute seed: draws random numbers", (D, "OPQ", "Zero", 0), True
    if "kernel_shape" in attrs and any(i.upper() == "W" for i in inputs):
        return "convolution (kernel_shape, weight W)", (C, "OEF", "Convolution", 0), False
    if "kernel_shape" in attrs:
        return "pooling (kernel_shape, no weight)", (C, "OEF", "Pool", 0), False
    if schema.name.startswith("Global") and "pool" in schema.name.lower():
        return "global pooling", (C, "OEF", "AdaptivePool", 0), False
    if "keepdims" in attrs and not sequence_output:
        return "reduction (keepdims): 1 per input element", (C, "RED", "PerInput", 1), False
    if "multidirectional" in doc and "broadcast" in doc:
        return "multidirectional (Numpy-style) broadcasting: broadcast", (C, "BC", "PerOutput", 1), False
    if re.search(r"element-?wise", doc) and len(schema.inputs) == 1 and len(schema.outputs) == 1:
        return "one input, one output, element-wise: elementwise", (C, "EW", "PerOutput", 1), False
    return "no rule: opaque compute kernel, FLOPs unknown", (C, "OPQ", "None", 0), False


def render_onnx():
    import onnx
    import onnx.defs
    latest = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain != "" or schema.deprecated:
            continue
        if schema.name not in latest or schema.since_version > latest[schema.name].since_version:
            latest[schema.name] = schema
    out = [
        "// GENERATED by scripts/gen_aten_op_table.py from ONNX " + onnx.__version__ + "'s op schemas (onnx.defs). Do not",
        "// edit: change a rule in the script, or add a hand row with its ATen twin in onnx_op_table.cpp (a hand",
        "// row comes first), and regenerate. ctest checks it is current.",
        "// {kind, category, pattern, FLOP rule, FLOPs per element, random, functional twin, rule}",
        "// clang-format off",
    ]
    for name in sorted(latest):
        if name in ONNX_FOLDED_BY_IMPORTER:
            continue
        rule, (category, pattern, flops, per), random = onnx_rule(latest[name])
        out.append('{"onnx::%s", %s, %s, F::%s, %s, %s, nullptr, "%s"},' %
                   (name, category, pattern, flops, per, "true" if random else "false", rule))
    out.append("// clang-format on")
    return "\n".join(out) + "\n"


def render_variants(native):
    """The ops whose C++ spelling is not the default, from native_functions.yaml's `variants`."""
    variants = defaultdict(set)
    for overload, entry in native.items():
        variants[overload.split(".", 1)[0]] |= {v.strip() for v in entry.get("variants", "function").split(",")}
    out = [
        "// GENERATED by scripts/gen_aten_op_table.py from torchgen's native_functions.yaml (PyTorch " + torch.__version__ + ").",
        "// Do not edit: regenerate. ctest checks it is current.",
        "// {op, has an at:: function, has a Tensor method}: the ops with no at:: function, and the in-place",
        "// ops with no Tensor method. Every other op is at::op(...), every other in-place op self.op_(...).",
        "// clang-format off",
    ]
    for name in sorted(variants):
        has_function, has_method = "function" in variants[name], "method" in variants[name]
        in_place = name.endswith("_") and not name.endswith("__")
        if not has_function or (in_place and not has_method):
            out.append('{"%s", %s, %s},' % (name, "true" if has_function else "false", "true" if has_method else "false"))
    out.append("// clang-format on")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    parser.add_argument("--stdout", action="store_true", help="print the generated files instead of writing them")
    args = parser.parse_args()
    outputs = {OUTPUT: render(collect()), ONNX_OUTPUT: render_onnx(),
               VARIANTS_OUTPUT: render_variants(load_native_functions())}
    if args.stdout:
        for text in outputs.values():
            sys.stdout.write(text)
        return 0
    stale = 0
    for path, text in outputs.items():
        relative = os.path.relpath(path, REPO)
        if args.check:
            current = open(path).read() if os.path.exists(path) else ""
            if current == text:
                print(relative + " is current")
                continue
            sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                                       "committed/" + relative, "generated/" + relative, n=0))
            print(relative + " is stale: run /usr/bin/python3 scripts/gen_aten_op_table.py and review the diff",
                  file=sys.stderr)
            stale = 1
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        print("wrote " + relative + " (" + str(len(text.splitlines()) - 6) + " rows)")
    return stale


if __name__ == "__main__":
    sys.exit(main())
