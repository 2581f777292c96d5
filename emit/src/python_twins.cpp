// The KernelBench-format Python twin of an emitted test: `class Model(nn.Module)` whose forward
// performs the partition's ops as torch.ops.aten calls, get_inputs() / get_init_inputs() at the
// exact dims (the recorded inputs), and a __main__ that checks against the references.
#include <cmath>
#include <set>
#include <sstream>
#include <variant>

#include "aten_spelling.h"
#include "emit_internal.h"
#include "kdecomp/emit.h"
#include "kdecomp/text_escape.h"
#include "kdecomp/tolerance.h"

namespace kdecomp {

namespace {

std::string pyDouble(double d) {
  if (std::isinf(d)) return d > 0 ? "float('inf')" : "float('-inf')";
  if (std::isnan(d)) return "float('nan')";
  return finiteDoubleLiteral(d);
}

// c10::ScalarType numbering, as TorchScript constants carry dtypes.
std::string pyDtype(int64_t code) {
  static const char* kNames[] = {"torch.uint8",     "torch.int8",      "torch.int16",      "torch.int32",
                                 "torch.int64",     "torch.float16",   "torch.float32",    "torch.float64",
                                 "torch.complex32", "torch.complex64", "torch.complex128", "torch.bool"};
  if (code >= 0 && code < 12) return kNames[code];
  if (code == 15) return "torch.bfloat16";
  throw EmitError("dtype code " + std::to_string(code) + " has no Python spelling");
}

std::string pyLiteral(const AttributeValue& value, const std::string& schema_type) {
  std::string type =
      !schema_type.empty() && schema_type.back() == '?' ? schema_type.substr(0, schema_type.size() - 1) : schema_type;
  struct Visitor {
    const std::string& type;
    std::string operator()(std::monostate) const { return "None"; }
    std::string operator()(bool b) const { return b ? "True" : "False"; }
    std::string operator()(int64_t i) const {
      if (type == "ScalarType") return pyDtype(i);
      if (type == "MemoryFormat") {
        static const char* kFormats[] = {"torch.contiguous_format", "torch.preserve_format", "torch.channels_last",
                                         "torch.channels_last_3d"};
        if (i >= 0 && i < 4) return kFormats[i];
      }
      if (type == "Layout" && i == 0) return "torch.strided";
      return std::to_string(i);
    }
    std::string operator()(double d) const { return pyDouble(d); }
    std::string operator()(const std::string& s) const {
      std::string q = pythonStringLiteral(s);
      return type == "Device" ? "torch.device(" + q + ")" : q;
    }
    std::string operator()(const std::vector<int64_t>& v) const {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "]";
    }
    std::string operator()(const std::vector<double>& v) const {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + pyDouble(v[i]);
      return s + "]";
    }
    std::string operator()(const std::vector<bool>& v) const {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += std::string(i ? ", " : "") + (v[i] ? "True" : "False");
      return s + "]";
    }
  };
  return std::visit(Visitor{type}, value);
}

// The list operations of TorchScript's builtins (schemas generic over `t`), as Python spells them:
// {i} is operand i.
struct GenericListOp {
  const char* op;
  size_t operands;
  const char* python;
  bool statement;  // a store into the list: the list itself is the result, if the node has one
};
constexpr GenericListOp kGenericListOps[] = {
    {"__getitem__", 2, "{0}[{1}]", false},    {"len", 1, "len({0})", false},
    {"list", 1, "list({0})", false},          {"mul", 2, "{0} * {1}", false},
    {"add", 2, "{0} + {1}", false},           {"eq", 2, "{0} == {1}", false},
    {"ne", 2, "{0} != {1}", false},           {"__contains__", 2, "{1} in {0}", false},
    {"_set_item", 3, "{0}[{1}] = {2}", true}, {"insert", 3, "{0}.insert({1}, {2})", true},
};

void pyNode(std::ostringstream& out, const CodeNames& names, const Node& node) {
  if (node.opaque_control_flow)
    throw EmitError(node.id + ": data-dependent control flow (" + node.kind + ") is not emitted");
  if (node.nondeterministic)
    throw EmitError(node.id + ": " + node.kind + " is not reproducible (random numbers or uninitialised memory)");
  const std::string ind = "        ";
  auto operand = [&](const Operand& op, const std::string& type) {
    return op.isValue() ? names(op.value) : pyLiteral(op.constant, type);
  };
  if (node.kind == "prim::ListConstruct") {
    out << ind << names(node.outputs.at(0)) << " = [";
    for (size_t i = 0; i < node.operands.size(); ++i) out << (i ? ", " : "") << operand(node.operands[i], "int");
    out << "]\n";
    return;
  }
  if (node.kind == "prim::ListUnpack") {
    for (size_t i = 0; i < node.outputs.size(); ++i)
      out << ind << names(node.outputs[i]) << " = " << names(node.inputs.at(0)) << "[" << i << "]\n";
    return;
  }
  if (node.kind == "prim::unchecked_cast") {
    out << ind << names(node.outputs.at(0)) << " = " << names(node.inputs.at(0)) << "\n";
    return;
  }
  if (node.kind == "prim::NumToTensor") {
    out << ind << names(node.outputs.at(0)) << " = torch.scalar_tensor(" << operand(node.operands.at(0), "Scalar")
        << ")\n";
    return;
  }
  if (node.kind == "prim::TupleConstruct") {  // a trailing comma: a tuple of one stays a tuple
    out << ind << names(node.outputs.at(0)) << " = (";
    for (const Operand& op : node.operands) out << operand(op, "t") << ", ";
    out << ")\n";
    return;
  }
  if (node.kind == "prim::TupleUnpack" && !node.outputs.empty()) {
    out << ind;
    for (int v : node.outputs) out << names(v) << ", ";
    out << "= " << names(node.inputs.at(0)) << "\n";
    return;
  }
  if (node.kind == "prim::DictConstruct" && node.operands.size() % 2 == 0) {
    out << ind << names(node.outputs.at(0)) << " = {";
    for (size_t i = 0; i < node.operands.size(); i += 2) {
      out << (i ? ", " : "") << operand(node.operands[i], "str") << ": " << operand(node.operands[i + 1], "t");
    }
    out << "}\n";
    return;
  }
  // Other prim:: ops with a schema (prim::max.int, prim::dtype) are registered operators:
  // torch.ops.prim calls them like the aten ops below.
  if (node.kind.rfind("prim::", 0) == 0 && node.schema.empty()) {
    throw EmitError(node.id + ": " + node.kind + " has no Python spelling yet");
  }
  ParsedSchema schema;
  if (node.schema.empty() || !parseSchema(node.schema, schema) || schema.arguments.size() != node.operands.size()) {
    throw EmitError(node.id + ": " + node.kind + " has no usable schema");
  }
  // Ops generic over a type variable (`t[] list`) cannot take a Python list through torch.ops:
  // they are Python's own list operations (kGenericListOps).
  bool generic = false;
  for (const SchemaArgument& arg : schema.arguments) {
    generic = generic || arg.type == "t" || arg.type.rfind("t[]", 0) == 0;
  }
  if (generic) {
    const GenericListOp* spelled = nullptr;
    for (const GenericListOp& op : kGenericListOps) {
      bool outputs_fit = node.outputs.size() == 1 || (op.statement && node.outputs.empty());
      if (schema.op == op.op && node.operands.size() == op.operands && outputs_fit) spelled = &op;
    }
    if (!spelled) {
      throw EmitError(node.id + ": " + node.kind + " is generic over its element type and has no Python spelling yet");
    }
    std::vector<std::string> args;
    for (size_t i = 0; i < node.operands.size(); ++i)
      args.push_back(operand(node.operands[i], schema.arguments[i].type));
    std::string expression = spelled->python;
    for (size_t i = 0; i < args.size(); ++i) {
      const std::string hole = "{" + std::to_string(i) + "}";
      for (size_t at = expression.find(hole); at != std::string::npos;
           at = expression.find(hole, at + args[i].size())) {
        expression.replace(at, hole.size(), args[i]);
      }
    }
    if (spelled->statement) {  // writes into the list, and returns it (when anything reads it)
      out << ind << expression << "\n";
      if (!node.outputs.empty()) out << ind << names(node.outputs[0]) << " = " << args[0] << "\n";
    } else {
      out << ind << names(node.outputs[0]) << " = " << expression << "\n";
    }
    return;
  }
  std::string call =
      "torch.ops." + schema.ns + "." + schema.op + "." + (schema.overload.empty() ? "default" : schema.overload) + "(";
  for (size_t i = 0; i < node.operands.size(); ++i) {
    const SchemaArgument& arg = schema.arguments[i];
    call += (i ? ", " : "") + (arg.keyword_only ? arg.name + "=" : "") + operand(node.operands[i], arg.type);
  }
  call += ")";
  if (node.outputs.size() == 1 && schema.returns.size() <= 1) {
    out << ind << names(node.outputs[0]) << " = " << call << "\n";
    return;
  }
  std::string tuple = "t" + std::to_string(node.index);
  out << ind << tuple << " = " << call << "\n";
  for (size_t i = 0; i < node.outputs.size(); ++i)
    out << ind << names(node.outputs[i]) << " = " << tuple << "[" << i << "]\n";
}

}  // namespace

std::string pythonTwin(const Graph& g, const PartitionTree& tree, const Workload& w) {
  return pythonTwin(g, CodeNames(g), tree, w);
}

std::string pythonTwin(const Graph& g, const CodeNames& names, const PartitionTree& tree, const Workload& w) {
  const Partition& p = tree.partitions[w.instances.at(0)];
  std::ostringstream body;
  for (int n : p.nodes) {
    if (!readsRecordInstead(g.nodes[n], p)) pyNode(body, names, g.nodes[n]);  // throws for what Python cannot spell
  }
  const std::vector<int> parameters = emittedParameters(g, p);
  // Module state (KernelBench keeps weights in the Model, get_inputs() returns activations):
  // the model's parameters and buffers, and the recorded draws of random ops, when tensors.
  const std::set<int> state_values = recordedStateValues(g, p);
  std::vector<int> state, activations;
  for (int v : parameters) {
    (state_values.count(v) && g.values[v].kind == ValueKind::Tensor ? state : activations).push_back(v);
  }
  auto ids = [](const std::vector<int>& values) {
    std::string text;
    for (size_t i = 0; i < values.size(); ++i) text += (i ? ", " : "") + std::to_string(values[i]);
    return text;
  };
  auto spec = [&](int v) {
    const Value& value = g.values[v];
    std::string text = std::to_string(v) + ": (";
    if (value.kind == ValueKind::Tensor) {
      text += "[";
      for (size_t i = 0; i < value.shape.size(); ++i) text += (i ? ", " : "") + std::to_string(value.shape[i]);
      text += "], " + pythonStringLiteral(value.dtype);
    } else {
      text += "None, None";
    }
    return text + ")";
  };
  std::ostringstream out;
  out << "# Written by kdecomp: the KernelBench-format twin of " << w.name << ".cpp (" << toString(w.tier) << ").\n"
      << "# Model holds the partition's weights as module state and performs its ops as torch.ops.aten\n"
      << "# calls; get_inputs() returns its activations. Both are the recorded values of instance\n"
      << "# " << oneLineText(p.id) << " at their exact dims when reference/ is there, else seeded random\n"
      << "# values of the same shapes and dtypes (floating: uniform in [0, 1); integers: zeros).\n"
      << "# Run with Debian's interpreter: /usr/bin/python3 " << w.name << ".py  (checks against reference/)\n"
      << "import os\nimport sys\n\nimport torch\nimport torch.nn as nn\n\n"
      << "REFERENCE_DIR = os.environ.get('KDECOMP_REFERENCE_DIR', "
         "os.path.join(os.path.dirname(os.path.abspath(__file__)), "
         "'..', 'reference'))  # kdecomp: reference dir\n"
      << "STATE_IDS = [" << ids(state) << "]\n"
      << "INPUT_IDS = [" << ids(activations) << "]\n"
      << "OUTPUT_IDS = [" << ids(p.outputs) << "]\n"
      << "# value id: (shape, dtype) of what a recorded value stands for\n"
      << "SPECS = {";
  {
    std::vector<int> all = state;
    all.insert(all.end(), activations.begin(), activations.end());
    for (size_t i = 0; i < all.size(); ++i) out << (i ? ", " : "") << spec(all[i]);
  }
  out << "}\n\n\n"
      << "def recorded():\n"
      << "    return bool(REFERENCE_DIR) and os.path.exists(os.path.join(REFERENCE_DIR, 'manifest.json'))\n\n\n"
      << "def load(value_id):\n    return torch.load(os.path.join(REFERENCE_DIR, 'v%06d.pt' % value_id))\n\n\n"
      << "def value(value_id):\n"
      << "    \"\"\"The recorded value, or a seeded random one of its shape and dtype.\"\"\"\n"
      << "    if recorded():\n        return load(value_id)\n"
      << "    shape, dtype = SPECS[value_id]\n"
      << "    if shape is None:\n"
      << "        raise RuntimeError('value %d is not a tensor: only the recorded store (reference/) has it' % "
         "value_id)\n"
      << "    dtype = getattr(torch, dtype)\n"
      << "    if dtype.is_floating_point or dtype.is_complex:\n        return torch.rand(shape, dtype=dtype)\n"
      << "    return torch.zeros(shape, dtype=dtype)\n\n\n"
      << "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n";
  for (int v : state) {
    out << "        self.register_buffer(" << pythonStringLiteral(names(v)) << ", value(" << v << "))\n";
  }
  out << "\n    def forward(self";
  for (int v : activations) out << ", " << names(v);
  out << "):\n";
  for (int v : state) out << "        " << names(v) << " = self." << names(v) << "\n";
  out << body.str() << "        return ";
  if (p.outputs.size() == 1) {
    out << names(p.outputs[0]) << "\n";
  } else {
    out << "(";
    for (size_t i = 0; i < p.outputs.size(); ++i) out << (i ? ", " : "") << names(p.outputs[i]);
    out << ")\n";
  }
  out << "\n\ndef get_inputs():\n    return [value(i) for i in INPUT_IDS]\n\n\ndef get_init_inputs():\n    return "
         "[]\n\n\n"
      << "INF = float('inf')\n\n\n"
      << "def tolerance(dtype):\n"
      << "    \"\"\"(atol, rtol) of kdecomp's rule for floating and complex dtypes.\"\"\"\n"
      << "    half = dtype in (torch.float16, torch.bfloat16, torch.complex32)\n"
      << "    return (" << finiteDoubleLiteral(kHalfPrecisionTolerance.atol) << ", "
      << finiteDoubleLiteral(kHalfPrecisionTolerance.rtol) << ") if half else ("
      << finiteDoubleLiteral(kSinglePrecisionTolerance.atol) << ", "
      << finiteDoubleLiteral(kSinglePrecisionTolerance.rtol) << ")\n\n\n"
      << "def degenerate(expected):\n"
      << "    \"\"\"Why a check against `expected` proves little (kdecomp's rule), or None: non-finite values,\n"
      << "    all zeros, or a largest magnitude at or below atol, which a kernel returning zeros passes.\"\"\"\n"
      << "    if isinstance(expected, (list, tuple)):\n"
      << "        return next((r for r in map(degenerate, expected) if r), None)\n"
      << "    if not isinstance(expected, torch.Tensor) or expected.numel() == 0:\n"
      << "        return None\n"
      << "    b = torch.view_as_real(expected.to(torch.complex128)) if expected.is_complex() else expected.double()\n"
      << "    if not bool(torch.isfinite(b).all()):\n"
      << "        return 'reference has non-finite values'\n"
      << "    if not bool((b != 0).any()):\n"
      << "        return 'reference is all zeros'\n"
      << "    largest, atol = float(b.abs().max()), tolerance(expected.dtype)[0]\n"
      << "    if (expected.is_floating_point() or expected.is_complex()) and largest <= atol:\n"
      << "        return \"reference's largest magnitude %g is at or below atol %g: a kernel returning zeros passes\" "
         "% (\n"
      << "            largest, atol)\n"
      << "    return None\n\n\n"
      << "def matches(actual, expected):\n"
      << "    \"\"\"(passes, max abs diff, needed atol, needed rtol) by kdecomp's rule: |a - b| <= atol + rtol * |b|;\n"
      << "    the needed atol is the smallest at this rtol, the needed rtol the smallest at this atol.\"\"\"\n"
      << "    if isinstance(expected, torch.Tensor):\n"
      << "        if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or actual.dtype != "
         "expected.dtype:\n"
      << "            return False, INF, INF, INF\n"
      << "        if actual.numel() == 0:\n            return True, 0.0, 0.0, 0.0\n"
      << "        if not (actual.is_floating_point() or actual.is_complex()):\n"
      << "            equal = bool(torch.equal(actual, expected))\n"
      << "            gap = float((actual.double() - expected.double()).abs().max())\n"
      << "            return equal, gap, 0.0 if equal else INF, 0.0 if equal else INF\n"
      << "        atol, rtol = tolerance(expected.dtype)\n"
      << "        # complex values by the modulus of their difference\n"
      << "        a, b = (actual.cdouble(), expected.cdouble()) if actual.is_complex() else (actual.double(), "
         "expected.double())\n"
      << "        same = (a == b) | (torch.isnan(a) & torch.isnan(b))\n"
      << "        gap = (a - b).abs()\n"
      << "        diff = torch.nan_to_num(torch.where(same, torch.zeros_like(gap), gap), nan=INF)\n"
      << "        scale = b.abs()\n"
      << "        ok = bool(((diff <= atol + rtol * scale) | same).all())\n"
      << "        need_atol = torch.nan_to_num(torch.clamp(diff - rtol * scale, min=0), nan=INF)\n"
      << "        need_rtol = torch.nan_to_num(torch.where(diff <= atol, torch.zeros_like(diff), (diff - atol) / "
         "scale), "
         "nan=INF)\n"
      << "        return ok, float(diff.max()), float(need_atol.max()), float(need_rtol.max())\n"
      << "    if isinstance(expected, (list, tuple)):\n"
      << "        same_length = len(actual) == len(expected)\n"
      << "        results = [matches(a, e) for a, e in zip(actual, expected)]\n"
      << "        results.append((same_length, 0.0, 0.0 if same_length else INF, 0.0 if same_length else INF))\n"
      << "        return (all(r[0] for r in results), max(r[1] for r in results), max(r[2] for r in results),\n"
      << "                max(r[3] for r in results))\n"
      << "    equal = actual == expected\n"
      << "    return equal, 0.0, 0.0 if equal else INF, 0.0 if equal else INF\n\n\n"
      << "if __name__ == '__main__':\n"
      << "    if not os.path.exists(os.path.join(REFERENCE_DIR, 'manifest.json')):\n"
      << "        print('SKIP " << w.name << ": references are not recorded (run `kdecomp record`)')\n"
      << "        sys.exit(0)\n"
      << "    torch.manual_seed(42)\n"
      << "    with torch.no_grad():\n"
      << "        outputs = Model(*get_init_inputs())(*get_inputs())\n"
      << "    if len(OUTPUT_IDS) == 1:\n        outputs = (outputs,)\n"
      << "    worst, need_atol, need_rtol, ok, flag = 0.0, 0.0, 0.0, True, None\n"
      << "    for index, (out, value_id) in enumerate(zip(outputs, OUTPUT_IDS)):\n"
      << "        expected = load(value_id)\n"
      << "        good, diff, atol_needed, rtol_needed = matches(out, expected)\n"
      << "        ok, worst = ok and good, max(worst, diff)\n"
      << "        need_atol, need_rtol = max(need_atol, atol_needed), max(need_rtol, rtol_needed)\n"
      << "        reason = degenerate(expected)\n"
      << "        flag = flag or (reason and 'output %d: %s' % (index, reason))\n"
      << "    # A match against a degenerate reference proves little: FLAGGED, with the reason.\n"
      << "    print('%s %s: max abs diff %.3g, needed atol %.3g / rtol %.3g%s' % (\n"
      << "        'FLAGGED' if ok and flag else 'PASS' if ok else 'FAIL', "
      << pythonStringLiteral(w.name + " [" + p.id + "]") << ", worst, need_atol, need_rtol,\n"
      << "        ' -- ' + flag if ok and flag else ''))\n"
      << "    sys.exit(0 if ok else 1)\n";
  return out.str();
}

}  // namespace kdecomp
