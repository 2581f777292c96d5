#!/usr/bin/env python3
"""kdecomp exporter: a KernelBench-format model file -> TorchScript + exact inputs + metadata.

Run with Debian's interpreter (/usr/bin/python3, torch 1.13.1). Writes into the output
directory atomically: everything goes to a temporary sibling directory that is renamed into
place only when every file is complete, so a failure leaves no output directory behind.

Output files:
  model.pt     TorchScript (torch.jit.script, falling back to torch.jit.trace on the exact
               inputs); carries `kdecomp/export.json` (the module hierarchy) as an extra file.
  inputs.pt    the exact input tensors as a tuple, written with torch.save (C++ reads it with
               torch::pickle_load).
  inputs/      with --inputs-per-file, instead of inputs.pt: one torch.save file per input
               (inputs/0.pt, 1.pt, ...: a tensor, or a tuple for a list of tensors). `kdecomp
               decompose MODEL.py` asks for it: its reference store takes a tensor input's file as
               it is (a hard link), so the input's bytes are written once.
  meta.json    provenance, method and fallback reason, input/output names/shapes/dtypes.
  model.onnx   with --onnx (opset 17; external data for models over 2 GiB).
  outputs.pt   with --onnx: the PyTorch model's own outputs on the exact inputs (a tuple), the
               reference an ONNX import is verified against.
  model.fx.json with --fx: the model as an aten-level FX graph (python/kdecomp_fx.py), and
  fx_state.pt  its parameters, buffers and constant tensors (a tuple, in the graph's input order);
               outputs.pt too, the model's own outputs, as for --onnx.
"""

import argparse
import ast
import contextlib
import dataclasses
import errno
import hashlib
import importlib.util
import inspect
import json
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import textwrap
import time
import traceback

from kdecomp_script_source import ArgumentTypes, integer_literal_value, scriptable_source, unrollable_loop_index

SEED = 42
EXTRA_FILE = "kdecomp/export.json"
SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kdecomp_shims")
FORMAT_VERSION = 1


class ExportError(Exception):
    """A problem with the user's model file: reported as one line, exit code 2."""


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def printable(text):
    """A file name as valid Unicode for meta.json: bytes that are not UTF-8 become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def first_line(exc):
    """The exception's first line, without object addresses (`<... object at 0x52a0500>`): the
    same model gives the same message, and the same meta.json."""
    text = str(exc).strip().splitlines()
    line = re.sub(r" at 0x[0-9a-fA-F]+", "", text[0] if text else "")
    return f"{type(exc).__name__}: {line}".strip()


def ensure_einops():
    """Puts our einops stand-in on the path when the real package is missing."""
    try:
        import einops  # noqa: F401

        return False
    except ImportError:
        sys.path.insert(0, SHIM_DIR)
        return True


def install_torch_stand_ins():
    """Stand-ins for PyTorch APIs newer than this torch (kdecomp_shims/torch_compat.py), installed
    where torch lacks them: a model written for a newer PyTorch runs and scripts here. Returns
    the names installed."""
    spec = importlib.util.spec_from_file_location("kdecomp_torch_compat", os.path.join(SHIM_DIR, "torch_compat.py"))
    compat = importlib.util.module_from_spec(spec)
    # Registered so that TorchScript finds the stand-ins' source when it compiles them.
    sys.modules[spec.name] = compat
    spec.loader.exec_module(compat)
    return compat.install()


def load_model_module(path):
    # surrogateescape: a file name need not be UTF-8 (its bytes come back as they were).
    name = "kdecomp_model_" + hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ExportError("not a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered as Python's import system would: TorchScript compiles a class the model defines
    # (a helper with methods, scripted with the model) from its source, which inspect finds
    # through sys.modules; unregistered, scripting says "is a built-in class" and falls back.
    sys.modules[name] = module
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:  # sys.exit() at import would end the export with its status
        raise ExportError(f"import failed: the model file called sys.exit({exc.code!r}) when imported") from exc
    except Exception as exc:  # the user's file: any exception is bad input
        raise ExportError(f"import failed: {first_line(exc)}") from exc
    for attr in ("Model", "get_inputs", "get_init_inputs"):
        if not hasattr(module, attr):
            raise ExportError(f"missing `{attr}` (a KernelBench model file defines Model, get_inputs, get_init_inputs)")
    return module


def as_field_dict(obj):
    """A dataclass instance (a model output class such as `Output(last_hidden_state, pooled)`)
    as the dict of its fields in declaration order; anything else as it is. Outputs nest in
    dataclasses as they do in dicts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type) and not isinstance(obj, dict):
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    return obj


def flatten_tensors(obj):
    import torch

    obj = as_field_dict(obj)
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in flatten_tensors(item)]
    if isinstance(obj, dict):  # insertion order, as TorchScript and ONNX flatten a dict
        return [t for key in obj for t in flatten_tensors(obj[key])]
    return []


def output_structure(obj, counter=None):
    """The nesting of a model's outputs with each tensor replaced by its index among the
    flattened outputs: {"out": 0, "aux": 1}, [{"boxes": 0, "scores": 1}], or 0 for one tensor.
    Non-tensor leaves are kept as their repr (they are not outputs)."""
    import torch

    counter = counter if counter is not None else [0]
    obj = as_field_dict(obj)
    if isinstance(obj, torch.Tensor):
        counter[0] += 1
        return counter[0] - 1
    if isinstance(obj, (list, tuple)):
        return [output_structure(item, counter) for item in obj]
    if isinstance(obj, dict):
        return {str(key): output_structure(value, counter) for key, value in obj.items()}
    return repr(obj)


def output_names_of(structure, prefix=""):
    """A name per flattened output from its place in the structure: "out", "0.boxes", ..."""
    if isinstance(structure, int):
        return [(structure, prefix or "output0")]
    items = structure.items() if isinstance(structure, dict) else enumerate(structure) if isinstance(structure, list) else []
    names = []
    for key, value in items:
        names += output_names_of(value, f"{prefix}.{key}" if prefix else str(key))
    return names


def is_nested(outputs):
    """More than a tensor or a tuple of tensors (dicts, lists, dataclasses): a trace records the
    flattened tensors instead."""
    import torch

    return not (isinstance(outputs, torch.Tensor) or (
        isinstance(outputs, tuple) and all(isinstance(t, torch.Tensor) for t in outputs)))


def flat_output_forward(model):
    """A forward returning the flattened tensors as a tuple: torch.jit.trace accepts tensors and
    tuples of them, not the dicts and lists of dicts some models return. Installed on the
    instance, so the trace keeps the model's own module names."""
    original = model.forward

    def forward(*args):
        result = original(*args)
        other = first_non_tensor_leaf(result)
        if other is not None:  # a value that is not a tensor cannot be an output of the trace
            raise TypeError(f"forward returns a {type(other).__name__} among its outputs, not a tensor")
        return tuple(flatten_tensors(result))

    return forward


# What get_inputs() may hold besides tensors: plain values a trace can take as constants.
BINDABLE = (bool, int, float, str, type(None))


def bound_inputs(inputs, names):
    """The non-tensor values of get_inputs() (a step count, a flag, a scale), each with its
    position and name; ExportError for a value that is neither a tensor nor a plain value."""
    bound = []
    for position, (name, value) in enumerate(zip(names, inputs)):
        if is_tensor_input(value):
            continue
        plain = isinstance(value, BINDABLE) or (
            isinstance(value, (list, tuple)) and all(isinstance(v, BINDABLE) for v in value))
        if not plain:
            raise ExportError(f"get_inputs() item {position} ({name}) is a {type(value).__name__}: inputs must be "
                              f"tensors, lists of tensors, or plain values (numbers, booleans, strings, lists of "
                              f"them) to bind")
        bound.append({"position": position, "name": name, "value": jsonable(value)})
    return bound


def bound_forward(model, inputs):
    """A forward taking the tensor inputs only, with the other values of get_inputs() in their
    places: the model runs, and is traced, at exactly those values. Installed on the instance, so
    the trace keeps the model's own module names."""
    original = model.forward
    template = list(inputs)
    tensor_positions = [i for i, v in enumerate(template) if is_tensor_input(v)]

    def forward(*tensors):
        args = list(template)
        for position, tensor in zip(tensor_positions, tensors):
            args[position] = tensor
        return original(*args)

    return forward


def buffer_restorer(model):
    """A forward may write its buffers in place (a call counter, a cache). The export runs the
    model more than once (the forward for the outputs, the trace): the returned function puts
    the buffers back as built after each, so the saved model starts where the user's first call
    does. A forward that writes a parameter cannot be undone: ExportError names it."""
    import torch

    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    versions = {name: p._version for name, p in model.named_parameters()}

    def restore():
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in saved and not torch.equal(b, saved[name]):
                    b.copy_(saved[name])
        for name, p in model.named_parameters():
            if name in versions and p._version != versions[name]:
                raise ExportError(f"forward writes the parameter {name} in place: the model's state changes with "
                                  f"every call, and no single export holds it")

    return restore


def first_non_tensor_leaf(obj):
    """The first value in a nest of lists, tuples and dicts that is neither a tensor nor None."""
    import torch

    obj = as_field_dict(obj)
    if isinstance(obj, (list, tuple)):
        items = obj
    elif isinstance(obj, dict):
        items = obj.values()
    else:
        return None if obj is None or isinstance(obj, torch.Tensor) else obj
    for item in items:
        leaf = first_non_tensor_leaf(item)
        if leaf is not None:
            return leaf
    return None


def describe(name, tensor):
    """A tensor's entry in meta.json; a list of tensors (an input such as FPN features) lists its
    tensors under "list"."""
    if isinstance(tensor, (list, tuple)):
        return {"name": name, "list": [describe(f"{name}.{i}", t) for i, t in enumerate(tensor)]}
    return {"name": name, "shape": list(tensor.shape), "dtype": str(tensor.dtype).replace("torch.", "")}


def is_tensor_input(value):
    """A tensor, or a non-empty list or tuple of tensors: what the export passes to the model."""
    import torch

    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(t, torch.Tensor) for t in value)


def input_tensors(inputs):
    """Every tensor of the inputs, lists of tensors flattened."""
    return [t for value in inputs for t in (value if isinstance(value, (list, tuple)) else [value])]


def tensor_bytes(tensors):
    """The bytes the data of these tensors takes."""
    return sum(t.numel() * t.element_size() for t in tensors)


def jsonable(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return repr(value)


def module_hierarchy(model):
    """Every named module with its class, in named_modules() order (parents before children)."""
    return [
        {"path": path, "class": type(module).__name__, "children": [name for name, _ in module.named_children()]}
        for path, module in model.named_modules()
    ]


def needs_grad_for_trace(model):
    """nn.TransformerEncoderLayer / MultiheadAttention take a fused fast path under no_grad that
    hides the whole layer in one op; tracing with grad enabled keeps the decomposed ops."""
    import torch.nn as nn

    fused = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.MultiheadAttention)
    return any(isinstance(m, fused) for m in model.modules())


def module_list_index_failure(model):
    """Why torch.jit.script is certain to refuse `model`, found before trying: a forward of one
    of its modules indexes an nn.ModuleList or nn.Sequential attribute with an index that is not
    an integer literal (`self.layers[i]`), which TorchScript rejects ("Expected integer literal
    for index"). It rejects it only after scripting every submodule, which in a deep model costs
    a second or more; a trace follows either way. None when no forward does (scripting is then
    tried as before), or when a forward asks torch.jit.is_scripting() (a branch it skips)."""
    import torch

    containers = (torch.nn.ModuleList, torch.nn.Sequential)
    seen = set()
    for module in model.modules():
        cls = type(module)
        if cls in seen:
            continue
        seen.add(cls)
        forward = getattr(cls, "forward", None)
        if forward is None or (getattr(forward, "__module__", None) or "").startswith("torch."):
            continue  # PyTorch's own modules script
        try:
            source = textwrap.dedent(inspect.getsource(forward))
            tree = ast.parse(source)
        except Exception:  # no source (generated code: an fx.GraphModule), or none Python parses
            continue
        function = tree.body[0] if tree.body else None
        if not isinstance(function, ast.FunctionDef) or not function.args.args or "is_scripting" in source:
            continue
        if function.decorator_list:
            continue  # an ignored, unused or otherwise wrapped forward: left to TorchScript
        this = function.args.args[0].arg
        # An index of a loop the amendments unroll (kdecomp_script_source) is a literal there.
        unrolled = set()
        for loop in ast.walk(function):
            index = unrollable_loop_index(loop, this) if isinstance(loop, ast.For) else None
            if index is not None:
                unrolled.update(id(node) for statement in loop.body for node in ast.walk(statement)
                                if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name) and
                                node.slice.id == index)
        for node in ast.walk(function):
            if id(node) in unrolled:
                continue
            if not (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)):
                continue
            target = node.value
            if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == this):
                continue
            container = module._modules.get(target.attr)
            if isinstance(container, containers) and not isinstance(node.slice, ast.Slice) and \
                    integer_literal_value(node.slice) is None:
                return (f"torch.jit.script would fail: {cls.__name__}.forward indexes nn.{type(container).__name__} "
                        f"{this}.{target.attr} with a non-literal index (TorchScript takes integer literals only); "
                        "not tried")
    return None


def try_script(model, argument_types=None):
    """(the scripted model, None) or (None, why scripting failed or would). A failure is not
    tried again: the model is as it was, and TorchScript keeps the failed class."""
    import torch

    failure = module_list_index_failure(model)
    if failure is not None:
        return None, failure
    try:
        with scriptable_source(model, argument_types):
            return torch.jit.script(model), None
    except Exception as exc:
        return None, f"torch.jit.script failed: {first_line(exc)}"


def unsaveable_reason(scripted):
    """Why torch.jit.save would refuse this scripted module, found in milliseconds: saving prints
    every method's code, and a code printer failure (an unannotated parameter defaulting to None
    leaves an undefined Tensor in the schema: "strides() called on an undefined Tensor") is raised
    only after every parameter has been written, GBs for a large model. None when the code of every
    module type prints."""
    seen = set()
    for module in scripted.modules():
        kind = module._c._type().qualified_name()
        if kind in seen:
            continue
        seen.add(kind)
        try:
            module.code
        except RuntimeError as exc:
            return f"torch.jit.save of the scripted module would fail: {first_line(exc)}"
        except Exception:
            continue  # no forward (an nn.ModuleList): nothing to print
    return None


def export_torchscript(model, inputs, out_path, extra, method, nested=False, restore_buffers=None, bound=False,
                       scripted=None, script_failure=None, argument_types=None):
    """Returns (method_used, fallback_reason). `extra` (a dict) is saved inside model.pt with
    the method that produced it. `nested`: forward returns more than a tensor or a tuple of
    tensors (dicts, lists): a trace records its flattened tensors instead. `bound`: the model's
    forward is a bound_forward, which only a trace sees. `scripted`: the model already scripted;
    `script_failure`: why scripting it already failed; `argument_types`: the meta run's, for
    scripting."""
    import torch

    def extra_files(used):
        return {EXTRA_FILE: json.dumps(dict(extra, method=used), sort_keys=True)}

    fallback_reason = None
    if bound and method == "auto":
        method, fallback_reason = "trace", "get_inputs() holds non-tensor values, bound as constants of a trace"
    if method in ("auto", "script"):
        if scripted is None and script_failure is None:
            scripted, script_failure = try_script(model, argument_types)
        if scripted is not None:
            script_failure = unsaveable_reason(scripted)
            if script_failure is not None:
                scripted = None
        if scripted is None:
            fallback_reason = script_failure
        else:
            try:
                torch.jit.save(scripted, out_path, _extra_files=extra_files("script"))
                return "script", None
            except Exception as exc:
                fallback_reason = f"torch.jit.save of the scripted module failed: {first_line(exc)}"
        if method == "script":
            raise ExportError(fallback_reason)
    grad = needs_grad_for_trace(model)
    previous_forward = model.__dict__.get("forward")  # bound_forward, or none
    try:
        if nested:
            model.forward = flat_output_forward(model)
        with torch.set_grad_enabled(grad), inline_autograd_functions():
            traced = torch.jit.trace(model, tuple(inputs), check_trace=False)
        if restore_buffers:
            restore_buffers()  # the trace ran the forward: its module shares the model's buffers
        torch.jit.save(traced, out_path, _extra_files=extra_files("trace"))
    except Exception as exc:
        raise ExportError(f"torch.jit.trace failed ({fallback_reason or 'trace requested'}): {first_line(exc)}") from exc
    finally:
        if nested:
            if previous_forward is None:
                del model.forward  # the class's forward again
            else:
                model.forward = previous_forward
    return "trace", fallback_reason


class InlineContext:
    """The ctx of a custom autograd Function's forward, run for inference: what it saves or
    marks only matters to a backward, which an export never runs."""

    def __init__(self, args):
        self.needs_input_grad = tuple(False for _ in args)
        self.saved_tensors = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_dirty(self, *tensors):
        pass

    def mark_non_differentiable(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        pass


@contextlib.contextmanager
def inline_autograd_functions():
    """A custom torch.autograd.Function is opaque to the tracer: it records one prim::PythonOp,
    which TorchScript cannot save. The export runs the model for inference only, so while it
    traces, every Function's apply runs its forward directly and the trace records the ops
    inside. The classes are restored afterwards."""
    import torch

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    def inline_apply(cls, *args):
        return cls.forward(InlineContext(args), *args)

    patched = []
    try:
        for cls in set(subclasses(torch.autograd.Function)):
            if not isinstance(cls.__dict__.get("forward"), staticmethod):
                continue
            patched.append((cls, cls.__dict__.get("apply")))
            cls.apply = classmethod(inline_apply)
        yield
    finally:
        for cls, original in patched:
            if original is None:
                delattr(cls, "apply")
            else:
                cls.apply = original



def annotate_onnx(path, extra):
    """Stores the module hierarchy (classes, containers) in the model's metadata_props, which the
    C++ importer reads: ONNX node names carry module paths but not classes. External data stays
    where the exporter wrote it (only the graph file is rewritten)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key = EXTRA_FILE
    entry.value = json.dumps(extra, sort_keys=True)
    onnx.save(model, path)


def export_onnx(model, inputs, out_dir, input_names, output_names, extra):
    import torch

    path = os.path.join(out_dir, "model.onnx")
    try:
        # PRESERVE (the model is in eval mode, so it exports eval semantics) rather than EVAL:
        # EVAL folds each BatchNorm into the conv before it, which hides the bn module, renames
        # the weights and changes the tiers; PRESERVE keeps BatchNormalization (training_mode=0).
        torch.onnx.export(
            model, tuple(inputs), path, opset_version=17, input_names=input_names, output_names=output_names,
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    except Exception as exc:
        return {"status": "failed", "reason": first_line(exc)}
    annotate_onnx(path, extra)
    return {"status": "ok", "opset": 17, "external_data": any(f != "model.onnx" for f in os.listdir(out_dir) if not f.endswith((".pt", ".json")))}


def export_fx(model, inputs, input_names, out_dir, modules):
    """model.fx.json and fx_state.pt; what meta.json says of the capture (status, reason)."""
    import torch
    import kdecomp_fx

    t0 = time.perf_counter()
    try:
        doc, state, mode, count = kdecomp_fx.capture_fx(model, inputs, input_names, modules)
    except kdecomp_fx.FxCaptureError as exc:
        return {"status": "failed", "reason": str(exc)}
    with open(os.path.join(out_dir, "model.fx.json"), "w") as f:
        json.dump(doc, f)
        f.write("\n")
    torch.save(tuple(state), os.path.join(out_dir, "fx_state.pt"))
    return {"status": "ok", "tracing_mode": mode, "nodes": count, "capture_s": round(time.perf_counter() - t0, 3)}


def run_export(args):
    import torch

    source = os.path.abspath(args.model)
    if not os.path.isfile(source):
        raise ExportError("no such file")
    shim_used = ensure_einops()
    stand_ins = install_torch_stand_ins()
    module = load_model_module(source)

    timings = {}
    t0 = time.perf_counter()
    try:
        torch.manual_seed(SEED)
        init_inputs = list(module.get_init_inputs())
        if getattr(args, "fx", False) and callable(getattr(module, "get_graph_module", None)):
            # The user's own torch.fx GraphModule (any level: symbolic_trace, a pass's output)
            # stands for the model: it is an nn.Module, captured at aten level like any other.
            model = module.get_graph_module(*init_inputs).eval()
            if not isinstance(model, torch.fx.GraphModule):
                raise ExportError(f"get_graph_module() returned {type(model).__name__}, not a torch.fx.GraphModule")
        else:
            model = module.Model(*init_inputs).eval()
        torch.manual_seed(SEED)
        inputs = list(module.get_inputs())
    except SystemExit as exc:
        raise ExportError(f"building Model(*get_init_inputs()) or get_inputs() called sys.exit({exc.code!r})") from exc
    except Exception as exc:
        raise ExportError(f"building Model(*get_init_inputs()) or get_inputs() failed: {first_line(exc)}") from exc
    try:
        forward_params = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        forward_params = []
    all_names = [forward_params[i] if i < len(forward_params) else f"input{i}" for i in range(len(inputs))]
    bound = bound_inputs(inputs, all_names)
    if bound:
        if args.method == "script":
            raise ExportError("get_inputs() returns non-tensor values (" + ", ".join(b["name"] for b in bound) +
                              "): they are bound as constants of a traced model, and --method script cannot")
        model.forward = bound_forward(model, inputs)
    input_names = [n for n, t in zip(all_names, inputs) if is_tensor_input(t)]
    inputs = [list(t) if isinstance(t, tuple) else t for t in inputs if is_tensor_input(t)]
    timings["build_s"] = time.perf_counter() - t0
    meta_run = meta_forward(model, inputs)
    check_memory_for_forward(model, inputs, meta_run)

    # No eager forward where the meta run describes the outputs: kdecomp runs the scripted
    # program itself, and a trace runs the forward it records. ONNX needs PyTorch's outputs (its
    # reference). Scripting is tried here, before any forward. A forward that assigns module
    # attributes (a cache, an Optional, a lazy module's parameters) runs eagerly first, as the
    # user's first call would, and the model is scripted after it, as before.
    describe_from_meta = meta_run is not None and not meta_run.mutates_module and not args.onnx and not args.fx and \
        os.environ.get("KDECOMP_EXPORT_EAGER_FORWARD") != "1"
    scripted, script_failure = None, None
    if describe_from_meta and not bound and args.method in ("auto", "script"):
        t0 = time.perf_counter()
        scripted, script_failure = try_script(model, meta_run.argument_types)
        timings["script_s"] = time.perf_counter() - t0
    restore_buffers = buffer_restorer(model)
    forward_peak_estimate = None
    if describe_from_meta:
        outputs, structure, nested = meta_run.outputs, meta_run.structure, meta_run.nested
        # What the forward would hold at its peak: what the process holds now (torch, the model,
        # its inputs) and the meta run's live tensors. Workspaces (im2col columns, GEMM packing)
        # are not tensors the run sees: a margin of a half covers them.
        held_now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        forward_peak_estimate = held_now + meta_run.live_peak_bytes * 3 // 2
        # What the forward holds for certain: kdecomp's memory check before the import refuses
        # a model only below this (the margin is for the batch scheduler's packing; with it,
        # 31_VisionAttention, whose forward peaks at 17.5 GB, was refused 26 GB on 24 GB).
        forward_peak_at_least = held_now + meta_run.live_peak_bytes
    else:
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                raw_outputs = model(*inputs)
                structure = output_structure(raw_outputs)
                outputs = flatten_tensors(raw_outputs)
                nested = is_nested(raw_outputs)
                del raw_outputs
        except SystemExit as exc:
            raise ExportError(f"forward called sys.exit({exc.code!r})") from exc
        except Exception as exc:
            raise ExportError(f"forward raised: {first_line(exc)}") from exc
        restore_buffers()
        timings["forward_s"] = time.perf_counter() - t0
    output_names = [f"output{i}" for i in range(len(outputs))]
    if not isinstance(structure, int):  # nested outputs: each named by its place ("out", "0.boxes")
        for index, name in output_names_of(structure):
            if 0 <= index < len(output_names):
                output_names[index] = name

    meta = {
        "format_version": FORMAT_VERSION,
        "source_file": printable(source),
        "source_sha256": sha256_of(source),
        "model_name": printable(os.path.splitext(os.path.basename(source))[0]),
        "source_level": printable(os.path.basename(os.path.dirname(source))),
        "torch_version": torch.__version__,
        "seed": SEED,
        "init_inputs": jsonable(init_inputs),
        "inputs": [describe(n, t) for n, t in zip(input_names, inputs)],
        # Values of get_inputs() that are not tensors (a step count, a flag): constants of the trace.
        "bound_inputs": bound,
        "outputs": [describe(n, t) for n, t in zip(output_names, outputs)],
        "output_structure": structure,
        "einops_shim": shim_used,
        # APIs this torch lacks that python/kdecomp_shims/torch_compat.py stands in for.
        "torch_stand_ins": stand_ins,
        # Libraries of custom ops the model's code loaded (torchvision's _C for torchvision::nms):
        # `kdecomp decompose model.py` loads them before importing the scripted model.
        "op_libraries": sorted(str(path) for path in torch.ops.loaded_libraries),
    }
    extra = {"format_version": FORMAT_VERSION, "inputs": meta["inputs"], "outputs": meta["outputs"],
             "modules": module_hierarchy(model)}

    out_dir = os.path.abspath(args.output)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    # kdecomp passes a staging directory it created and removes whatever happens to us.
    staging = args.staging or tempfile.mkdtemp(prefix=".kdecomp-export-", dir=parent)
    check_free_space(staging, estimated_export_bytes(model, inputs, outputs, args.onnx))
    if not (args.onnx or args.fx):
        # Only the ONNX and FX exports save the eager outputs (meta.json already describes them): a
        # GB-sized result is not held through scripting, tracing (which runs the forward again)
        # and saving the inputs.
        del outputs
    try:
        t0 = time.perf_counter()
        method, reason = export_torchscript(
            model, inputs, os.path.join(staging, "model.pt"), extra, args.method, nested, restore_buffers, bool(bound),
            scripted, script_failure, meta_run.argument_types if meta_run is not None else None
        )
        timings["torchscript_s"] = time.perf_counter() - t0
        meta["method"] = method
        meta["fallback_reason"] = reason
        # A tuple: the C++ unpickler (torch::pickle_load) lacks the APPEND opcode a 1-element list uses.
        if args.inputs_per_file:
            save_inputs_per_file(inputs, os.path.join(staging, "inputs"))
        else:
            torch.save(tuple(inputs), os.path.join(staging, "inputs.pt"))
        if args.onnx:
            t0 = time.perf_counter()
            meta["onnx"] = export_onnx(model, inputs, staging, input_names, output_names, extra)
            torch.save(tuple(outputs), os.path.join(staging, "outputs.pt"))
            timings["onnx_s"] = time.perf_counter() - t0
        if args.fx:
            t0 = time.perf_counter()
            meta["fx"] = export_fx(model, inputs, input_names, staging, extra["modules"])
            if not args.onnx:  # the reference a replay of the FX graph is checked against, as for ONNX
                torch.save(tuple(outputs), os.path.join(staging, "outputs.pt"))
            timings["fx_s"] = time.perf_counter() - t0
        meta["timings"] = {k: round(v, 3) for k, v in timings.items()}
        # ru_maxrss is KiB on Linux: the batch scheduler's memory estimate for this model.
        meta["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if forward_peak_estimate is not None:
            # No forward ran here: the batch scheduler's estimate comes from the meta run.
            meta["peak_rss_bytes"] = max(meta["peak_rss_bytes"], forward_peak_estimate)
            meta["peak_rss_estimated"] = True
            meta["peak_rss_at_least_bytes"] = forward_peak_at_least
        with open(os.path.join(staging, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise ExportError(f"no space left on device in {parent}") from exc
        raise
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        # LibTorch's writer reports a full disk as a failed write, without the cause.
        if "write" in str(exc) and free_bytes(parent) < (1 << 20):
            raise ExportError(f"no space left on device in {parent}") from exc
        raise
    return meta


def available_memory_bytes():
    """MemAvailable from /proc/meminfo (what can be allocated without swapping); -1 if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


@dataclasses.dataclass
class MetaRun:
    """One forward on the meta device: what the outputs are, and an estimate of what the real
    forward holds beyond its inputs and parameters at its most."""

    outputs: list  # flattened, meta tensors
    structure: object
    nested: bool
    live_peak_bytes: int
    # The forward assigned module attributes (a cache, a lazy submodule, an Optional set on the
    # first call): what scripting sees depends on whether the forward ran first.
    mutates_module: bool = False
    # What the model's own Python functions were called with (types for scripting).
    argument_types: object = None


def live_bytes_mode(held):
    """A dispatch mode that follows, op by op, the bytes of the tensors alive beyond `held`
    (storages, not tensors: views share theirs) and keeps their largest sum."""
    import functools
    import weakref

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    def key(t):
        return t.storage()._storage._cdata

    class LiveBytes(TorchDispatchMode):
        # Counted as tensors are made and freed (weak-reference callbacks), not by walking every
        # live storage after each op: an RNN decomposed into tens of thousands of cell ops keeps
        # thousands of storages alive, and the walk made its meta run slower than its forward.
        def __init__(self):
            super().__init__()
            self.excluded = {key(t) for t in held}
            self.live = {}  # storage -> [bytes, tensors alive using it]
            # The weak references by id, kept so that their callbacks run (a set would compare
            # them, and live weak references compare their tensors).
            self.refs = {}
            self.alive = 0
            self.peak = 0

        def _died(self, storage, ref):
            self.refs.pop(id(ref), None)
            entry = self.live[storage]
            entry[1] -= 1
            if entry[1] == 0:
                self.alive -= entry[0]
                del self.live[storage]

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if not isinstance(t, torch.Tensor):
                    continue
                storage = key(t)
                if storage in self.excluded:
                    continue
                entry = self.live.get(storage)
                if entry is None:
                    entry = self.live[storage] = [t.storage().nbytes(), 0]
                    self.alive += entry[0]
                entry[1] += 1
                ref = weakref.ref(t, functools.partial(self._died, storage))
                self.refs[id(ref)] = ref
            self.peak = max(self.peak, self.alive)
            return out

    return LiveBytes()


def module_attribute_state(model):
    """What each module holds besides tensor data: every attribute's identity (and a container's
    length), and which parameters, buffers and submodules it has."""
    state = []
    for path, module in model.named_modules():
        for key, value in sorted(vars(module).items()):
            if key in ("_parameters", "_buffers", "_modules"):
                state.append((path, key, tuple((k, id(v)) for k, v in value.items())))
            else:
                state.append((path, key, id(value), len(value) if isinstance(value, (list, dict, set)) else None))
    return state


def meta_forward(model, inputs):
    """The forward on the meta device (shapes only: no data, no compute); None when an op has no
    meta kernel or the Python reads data."""
    import copy

    import torch

    try:
        # On a copy whose parameters and buffers are meta tensors (no data copied): a forward
        # may cache tensors on its module (torchvision's detection heads do), and a meta tensor
        # left in the real model breaks the real forward.
        memo = {}
        for t in list(model.parameters()) + list(model.buffers()):
            meta = t.detach().to("meta")
            memo[id(t)] = torch.nn.Parameter(meta, t.requires_grad) if isinstance(t, torch.nn.Parameter) else meta
        held = list(memo.values())  # before deepcopy adds its own entries to the memo
        shadow = copy.deepcopy(model, memo)
        meta_inputs = [[t.to("meta") for t in v] if isinstance(v, list) else v.to("meta") for v in inputs]
        held += input_tensors(meta_inputs)
        before = module_attribute_state(shadow)
        with torch.no_grad(), live_bytes_mode(held) as live, ArgumentTypes().recording() as argument_types:
            raw = shadow(*meta_inputs)
        return MetaRun(flatten_tensors(raw), output_structure(raw), is_nested(raw), live.peak,
                       module_attribute_state(shadow) != before, argument_types)
    except Exception:  # an op without a meta kernel, or data-dependent Python: no estimate
        return None


def check_memory_for_forward(model, inputs, meta_run):
    """Stops before a forward that cannot fit: with the inputs and parameters already in memory,
    the forward must at least allocate its outputs. Says how much it needs against what there is,
    instead of being killed by the kernel part-way through."""
    output_bytes = tensor_bytes(meta_run.outputs) if meta_run else None
    available = available_memory_bytes()
    if output_bytes is None or available < 0 or output_bytes <= available:
        return
    held = tensor_bytes(input_tensors(inputs)) + tensor_bytes(list(model.parameters()) + list(model.buffers()))
    raise ExportError(
        f"not enough memory for the forward at its exact dimensions: it needs at least "
        f"{(held + output_bytes) / 2**30:.1f} GiB (inputs and parameters {held / 2**30:.1f} GiB, outputs "
        f"{output_bytes / 2**30:.1f} GiB), {available / 2**30:.1f} GiB more are available "
        f"after the inputs were made")


def free_bytes(path):
    try:
        st = os.statvfs(path)
    except OSError:
        return -1
    return st.f_bavail * st.f_frsize


def estimated_export_bytes(model, inputs, outputs, onnx):
    """What the export writes, near enough: the parameters and buffers in model.pt (and again
    in model.onnx), the inputs, and with ONNX the outputs."""
    state = tensor_bytes(list(model.parameters()) + list(model.buffers()))
    data = tensor_bytes(input_tensors(inputs))
    if onnx:
        state *= 2
        data += tensor_bytes(outputs)
    return state + data


def check_free_space(directory, needed):
    """Stops before writing when the file system cannot hold the export (with a margin for the
    archives' own records), instead of failing part-way through a GB-sized write."""
    free = free_bytes(directory)
    margin = (1 << 20) + needed // 64
    if 0 <= free < needed + margin:
        raise ExportError(
            f"no space left on device in {os.path.dirname(directory)}: the export needs about "
            f"{(needed + margin) / 1e6:.1f} MB, {free / 1e6:.1f} MB are free")


def die_with_parent():
    """Linux: end with the process that started us (kdecomp, or a batch worker killed mid-run),
    so that no orphaned export keeps writing into a directory a rerun is using."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent was already gone before prctl took effect
        sys.exit(2)


def save_inputs_per_file(inputs, directory):
    """inputs/<i>.pt, one torch.save file per input: the file a reference store can link as the
    input's reference. Each value is saved as inputs.pt would hold it (a view with its strides)."""
    import torch

    os.makedirs(directory)
    for i, value in enumerate(inputs):
        if not isinstance(value, torch.Tensor):
            value = tuple(value)  # a list of tensors (see the tuple note where inputs.pt is written)
        torch.save(value, os.path.join(directory, f"{i}.pt"))


def main(argv=None):
    die_with_parent()
    parser = argparse.ArgumentParser(prog="kdecomp export", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="KernelBench-format .py file")
    parser.add_argument("-o", "--output", required=True, help="output directory (replaced atomically)")
    parser.add_argument("--method", choices=["auto", "script", "trace"], default="auto")
    parser.add_argument("--onnx", action="store_true", help="also write model.onnx (opset 17)")
    parser.add_argument("--fx", action="store_true", help="also write model.fx.json (aten-level FX graph) and fx_state.pt")
    parser.add_argument("--inputs-per-file", action="store_true",
                        help="write the inputs as inputs/0.pt, 1.pt, ... (one file each) instead of inputs.pt")
    parser.add_argument("--debug", action="store_true", help="print the full traceback on failure")
    parser.add_argument("--staging", help="an empty directory to write into before the rename (kdecomp makes it)")
    args = parser.parse_args(argv)
    try:
        meta = run_export(args)
    except ExportError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"kdecomp export: error: {args.model}: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # the model's code, while being scripted, traced or saved
        print(f"kdecomp export: error: {args.model}: the model called sys.exit({exc.code!r})", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        print(f"kdecomp export: error: {args.model}: {first_line(exc)}", file=sys.stderr)
        return 2
    note = f" (fallback: {meta['fallback_reason']})" if meta["fallback_reason"] else ""
    print(f"exported {meta['model_name']} via {meta['method']}{note} -> {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
