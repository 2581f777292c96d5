"""FX capture for kdecomp: a model at `aten` level as an FX graph, written as kdecomp's serialized
FX graph (model.fx.json) plus its tensors (fx_state.pt).

The capture is torch 1.13's make_fx over a functional call of the model (parameters and buffers
are graph inputs named by their state_dict names), on fake tensors first (no memory, no
arithmetic) and on the exact inputs only where fake tensors do not serve (a forward that reads
data). Forward hooks push and pop each module around its forward, and every node the tracer
creates takes the stack of modules at that moment (`nn_module_stack`, innermost last).

The file follows torch.export's serialized graph (serialized_exported_program.json) where the
two meet: nodes with `target` ("aten::convolution" plus an `overload`), `inputs` as named
arguments of the op's schema with Argument unions (as_tensor, as_ints, as_none, ...), `outputs`,
`metadata.nn_module_stack`, and `tensor_values` (dtype, sizes, strides); a `graph_signature`
names each input as a user input, parameter, buffer or constant tensor. docs/DESIGN.md says how
far it is from a torch.export `.pt2`.
"""

import math
import operator

FX_FORMAT = "kdecomp-fx"
FX_VERSION = 1
# make_fx in torch 1.13 records the ops below CompositeImplicitAutograd kernels: a recurrent
# module (nn.LSTM: aten::lstm) becomes its cell's ops once per time step and layer, tens of
# thousands of nodes that decompose into as many kernels and references (35_LSTM: 39,987
# nodes, killed for memory in record). A capture larger than this is refused, naming the module
# class that holds most of its nodes; TorchScript keeps such a module one op.
MAX_FX_NODES = 10000


class FxCaptureError(Exception):
    """The model cannot be captured as an aten-level FX graph (the reason, one line)."""


class _CaptureTooLarge(FxCaptureError):
    """Raised from inside the tracer as soon as the graph passes MAX_FX_NODES."""


def _too_large_reason(total, per_class):
    cls, count = max(per_class.items(), key=lambda kv: kv[1])
    return (f"make_fx unrolled the model into more than {MAX_FX_NODES} aten ops ({total} when stopped), {count} of them "
            f"inside {cls} modules: torch 1.13 records such a module step by step; its TorchScript export keeps it one op")


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def _tensor_meta(t):
    return {"dtype": _dtype_name(t.dtype), "sizes": list(t.shape), "strides": list(t.stride())}


# Recurrent modules stay one op, as in TorchScript: aten::lstm / gru / rnn_tanh / rnn_relu are
# CompositeImplicitAutograd, so make_fx would record their cells once per time step. During the
# capture, torch._VF's entry points call ops of our own with the same schemas (a CPU kernel that
# is the real op, a Meta kernel that gives the output sizes), which make_fx records as one node;
# the file names them as the aten ops they stand for.
_RECURRENT_SCHEMAS = {
    "lstm": "lstm(Tensor input, Tensor[] hx, Tensor[] params, bool has_biases, int num_layers, float dropout, "
            "bool train, bool bidirectional, bool batch_first) -> (Tensor, Tensor, Tensor)",
    "gru": "gru(Tensor input, Tensor hx, Tensor[] params, bool has_biases, int num_layers, float dropout, bool train, "
           "bool bidirectional, bool batch_first) -> (Tensor, Tensor)",
}
_RECURRENT_SCHEMAS["rnn_tanh"] = _RECURRENT_SCHEMAS["gru"].replace("gru(", "rnn_tanh(")
_RECURRENT_SCHEMAS["rnn_relu"] = _RECURRENT_SCHEMAS["gru"].replace("gru(", "rnn_relu(")
LEAF_NAMESPACE = "kdecomp_fx"
_leaf_library = []  # the torch.library.Library, defined once per process


def _recurrent_leaf_ops():
    import torch

    if _leaf_library:
        return
    lib = torch.library.Library(LEAF_NAMESPACE, "DEF")
    for name, schema in _RECURRENT_SCHEMAS.items():
        lib.define(schema)
        real = getattr(torch._C._VariableFunctions, name)

        def cpu(*args, real=real):
            return real(*args)

        def meta(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first, name=name):
            h0 = hx[0] if name == "lstm" else hx
            out = input.new_empty(list(input.shape[:-1]) + [(2 if bidirectional else 1) * h0.shape[-1]])
            states = list(hx) if name == "lstm" else [hx]
            return (out, *[h.new_empty(h.shape) for h in states])

        lib.impl(name, cpu, "CPU")
        lib.impl(name, meta, "Meta")
    _leaf_library.append(lib)


def _argument(value, node_names):
    """One argument as torch.export's Argument union."""
    import torch
    import torch.fx

    if isinstance(value, torch.fx.Node):
        return {"as_tensor": {"name": node_names[value]}}
    if value is None:
        return {"as_none": True}
    if isinstance(value, bool):
        return {"as_bool": value}
    if isinstance(value, int):
        return {"as_int": value}
    if isinstance(value, float):
        return {"as_float": value if math.isfinite(value) else repr(value)}
    if isinstance(value, str):
        return {"as_string": value}
    if isinstance(value, torch.dtype):
        return {"as_scalar_type": _dtype_name(value)}
    if isinstance(value, torch.device):
        return {"as_device": {"type": value.type, "index": value.index}}
    if isinstance(value, torch.layout):
        return {"as_layout": str(value).replace("torch.", "")}
    if isinstance(value, torch.memory_format):
        return {"as_memory_format": str(value).replace("torch.", "")}
    if isinstance(value, (list, tuple)):
        items = list(value)
        if any(isinstance(v, torch.fx.Node) for v in items):
            if all(isinstance(v, torch.fx.Node) for v in items):
                return {"as_tensors": [{"name": node_names[v]} for v in items]}
            return {"as_optional_tensors": [_argument(v, node_names) for v in items]}
        if all(isinstance(v, bool) for v in items) and items:
            return {"as_bools": items}
        if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            return {"as_ints": items}
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return {"as_floats": [float(v) if math.isfinite(v) else repr(float(v)) for v in items]}
    raise FxCaptureError(f"an argument the serialized graph cannot hold: {type(value).__name__} {value!r:.80}")


def _capture(model, inputs, state, tracing_mode):
    import torch
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.nn.utils import stateless

    _recurrent_leaf_ops()
    stack = []
    handles = []

    def refresh_flat_weights(module):
        # An RNN module reads its weights from a list made at construction; under functional_call
        # the list must hold the weights being traced (fake ones included), not the module's own.
        if isinstance(module, torch.nn.RNNBase):
            module._flat_weights = [getattr(module, wn) if hasattr(module, wn) else None
                                    for wn in module._flat_weights_names]

    for path, module in model.named_modules():
        cls = type(module).__name__  # before functional_call swaps classes for its stand-ins

        def pre(_module, _args, path=path, cls=cls):
            stack.append([path, cls])
            refresh_flat_weights(_module)

        def post(_module, _args, _out):
            stack.pop()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    create_node = torch.fx.Graph.create_node

    per_class = {}

    def create_node_with_stack(self, *args, **kwargs):
        node = create_node(self, *args, **kwargs)
        node.meta["nn_module_stack"] = [list(frame) for frame in stack]
        if node.op == "call_function":
            cls = stack[-1][1] if stack else "Model"
            per_class[cls] = per_class.get(cls, 0) + 1
            total = sum(per_class.values())
            if total > MAX_FX_NODES:  # stop now: the rest of the capture would be spent for nothing
                raise _CaptureTooLarge(_too_large_reason(total, per_class))
        return node

    def forward(params, *xs):
        return stateless.functional_call(model, params, tuple(xs))

    saved_vf = {}
    for name in _RECURRENT_SCHEMAS:
        saved_vf[name] = getattr(torch._VF, name)

        def leaf(*args, name=name):
            # The packed-sequence form (batch_sizes) has another schema: it runs as it is.
            if len(args) == 9 and not isinstance(args[3], torch.Tensor):
                return getattr(torch.ops, LEAF_NAMESPACE).__getattr__(name)(*args)
            return saved_vf[name](*args)

        setattr(torch._VF, name, leaf)
    # nn.TransformerEncoderLayer and nn.MultiheadAttention take a fused fast path under no_grad
    # that hides the whole layer in one op; with grad enabled they run the decomposed ops, as the
    # TorchScript export records them (make_fx traces below autograd either way).
    fused = (torch.nn.TransformerEncoderLayer, torch.nn.TransformerDecoderLayer, torch.nn.MultiheadAttention)
    grad = any(isinstance(m, fused) for m in model.modules())
    torch.fx.Graph.create_node = create_node_with_stack
    try:
        with torch.set_grad_enabled(grad):
            return make_fx(forward, tracing_mode=tracing_mode)(state, *inputs)
    finally:
        torch.fx.Graph.create_node = create_node
        for name, fn in saved_vf.items():
            setattr(torch._VF, name, fn)
        for module in model.modules():
            refresh_flat_weights(module)
        for h in handles:
            h.remove()
        stack.clear()


def _scalar_form(node, overload, gm):
    """make_fx wraps a Python number operand (`x * 0.5`) as a 0-dim constant tensor; TorchScript
    keeps it a number (aten::mul.Scalar). Where the op has an overload that takes a Scalar at
    each such position and is otherwise the same, (that overload, the arguments with numbers);
    else None. The values are the same: a 0-dim tensor takes part in type promotion as a number."""
    import torch.fx

    positions = [i for i, a in enumerate(node.args)
                 if isinstance(a, torch.fx.Node) and a.op == "get_attr" and getattr(gm, a.target).dim() == 0]
    if not positions or node.kwargs:
        return None
    schema = overload._schema
    packet = overload.overloadpacket
    for name in packet.overloads():
        candidate = getattr(packet, name)._schema
        if len(candidate.arguments) != len(schema.arguments) or len(candidate.returns) != len(schema.returns):
            continue
        if any(str(a.type) != str(b.type) for a, b in zip(schema.returns, candidate.returns)):
            continue
        if all((str(b.type) == "number" and str(a.type) == "Tensor") if i in positions else str(a.type) == str(b.type)
               for i, (a, b) in enumerate(zip(schema.arguments, candidate.arguments))):
            args = list(node.args)
            for i in positions:
                args[i] = getattr(gm, args[i].target).item()
            return getattr(packet, name), args
    return None


def _is_fake(t):
    return type(t).__name__ == "FakeTensor"


def capture_fx(model, inputs, input_names, modules):
    """(graph JSON dict, state tensors in graph_signature order, tracing mode, node count)."""
    import torch
    import torch.fx

    state = dict(model.named_parameters())
    state.update(dict(model.named_buffers()))
    state_kinds = {name: "PARAMETER" for name, _ in model.named_parameters()}
    errors = []
    gm = None
    for mode in ("fake", "real"):
        try:
            gm = _capture(model, inputs, state, mode)
            constants = [getattr(gm, n.target) for n in gm.graph.nodes if n.op == "get_attr"]
            if any(_is_fake(c) for c in constants):
                raise FxCaptureError("a tensor made inside the forward is a fake constant")
            break
        except _CaptureTooLarge:
            raise
        except Exception as exc:  # the model's own code under a tracer: any exception is a failed capture
            errors.append(f"{mode}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
            gm = None
    if gm is None:
        raise FxCaptureError("make_fx failed (" + "; ".join(errors) + ")")

    graph = gm.graph
    names = {}
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    state_names = list(state)
    if len(placeholders) != len(state_names) + len(inputs):
        raise FxCaptureError(f"{len(placeholders)} graph inputs for {len(state_names)} state tensors and {len(inputs)} inputs")
    input_specs, state_tensors, tensor_values = [], [], {}
    for i, node in enumerate(placeholders):
        names[node] = node.name
        if i < len(state_names):
            name = state_names[i]
            input_specs.append({"kind": state_kinds.get(name, "BUFFER"), "name": node.name, "target": name})
            state_tensors.append(state[name].detach())
        else:
            k = i - len(state_names)
            input_specs.append({"kind": "USER_INPUT", "name": node.name, "target": input_names[k], "index": k})
        val = node.meta.get("val")
        if isinstance(val, torch.Tensor):
            tensor_values[node.name] = _tensor_meta(val)
    for node in graph.nodes:
        if node.op == "get_attr":
            names[node] = node.name
    constants_read = set()

    nodes, outputs = [], []
    for node in graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            continue
        if node.op == "output":
            flat = node.args[0]
            flat = list(flat) if isinstance(flat, (list, tuple)) else [flat]
            for out in flat:
                if not isinstance(out, torch.fx.Node):
                    raise FxCaptureError(f"the model returns a non-tensor value {out!r:.60}")
                if out.op == "get_attr":
                    constants_read.add(out)
                outputs.append({"as_tensor": {"name": names[out]}})
            continue
        if node.op != "call_function":
            raise FxCaptureError(f"node {node.name}: {node.op} is not an aten call")
        if node.target is operator.getitem:
            continue  # an output of the node it reads: named there
        overload = node.target
        if not isinstance(overload, torch._ops.OpOverload):
            raise FxCaptureError(f"node {node.name}: calls {getattr(overload, '__name__', overload)}, not an aten op")
        args = node.args
        scalar_form = _scalar_form(node, overload, gm)
        if scalar_form is not None:
            overload, args = scalar_form
        schema = overload._schema
        namespace, op_name = schema.name.split("::", 1)
        overload_name = overload._overloadname
        if namespace == LEAF_NAMESPACE:  # a recurrent module's stand-in: the aten op it runs
            namespace, overload_name = "aten", "input"
        for a in list(args) + list(node.kwargs.values()):
            for leaf in (a if isinstance(a, (list, tuple)) else [a]):
                if isinstance(leaf, torch.fx.Node) and leaf.op == "get_attr":
                    constants_read.add(leaf)
        named = []
        for i, a in enumerate(args):
            if i >= len(schema.arguments):
                raise FxCaptureError(f"node {node.name}: more arguments than {schema.name} takes")
            named.append({"name": schema.arguments[i].name, "arg": _argument(a, names)})
        for key, a in node.kwargs.items():
            named.append({"name": key, "arg": _argument(a, names)})
        # A node with several results (a tuple, or a Tensor[]) has no value of its own in 1.13:
        # its getitem users carry the results, each named after its user.
        list_return = len(schema.returns) == 1 and str(schema.returns[0].type).startswith("List")
        node_outputs = []
        if len(schema.returns) > 1 or list_return:
            by_index = {u.args[1]: u for u in node.users if u.target is operator.getitem}
            count = len(schema.returns) if not list_return else (max(by_index) + 1 if by_index else 0)
            for i in range(count):
                user = by_index.get(i)
                if user is None:
                    if list_return:
                        continue
                    name = f"{node.name}__unused{i}"
                else:
                    name = names[user] = user.name
                    val = user.meta.get("val")
                    if isinstance(val, torch.Tensor):
                        tensor_values[name] = _tensor_meta(val)
                node_outputs.append({"as_tensor": {"name": name}, "index": i})
        else:
            names[node] = node.name
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor):
                tensor_values[node.name] = _tensor_meta(val)
            node_outputs.append({"as_tensor": {"name": node.name}, "index": 0})
        stack = node.meta.get("nn_module_stack") or []
        nodes.append({
            "name": node.name,
            "target": f"{namespace}::{op_name}",
            "overload": overload_name,
            "inputs": named,
            "outputs": node_outputs,
            "list_output": list_return,
            "metadata": {"nn_module_stack": stack},
        })
    for node in graph.nodes:  # the constant tensors some op still reads, in graph order
        if node.op == "get_attr" and node in constants_read:
            tensor = getattr(gm, node.target)
            input_specs.append({"kind": "CONSTANT_TENSOR", "name": node.name, "target": str(node.target)})
            state_tensors.append(tensor.detach())
            tensor_values[node.name] = _tensor_meta(tensor)
    doc = {
        "format": FX_FORMAT,
        "version": FX_VERSION,
        "torch_version": torch.__version__,
        "tracing_mode": "fake" if not errors else "real",
        "graph_signature": {"input_specs": input_specs, "output_specs": outputs},
        "modules": modules,
        "graph": {"nodes": nodes, "tensor_values": tensor_values},
    }
    return doc, state_tensors, doc["tracing_mode"], len(nodes)
