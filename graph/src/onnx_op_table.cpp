// The onnx:: op table (the ONNX importer's node kinds, onnx::<OpType>) and each op's ATen twin.
// Categories and fusion patterns are those of the twin's row in aten_op_table.cpp, so that an
// ONNX model gets the tiers its TorchScript export gets (a unit test holds every row to its
// twin). Constant and Identity have no row: the importer folds them. Keep rows sorted by kind
// within each block. An op these rows do not list reads as its row generated from ONNX's own op
// schemas (generated/onnx_ops.inc, scripts/gen_aten_op_table.py), without a twin.
#include <algorithm>
#include <cstring>
#include <iterator>
#include <set>
#include <unordered_map>
#include <vector>

#include "kdecomp/graph.h"
#include "op_tables.h"

namespace kdecomp {
namespace {

using namespace detail::row_shorthand;

// clang-format off
const OpInfo kOnnxTable[] = {
    // ---- compute: matrix and convolution masters
    {"onnx::Conv",                      C, OEF, F::Convolution, 0, false},
    {"onnx::ConvTranspose",             C, OEF, F::Convolution, 0, false},
    {"onnx::Einsum",                    C, OPQ, F::None, 0, false},
    {"onnx::Gemm",                      C, OEF, F::Linear, 0, false},
    {"onnx::MatMul",                    C, OEF, F::Matmul, 0, false},
    // ---- compute: pooling
    {"onnx::AveragePool",               C, OEF, F::Pool, 0, false},
    {"onnx::GlobalAveragePool",         C, OEF, F::AdaptivePool, 0, false},
    {"onnx::GlobalMaxPool",             C, OEF, F::AdaptivePool, 0, false},
    {"onnx::MaxPool",                   C, OEF, F::Pool, 0, false},
    // ---- compute: normalisation (eval batch norm is a per-channel affine)
    {"onnx::BatchNormalization",        C, BC,  F::BatchNorm, 0, false},
    {"onnx::GroupNormalization",        C, RED, F::LayerNorm, 0, false},
    {"onnx::InstanceNormalization",     C, RED, F::LayerNorm, 0, false},
    {"onnx::LayerNormalization",        C, RED, F::LayerNorm, 0, false},
    // ---- compute: recurrent layers (opaque: never fused); one node per layer
    {"onnx::GRU",                       C, OPQ, F::Recurrent, 0, false},
    {"onnx::LSTM",                      C, OPQ, F::Recurrent, 0, false},
    {"onnx::RNN",                       C, OPQ, F::Recurrent, 0, false},
    // ---- compute: reductions
    {"onnx::ArgMax",                    C, RED, F::PerInput, 1, false},
    {"onnx::CumSum",                    C, OPQ, F::PerInput, 1, false},
    {"onnx::LogSoftmax",                C, RED, F::PerOutput, 5, false},
    {"onnx::ReduceL1",                  C, RED, F::PerInput, 2, false},
    {"onnx::ReduceL2",                  C, RED, F::PerInput, 2, false},
    {"onnx::ReduceLogSumExp",           C, RED, F::PerInput, 3, false},
    {"onnx::ReduceMax",                 C, RED, F::PerInput, 1, false},
    {"onnx::ReduceMean",                C, RED, F::PerInput, 1, false},
    {"onnx::ReduceMin",                 C, RED, F::PerInput, 1, false},
    {"onnx::ReduceProd",                C, RED, F::PerInput, 1, false},
    {"onnx::ReduceSum",                 C, RED, F::PerInput, 1, false},
    {"onnx::Softmax",                   C, RED, F::PerOutput, 5, false},
    // ---- compute: elementwise and broadcast arithmetic
    {"onnx::Abs",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Add",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Clip",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Cos",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Div",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Elu",                       C, EW, F::PerOutput, 3, false},
    {"onnx::Equal",                     C, BC, F::PerOutput, 1, false},
    {"onnx::Erf",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Exp",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Gelu",                      C, EW, F::PerOutput, 8, false},
    {"onnx::Greater",                   C, BC, F::PerOutput, 1, false},
    {"onnx::GreaterOrEqual",            C, BC, F::PerOutput, 1, false},
    {"onnx::HardSigmoid",               C, EW, F::PerOutput, 3, false},
    {"onnx::HardSwish",                 C, EW, F::PerOutput, 4, false},
    {"onnx::LeakyRelu",                 C, EW, F::PerOutput, 2, false},
    {"onnx::Less",                      C, BC, F::PerOutput, 1, false},
    {"onnx::LessOrEqual",               C, BC, F::PerOutput, 1, false},
    {"onnx::Log",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Max",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Min",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Mul",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Neg",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Not",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Pow",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Reciprocal",                C, EW, F::PerOutput, 1, false},
    {"onnx::Relu",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Sigmoid",                   C, EW, F::PerOutput, 4, false},
    {"onnx::Sin",                       C, EW, F::PerOutput, 1, false},
    {"onnx::Softplus",                  C, EW, F::PerOutput, 3, false},
    {"onnx::Sqrt",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Sub",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Sum",                       C, BC, F::PerOutput, 1, false},
    {"onnx::Tanh",                      C, EW, F::PerOutput, 1, false},
    {"onnx::Trilu",                     C, INJ, F::Zero, 0, false},
    {"onnx::Where",                     C, BC, F::PerOutput, 1, false},
    // ---- tensor creation (a kernel that writes memory; random ones are recorded)
    {"onnx::ConstantOfShape",           D, OPQ, F::Zero, 0, false},
    {"onnx::RandomNormal",              D, OPQ, F::Zero, 0, true},
    {"onnx::RandomNormalLike",          D, OPQ, F::Zero, 0, true},
    {"onnx::RandomUniform",             D, OPQ, F::Zero, 0, true},
    {"onnx::RandomUniformLike",         D, OPQ, F::Zero, 0, true},
    {"onnx::Range",                     D, OPQ, F::Zero, 0, false},
    // ---- data movement: ops that copy
    {"onnx::Cast",                      D, INJ, F::Zero, 0, false},
    {"onnx::CastLike",                  D, INJ, F::Zero, 0, false},
    {"onnx::Concat",                    D, INJ, F::Zero, 0, false},
    {"onnx::DepthToSpace",              D, INJ, F::Zero, 0, false},
    {"onnx::Gather",                    D, INJ, F::Zero, 0, false},
    {"onnx::GatherElements",            D, INJ, F::Zero, 0, false},
    {"onnx::GatherND",                  D, INJ, F::Zero, 0, false},
    {"onnx::Pad",                       D, INJ, F::Zero, 0, false},
    {"onnx::Resize",                    D, INJ, F::Zero, 0, false},
    {"onnx::Tile",                      D, INJ, F::Zero, 0, false},
    // ---- metadata: views and plumbing (glue of the smallest enclosing group)
    {"onnx::Dropout",                   M, INJ, F::Zero, 0, false},
    {"onnx::Expand",                    M, BC,  F::Zero, 0, false},
    {"onnx::Flatten",                   M, INJ, F::Zero, 0, false},
    {"onnx::Reshape",                   M, INJ, F::Zero, 0, false},
    {"onnx::Shape",                     M, INJ, F::Zero, 0, false},
    {"onnx::Size",                      M, INJ, F::Zero, 0, false},
    {"onnx::Slice",                     M, INJ, F::Zero, 0, false},
    {"onnx::Split",                     M, INJ, F::Zero, 0, false},
    {"onnx::Squeeze",                   M, INJ, F::Zero, 0, false},
    {"onnx::Transpose",                 M, INJ, F::Zero, 0, false},
    {"onnx::Unsqueeze",                 M, INJ, F::Zero, 0, false},
};

// The ATen op each ONNX op stands for, in the order of the table above: the op PyTorch's
// exporter (opset 17) writes it for, or for ONNX-only ops the ATen op with the same work.
const detail::AtenTwin kAtenTwins[] = {
    {"onnx::Conv", "_convolution"},            // any rank
    {"onnx::ConvTranspose", "conv_transpose2d"},
    {"onnx::Einsum", "einsum"},
    {"onnx::Gemm", "linear"},                  // nn.Linear on a 2-D input (transB=1)
    {"onnx::MatMul", "matmul"},
    {"onnx::AveragePool", "avg_pool2d"},
    {"onnx::GlobalAveragePool", "adaptive_avg_pool2d"},
    {"onnx::GlobalMaxPool", "adaptive_max_pool2d"},
    {"onnx::MaxPool", "max_pool2d"},
    {"onnx::BatchNormalization", "batch_norm"},
    {"onnx::GroupNormalization", "group_norm"},
    {"onnx::InstanceNormalization", "instance_norm"},
    {"onnx::LayerNormalization", "layer_norm"},
    {"onnx::GRU", "gru"},
    {"onnx::LSTM", "lstm"},
    {"onnx::RNN", "rnn_tanh"},
    {"onnx::ArgMax", "argmax"},
    {"onnx::CumSum", "cumsum"},
    {"onnx::LogSoftmax", "log_softmax"},
    {"onnx::ReduceL1", "norm"},
    {"onnx::ReduceL2", "norm"},                // F.normalize
    {"onnx::ReduceLogSumExp", "logsumexp"},
    {"onnx::ReduceMax", "amax"},
    {"onnx::ReduceMean", "mean"},
    {"onnx::ReduceMin", "min"},
    {"onnx::ReduceProd", "prod"},
    {"onnx::ReduceSum", "sum"},
    {"onnx::Softmax", "softmax"},
    {"onnx::Abs", "abs"},
    {"onnx::Add", "add"},
    {"onnx::Clip", "hardtanh"},                // ReLU6 and hardtanh export as Clip
    {"onnx::Cos", "cos"},
    {"onnx::Div", "div"},
    {"onnx::Elu", "elu"},
    {"onnx::Equal", "eq"},
    {"onnx::Erf", "erf"},                      // exact GELU exports as Div, Erf, Add, Mul, Mul
    {"onnx::Exp", "exp"},
    {"onnx::Gelu", "gelu"},
    {"onnx::Greater", "gt"},
    {"onnx::GreaterOrEqual", "ge"},
    {"onnx::HardSigmoid", "hardsigmoid"},
    {"onnx::HardSwish", "hardswish"},
    {"onnx::LeakyRelu", "leaky_relu"},
    {"onnx::Less", "lt"},
    {"onnx::LessOrEqual", "le"},
    {"onnx::Log", "log"},
    {"onnx::Max", "maximum"},
    {"onnx::Min", "minimum"},
    {"onnx::Mul", "mul"},
    {"onnx::Neg", "neg"},
    {"onnx::Not", "bitwise_not"},              // ~mask
    {"onnx::Pow", "pow"},
    {"onnx::Reciprocal", "reciprocal"},
    {"onnx::Relu", "relu"},
    {"onnx::Sigmoid", "sigmoid"},
    {"onnx::Sin", "sin"},
    {"onnx::Softplus", "softplus"},
    {"onnx::Sqrt", "sqrt"},
    {"onnx::Sub", "sub"},
    {"onnx::Sum", "add"},                      // variadic elementwise sum
    {"onnx::Tanh", "tanh"},
    {"onnx::Trilu", "tril"},
    {"onnx::Where", "where"},
    {"onnx::ConstantOfShape", "full"},
    {"onnx::RandomNormal", "randn"},
    {"onnx::RandomNormalLike", "randn_like"},
    {"onnx::RandomUniform", "rand"},
    {"onnx::RandomUniformLike", "rand"},
    {"onnx::Range", "arange"},
    {"onnx::Cast", "to"},
    {"onnx::CastLike", "type_as"},
    {"onnx::Concat", "cat"},
    {"onnx::DepthToSpace", "pixel_shuffle"},
    {"onnx::Gather", "index_select"},          // a 0-d index is select: see atenEquivalent(graph, node)
    {"onnx::GatherElements", "gather"},
    {"onnx::GatherND", "index"},
    {"onnx::Pad", "constant_pad_nd"},
    {"onnx::Resize", "upsample_nearest2d"},
    {"onnx::Tile", "repeat"},
    {"onnx::Dropout", "dropout"},
    {"onnx::Expand", "expand"},
    {"onnx::Flatten", "flatten"},
    {"onnx::Reshape", "reshape"},
    {"onnx::Shape", "size"},
    {"onnx::Size", "numel"},
    {"onnx::Slice", "slice"},
    {"onnx::Split", "split"},
    {"onnx::Squeeze", "squeeze"},
    {"onnx::Transpose", "permute"},            // never a copy: ONNX has no contiguous
    {"onnx::Unsqueeze", "unsqueeze"},
};
// clang-format on

const Value* operandNamed(const Graph& g, const Node& n, const char* name, size_t fallback_index) {
  for (const Operand& o : n.operands) {
    if (o.name == name) return o.isValue() ? &g.values[o.value] : nullptr;
  }
  if (fallback_index < n.operands.size() && n.operands[fallback_index].isValue()) {
    return &g.values[n.operands[fallback_index].value];
  }
  return nullptr;
}

// The parameter holding a value, or nullptr for graph inputs and node outputs. Parameters are
// numbered in order (graph.h), so a binary search finds them; the scan covers hand-built graphs.
const Parameter* findParameter(const Graph& g, int value) {
  if (g.values[value].producer >= 0) return nullptr;
  for (const GraphInput& in : g.inputs) {
    if (in.value == value) return nullptr;
  }
  auto it = std::lower_bound(g.parameters.begin(), g.parameters.end(), value,
                             [](const Parameter& p, int v) { return p.value < v; });
  if (it != g.parameters.end() && it->value == value) return &*it;
  for (const Parameter& p : g.parameters) {
    if (p.value == value) return &p;
  }
  return nullptr;
}

// Values TorchScript holds as constants. The exporter computes in ONNX ops what the traced or
// specialised TorchScript graph already knows: arithmetic on Python numbers (Constant nodes: the
// importer's Constant parameters) and on tensor sizes (Shape: aten::size, which the TorchScript
// importer folds). A node computing only such values is a constant there: metadata here.
enum class Static { No, Constants, Shapes };

constexpr int kMaxStaticDepth = 16;        // the exporter's size and pad arithmetic is a few ops deep
constexpr int64_t kMaxShapeElements = 64;  // what is computed from sizes: scalars and size lists

bool mayFold(const Node& n) {
  if (n.kind == "prim::ListConstruct" || n.kind == "prim::ListUnpack") return true;
  const OpInfo* info = n.kind.rfind("onnx::", 0) == 0 ? findOpInfo(n.kind) : nullptr;
  return info && !info->nondeterministic;
}

Static staticValue(const Graph& g, int value, int depth, std::unordered_map<int, Static>& memo);

Static staticInputs(const Graph& g, const Node& n, int depth, std::unordered_map<int, Static>& memo) {
  if (n.inputs.empty()) return Static::No;  // RandomNormal, Constant-like creation: not folded
  // Fail fast on graph inputs and weights before looking upstream.
  for (int in : n.inputs) {
    const Parameter* p = g.values[in].producer < 0 ? findParameter(g, in) : nullptr;
    if (g.values[in].producer < 0 && (!p || p->kind != ParameterKind::Constant)) return Static::No;
  }
  Static s = Static::Constants;
  for (int in : n.inputs) {
    Static v = staticValue(g, in, depth, memo);
    if (v == Static::No) return Static::No;
    if (v == Static::Shapes) s = Static::Shapes;
  }
  return s;
}

Static staticValue(const Graph& g, int value, int depth, std::unordered_map<int, Static>& memo) {
  auto it = memo.find(value);
  if (it != memo.end()) return it->second;
  const Value& v = g.values[value];
  Static s = Static::No;
  if (v.producer < 0) {
    const Parameter* p = findParameter(g, value);
    s = p && p->kind == ParameterKind::Constant ? Static::Constants : Static::No;
  } else if (depth < kMaxStaticDepth) {
    const Node& producer = g.nodes[v.producer];
    if (producer.kind == "onnx::Shape" || producer.kind == "onnx::Size") {
      s = Static::Shapes;
    } else if (mayFold(producer)) {
      s = staticInputs(g, producer, depth + 1, memo);
      // zeros_like(x) exports as ConstantOfShape(Shape(x)): a tensor, not a size computation.
      if (s == Static::Shapes && v.kind == ValueKind::Tensor && v.numel() > kMaxShapeElements) s = Static::No;
    }
  }
  memo[value] = s;
  return s;
}

bool computesConstant(const Graph& g, const Node& n) {
  if (n.outputs.empty() || !mayFold(n) || n.kind.rfind("onnx::", 0) != 0) return false;
  std::unordered_map<int, Static> memo;
  for (int out : n.outputs) {
    if (staticValue(g, out, 0, memo) == Static::No) return false;
  }
  return true;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The tensor a chain of view-like ONNX ops (the exporter's slicing and re-shaping) reads, and
// whether the chain starts with an Unsqueeze (the piece gets an axis of its own).
struct PieceSource {
  int value = -1;
  bool unsqueezed = false;
};

PieceSource pieceSource(const Graph& g, int value) {
  static const std::set<std::string> kViewLike = {"onnx::Unsqueeze", "onnx::Squeeze", "onnx::Transpose",
                                                  "onnx::Slice", "onnx::Reshape"};
  PieceSource source;
  bool first = true;
  bool sliced = false;
  while (g.values[value].producer >= 0) {
    const Node& producer = g.nodes[g.values[value].producer];
    if (!kViewLike.count(producer.kind) || producer.inputs.empty()) break;
    if (first) source.unsqueezed = producer.kind == "onnx::Unsqueeze";
    sliced |= producer.kind == "onnx::Slice";
    first = false;
    value = producer.inputs[0];
  }
  if (sliced) source.value = value;  // a piece of `value`, not `value` re-shaped
  return source;
}

// A Concat of pieces cut from one tensor is how the exporter spells a re-arrangement of that
// tensor: windows stacked along a new axis (Tensor.unfold) or two slices swapped (torch.roll).
const char* concatOfPieces(const Graph& g, const Node& node) {
  if (node.inputs.empty()) return nullptr;
  // The list of pieces is the Concat's one tensor-list operand (prim::ListConstruct).
  std::vector<int> pieces = node.inputs;
  if (g.values[pieces[0]].kind == ValueKind::TensorList) {
    int list = pieces[0];
    if (g.values[list].producer < 0) return nullptr;
    pieces = g.nodes[g.values[list].producer].inputs;
  }
  if (pieces.size() < 2) return nullptr;
  PieceSource first = pieceSource(g, pieces[0]);
  if (first.value < 0) return nullptr;
  for (int piece : pieces) {
    PieceSource s = pieceSource(g, piece);
    if (s.value != first.value || s.unsqueezed != first.unsqueezed) return nullptr;
  }
  if (first.unsqueezed) return "unfold";
  return pieces.size() == 2 ? "roll" : nullptr;
}

// torch.roll over two axes exports as a roll per axis, the second cutting its pieces from the
// first's result. TorchScript has one roll kernel: the first roll is glue of the second.
bool feedsOnlyARoll(const Graph& g, const Node& roll) {
  if (roll.outputs.size() != 1) return false;
  static const std::set<std::string> kPassThrough = {"onnx::Unsqueeze", "onnx::Squeeze", "onnx::Transpose",
                                                     "onnx::Slice", "onnx::Reshape", "prim::ListConstruct"};
  int consumer = -1;
  std::vector<int> frontier{roll.outputs[0]};
  while (!frontier.empty()) {
    int value = frontier.back();
    frontier.pop_back();
    for (int user : g.values[value].users) {
      const Node& n = g.nodes[user];
      if (kPassThrough.count(n.kind)) {
        frontier.insert(frontier.end(), n.outputs.begin(), n.outputs.end());
      } else if (consumer < 0 || consumer == user) {
        consumer = user;
      } else {
        return false;  // used by two ops
      }
    }
  }
  if (consumer < 0) return false;
  const Node& next = g.nodes[consumer];
  const char* kind = next.kind == "onnx::Concat" ? concatOfPieces(g, next) : nullptr;
  return kind && std::strcmp(kind, "roll") == 0;
}

const OpInfo kGeneratedOnnxRows[] = {
#include "generated/onnx_ops.inc"
};

}  // namespace

namespace detail {
OpTableRows onnxOpTable() { return {kOnnxTable, std::size(kOnnxTable)}; }
OpTableRows generatedOnnxRows() { return {kGeneratedOnnxRows, std::size(kGeneratedOnnxRows)}; }
AtenTwinRows onnxAtenTwins() { return {kAtenTwins, std::size(kAtenTwins)}; }
}  // namespace detail

const char* atenEquivalent(const std::string& kind) {
  static const std::unordered_map<std::string, const char*> index = [] {
    std::unordered_map<std::string, const char*> m;
    for (const detail::AtenTwin& t : kAtenTwins) m.emplace(t.kind, t.aten);
    return m;
  }();
  auto it = index.find(kind);
  return it == index.end() ? nullptr : it->second;
}

// ONNX merges ops that TorchScript keeps apart; the operands tell them apart again.
const char* atenEquivalent(const Graph& graph, const Node& node) {
  const char* twin = atenEquivalent(node.kind);
  if (!twin) return nullptr;
  if (node.kind == "onnx::Gather") {
    // x[:, -1]: one index drops the axis, as select (a view) does; an index tensor copies.
    const Value* indices = operandNamed(graph, node, "indices", 1);
    if (indices && indices->kind == ValueKind::Tensor && indices->shape.empty()) return "select";
  } else if (node.kind == "onnx::MatMul") {
    // nn.Linear on a 3-D input exports as MatMul by the (transposed) weight, then Add of the bias;
    // a plain x @ parameter (NetVLAD's clusters, its state_dict name) stays a matmul, as in TorchScript.
    const Value* b = operandNamed(graph, node, "B", 1);
    // F.linear called elsewhere (nn.MultiheadAttention's projections) multiplies by the exporter's
    // folded transpose of the weight, an initializer it names onnx::MatMul_<n>.
    const Parameter* weight = b && b->shape.size() == 2 ? findParameter(graph, b->id) : nullptr;
    bool folded_transpose = weight && weight->name.rfind("onnx::MatMul_", 0) == 0;
    if (weight && (endsWith(node.module_class, "Linear") || folded_transpose)) return "linear";
  } else if (node.kind == "onnx::Concat") {
    if (const char* rearranged = concatOfPieces(graph, node)) {
      if (std::strcmp(rearranged, "roll") == 0 && feedsOnlyARoll(graph, node)) return "alias";
      return rearranged;
    }
  } else if (node.kind == "onnx::Pad") {
    // The exporter pads before every avg_pool with count_include_pad, zeros included; a pad
    // that keeps the shape copies nothing TorchScript would have copied.
    const Value* data = operandNamed(graph, node, "data", 0);
    if (data && !node.outputs.empty() && graph.values[node.outputs[0]].shape == data->shape) return "alias";
  } else if (node.kind == "onnx::Clip") {
    // Clip(x, min) without max is clamp_min (F.normalize's eps), not a relu6.
    const Value* max = operandNamed(graph, node, "max", 2);
    if (!max) return "clamp_min";
  } else if (node.kind == "onnx::Where") {
    // masked_fill(mask, value) exports as Where(mask, value, x) with a 0-d value.
    const Value* value = operandNamed(graph, node, "X", 1);
    if (value && value->shape.empty() && findParameter(graph, value->id)) return "masked_fill";
  } else if (node.kind == "onnx::Resize") {
    const AttributeValue* mode = node.attribute("mode");
    const Value* x = operandNamed(graph, node, "X", 0);
    const std::string* m = mode ? std::get_if<std::string>(mode) : nullptr;
    if (m && *m == "linear" && x && x->shape.size() == 4) return "upsample_bilinear2d";
  }
  return twin;
}

const OpInfo* findOpInfo(const Graph& graph, const Node& node) {
  if (node.kind.rfind("onnx::", 0) != 0) return findOpInfo(node.kind);
  if (findOpInfo(node.kind) && computesConstant(graph, node)) return findOpInfo("prim::Constant");
  const char* refined = atenEquivalent(graph, node);
  const char* twin = atenEquivalent(node.kind);
  if (refined && twin && std::strcmp(refined, twin) != 0) return findOpInfo(std::string("aten::") + refined);
  return findOpInfo(node.kind);
}

}  // namespace kdecomp
