// Helpers that build small kdecomp IR graphs by hand for the unit tests.
//
// The IR is plain data; these helpers only save typing. They never compute a shape: every
// output shape is written out in the test, next to the hand-computed expectation.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kdecomp/graph.h"
#include "kdecomp/onnx_legalize.h"

namespace kdecomp_test {

using kdecomp::AttributeValue;
using kdecomp::Graph;
using kdecomp::Node;
using kdecomp::Operand;
using kdecomp::Value;
using kdecomp::ValueKind;
using Shape = std::vector<int64_t>;

// A value operand.
inline Operand V(std::string name, int value_id) {
  Operand op;
  op.name = std::move(name);
  op.value = value_id;
  return op;
}

// A folded-constant operand.
inline Operand C(std::string name, AttributeValue constant) {
  Operand op;
  op.name = std::move(name);
  op.constant = std::move(constant);
  return op;
}

inline AttributeValue ints(std::vector<int64_t> v) { return AttributeValue{std::move(v)}; }
inline AttributeValue i64(int64_t v) { return AttributeValue{v}; }
inline AttributeValue none() { return AttributeValue{std::monostate{}}; }

class GraphBuilder {
 public:
  explicit GraphBuilder(std::string name = "test") { g.name = std::move(name); }

  int tensor(const Shape& shape, const std::string& dtype = "float32") {
    Value& v = g.addValue(ValueKind::Tensor);
    v.dtype = dtype;
    v.shape = shape;
    return v.id;
  }

  int scalar(ValueKind kind) { return g.addValue(kind).id; }

  int input(const std::string& name, const Shape& shape, const std::string& dtype = "float32") {
    int id = tensor(shape, dtype);
    g.inputs.push_back({name, id});
    return id;
  }

  int param(const std::string& name, const Shape& shape,
            kdecomp::ParameterKind kind = kdecomp::ParameterKind::Parameter) {
    int id = tensor(shape);
    g.parameters.push_back({name, kind, id});
    return id;
  }

  // Appends a node producing one tensor output of `out_shape`; returns the output value id.
  int op(const std::string& kind, std::vector<Operand> operands, const Shape& out_shape,
         const std::string& module_path = "", const std::string& dtype = "float32") {
    int out = tensor(out_shape, dtype);
    node(kind, std::move(operands), {out}, module_path);
    return out;
  }

  Node& node(const std::string& kind, std::vector<Operand> operands, std::vector<int> outputs,
             const std::string& module_path = "") {
    Node n;
    n.kind = kind;
    n.operands = std::move(operands);
    n.outputs = std::move(outputs);
    n.module_path = module_path;
    n.index = static_cast<int>(g.nodes.size());
    n.id = (module_path.empty() ? "root" : module_path) + "/" + n.opName() + "#" + std::to_string(n.index);
    g.nodes.push_back(std::move(n));
    g.rebuildUses();
    // As the ONNX importer does once its graph is complete: an onnx:: node reads in ATen's
    // vocabulary. A test that changes a node afterwards calls legalize() again.
    legalize();
    return g.nodes.back();
  }

  void legalize() { kdecomp::legalizeOnnx(g); }

  Graph g;
};

}  // namespace kdecomp_test
