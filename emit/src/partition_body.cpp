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

// A folded constant as a C++ expression of the argument's schema type.
std::string literal(const AttributeValue& value, const std::string& schema_type, const Node& node) {
  std::string type = baseType(schema_type);
  struct Visitor {
    const std::string& type;
    const Node& node;
    std::string operator()(std::monostate) const { return "c10::nullopt"; }
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
      if (type == "str") return "std::string(" + quoted(s) + ")";
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
  return std::visit(Visitor{type, node}, value);
}

std::string operandExpr(const Graph& g, const Operand& op, const std::string& schema_type, const Node& node) {
  if (!op.isValue()) return literal(op.constant, schema_type, node);
  const Value& v = g.values[op.value];
  if (baseType(schema_type) == "Scalar" && (v.kind == ValueKind::Int || v.kind == ValueKind::Float)) {
    return "at::Scalar(" + valueVar(op.value) + ")";
  }
  return valueVar(op.value);
}

// Binds a call's result to the node's outputs.
void bindOutputs(std::ostringstream& out, const Node& node, const std::string& call, size_t returns) {
  if (node.outputs.size() == 1 && returns <= 1) {
    out << "  auto " << valueVar(node.outputs[0]) << " = " << call << ";\n";
    return;
  }
  std::string tuple = "t" + std::to_string(node.index);
  out << "  auto " << tuple << " = " << call << ";\n";
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    out << "  auto " << valueVar(node.outputs[i]) << " = std::get<" << i << ">(" << tuple << ");\n";
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

void emitPrim(std::ostringstream& out, const Graph& g, const Node& node) {
  auto value_or_literal = [&](const Operand& op) {
    return op.isValue() ? valueVar(op.value) : literal(op.constant, "int", node);
  };
  if (node.kind == "prim::ListConstruct") {
    const Value& list = g.values[node.outputs.at(0)];
    std::string element = list.kind == ValueKind::TensorList  ? "at::Tensor"
                          : list.kind == ValueKind::IntList   ? "int64_t"
                          : list.kind == ValueKind::FloatList ? "double"
                                                              : "";
    if (element.empty() && isOptionalTensorList(g, node)) {
      // Advanced indexing's `Tensor?[]` (x[idx], x[:, idx] = v): tensors, None for a full slice.
      std::string var = valueVar(node.outputs[0]);
      out << "  c10::List<c10::optional<at::Tensor>> " << var << ";\n";
      for (const Operand& op : node.operands) {
        out << "  " << var << ".push_back(" << (op.isValue() ? valueVar(op.value) : "c10::optional<at::Tensor>()")
            << ");\n";
      }
      return;
    }
    if (element.empty())
      throw EmitError(node.id + ": a list of " + std::string(toString(list.kind)) + " has no C++ spelling");
    out << "  std::vector<" << element << "> " << valueVar(node.outputs[0]) << " = {";
    for (size_t i = 0; i < node.operands.size(); ++i) out << (i ? ", " : "") << value_or_literal(node.operands[i]);
    out << "};\n";
    return;
  }
  if (node.kind == "prim::ListUnpack") {
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      out << "  auto " << valueVar(node.outputs[i]) << " = " << valueVar(node.inputs.at(0)) << "[" << i << "];\n";
    }
    return;
  }
  if (node.kind == "prim::unchecked_cast" || node.kind == "aten::detach") {  // typing only
    out << "  auto " << valueVar(node.outputs.at(0)) << " = " << valueVar(node.inputs.at(0)) << ";\n";
    return;
  }
  if (node.kind == "prim::NumToTensor") {
    out << "  auto " << valueVar(node.outputs.at(0)) << " = at::scalar_tensor(" << value_or_literal(node.operands.at(0))
        << ");\n";
    return;
  }
  throw EmitError(node.id + ": " + node.kind + " has no C++ spelling yet");
}

void emitNode(std::ostringstream& out, const Graph& g, const Node& node) {
  if (node.opaque_control_flow)
    throw EmitError(node.id + ": data-dependent control flow (" + node.kind + ") is not emitted");
  if (node.kind.rfind("prim::", 0) == 0) return emitPrim(out, g, node);
  ParsedSchema schema;
  if (node.schema.empty() || !parseSchema(node.schema, schema))
    throw EmitError(node.id + ": " + node.kind + " has no schema");
  if (schema.arguments.size() != node.operands.size()) {
    throw EmitError(node.id + ": " + node.kind + " has " + std::to_string(node.operands.size()) +
                    " operands, its schema " + std::to_string(schema.arguments.size()));
  }
  std::vector<std::string> args;
  for (size_t i = 0; i < node.operands.size(); ++i) {
    args.push_back(operandExpr(g, node.operands[i], schema.arguments[i].type, node));
  }
  // Scalar conversions and list lengths the C++ API spells as methods.
  if (schema.op == "size" && schema.overload == "int") {
    out << "  int64_t " << valueVar(node.outputs.at(0)) << " = " << args[0] << ".size(" << args[1] << ");\n";
    return;
  }
  if ((schema.op == "Int" || schema.op == "Float" || schema.op == "Bool") && node.operands[0].isValue() &&
      g.values[node.operands[0].value].kind == ValueKind::Tensor) {
    std::string type = schema.op == "Int" ? "int64_t" : schema.op == "Float" ? "double" : "bool";
    out << "  " << type << " " << valueVar(node.outputs.at(0)) << " = " << args[0] << ".item<" << type << ">();\n";
    return;
  }
  // List element, length and comparison: Python's list operations on a std::vector.
  bool on_list = !node.operands.empty() && isVectorOperand(g, node.operands[0], schema.arguments[0].type);
  if (on_list && schema.op == "__getitem__" && args.size() == 2) {
    out << "  auto " << valueVar(node.outputs.at(0)) << " = " << args[0] << ".at(" << args[1] << " < 0 ? " << args[1]
        << " + static_cast<int64_t>(" << args[0] << ".size()) : " << args[1] << ");\n";
    return;
  }
  if (on_list && schema.op == "len" && args.size() == 1) {
    out << "  int64_t " << valueVar(node.outputs.at(0)) << " = static_cast<int64_t>(" << args[0] << ".size());\n";
    return;
  }
  if (on_list && (schema.op == "eq" || schema.op == "ne") && args.size() == 2) {  // whole-list comparison
    out << "  bool " << valueVar(node.outputs.at(0)) << " = " << args[0] << (schema.op == "eq" ? " == " : " != ")
        << args[1] << ";\n";
    return;
  }
  bool in_place = !schema.op.empty() && schema.op.back() == '_' && schema.op != "__and__";
  bool method = isMethodOnly(schema.op) || (in_place && !isFunctionOnly(schema.op));
  std::string call;
  if (method) {
    if (args.empty()) throw EmitError(node.id + ": method call without self");
    call = args[0] + "." + schema.op + "(";
    for (size_t i = 1; i < args.size(); ++i) call += (i > 1 ? ", " : "") + args[i];
  } else {
    // kdecomp_onnx:: ops are the ONNX replay functions, emitted beside the tests (kdecomp_onnx_ops.h).
    if (schema.ns != "aten" && schema.ns != "kdecomp_onnx")
      throw EmitError(node.id + ": " + node.kind + " is not an ATen op");
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
  bindOutputs(out, node, call, schema.returns.size());
}

}  // namespace

std::string valueVar(int value) { return "v" + std::to_string(value); }

std::string finiteDoubleLiteral(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  std::string s = buf;
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
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
    default: return "";
  }
}

std::string emitNodeStatements(const Graph& graph, const Node& node) {
  std::ostringstream out;
  emitNode(out, graph, node);
  return out.str();
}

bool readsRecordInstead(const Node& node, const Partition& p) {
  return node.nondeterministic && p.tier != Tier::Kernel;
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
  std::ostringstream out;
  for (int index : partition.nodes) {
    const Node& node = graph.nodes[index];
    if (readsRecordInstead(node, partition)) continue;  // a parameter: the recorded draw
    if (node.nondeterministic) {
      throw EmitError(node.id + ": " + node.kind +
                      " is not reproducible (random numbers or uninitialised memory; its recorded output feeds the "
                      "partitions after it)");
    }
    emitNode(out, graph, node);
  }
  return out.str();
}

}  // namespace kdecomp
