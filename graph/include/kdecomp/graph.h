// kdecomp IR: a flat, fully shaped dataflow graph of one model's forward.
//
// The IR is plain data (no LibTorch types), so the partitioner, the analysis and the emitter
// build and test without the heavy headers. Nodes are stored in topological order; a node's
// index in `Graph::nodes` is its topological index. Values are numbered in order of
// definition: graph inputs, then parameters, then node outputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kdecomp {

// What a value holds. Tensors carry dtype + shape; the others are the scalar and container
// values that TorchScript graphs pass between ops (sizes, lists of tensors, tuples).
enum class ValueKind {
  Tensor,
  Int,
  Float,
  Bool,
  IntList,
  FloatList,
  BoolList,
  TensorList,
  Tuple,
  None,
  String,
  Device,
  Other
};

const char* toString(ValueKind kind);

struct Value {
  int id = -1;
  ValueKind kind = ValueKind::Other;
  std::string dtype;           // "float32", "int64", ...; empty for non-tensors
  std::vector<int64_t> shape;  // full static shape for tensors
  int producer = -1;           // node index, -1 for graph inputs and parameters
  std::vector<int> users;      // node indices, ascending, one entry per use
  std::string debug_name;      // the source graph's name, informative only
  // For lists/tuples of tensors, the shapes and dtypes of the elements.
  std::vector<std::vector<int64_t>> element_shapes;
  std::vector<std::string> element_dtypes;
  // A constant that an exporter wrote out as a value where TorchScript folds it into an operand
  // (ONNX's shape tensors, a GELU's sqrt(2)): it says nothing of the data's type. Set when the
  // graph is legalised (onnx_legalize.h).
  bool literal = false;

  int64_t numel() const;
  int64_t bytes() const;  // tensors and tensor lists; 0 for scalars
};

using AttributeValue =
    std::variant<std::monostate,  // None
                 bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>, std::vector<bool>>;

// A constant argument of an op, folded into the node (stride=[1,1], alpha=1, ...).
struct Attribute {
  std::string name;
  AttributeValue value;
};

std::string formatAttributeValue(const AttributeValue& value);

// One positional argument of an op: either a value flowing in or a folded constant.
struct Operand {
  std::string name;  // the schema's argument name, or "arg<i>" when the op has no schema
  int value = -1;    // value id, or -1 when this operand is the constant `attribute`
  AttributeValue constant;
  bool isValue() const { return value >= 0; }
};

// How a node of another dialect (onnx::) reads in ATen's vocabulary, recorded once when its
// graph is legalised (onnx_legalize.h), so that the stages after the importer read one
// vocabulary. aten:: and prim:: nodes are their own reading and leave it empty.
struct AtenReading {
  // The ATen twin the operands decide ("aten::select" for a Gather of one index), or the node's
  // own kind when it has none.
  std::string kind;
  // The op-table row that places the node: its own, its refined twin's (a Gather of one index is
  // metadata like select), or "prim::Constant" for a value computed only from constants and
  // tensor sizes (TorchScript holds those as constants).
  std::string table_kind;
  // Workload names: the op's word ("conv", "max_pool") and its shape signature as its ATen
  // twin's reads ("3x64_k3s1p1"; may be empty).
  std::string name_word;
  std::string name_signature;
  // FLOPs by the family's own formula, where ONNX's operand layout differs from the twin's
  // (Gemm's transposes, ConvTranspose, one recurrent node per layer); -1 where its operands do
  // not tell; absent where the table row's rule reads the node as it is.
  std::optional<int64_t> flops;
  bool linear_bias = false;  // the Add of an nn.Linear's bias that the exporter splits from its MatMul
  bool translated() const { return !kind.empty(); }
};

struct Node {
  int index = -1;      // topological index
  std::string id;      // stable: "<module path or root>/<op>#<ordinal>"
  std::string kind;    // "aten::conv2d", "prim::ListConstruct", ...
  std::string schema;  // full operator schema when known (replay looks the op up by it)
  std::vector<Operand> operands;
  std::vector<int> inputs;           // value ids of the value operands, in operand order
  std::vector<int> outputs;          // value ids
  std::string module_path;           // "layer2.0.downsample.0"; empty for the root module
  std::string module_class;          // "Conv2d"
  std::string source_location;       // "file.py:12" when known
  bool opaque_control_flow = false;  // a prim::If / prim::Loop kept whole
  bool nondeterministic = false;     // not reproducible: random draws, uninitialised memory (empty)
  int inner_op_count = 0;            // ops hidden inside an opaque control-flow node
  AtenReading aten;                  // set for nodes of another dialect (onnx::) only

  std::vector<Attribute> attributes() const;
  const AttributeValue* attribute(const std::string& name) const;
  // An integer (or bool) attribute, `fallback` when absent or of another type.
  int64_t intAttribute(const std::string& name, int64_t fallback) const;
  // An int list attribute ([n] for a single int), empty when absent or of another type.
  std::vector<int64_t> intListAttribute(const std::string& name) const;

  std::string opName() const;  // "conv2d" for "aten::conv2d"
  // The kind the partitioner's rules and labels read: the ATen reading's, else the node's own.
  const std::string& atenKind() const { return aten.translated() ? aten.kind : kind; }
};

enum class ParameterKind { Parameter, Buffer, Constant };
const char* toString(ParameterKind kind);

// A tensor that is part of the model rather than an input: state_dict entries and tensor
// constants baked into a traced graph.
struct Parameter {
  std::string name;  // state_dict name ("layer1.0.conv1.weight"), or "constant.<n>"
  ParameterKind kind = ParameterKind::Parameter;
  int value = -1;
};

struct ModuleInfo {
  std::string path;  // "" for the root
  std::string class_name;
  std::vector<std::string> children;  // child paths in registration order
  std::string type_name = {};         // the TorchScript type's qualified name (unique per traced instance)
};

struct GraphInput {
  std::string name;
  int value = -1;
};

struct Graph {
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes;  // topological order
  std::vector<GraphInput> inputs;
  std::vector<Parameter> parameters;
  std::vector<int> outputs;
  std::vector<ModuleInfo> modules;  // named_modules() order, root first
  std::vector<std::string> warnings;

  Value& addValue(ValueKind kind);
  // Recomputes Value::producer / Value::users from the nodes; call after editing nodes.
  void rebuildUses();
  const ModuleInfo* findModule(const std::string& path) const;
};

// The value of the operand named `name` (ONNX operands are named by the spec: X, W, B, ...);
// nullptr when the operand is absent or a folded constant.
const Value* namedOperandValue(const Graph& graph, const Node& node, const std::string& name);
// The node's first tensor output, nullptr when it has none.
const Value* firstTensorOutput(const Graph& graph, const Node& node);

// Stable, human-readable dump used by `kdecomp inspect --ir` and the golden tests.
std::string dumpGraph(const Graph& graph);

std::string formatShape(const std::vector<int64_t>& shape);
std::string formatType(const Value& value);

}  // namespace kdecomp
