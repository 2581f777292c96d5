#include "kdecomp/analysis.h"

#include <algorithm>
#include <set>

#include "kdecomp/op_table.h"

namespace kdecomp {

const char* const kFlopConvention =
    "FLOPs: 2 per multiply-add (conv, linear, matmul, recurrent gates); elementwise ops count per output element "
    "(1, or a fixed cost for transcendental activations); reductions 1 per input element; metadata and data "
    "movement 0. Bytes: tensor operands read once, outputs written once.";

namespace {

int64_t product(const std::vector<int64_t>& v, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < std::min(to, v.size()); ++i) p *= v[i];
  return p;
}

const Value* operandValue(const Graph& g, const Node& n, size_t operand_index) {
  if (operand_index >= n.operands.size() || !n.operands[operand_index].isValue()) return nullptr;
  return &g.values[n.operands[operand_index].value];
}

const Value* firstTensorInput(const Graph& g, const Node& n) {
  for (int id : n.inputs) {
    if (g.values[id].kind == ValueKind::Tensor) return &g.values[id];
  }
  return nullptr;
}

int64_t convolutionFlops(const Graph& g, const Node& n) {
  const Value* weight = operandValue(g, n, 1);
  const Value* out = firstTensorOutput(g, n);
  if (!weight || !out || weight->shape.size() < 2) return -1;
  bool transposed = n.kind.find("conv_transpose") != std::string::npos;
  if (const AttributeValue* t = n.attribute("transposed")) transposed = std::get_if<bool>(t) && std::get<bool>(*t);
  if (transposed) {
    // Each input element scatters into C_out/groups * prod(kernel) outputs.
    const Value* in = operandValue(g, n, 0);
    if (!in) return -1;
    return 2 * in->numel() * weight->shape[1] * product(weight->shape, 2);
  }
  // weight: [C_out, C_in / groups, k...]; each output element is a dot product of that size.
  return 2 * out->numel() * weight->shape[1] * product(weight->shape, 2);
}

int64_t linearFlops(const Graph& g, const Node& n) {
  const Value* in = operandValue(g, n, 0);
  const Value* weight = operandValue(g, n, 1);
  const Value* out = firstTensorOutput(g, n);
  if (!in || !weight || !out || in->shape.empty()) return -1;
  int64_t flops = 2 * out->numel() * in->shape.back();
  if (operandValue(g, n, 2)) flops += out->numel();  // bias
  return flops;
}

int64_t matmulFlops(const Graph& g, const Node& n) {
  // Every output element is a dot product over the shared dimension K. addmm, baddbmm, addmv and
  // addr name their left factor (mat1, batch1, mat, vec1) and add their first operand to it.
  const Value* a = nullptr;
  for (const char* left : {"mat1", "batch1", "mat", "vec1"}) {
    if (!a) a = namedOperandValue(g, n, left);
  }
  bool adds_self = a != nullptr;
  if (!a) a = operandValue(g, n, n.kind == "aten::baddbmm" || n.kind == "aten::addmm" ? 1 : 0);
  adds_self = adds_self || n.kind == "aten::baddbmm" || n.kind == "aten::addmm";
  const Value* out = firstTensorOutput(g, n);
  if (!a || !out || a->shape.empty()) return -1;
  // An outer product (ger, outer, addr: a vector times a vector) multiplies once per output element.
  const Value* b = nullptr;
  for (const char* right : {"vec2", "vec"}) {
    if (!b) b = namedOperandValue(g, n, right);
  }
  bool outer = b && a->shape.size() == 1 && b->shape.size() == 1 && out->shape.size() == 2;
  int64_t k = outer ? 1 : a->shape.back();
  int64_t flops = 2 * out->numel() * k;
  if (adds_self) flops += out->numel();  // the added input (scaled)
  return flops;
}

// The spatial dimensions of a pooling op, from its name (max_pool3d: 3); 1 when it names none.
int64_t spatialDims(const std::string& kind) {
  for (char d : {'1', '2', '3'}) {
    if (kind.find(std::string(1, d) + "d") != std::string::npos) return d - '0';
  }
  return 1;
}

int64_t poolFlops(const Graph& g, const Node& n) {
  const Value* out = firstTensorOutput(g, n);
  const AttributeValue* kernel = n.attribute("kernel_size");
  if (!out || !kernel) return -1;
  // A kernel size given as one number (or a one-element list) holds for every spatial dimension.
  auto window = [&](int64_t size) {
    int64_t w = 1;
    for (int64_t d = 0; d < spatialDims(n.kind); ++d) w *= size;
    return w;
  };
  if (auto k = std::get_if<std::vector<int64_t>>(kernel)) return out->numel() * (k->size() == 1 ? window((*k)[0]) : product(*k));
  if (auto k = std::get_if<int64_t>(kernel)) return out->numel() * window(*k);
  return -1;
}

// LSTM: 4 gates, GRU: 3, RNN: 1; each gate does x@W_ih + h@W_hh plus elementwise work.
int64_t recurrentFlops(const Graph& g, const Node& n) {
  int64_t gates = n.kind == "aten::lstm" ? 4 : n.kind == "aten::gru" ? 3 : 1;
  const Value* in = operandValue(g, n, 0);
  const Value* params = nullptr;
  for (const Operand& op : n.operands) {
    if (op.isValue() && op.name == "params") params = &g.values[op.value];
  }
  if (!in || !params || params->element_shapes.empty() || in->shape.size() < 2) return -1;
  bool batch_first = false;
  if (const AttributeValue* bf = n.attribute("batch_first")) batch_first = std::get_if<bool>(bf) && std::get<bool>(*bf);
  int64_t seq = batch_first ? in->shape[1] : in->shape[0];
  int64_t batch = batch_first ? in->shape[0] : in->shape[1];
  int64_t flops = 0;
  // Weights come as (w_ih, w_hh[, b_ih, b_hh]) per layer and direction: count the matrices.
  for (const auto& shape : params->element_shapes) {
    if (shape.size() == 2) flops += 2 * seq * batch * shape[0] * shape[1];
    if (shape.size() == 1) flops += seq * batch * shape[0];
  }
  // Gate nonlinearities and state updates: about 3 elementwise ops per gate element, in every
  // layer (the output holds one layer's hidden states, both directions included).
  int64_t layers = 1;
  if (const AttributeValue* nl = n.attribute("num_layers")) {
    if (auto v = std::get_if<int64_t>(nl)) layers = *v;
  }
  const Value* out = firstTensorOutput(g, n);
  if (out) flops += 3 * gates * out->numel() * layers;
  return flops;
}

// FLOPs by the table row's rule; -1 where the rule has no formula or the operands do not tell.
int64_t ruleFlops(const Graph& g, const Node& n, const OpInfo& info) {
  switch (info.flops) {
    case FlopRule::Zero: return 0;
    case FlopRule::PerOutput: {
      const Value* out = firstTensorOutput(g, n);
      return out ? static_cast<int64_t>(info.flops_per_element * out->numel()) : -1;
    }
    case FlopRule::PerInput: {
      const Value* in = firstTensorInput(g, n);
      return in ? static_cast<int64_t>(info.flops_per_element * in->numel()) : -1;
    }
    case FlopRule::Convolution: return convolutionFlops(g, n);
    case FlopRule::Linear: return linearFlops(g, n);
    case FlopRule::Matmul:
    case FlopRule::Addmm: return matmulFlops(g, n);
    case FlopRule::Pool: return poolFlops(g, n);
    case FlopRule::AdaptivePool: {
      const Value* in = firstTensorInput(g, n);
      return in ? in->numel() : -1;
    }
    case FlopRule::BatchNorm: {
      const Value* out = firstTensorOutput(g, n);
      return out ? 2 * out->numel() : -1;
    }
    case FlopRule::LayerNorm: {
      const Value* out = firstTensorOutput(g, n);
      return out ? 5 * out->numel() : -1;
    }
    case FlopRule::Recurrent: return recurrentFlops(g, n);
    case FlopRule::ScaledDotProductAttention:
    case FlopRule::None: return -1;
  }
  return -1;
}

}  // namespace

NodeCost nodeCost(const Graph& g, const Node& n) {
  NodeCost cost;
  const OpInfo* info = findOpInfo(g, n);
  for (int id : n.inputs) cost.bytes_read += g.values[id].bytes();
  for (int id : n.outputs) cost.bytes_written += g.values[id].bytes();
  if (info && info->category == OpCategory::Metadata) {
    // Views and plumbing move no data of their own.
    cost.bytes_read = cost.bytes_written = 0;
  }
  if (!info) {
    cost.has_formula = false;
    return cost;
  }
  // A translated node's family formula, where its dialect's operand layout is not the twin's.
  int64_t flops = n.aten.flops ? *n.aten.flops : ruleFlops(g, n, *info);
  if (flops < 0) {
    cost.has_formula = false;
    flops = 0;
  }
  cost.flops = flops;
  return cost;
}

GraphAnalysis analyze(const Graph& g) {
  GraphAnalysis a;
  std::set<std::string> no_formula, not_in_table;
  std::map<std::string, size_t> module_index;
  for (const ModuleInfo& m : g.modules) {
    ModuleCost mc;
    mc.path = m.path;
    mc.class_name = m.class_name;
    mc.depth = m.path.empty() ? 0 : 1 + static_cast<int>(std::count(m.path.begin(), m.path.end(), '.'));
    module_index[m.path] = a.modules.size();
    a.modules.push_back(mc);
  }
  // Adds to a module and every ancestor ("layer1.0.conv1" -> "layer1.0" -> "layer1" -> "").
  auto for_each_ancestor = [&](std::string path, auto&& fn) {
    while (true) {
      auto it = module_index.find(path);
      if (it != module_index.end()) fn(a.modules[it->second]);
      if (path.empty()) break;
      auto dot = path.rfind('.');
      path = dot == std::string::npos ? "" : path.substr(0, dot);
    }
  };
  for (const Node& n : g.nodes) {
    NodeCost cost = nodeCost(g, n);
    a.nodes.push_back(cost);
    a.op_histogram[n.kind]++;
    const OpInfo* info = findOpInfo(g, n);
    if (!info) not_in_table.insert(n.kind);
    if (!cost.has_formula) no_formula.insert(n.kind);
    bool is_work = !info || info->category != OpCategory::Metadata;
    if (is_work) ++a.compute_ops;
    a.total_flops += cost.flops;
    a.total_bytes += cost.bytes_read + cost.bytes_written;
    for_each_ancestor(n.module_path, [&](ModuleCost& mc) {
      mc.ops++;
      if (is_work) mc.compute_ops++;
      mc.flops += cost.flops;
      mc.bytes += cost.bytes_read + cost.bytes_written;
    });
  }
  for (const Parameter& p : g.parameters) {
    const Value& v = g.values[p.value];
    if (p.kind == ParameterKind::Parameter) {
      a.param_count += v.numel();
      a.param_bytes += v.bytes();
    }
    auto dot = p.name.rfind('.');
    std::string owner = dot == std::string::npos ? "" : p.name.substr(0, dot);
    if (p.kind == ParameterKind::Parameter) for_each_ancestor(owner, [&](ModuleCost& mc) { mc.params += v.numel(); });
  }
  a.ops_without_formula.assign(no_formula.begin(), no_formula.end());
  a.ops_not_in_table.assign(not_in_table.begin(), not_in_table.end());
  return a;
}

}  // namespace kdecomp
