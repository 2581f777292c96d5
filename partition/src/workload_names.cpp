// Workloads: partitions with the same (op or template, boundary shapes, dtypes, attributes)
// share one test. Names follow DECOMPOSITION.md: `{op}_{shape signature}_{dtype}`, lowercase,
// no numeric suffixes: where two different workloads would share a name, the signature grows
// (first input shape, then every input shape, then a hash of the identity) until they differ.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "kdecomp/name_words.h"
#include "partition_internal.h"

namespace kdecomp::detail {

namespace {

using name_words::compact;
using name_words::dims;
using name_words::sanitize;
using name_words::snakeCase;

std::string shortDtype(const std::string& dtype) {
  static const std::map<std::string, std::string> names = {
      {"float32", "fp32"}, {"float16", "fp16"}, {"bfloat16", "bf16"}, {"float64", "fp64"},
      {"int64", "i64"},    {"int32", "i32"},    {"bool", "bool"},     {"uint8", "u8"}, {"int8", "i8"}};
  auto it = names.find(dtype);
  return it == names.end() ? dtype : it->second;
}

const Value* operandValue(const Graph& g, const Node& n, size_t i) {
  return i < n.operands.size() && n.operands[i].isValue() ? &g.values[n.operands[i].value] : nullptr;
}

// A kernel's name in two parts: the op and its shape signature (may be empty). Fusions take the
// master's signature after their template.
struct KernelName {
  std::string op;
  std::string signature;
  std::string full() const { return signature.empty() ? op : op + "_" + signature; }
};

// Kernel base names: the op and what a kernel engineer recognises it by.
std::string kernelBase(const Graph& g, const Node& n) {
  std::string op = n.opName();
  if (op.size() > 1 && op.back() == '_' && op[op.size() - 2] != '_') op.pop_back();  // relu_ computes relu
  const Value* w = operandValue(g, n, 1);
  if (op.find("conv") != std::string::npos && w && w->shape.size() >= 3) {
    return op + "_" +
           name_words::convolutionSignature(w->shape, n.intAttribute("groups", 1), n.intListAttribute("stride"),
                                            n.intListAttribute("padding"), n.intListAttribute("dilation"));
  }
  if (op == "linear" && w && w->shape.size() == 2) return op + "_" + std::to_string(w->shape[1]) + "x" + std::to_string(w->shape[0]);
  if (op == "addmm") {
    const Value* b = operandValue(g, n, 2);
    if (b && b->shape.size() == 2) return op + "_" + dims(b->shape);
  }
  if (op == "matmul" || op == "bmm" || op == "mm" || op == "baddbmm") {
    const Value* a = operandValue(g, n, op == "baddbmm" ? 1 : 0);
    const Value* b = operandValue(g, n, op == "baddbmm" ? 2 : 1);
    if (a && b) return op + "_" + dims(a->shape) + "_" + dims(b->shape);
  }
  if (op == "layer_norm") return op + "_" + compact(n.intListAttribute("normalized_shape"));
  if (op == "batch_norm" && w) return op + "_" + dims(w->shape);
  if (op.find("pool") != std::string::npos && op.find("adaptive") == std::string::npos) {
    return op + "_" + name_words::poolSignature(n.intListAttribute("kernel_size"), n.intListAttribute("stride"),
                                                n.intListAttribute("padding"));
  }
  // Adaptive pools of rank 2 and 3 by their output size (rank 1 keeps its bare name, as it always has).
  if (op.rfind("adaptive_", 0) == 0 && op.find("pool") != std::string::npos && (op.back() == 'd') &&
      (op[op.size() - 2] == '2' || op[op.size() - 2] == '3')) {
    return op + "_" + compact(n.intListAttribute("output_size"));
  }
  if (op == "lstm" || op == "gru" || op == "rnn_tanh" || op == "rnn_relu") {
    for (const Operand& o : n.operands) {
      if (o.isValue() && o.name == "params" && !g.values[o.value].element_shapes.empty()) {
        const auto& w_ih = g.values[o.value].element_shapes[0];
        int64_t gates = op == "lstm" ? 4 : op == "gru" ? 3 : 1;
        if (w_ih.size() == 2) return op + "_" + std::to_string(w_ih[1]) + "x" + std::to_string(w_ih[0] / gates);
      }
    }
  }
  return op;
}

KernelName kernelName(const Graph& g, const Node& n) {
  // A node translated from another dialect carries its words (onnx_legalize.h).
  if (n.aten.translated()) return {n.aten.name_word, n.aten.name_signature};
  // ATen: the signature is what follows the first '_' of the base (so the fusions of a master
  // whose op has a '_' (max_pool2d) carry a piece of the op name, as they always have).
  std::string kb = kernelBase(g, n);
  auto us = kb.find('_');
  return us == std::string::npos ? KernelName{kb, ""} : KernelName{kb.substr(0, us), kb.substr(us + 1)};
}

// The word for a view in a grown signature: the ATen op name, or a translated node's word.
std::string viewWord(const Node& n) { return n.aten.translated() ? n.aten.name_word : n.opName(); }

// Literals (Value::literal: an exporter's constants and what it computes from them and from
// sizes, which TorchScript folds into operands) say nothing of the data's type.
std::string dtypeOf(const Graph& g, const Partition& p) {
  for (int v : p.inputs) {
    if (g.values[v].kind == ValueKind::Tensor && !g.values[v].literal) return shortDtype(g.values[v].dtype);
  }
  for (int v : p.outputs) {
    if (g.values[v].kind == ValueKind::Tensor) return shortDtype(g.values[v].dtype);
  }
  return "none";
}

std::string identity(const Graph& g, const Partition& p, const std::set<int>& parameters) {
  std::ostringstream key;
  key << toString(p.tier) << "|" << p.template_label;
  if (p.tier == Tier::Layer) key << "|" << p.module_class;  // kernels and fusions are the same work anywhere
  for (int n : p.nodes) {
    const Node& node = g.nodes[n];
    key << "|" << node.kind << "(";
    for (const Operand& o : node.operands) {
      if (!o.isValue()) key << o.name << "=" << formatAttributeValue(o.constant) << ",";
    }
    key << ")";
  }
  for (int v : p.inputs) key << "|in:" << (parameters.count(v) ? "param:" : "") << formatType(g.values[v]);
  for (int v : p.outputs) key << "|out:" << formatType(g.values[v]);
  return key.str();
}

std::string hash(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across runs and platforms
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf).substr(0, 8);
}

std::string activationSignature(const Graph& g, const Partition& p, const std::set<int>& parameters, bool all) {
  std::string s;
  for (int v : p.inputs) {
    if (parameters.count(v) || g.values[v].kind != ValueKind::Tensor) continue;
    s += (s.empty() ? "" : "_") + dims(g.values[v].shape);
    if (!all) break;
  }
  return s.empty() ? "noinput" : s;
}

}  // namespace

// Names longer than this (before the dtype) are cut and given a hash: they are file names.
constexpr size_t kMaxSignatureChars = 120;

void assignWorkloads(const Graph& g, PartitionTree& tree, const std::string& model_name) {
  std::set<int> parameters;
  for (const Parameter& p : g.parameters) parameters.insert(p.value);

  // Group partitions by identity, tier by tier, in partition order (deterministic).
  std::map<std::string, int> by_key;
  for (Partition& p : tree.partitions) {
    std::string key = identity(g, p, parameters);
    auto it = by_key.find(key);
    if (it == by_key.end()) {
      Workload w;
      w.tier = p.tier;
      w.key = key;
      it = by_key.emplace(key, static_cast<int>(tree.workloads.size())).first;
      tree.workloads.push_back(std::move(w));
    }
    p.workload = it->second;
    tree.workloads[it->second].instances.push_back(p.index);
  }

  auto base_of = [&](const Partition& p) -> std::string {
    switch (p.tier) {
      case Tier::Model: return sanitize(model_name.empty() ? "model" : model_name);
      case Tier::Layer: {
        // A container's class says nothing ("Sequential"): its attribute name does ("downsample").
        static const std::set<std::string> containers = {"Sequential", "ModuleList", "ModuleDict"};
        std::string last = p.module_path.substr(p.module_path.rfind('.') == std::string::npos ? 0 : p.module_path.rfind('.') + 1);
        if (!last.empty() && std::all_of(last.begin(), last.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
          // An item of a ModuleList ("layers.3"): the list's name says what it is.
          std::string parent = p.module_path.substr(0, p.module_path.size() - last.size() - (p.module_path.size() > last.size() ? 1 : 0));
          last = parent.substr(parent.rfind('.') == std::string::npos ? 0 : parent.rfind('.') + 1);
        }
        std::string cls = containers.count(p.module_class) && !last.empty() ? sanitize(last)
                                                                          : snakeCase(p.module_class.empty() ? "layer" : p.module_class);
        auto stage = p.id.rfind(".stage");
        if (stage == std::string::npos) stage = p.id.find(":stage");
        return stage == std::string::npos ? cls : cls + "_stage";
      }
      case Tier::Fusion: {
        for (int c : p.children) {
          const Partition& k = tree.partitions[c];
          const OpInfo* info = findOpInfo(g, g.nodes[k.kernel_node]);
          if (info && info->pattern == FusionPattern::OutElementwiseFusable) {
            std::string signature = kernelName(g, g.nodes[k.kernel_node]).signature;
            return p.template_label + (signature.empty() ? "" : "_" + signature);
          }
        }
        return p.template_label;
      }
      case Tier::Kernel: return sanitize(kernelName(g, g.nodes[p.kernel_node]).full());
    }
    return "partition";
  };

  // Escalate the signature level of colliding names until every name in a tier is unique.
  // Layers always carry their input shape: a class name alone says little about the workload.
  std::vector<int> level(tree.workloads.size(), 0);
  for (size_t w = 0; w < tree.workloads.size(); ++w) level[w] = tree.workloads[w].tier == Tier::Layer ? 1 : 0;
  for (int round = 0; round < 4; ++round) {
    std::map<std::pair<Tier, std::string>, std::vector<int>> names;
    for (size_t w = 0; w < tree.workloads.size(); ++w) {
      const Partition& p = tree.partitions[tree.workloads[w].instances[0]];
      std::string name = base_of(p);
      if (level[w] >= 1) name += "_" + activationSignature(g, p, parameters, level[w] >= 2);
      if (level[w] >= 2) {
        for (int n : p.nodes) {
          const Node& node = g.nodes[n];
          const OpInfo* info = findOpInfo(g, node);
          bool view = node.kind.rfind("aten::", 0) == 0 || node.aten.translated();
          if (info && info->category == OpCategory::Metadata && view) {
            name += "_" + viewWord(node);  // the views that tell two such workloads apart
          }
        }
      }
      if (level[w] >= 3) name += "_" + hash(tree.workloads[w].key);
      if (name.size() > kMaxSignatureChars) {
        // A cat of 20 inputs spells 20 shapes: past a file name's limit. Keep the head, and the
        // identity's hash keeps it unique.
        std::string head = name.substr(0, kMaxSignatureChars - 20);
        name = head.substr(0, head.rfind('_')) + "_" + hash(tree.workloads[w].key);
      }
      if (p.tier != Tier::Model) name += "_" + dtypeOf(g, p);
      tree.workloads[w].name = sanitize(name);
      names[{p.tier, tree.workloads[w].name}].push_back(static_cast<int>(w));
    }
    bool collided = false;
    for (const auto& [name, ws] : names) {
      if (ws.size() < 2) continue;
      collided = true;
      for (int w : ws) level[w] = std::min(level[w] + 1, 3);
    }
    if (!collided) return;
  }
}

}  // namespace kdecomp::detail
