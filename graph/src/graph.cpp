#include "kdecomp/graph.h"
#include "kdecomp/name_words.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace kdecomp {

const char* toString(ValueKind kind) {
  switch (kind) {
    case ValueKind::Tensor: return "Tensor";
    case ValueKind::Int: return "int";
    case ValueKind::Float: return "float";
    case ValueKind::Bool: return "bool";
    case ValueKind::IntList: return "int[]";
    case ValueKind::FloatList: return "float[]";
    case ValueKind::BoolList: return "bool[]";
    case ValueKind::TensorList: return "Tensor[]";
    case ValueKind::Tuple: return "tuple";
    case ValueKind::None: return "None";
    case ValueKind::String: return "str";
    case ValueKind::Device: return "Device";
    case ValueKind::Other: return "other";
  }
  return "other";
}

const char* toString(ParameterKind kind) {
  switch (kind) {
    case ParameterKind::Parameter: return "parameter";
    case ParameterKind::Buffer: return "buffer";
    case ParameterKind::Constant: return "constant";
  }
  return "parameter";
}

static int64_t dtypeSize(const std::string& dtype) {
  if (dtype == "float64" || dtype == "int64" || dtype == "complex64") return 8;
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "float16" || dtype == "bfloat16" || dtype == "int16") return 2;
  if (dtype == "complex128") return 16;
  return 1;  // bool, uint8, int8
}

static int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Value::numel() const { return kind == ValueKind::Tensor ? product(shape) : 0; }

int64_t Value::bytes() const {
  if (kind == ValueKind::Tensor) return product(shape) * dtypeSize(dtype);
  int64_t total = 0;
  for (size_t i = 0; i < element_shapes.size(); ++i) {
    total += product(element_shapes[i]) * dtypeSize(i < element_dtypes.size() ? element_dtypes[i] : "float32");
  }
  return total;
}

std::string Node::opName() const {
  auto pos = kind.find("::");
  return pos == std::string::npos ? kind : kind.substr(pos + 2);
}

std::vector<Attribute> Node::attributes() const {
  std::vector<Attribute> attrs;
  for (const Operand& op : operands) {
    if (!op.isValue()) attrs.push_back({op.name, op.constant});
  }
  return attrs;
}

const AttributeValue* Node::attribute(const std::string& name) const {
  for (const Operand& op : operands) {
    if (!op.isValue() && op.name == name) return &op.constant;
  }
  return nullptr;
}

int64_t Node::intAttribute(const std::string& name, int64_t fallback) const {
  const AttributeValue* a = attribute(name);
  if (!a) return fallback;
  if (auto v = std::get_if<int64_t>(a)) return *v;
  if (auto v = std::get_if<bool>(a)) return *v ? 1 : 0;
  return fallback;
}

std::vector<int64_t> Node::intListAttribute(const std::string& name) const {
  const AttributeValue* a = attribute(name);
  if (!a) return {};
  if (auto v = std::get_if<std::vector<int64_t>>(a)) return *v;
  if (auto v = std::get_if<int64_t>(a)) return {*v};
  return {};
}

const Value* firstTensorOutput(const Graph& graph, const Node& node) {
  for (int id : node.outputs) {
    if (graph.values[id].kind == ValueKind::Tensor) return &graph.values[id];
  }
  return nullptr;
}

const Value* namedOperandValue(const Graph& graph, const Node& node, const std::string& name) {
  for (const Operand& op : node.operands) {
    if (op.name == name) return op.isValue() ? &graph.values[op.value] : nullptr;
  }
  return nullptr;
}

Value& Graph::addValue(ValueKind kind) {
  Value v;
  v.id = static_cast<int>(values.size());
  v.kind = kind;
  values.push_back(std::move(v));
  return values.back();
}

void Graph::rebuildUses() {
  for (Value& v : values) {
    v.producer = -1;
    v.users.clear();
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& n = nodes[i];
    n.index = static_cast<int>(i);
    n.inputs.clear();
    for (const Operand& op : n.operands) {
      if (op.isValue()) {
        n.inputs.push_back(op.value);
        values[op.value].users.push_back(n.index);
      }
    }
    for (int out : n.outputs) values[out].producer = n.index;
  }
}

const ModuleInfo* Graph::findModule(const std::string& path) const {
  for (const ModuleInfo& m : modules) {
    if (m.path == path) return &m;
  }
  return nullptr;
}

std::string formatShape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string formatType(const Value& value) {
  if (value.kind == ValueKind::Tensor) return value.dtype + formatShape(value.shape);
  if (!value.element_shapes.empty()) {
    std::string s = std::string(toString(value.kind)) + "(";
    for (size_t i = 0; i < value.element_shapes.size(); ++i) {
      if (i) s += ", ";
      s += value.element_dtypes[i] + formatShape(value.element_shapes[i]);
    }
    return s + ")";
  }
  return toString(value.kind);
}

static std::string formatDouble(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  std::string s = buf;
  // Shortest form that round-trips, without a locale or iostream state dependency.
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) {
      s = buf;
      break;
    }
  }
  if (s.find_first_of(".eEn") == std::string::npos) s += ".";
  return s;
}

std::string formatAttributeValue(const AttributeValue& value) {
  struct Visitor {
    std::string operator()(std::monostate) const { return "None"; }
    std::string operator()(bool b) const { return b ? "True" : "False"; }
    std::string operator()(int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return formatDouble(d); }
    std::string operator()(const std::string& s) const { return "\"" + s + "\""; }
    std::string operator()(const std::vector<int64_t>& v) const { return formatShape(v); }
    std::string operator()(const std::vector<double>& v) const {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + formatDouble(v[i]);
      return s + "]";
    }
    std::string operator()(const std::vector<bool>& v) const {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += std::string(i ? "," : "") + (v[i] ? "True" : "False");
      return s + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

static std::string valueRef(const Graph& g, int id) {
  for (const Parameter& p : g.parameters) {
    if (p.value == id) return "%" + p.name;
  }
  for (const GraphInput& in : g.inputs) {
    if (in.value == id) return "%" + in.name;
  }
  return "%" + std::to_string(id);
}

std::string dumpGraph(const Graph& g) {
  std::ostringstream out;
  out << "graph " << g.name << "\n";
  out << "inputs:\n";
  for (const GraphInput& in : g.inputs) out << "  %" << in.name << " : " << formatType(g.values[in.value]) << "\n";
  out << "parameters:\n";
  for (const Parameter& p : g.parameters) {
    out << "  %" << p.name << " : " << formatType(g.values[p.value]) << " (" << toString(p.kind) << ")\n";
  }
  out << "nodes:\n";
  for (const Node& n : g.nodes) {
    out << "  " << n.id << "\n    ";
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      const Value& v = g.values[n.outputs[i]];
      out << (i ? ", " : "") << valueRef(g, v.id) << " : " << formatType(v);
    }
    out << (n.outputs.empty() ? "" : " = ") << n.kind << "(";
    for (size_t i = 0; i < n.operands.size(); ++i) {
      const Operand& op = n.operands[i];
      out << (i ? ", " : "");
      if (op.isValue()) {
        out << valueRef(g, op.value);
      } else {
        out << op.name << "=" << formatAttributeValue(op.constant);
      }
    }
    out << ")";
    if (n.opaque_control_flow) out << " {opaque: " << n.inner_op_count << " inner ops}";
    if (n.nondeterministic) out << " {nondeterministic}";
    out << "\n    module=" << (n.module_path.empty() ? "<root>" : n.module_path) << " (" << n.module_class << ")\n";
  }
  out << "outputs:";
  for (int id : g.outputs) out << " " << valueRef(g, id) << " : " << formatType(g.values[id]);
  out << "\n";
  for (const std::string& w : g.warnings) out << "warning: " << w << "\n";
  return out.str();
}

}  // namespace kdecomp

namespace kdecomp::name_words {

std::string dims(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s.empty() ? "scalar" : s;
}

std::string compact(const std::vector<int64_t>& v) {
  if (v.empty()) return "";
  bool same = std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == v[0]; });
  return same ? std::to_string(v[0]) : dims(v);
}

std::string sanitize(std::string s) {
  for (char& c : s) c = std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  return s;
}

std::string snakeCase(const std::string& camel) {
  std::string s;
  for (size_t i = 0; i < camel.size(); ++i) {
    char c = camel[i];
    bool boundary = i > 0 && std::isupper(static_cast<unsigned char>(c)) &&
                    (std::islower(static_cast<unsigned char>(camel[i - 1])) ||
                     (i + 1 < camel.size() && std::islower(static_cast<unsigned char>(camel[i + 1]))));
    if (boundary) s += '_';
    s += c;
  }
  return sanitize(s);
}

std::string convolutionSignature(const std::vector<int64_t>& weight_shape, int64_t groups,
                                 const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                                 const std::vector<int64_t>& dilation) {
  std::vector<int64_t> kernel(weight_shape.begin() + 2, weight_shape.end());
  std::string s = std::to_string(weight_shape[1] * groups) + "x" + std::to_string(weight_shape[0]) + "_k" +
                  compact(kernel) + "s" + compact(stride) + "p" + compact(padding);
  if (std::any_of(dilation.begin(), dilation.end(), [](int64_t d) { return d != 1; })) s += "d" + compact(dilation);
  if (groups != 1) s += "g" + std::to_string(groups);
  return s;
}

std::string poolSignature(const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                          const std::vector<int64_t>& padding) {
  std::string s = "k" + compact(kernel);
  if (!stride.empty()) s += "s" + compact(stride);
  if (std::any_of(padding.begin(), padding.end(), [](int64_t p) { return p != 0; })) s += "p" + compact(padding);
  return s;
}

}  // namespace kdecomp::name_words
