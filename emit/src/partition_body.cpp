// One partition's nodes (glue included) as straight-line ATen C++: `auto v17 = at::conv2d(v0,
// v1, c10::nullopt, std::vector<int64_t>{1, 1}, ...);`. Attributes become literals; values are
// named v<IR value id>.
#include <cmath>
#include <cstdio>
#include <sstream>
#include <variant>

#include "aten_spelling.h"
#include "emit_internal.h"
#include "kdecomp/emit.h"
#include "kdecomp/text_escape.h"

namespace kdecomp {

namespace {

std::string doubleLiteral(double d) {
  if (std::isinf(d)) return d > 0 ? "INFINITY" : "-INFINITY";
  if (std::isnan(d)) return "NAN";
  return finiteDoubleLiteral(d);
}

std::string quoted(const std::string& s) { return cppStringLiteral(s); }

bool optionalType(const std::string& type) { return !type.empty() && type.back() == '?'; }
std::string baseType(const std::string& type) { return optionalType(type) ? type.substr(0, type.size() - 1) : type; }

// None for an optional of this schema type, typed: a bare c10::nullopt is ambiguous where
// overloads differ in an optional argument (at::mean(x, dtype) and at::mean(x, dim)).
std::string typedNone(const std::string& type) {
  static const std::pair<const char*, const char*> kTyped[] = {{"ScalarType", "c10::optional<at::ScalarType>()"},
                                                               {"Tensor", "c10::optional<at::Tensor>()"},
                                                               {"int", "c10::optional<int64_t>()"},
                                                               {"SymInt", "c10::optional<int64_t>()"},
                                                               {"float", "c10::optional<double>()"},
                                                               {"bool", "c10::optional<bool>()"},
                                                               {"Scalar", "c10::optional<at::Scalar>()"},
                                                               {"str", "c10::optional<c10::string_view>()"},
                                                               {"Layout", "c10::optional<at::Layout>()"},
                                                               {"Device", "c10::optional<at::Device>()"},
                                                               {"MemoryFormat", "c10::optional<at::MemoryFormat>()"},
                                                               {"Generator", "c10::optional<at::Generator>()"},
                                                               {"float[]", "c10::optional<at::ArrayRef<double>>()"}};
  if (type.rfind("int[", 0) == 0 || type.rfind("SymInt[", 0) == 0) return "at::OptionalIntArrayRef()";
  for (const auto& [name, spelling] : kTyped) {
    if (type == name) return spelling;
  }
  return "c10::nullopt";
}

// A folded constant as a C++ expression of the argument's schema type. `untyped_none`: None as
// c10::nullopt (an IValue for a registry call), else as an empty optional of the argument's type.
std::string literal(const AttributeValue& value, const std::string& schema_type, const Node& node,
                    bool untyped_none = false) {
  std::string type = baseType(schema_type);
  struct Visitor {
    const std::string& type;
    const Node& node;
    bool untyped_none;
    std::string operator()(std::monostate) const { return untyped_none ? "c10::nullopt" : typedNone(type); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int64_t i) const {
      std::string n = std::to_string(i);
      if (type == "ScalarType") return "static_cast<at::ScalarType>(" + n + ")";
      if (type == "MemoryFormat") return "static_cast<at::MemoryFormat>(" + n + ")";
      if (type == "Layout") return "static_cast<at::Layout>(" + n + ")";
      if (type == "Scalar") return "at::Scalar(int64_t{" + n + "})";
      if (type == "float") return doubleLiteral(static_cast<double>(i));
      return "int64_t{" + n + "}";
    }
    std::string operator()(double d) const {
      return type == "Scalar" ? "at::Scalar(" + doubleLiteral(d) + ")" : doubleLiteral(d);
    }
    std::string operator()(const std::string& s) const {
      if (type == "Device") return "at::Device(" + quoted(s) + ")";
      if (type == "str" || type == "t") return "std::string(" + quoted(s) + ")";  // t: a container's element
      if (type == "str[]") {  // ONNX string lists (RNN activations), stored comma-joined
        std::string list = "std::vector<std::string>{";
        for (size_t start = 0, i = 0; !s.empty() && start <= s.size(); ++i) {
          size_t comma = s.find(',', start);
          list += (i ? ", " : "") + quoted(s.substr(start, comma - start));
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        return list + "}";
      }
      throw EmitError(node.id + ": constant " + quoted(s) + " of type " + type + " has no C++ spelling");
    }
    std::string operator()(const std::vector<int64_t>& v) const {
      std::string s = "std::vector<int64_t>{";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "}";
    }
    std::string operator()(const std::vector<double>& v) const {
      std::string s = "std::vector<double>{";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + doubleLiteral(v[i]);
      return s + "}";
    }
    std::string operator()(const std::vector<bool>& v) const {
      std::string s = "std::array<bool, " + std::to_string(v.size()) + ">{";
      for (size_t i = 0; i < v.size(); ++i) s += std::string(i ? ", " : "") + (v[i] ? "true" : "false");
      return s + "}";
    }
  };
  return std::visit(Visitor{type, node, untyped_none}, value);
}

std::string operandExpr(const Graph& g, const CodeNames& names, const Operand& op, const std::string& schema_type,
                        const Node& node, bool untyped_none = false) {
  if (!op.isValue()) return literal(op.constant, schema_type, node, untyped_none);
  const Value& v = g.values[op.value];
  if (baseType(schema_type) == "Scalar" && (v.kind == ValueKind::Int || v.kind == ValueKind::Float)) {
    return "at::Scalar(" + names(op.value) + ")";
  }
  return names(op.value);
}

// Binds a call's result to the node's outputs.
void bindOutputs(std::ostringstream& out, const CodeNames& names, const Node& node, const std::string& call,
                 size_t returns) {
  if (node.outputs.size() == 1 && returns <= 1) {
    out << "  auto " << names(node.outputs[0]) << " = " << call << ";\n";
    return;
  }
  std::string tuple = "t" + std::to_string(node.index);
  out << "  auto " << tuple << " = " << call << ";\n";
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    out << "  auto " << names(node.outputs[i]) << " = std::get<" << i << ">(" << tuple << ");\n";
  }
}

// Whether an operand is spelled as a std::vector: a list value of tensors, ints or floats, or a
// literal whose schema type is a list.
bool isVectorOperand(const Graph& g, const Operand& op, const std::string& schema_type) {
  if (!op.isValue()) return schema_type == "int[]" || schema_type == "float[]" || schema_type == "t[]";
  ValueKind kind = g.values[op.value].kind;
  return kind == ValueKind::TensorList || kind == ValueKind::IntList || kind == ValueKind::FloatList;
}

// A list construction whose operands are tensors and Nones, with at least one tensor.
bool isOptionalTensorList(const Graph& g, const Node& node) {
  bool any_tensor = false;
  for (const Operand& op : node.operands) {
    if (op.isValue()) {
      if (g.values[op.value].kind != ValueKind::Tensor) return false;
      any_tensor = true;
    } else if (!std::holds_alternative<std::monostate>(op.constant)) {
      return false;
    }
  }
  return any_tensor;
}

// An op that no ATen C++ function spells: a JIT-only overload (aten::as_tensor.list,
// aten::add.int), a prim:: op with a schema, a custom op (torchvision::nms). The test calls it
// through the JIT operator registry by name and overload, on IValues, as the interpreter does.
void emitRegistryCall(std::ostringstream& out, const Graph& g, const CodeNames& names, const Node& node,
                      const ParsedSchema& schema, const std::vector<std::string>& args) {
  for (const SchemaArgument& a : schema.arguments) {
    if (a.written && baseType(a.type) != "Tensor") {
      throw EmitError(node.id + ": " + node.kind + " writes its " + a.type + " argument '" + a.name +
                      "' in place, which a registry call on a copy would lose");
    }
  }
  std::string stack = "s" + std::to_string(node.index);
  out << "  auto " << stack << " = kdecomp_support::callOperator(" << quoted(schema.ns + "::" + schema.op) << ", "
      << quoted(schema.overload) << ", {";
  for (size_t i = 0; i < args.size(); ++i) out << (i ? ", " : "") << "c10::IValue(" << args[i] << ")";
  out << "});\n";
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const Value& v = g.values[node.outputs[i]];
    out << "  auto " << names(node.outputs[i]) << " = " << stack << ".at(" << i << ")" << ivalueAccessor(v.kind)
        << ";\n";
  }
}

// The schema's operands as C++ expressions of its argument types.
std::vector<std::string> operandExprs(const Graph& g, const CodeNames& names, const Node& node,
                                      const ParsedSchema& schema, bool untyped_none = false) {
  if (schema.arguments.size() != node.operands.size()) {
    throw EmitError(node.id + ": " + node.kind + " has " + std::to_string(node.operands.size()) +
                    " operands, its schema " + std::to_string(schema.arguments.size()));
  }
  std::vector<std::string> args;
  for (size_t i = 0; i < node.operands.size(); ++i) {
    args.push_back(operandExpr(g, names, node.operands[i], schema.arguments[i].type, node, untyped_none));
  }
  return args;
}

// Returns false for a prim:: op it has no C++ spelling for.
bool emitPrim(std::ostringstream& out, const Graph& g, const CodeNames& names, const Node& node) {
  auto value_or_literal = [&](const Operand& op) {
    return op.isValue() ? names(op.value) : literal(op.constant, "int", node);
  };
  // An element of a generic container (tuple, dict, list of IValues).
  auto as_ivalue = [&](const Operand& op) {
    return "c10::IValue(" + (op.isValue() ? names(op.value) : literal(op.constant, "t", node, true)) + ")";
  };
  if (node.kind == "prim::ListConstruct") {
    const Value& list = g.values[node.outputs.at(0)];
    std::string element = list.kind == ValueKind::TensorList  ? "at::Tensor"
                          : list.kind == ValueKind::IntList   ? "int64_t"
                          : list.kind == ValueKind::FloatList ? "double"
                                                              : "";
    if (element.empty() && isOptionalTensorList(g, node)) {
      // Advanced indexing's `Tensor?[]` (x[idx], x[:, idx] = v): tensors, None for a full slice.
      std::string var = names(node.outputs[0]);
      out << "  c10::List<c10::optional<at::Tensor>> " << var << ";\n";
      for (const Operand& op : node.operands) {
        out << "  " << var << ".push_back(" << (op.isValue() ? names(op.value) : "c10::optional<at::Tensor>()")
            << ");\n";
      }
      return true;
    }
    if (element.empty()) {
      // A list of anything else (dicts, tuples, strings): a generic list of IValues.
      std::string var = names(node.outputs[0]);
      out << "  c10::IValue " << var << ";\n  {\n    c10::impl::GenericList items(c10::AnyType::get());\n";
      for (const Operand& op : node.operands) out << "    items.push_back(" << as_ivalue(op) << ");\n";
      out << "    " << var << " = c10::IValue(std::move(items));\n  }\n";
      return true;
    }
    out << "  std::vector<" << element << "> " << names(node.outputs[0]) << " = {";
    for (size_t i = 0; i < node.operands.size(); ++i) out << (i ? ", " : "") << value_or_literal(node.operands[i]);
    out << "};\n";
    return true;
  }
  if (node.kind == "prim::ListUnpack" || node.kind == "prim::TupleUnpack") {
    bool held = heldAsIValue(g.values[node.inputs.at(0)].kind);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      std::string element = names(node.inputs.at(0)) + "[" + std::to_string(i) + "]";
      if (held) {
        element = names(node.inputs.at(0)) +
                  (node.kind == "prim::TupleUnpack" ? ".toTupleRef().elements()" : ".toListRef()") + "[" +
                  std::to_string(i) + "]" + ivalueAccessor(g.values[node.outputs[i]].kind);
      }
      out << "  auto " << names(node.outputs[i]) << " = " << element << ";\n";
    }
    return true;
  }
  if (node.kind == "prim::TupleConstruct") {
    out << "  c10::IValue " << names(node.outputs.at(0)) << " = c10::ivalue::Tuple::create({";
    for (size_t i = 0; i < node.operands.size(); ++i) out << (i ? ", " : "") << as_ivalue(node.operands[i]);
    out << "});\n";
    return true;
  }
  if (node.kind == "prim::DictConstruct" && node.operands.size() % 2 == 0) {
    std::string var = names(node.outputs.at(0));
    out << "  c10::IValue " << var
        << ";\n  {\n    c10::impl::GenericDict entries(c10::AnyType::get(), c10::AnyType::get());\n";
    for (size_t i = 0; i < node.operands.size(); i += 2) {
      out << "    entries.insert_or_assign(" << as_ivalue(node.operands[i]) << ", " << as_ivalue(node.operands[i + 1])
          << ");\n";
    }
    out << "    " << var << " = c10::IValue(std::move(entries));\n  }\n";
    return true;
  }
  if (node.kind == "prim::unchecked_cast" || node.kind == "aten::detach") {  // typing only
    out << "  auto " << names(node.outputs.at(0)) << " = " << names(node.inputs.at(0)) << ";\n";
    return true;
  }
  if (node.kind == "prim::NumToTensor") {
    out << "  auto " << names(node.outputs.at(0)) << " = at::scalar_tensor(" << value_or_literal(node.operands.at(0))
        << ");\n";
    return true;
  }
  return false;
}

void emitNode(std::ostringstream& out, const Graph& g, const CodeNames& names, const Node& node) {
  if (node.opaque_control_flow)
    throw EmitError(node.id + ": data-dependent control flow (" + node.kind + ") is not emitted");
  bool prim = node.kind.rfind("prim::", 0) == 0;
  if (prim && emitPrim(out, g, names, node)) return;
  ParsedSchema schema;
  if (node.schema.empty() || !parseSchema(node.schema, schema)) {
    throw EmitError(node.id + ": " + node.kind + (prim ? " has no C++ spelling yet" : " has no schema"));
  }
  // No at:: function spells a prim:: op with a schema, a JIT-only aten:: overload or a custom op.
  bool aten = schema.ns == "aten";
  bool registry =
      prim || (aten && isJitOnlyOverload(schema.overload.empty() ? schema.op : schema.op + "." + schema.overload)) ||
      (!aten && schema.ns != "kdecomp_onnx");
  std::vector<std::string> args = operandExprs(g, names, node, schema, /*untyped_none=*/registry);
  if (prim) return emitRegistryCall(out, g, names, node, schema, args);
  // Scalar conversions and list lengths the C++ API spells as methods.
  if (schema.op == "size" && schema.overload == "int") {
    out << "  int64_t " << names(node.outputs.at(0)) << " = " << args[0] << ".size(" << args[1] << ");\n";
    return;
  }
  if ((schema.op == "Int" || schema.op == "Float" || schema.op == "Bool") && node.operands[0].isValue() &&
      g.values[node.operands[0].value].kind == ValueKind::Tensor) {
    std::string type = schema.op == "Int" ? "int64_t" : schema.op == "Float" ? "double" : "bool";
    out << "  " << type << " " << names(node.outputs.at(0)) << " = " << args[0] << ".item<" << type << ">();\n";
    return;
  }
  // List element, length and comparison: Python's list operations on a std::vector.
  bool on_list = !node.operands.empty() && isVectorOperand(g, node.operands[0], schema.arguments[0].type);
  if (on_list && schema.op == "__getitem__" && args.size() == 2) {
    out << "  auto " << names(node.outputs.at(0)) << " = " << args[0] << ".at(" << args[1] << " < 0 ? " << args[1]
        << " + static_cast<int64_t>(" << args[0] << ".size()) : " << args[1] << ");\n";
    return;
  }
  if (on_list && schema.op == "len" && args.size() == 1) {
    out << "  int64_t " << names(node.outputs.at(0)) << " = static_cast<int64_t>(" << args[0] << ".size());\n";
    return;
  }
  if (on_list && (schema.op == "eq" || schema.op == "ne") && args.size() == 2) {  // whole-list comparison
    out << "  bool " << names(node.outputs.at(0)) << " = " << args[0] << (schema.op == "eq" ? " == " : " != ")
        << args[1] << ";\n";
    return;
  }
  if (registry) return emitRegistryCall(out, g, names, node, schema, args);
  bool in_place = !schema.op.empty() && schema.op.back() == '_' && schema.op != "__and__";
  bool method = isMethodOnly(schema.op) || (in_place && !isFunctionOnly(schema.op));
  std::string call;
  if (method) {
    if (args.empty()) throw EmitError(node.id + ": method call without self");
    call = args[0] + "." + schema.op + "(";
    for (size_t i = 1; i < args.size(); ++i) call += (i > 1 ? ", " : "") + args[i];
  } else {
    // kdecomp_onnx:: ops are the ONNX replay functions, emitted beside the tests (kdecomp_onnx_ops.h).
    if (in_place && !args.empty() && node.operands[0].isValue()) {
      // at::hardtanh_(at::Tensor& self, ...) wants a mutable handle, and a partition's inputs are
      // const references: a second handle on the same storage, which the op writes in place.
      std::string handle = "h" + std::to_string(node.index);
      out << "  at::Tensor " << handle << " = " << args[0] << ";\n";
      args[0] = handle;
    }
    call = (schema.ns == "aten" ? "at::" : schema.ns + "::") + schema.op + "(";
    for (size_t i = 0; i < args.size(); ++i) call += (i ? ", " : "") + args[i];
  }
  call += ")";
  bindOutputs(out, names, node, call, schema.returns.size());
}

}  // namespace

std::string finiteDoubleLiteral(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

bool heldAsIValue(ValueKind kind) {
  switch (kind) {
    case ValueKind::Tensor:
    case ValueKind::TensorList:
    case ValueKind::Int:
    case ValueKind::Float:
    case ValueKind::Bool:
    case ValueKind::IntList:
    case ValueKind::FloatList: return false;
    default: return true;
  }
}

std::string ivalueAccessor(ValueKind kind) {
  switch (kind) {
    case ValueKind::Tensor: return ".toTensor()";
    case ValueKind::TensorList: return ".toTensorVector()";
    case ValueKind::Int: return ".toInt()";
    case ValueKind::Float: return ".toDouble()";
    case ValueKind::Bool: return ".toBool()";
    case ValueKind::IntList: return ".toIntVector()";
    case ValueKind::FloatList: return ".toDoubleVector()";
    default: return "";
  }
}

std::string cppParameterType(const Value& v) {
  switch (v.kind) {
    case ValueKind::Tensor: return "const at::Tensor&";
    case ValueKind::TensorList: return "const std::vector<at::Tensor>&";
    case ValueKind::Int: return "int64_t";
    case ValueKind::Float: return "double";
    case ValueKind::Bool: return "bool";
    case ValueKind::IntList: return "const std::vector<int64_t>&";
    case ValueKind::FloatList: return "const std::vector<double>&";
    default: return "const c10::IValue&";  // heldAsIValue
  }
}

std::string emitNodeStatements(const Graph& graph, const CodeNames& names, const Node& node) {
  std::ostringstream out;
  emitNode(out, graph, names, node);
  return out.str();
}

bool readsRecordInstead(const Node& node, const Partition& p) {
  return node.nondeterministic && p.tier != Tier::Kernel;
}

std::set<int> recordedStateValues(const Graph& graph, const Partition& p) {
  std::set<int> state;
  for (const Parameter& param : graph.parameters) state.insert(param.value);
  const std::vector<int> parameters = emittedParameters(graph, p);
  state.insert(parameters.begin() + static_cast<long>(p.inputs.size()), parameters.end());
  return state;
}

std::vector<int> emittedParameters(const Graph& graph, const Partition& p) {
  std::vector<int> parameters = p.inputs;
  for (int index : p.nodes) {
    const Node& node = graph.nodes[index];
    if (readsRecordInstead(node, p)) parameters.insert(parameters.end(), node.outputs.begin(), node.outputs.end());
  }
  return parameters;
}

std::string emitPartitionBody(const Graph& graph, const Partition& partition) {
  return emitPartitionBody(graph, CodeNames(graph), partition);
}

std::string emitPartitionBody(const Graph& graph, const CodeNames& names, const Partition& partition) {
  std::ostringstream out;
  for (int index : partition.nodes) {
    const Node& node = graph.nodes[index];
    if (readsRecordInstead(node, partition)) continue;  // a parameter: the recorded draw
    if (node.nondeterministic) {
      throw EmitError(node.id + ": " + node.kind +
                      " is not reproducible (random numbers or uninitialised memory; its recorded output feeds the "
                      "partitions after it)");
    }
    emitNode(out, graph, names, node);
  }
  return out.str();
}

}  // namespace kdecomp
