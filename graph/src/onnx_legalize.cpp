// The ONNX legaliser (onnx_legalize.h): every onnx:: node read once in ATen's vocabulary. The
// ONNX knowledge the later stages need lives here, one op family beside the next: which ATen op
// the operands make a node (ONNX merges ops TorchScript keeps apart), which values are computed
// from constants and sizes only, the words of its workload name and its FLOPs where ONNX's
// operand layout is not its twin's.
#include "kdecomp/onnx_legalize.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "kdecomp/name_words.h"
#include "kdecomp/op_table.h"

namespace kdecomp {
namespace {

bool isOnnx(const Node& n) { return n.kind.rfind("onnx::", 0) == 0; }

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
  static const std::set<std::string> kViewLike = {"onnx::Unsqueeze", "onnx::Squeeze", "onnx::Transpose", "onnx::Slice",
                                                  "onnx::Reshape"};
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
                                                     "onnx::Slice",     "onnx::Reshape", "prim::ListConstruct"};
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

// ---- the ATen twin, as the operands decide

// ONNX merges ops that TorchScript keeps apart; the operands tell them apart again.
const char* refinedTwin(const Graph& graph, const Node& node) {
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

// ---- workload names: ONNX's operand and attribute names (X, W, B; group, strides, pads,
// kernel_shape; Gemm's B with transB) read into the same signatures as the ATen twins'

// ONNX pads list all begins, then all ends; symmetric pads read as PyTorch's padding.
std::vector<int64_t> onnxPads(const Node& n) {
  std::vector<int64_t> pads = n.intListAttribute("pads");
  size_t half = pads.size() / 2;
  if (pads.size() % 2 == 0 && std::equal(pads.begin(), pads.begin() + half, pads.begin() + half)) pads.resize(half);
  return pads;
}

// The op type in lower snake case, where that reads oddly the usual word.
std::string nameWord(const std::string& op_type) {
  static const std::map<std::string, std::string> words = {
      {"MatMul", "matmul"}, {"CumSum", "cumsum"}, {"ArgMax", "argmax"}};
  auto it = words.find(op_type);
  return it == words.end() ? name_words::snakeCase(op_type) : it->second;
}

std::string nameSignature(const Graph& g, const Node& n) {
  using name_words::compact;
  using name_words::dims;
  std::string type = n.opName();
  const Value* w = namedOperandValue(g, n, "W");
  if ((type == "Conv" || type == "ConvTranspose") && w && w->shape.size() >= 3) {
    return name_words::convolutionSignature(w->shape, n.intAttribute("group", 1), n.intListAttribute("strides"),
                                            onnxPads(n), n.intListAttribute("dilations"));
  }
  if (type == "Gemm") {
    // in x out, as linear_<in>x<out>: B is [K, N], or [N, K] with transB.
    const Value* b = namedOperandValue(g, n, "B");
    if (b && b->shape.size() == 2) {
      bool trans_b = n.intAttribute("transB", 0) != 0;
      return std::to_string(b->shape[trans_b ? 1 : 0]) + "x" + std::to_string(b->shape[trans_b ? 0 : 1]);
    }
  } else if (type == "MatMul") {
    const Value* a = namedOperandValue(g, n, "A");
    const Value* b = namedOperandValue(g, n, "B");
    if (a && b) return dims(a->shape) + "_" + dims(b->shape);
  } else if (type == "LayerNormalization") {
    const Value* x = namedOperandValue(g, n, "X");
    if (x && !x->shape.empty()) {
      int64_t rank = static_cast<int64_t>(x->shape.size());
      int64_t axis = n.intAttribute("axis", -1);
      if (axis < 0) axis += rank;
      if (axis >= 0 && axis < rank) return compact(std::vector<int64_t>(x->shape.begin() + axis, x->shape.end()));
    }
  } else if (type == "BatchNormalization") {
    const Value* scale = namedOperandValue(g, n, "scale");
    if (scale) return dims(scale->shape);
  } else if (type == "MaxPool" || type == "AveragePool") {
    return name_words::poolSignature(n.intListAttribute("kernel_shape"), n.intListAttribute("strides"), onnxPads(n));
  } else if ((type == "LSTM" || type == "GRU" || type == "RNN") && w && w->shape.size() == 3) {
    // W: [directions, gates * hidden, input]; input x hidden, as lstm_<in>x<hidden>.
    int64_t gates = type == "LSTM" ? 4 : type == "GRU" ? 3 : 1;
    return std::to_string(w->shape[2]) + "x" + std::to_string(w->shape[1] / gates);
  }
  return "";
}

// ---- FLOPs where ONNX's operand layout is not the twin's (the table row's rule reads the rest)

int64_t product(const std::vector<int64_t>& v, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < v.size(); ++i) p *= v[i];
  return p;
}

// Gemm: A is [M, K], or [K, M] with transA; each output element is a dot product over K, plus
// the bias C.
int64_t gemmFlops(const Graph& g, const Node& n) {
  const Value* a = namedOperandValue(g, n, "A");
  const Value* out = firstTensorOutput(g, n);
  if (!a || !out || a->shape.empty() || !namedOperandValue(g, n, "B")) return -1;
  int64_t k = n.intAttribute("transA", 0) ? a->shape.front() : a->shape.back();
  int64_t flops = 2 * out->numel() * k;
  if (namedOperandValue(g, n, "C")) flops += out->numel();
  return flops;
}

// ConvTranspose: W is [C_in, C_out / groups, k...]; each input element scatters into
// C_out / groups * prod(kernel) outputs.
int64_t convTransposeFlops(const Graph& g, const Node& n) {
  const Value* x = namedOperandValue(g, n, "X");
  const Value* w = namedOperandValue(g, n, "W");
  if (!x || !w || w->shape.size() < 2) return -1;
  return 2 * x->numel() * w->shape[1] * product(w->shape, 2);
}

// MaxPool / AveragePool: kernel_shape lists every spatial dimension.
int64_t poolFlops(const Graph& g, const Node& n) {
  const Value* out = firstTensorOutput(g, n);
  std::vector<int64_t> kernel = n.intListAttribute("kernel_shape");
  if (!out || kernel.empty()) return -1;
  return out->numel() * product(kernel);
}

// LSTM / GRU / RNN, one node per layer: X [seq, batch, in] ([batch, seq, in] with layout 1),
// W [dirs, gates * hidden, in], R [dirs, gates * hidden, hidden], B [dirs, 2 * gates * hidden].
// The sums of aten's rule (analysis.cpp) over one layer's weights.
int64_t recurrentFlops(const Graph& g, const Node& n, int64_t gates) {
  const Value* x = namedOperandValue(g, n, "X");
  const Value* w = namedOperandValue(g, n, "W");
  const Value* r = namedOperandValue(g, n, "R");
  const Value* b = namedOperandValue(g, n, "B");
  const Value* out = firstTensorOutput(g, n);
  if (!x || !w || !r || !out || x->shape.size() != 3) return -1;
  bool batch_first = n.intAttribute("layout", 0) == 1;
  int64_t seq = batch_first ? x->shape[1] : x->shape[0];
  int64_t batch = batch_first ? x->shape[0] : x->shape[1];
  int64_t flops = 2 * seq * batch * (w->numel() + r->numel());
  if (b) flops += seq * batch * b->numel();
  return flops + 3 * gates * out->numel();  // Y: [seq, dirs, batch, hidden]
}

std::optional<int64_t> familyFlops(const Graph& g, const Node& n) {
  std::string type = n.opName();
  if (type == "Gemm") return gemmFlops(g, n);
  if (type == "ConvTranspose") return convTransposeFlops(g, n);
  if (type == "MaxPool" || type == "AveragePool") return poolFlops(g, n);
  if (type == "LSTM") return recurrentFlops(g, n, 4);
  if (type == "GRU") return recurrentFlops(g, n, 3);
  if (type == "RNN") return recurrentFlops(g, n, 1);
  return std::nullopt;
}

// nn.Linear on a 3-D input exports as MatMul by the weight, then an Add of the bias: the Add
// belongs to the linear, as it does in TorchScript's one aten::linear.
bool isLinearBias(const Graph& graph, const Node& node) {
  if (node.kind != "onnx::Add" || node.inputs.size() != 2) return false;
  bool after_linear = false, bias = false;
  for (int in : node.inputs) {
    const Value& v = graph.values[in];
    if (v.producer >= 0) {
      after_linear |= graph.nodes[v.producer].atenKind() == "aten::linear";
    } else {
      const Parameter* p = findParameter(graph, in);
      bias |= v.shape.size() == 1 && p && p->kind == ParameterKind::Parameter;
    }
  }
  return after_linear && bias;
}

}  // namespace

void legalizeOnnx(Graph& graph) {
  for (Value& v : graph.values) v.literal = false;
  // The twins and table rows first: a bias Add reads its producer's twin.
  for (Node& n : graph.nodes) {
    n.aten = AtenReading{};
    if (!isOnnx(n)) continue;
    const char* refined = refinedTwin(graph, n);
    const char* twin = atenEquivalent(n.kind);
    AtenReading& r = n.aten;
    r.kind = refined ? std::string("aten::") + refined : n.kind;
    r.table_kind = n.kind;
    if (findOpInfo(n.kind) && computesConstant(graph, n)) {
      r.table_kind = "prim::Constant";
    } else if (refined && twin && std::strcmp(refined, twin) != 0) {
      r.table_kind = r.kind;
    }
    r.name_word = nameWord(n.opName());
    r.name_signature = nameSignature(graph, n);
    if (r.table_kind == n.kind) r.flops = familyFlops(graph, n);
  }
  for (Node& n : graph.nodes) {
    if (!n.aten.translated()) continue;
    n.aten.linear_bias = isLinearBias(graph, n);
    if (n.aten.table_kind == "prim::Constant") {
      for (int out : n.outputs) graph.values[out].literal = true;
    }
  }
  // The exporter's Constant initializers read only by ONNX ops.
  for (const Parameter& p : graph.parameters) {
    const std::vector<int>& users = graph.values[p.value].users;
    bool onnx_only =
        !users.empty() && std::all_of(users.begin(), users.end(), [&](int n) { return isOnnx(graph.nodes[n]); });
    if (p.kind == ParameterKind::Constant && onnx_only) graph.values[p.value].literal = true;
  }
}

}  // namespace kdecomp
