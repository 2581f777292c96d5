// The partitioner's driver: kernels from the op table, layers from the module hierarchy,
// fusions from FuseOps inside each layer, glue to the smallest enclosing group, then the
// boundaries, costs and workload names of every partition.
#include <algorithm>
#include <map>
#include <set>

#include "kdecomp/analysis.h"
#include "partition_internal.h"

namespace kdecomp {

const char* toString(Tier tier) {
  switch (tier) {
    case Tier::Kernel: return "kernel";
    case Tier::Fusion: return "fusion";
    case Tier::Layer: return "layer";
    case Tier::Model: return "model";
  }
  return "kernel";
}

const char* tierDirectory(Tier tier) {
  switch (tier) {
    case Tier::Kernel: return "level_0_kernel";
    case Tier::Fusion: return "level_1_fusion";
    case Tier::Layer: return "level_2_layer";
    case Tier::Model: return "level_3_model";
  }
  return "level_0_kernel";
}

int PartitionTree::count(Tier tier) const {
  return static_cast<int>(std::count_if(partitions.begin(), partitions.end(), [&](const Partition& p) { return p.tier == tier; }));
}

namespace detail {

KernelGraph buildKernelGraph(const Graph& g) {
  KernelGraph kg;
  kg.kernel_of_node.assign(g.nodes.size(), -1);
  for (const Node& n : g.nodes) {
    // An op in no table is one opaque compute kernel (never fused), never an error.
    const OpInfo& info = opInfoOrOpaque(g, n);
    if (info.category == OpCategory::Metadata) continue;
    kg.kernel_of_node[n.index] = static_cast<int>(kg.kernel_nodes.size());
    kg.kernel_nodes.push_back(n.index);
    kg.info.push_back(&info);
  }
  // Kernels whose results reach each value, looking through glue.
  std::vector<std::set<int>> sources(g.values.size());
  for (const Node& n : g.nodes) {
    int k = kg.kernel_of_node[n.index];
    for (int out : n.outputs) {
      if (k >= 0) {
        sources[out] = {k};
      } else {
        for (int in : n.inputs) sources[out].insert(sources[in].begin(), sources[in].end());
      }
    }
  }
  size_t nk = kg.kernel_nodes.size();
  kg.consumers.resize(nk);
  kg.producers.resize(nk);
  kg.reaches_output.assign(nk, false);
  for (size_t k = 0; k < nk; ++k) {
    const Node& n = g.nodes[kg.kernel_nodes[k]];
    std::set<int> producers;
    for (int in : n.inputs) producers.insert(sources[in].begin(), sources[in].end());
    producers.erase(static_cast<int>(k));
    for (int p : producers) {
      kg.producers[k].push_back(p);
      kg.consumers[p].push_back(static_cast<int>(k));
    }
  }
  for (auto& c : kg.consumers) std::sort(c.begin(), c.end());
  for (int out : g.outputs) {
    for (int k : sources[out]) kg.reaches_output[k] = true;
  }
  return kg;
}

}  // namespace detail

namespace {

using detail::KernelGraph;

const std::set<std::string> kContainerClasses = {"Sequential", "ModuleList", "ModuleDict"};

// torch.nn leaf modules whose forward is one ATen op in TorchScript (aten::linear, aten::gelu,
// aten::lstm over all layers, ...), however many nodes the ONNX exporter writes for it.
// clang-format off
const std::set<std::string> kSingleOpModules = {
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "BatchNorm1d",
    "BatchNorm2d", "BatchNorm3d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "ELU", "Embedding", "GELU", "GRU",
    "GroupNorm", "Hardsigmoid", "Hardswish", "Hardtanh", "InstanceNorm2d", "LayerNorm", "LeakyReLU", "Linear",
    "LogSoftmax", "LSTM", "MaxPool1d", "MaxPool2d", "Mish", "PixelShuffle", "ReLU", "ReLU6", "RNN", "Sigmoid", "SiLU",
    "Softmax", "Softplus", "Tanh", "Upsample",
};
// clang-format on

// Both read the ATen twin's kind (atenKind), so that onnx::MaxPool and onnx::Conv cut stages too.
bool isPool(const std::string& aten_kind) { return aten_kind.find("pool") != std::string::npos; }

bool isStridedConv(const Node& n, const std::string& aten_kind) {
  if (aten_kind.find("conv") == std::string::npos) return false;
  const AttributeValue* stride = n.attribute("stride");
  if (!stride) stride = n.attribute("strides");  // ONNX
  if (!stride) return false;
  if (auto v = std::get_if<std::vector<int64_t>>(stride)) {
    return std::any_of(v->begin(), v->end(), [](int64_t s) { return s > 1; });
  }
  if (auto v = std::get_if<int64_t>(stride)) return *v > 1;
  return false;
}

bool isUnder(const std::string& path, const std::string& module) {
  if (module.empty()) return true;
  return path == module || (path.size() > module.size() && path.compare(0, module.size(), module) == 0 &&
                            path[module.size()] == '.');
}

struct LayerSpec {
  std::string id;
  std::string module_path;
  std::string module_class;
  std::vector<int> kernels;  // kernel indices, ascending
};

// Layers from the module hierarchy (DECOMPOSITION.md): containers are transparent, modules with
// fewer than 2 kernels are not layers, no layer in a layer, flat sequences of single-op modules
// are cut into stages at pooling / strided-conv boundaries, and no layer equals the model.
class LayerFinder {
 public:
  LayerFinder(const Graph& g, const KernelGraph& kg) : g_(g), kg_(kg) {
    for (const ModuleInfo& m : g.modules) modules_[m.path] = &m;
    total_ = static_cast<int>(kg.kernel_nodes.size());
  }

  std::vector<LayerSpec> find() {
    visit("");
    std::sort(layers_.begin(), layers_.end(), [](const LayerSpec& a, const LayerSpec& b) { return a.kernels[0] < b.kernels[0]; });
    return layers_;
  }

 private:
  std::vector<int> kernelsUnder(const std::string& path) const {
    std::vector<int> ks;
    for (size_t k = 0; k < kg_.kernel_nodes.size(); ++k) {
      if (isUnder(g_.nodes[kg_.kernel_nodes[k]].module_path, path)) ks.push_back(static_cast<int>(k));
    }
    return ks;
  }
  // Kernels of a module, where a leaf module reused for one op (one nn.ReLU called twice) counts
  // as a single-op module: its calls are separate uses, not one building block. So does a leaf
  // torch.nn module of ONNX ops: the exporter spells the one ATen op TorchScript shows for it in
  // several nodes (nn.Linear on 3-D input: MatMul + Add; nn.GELU: Div, Erf, Add, Mul, Mul).
  int count(const std::string& path) const {
    std::vector<int> ks = kernelsUnder(path);
    if (ks.size() >= 2 && !path.empty() && children(path).empty()) {
      const std::string& kind = g_.nodes[kg_.kernel_nodes[ks[0]]].kind;
      bool one_op = std::all_of(ks.begin(), ks.end(), [&](int k) { return g_.nodes[kg_.kernel_nodes[k]].kind == kind; });
      if (one_op) return 1;
      bool onnx = std::all_of(ks.begin(), ks.end(),
                              [&](int k) { return g_.nodes[kg_.kernel_nodes[k]].kind.rfind("onnx::", 0) == 0; });
      if (onnx && kSingleOpModules.count(className(path))) return 1;
    }
    return static_cast<int>(ks.size());
  }
  bool isContainer(const std::string& path) const {
    auto it = modules_.find(path);
    return it != modules_.end() && kContainerClasses.count(it->second->class_name) > 0;
  }
  const std::vector<std::string>& children(const std::string& path) const {
    static const std::vector<std::string> none;
    auto it = modules_.find(path);
    return it == modules_.end() ? none : it->second->children;
  }
  bool allChildrenAtomic(const std::string& path) const {
    for (const std::string& c : children(path)) {
      if (count(c) >= 2) return false;
    }
    return true;
  }
  // Building blocks directly beneath a module, looking through containers.
  int units(const std::string& path) const {
    int n = 0;
    for (const std::string& c : children(path)) {
      if (count(c) < 2) continue;
      if (isContainer(c)) {
        int inner = units(c);
        n += inner > 0 ? inner : 1;
      } else {
        ++n;
      }
    }
    return n;
  }
  std::string className(const std::string& path) const {
    auto it = modules_.find(path);
    return it == modules_.end() ? "" : it->second->class_name;
  }

  void addLayer(const std::string& id, const std::string& path, std::vector<int> kernels) {
    if (kernels.size() < 2 || static_cast<int>(kernels.size()) >= total_) return;
    layers_.push_back({id, path, className(path), std::move(kernels)});
  }

  // Cuts the kernels of a flat module into stages; returns false when there is only one.
  void stage(const std::string& path) {
    std::vector<int> ks = kernelsUnder(path);
    std::vector<std::vector<int>> stages(1);
    for (int k : ks) {
      const Node& n = g_.nodes[kg_.kernel_nodes[k]];
      std::string aten_kind = detail::atenKind(g_, n);
      if (isStridedConv(n, aten_kind) && !stages.back().empty()) stages.emplace_back();
      stages.back().push_back(k);
      if (isPool(aten_kind)) stages.emplace_back();
    }
    if (stages.back().empty()) stages.pop_back();
    if (stages.size() == 1) {
      if (!path.empty()) addLayer("layer:" + path, path, ks);
      return;
    }
    for (size_t i = 0; i < stages.size(); ++i) {
      std::string prefix = path.empty() ? "stage" : path + ".stage";
      addLayer("layer:" + prefix + std::to_string(i), path, stages[i]);
    }
  }

  void visit(const std::string& path) {
    int kernels = count(path);
    if (kernels < 2) return;
    bool is_root = path.empty();
    if (!is_root && kernels < total_) {
      if (!isContainer(path) && units(path) < 2) {
        addLayer("layer:" + path, path, kernelsUnder(path));
        return;
      }
      if (isContainer(path) && allChildrenAtomic(path)) {
        stage(path);
        return;
      }
    }
    if (allChildrenAtomic(path)) {
      // A flat module (LeNet's, AlexNet's root): its own ops and single-op children.
      if (is_root || kernels < total_) stage(path);
      return;
    }
    for (const std::string& c : children(path)) visit(c);
  }

  const Graph& g_;
  const KernelGraph& kg_;
  std::map<std::string, const ModuleInfo*> modules_;
  int total_ = 0;
  std::vector<LayerSpec> layers_;
};

class TreeBuilder {
 public:
  TreeBuilder(const Graph& g, const PartitionOptions& options) : g_(g), options_(options), kg_(detail::buildKernelGraph(g)) {}

  PartitionTree build() {
    std::vector<LayerSpec> layers = LayerFinder(g_, kg_).find();
    size_t nk = kg_.kernel_nodes.size();
    std::vector<int> region(nk, -1);  // layer index, -1: directly under the model
    for (size_t l = 0; l < layers.size(); ++l) {
      for (int k : layers[l].kernels) region[k] = static_cast<int>(l);
    }
    detail::FusionResult fusion = detail::fuseKernels(g_, kg_, region, options_);

    Partition root;
    root.id = "root";
    root.tier = Tier::Model;
    root.module_class = g_.findModule("") ? g_.findModule("")->class_name : "";
    add(std::move(root));

    // Kernels first, so that their partition index is known to the groups above them.
    std::vector<int> kernel_partition(nk);
    for (size_t k = 0; k < nk; ++k) {
      const Node& n = g_.nodes[kg_.kernel_nodes[k]];
      Partition p;
      p.id = n.id;
      p.tier = Tier::Kernel;
      p.kernel_node = n.index;
      p.module_path = n.module_path;
      p.module_class = n.module_class;
      p.template_label = n.opName();
      kernel_partition[k] = add(std::move(p));
    }
    std::vector<int> layer_partition;
    for (const LayerSpec& l : layers) {
      Partition p;
      p.id = l.id;
      p.tier = Tier::Layer;
      p.module_path = l.module_path;
      p.module_class = l.module_class;
      layer_partition.push_back(add(std::move(p)));
    }
    // Fusion groups of two or more kernels.
    std::map<int, std::vector<int>> groups;
    for (size_t k = 0; k < nk; ++k) groups[fusion.group_of_kernel[k]].push_back(static_cast<int>(k));
    std::map<int, int> fusion_partition;  // group id -> partition
    for (const auto& [gid, members] : groups) {
      if (members.size() < 2) continue;
      const Node& first = g_.nodes[kg_.kernel_nodes[members[0]]];
      std::vector<std::string> kinds;
      int master = members[0];
      for (int k : members) {
        const Node& n = g_.nodes[kg_.kernel_nodes[k]];
        if (!detail::isLinearBias(g_, n)) kinds.push_back(detail::atenKind(g_, n));
        if (kg_.info[k]->pattern == FusionPattern::OutElementwiseFusable && kg_.info[master]->pattern != FusionPattern::OutElementwiseFusable) master = k;
      }
      // ONNX's MatMul + bias Add alone is how the exporter spells the one linear kernel
      // TorchScript shows (nn.Linear on 3-D input): two kernels, but no fusion of their own.
      if (kinds.size() < 2) continue;
      Partition p;
      p.id = "fusion:" + g_.nodes[kg_.kernel_nodes[master]].id;
      p.tier = Tier::Fusion;
      p.module_path = first.module_path;
      p.module_class = first.module_class;
      p.template_label = detail::fusionTemplate(kinds);
      p.size_capped = fusion.group_capped[gid];
      fusion_partition[gid] = add(std::move(p));
    }
    // Parents: kernel -> fusion | layer | root; fusion -> layer | root; layer -> root.
    for (size_t k = 0; k < nk; ++k) {
      int gid = fusion.group_of_kernel[k];
      auto f = fusion_partition.find(gid);
      int parent = f != fusion_partition.end() ? f->second : (region[k] >= 0 ? layer_partition[region[k]] : 0);
      link(parent, kernel_partition[k]);
      if (f != fusion_partition.end() && tree_.partitions[f->second].parent < 0) {
        link(region[k] >= 0 ? layer_partition[region[k]] : 0, f->second);
      }
    }
    for (int lp : layer_partition) link(0, lp);
    for (const auto& b : fusion.breaks) {
      tree_.fusion_breaks.push_back({kernel_partition[b.producer], kernel_partition[b.consumer], b.reason});
    }
    assignGlue(kernel_partition);
    finish();
    detail::assignWorkloads(g_, tree_, g_.name);
    return std::move(tree_);
  }

 private:
  int add(Partition p) {
    p.index = static_cast<int>(tree_.partitions.size());
    tree_.partitions.push_back(std::move(p));
    return tree_.partitions.back().index;
  }
  void link(int parent, int child) {
    tree_.partitions[child].parent = parent;
    tree_.partitions[parent].children.push_back(child);
  }
  int depth(int p) const {
    int d = 0;
    while (tree_.partitions[p].parent >= 0) {
      p = tree_.partitions[p].parent;
      ++d;
    }
    return d;
  }
  int lowestCommonAncestor(int a, int b) const {
    int da = depth(a), db = depth(b);
    while (da > db) a = tree_.partitions[a].parent, --da;
    while (db > da) b = tree_.partitions[b].parent, --db;
    while (a != b) a = tree_.partitions[a].parent, b = tree_.partitions[b].parent;
    return a;
  }

  // Glue belongs to the smallest partition that encloses all its consumers (or, for glue that
  // only feeds the model's outputs, its producer's partition).
  void assignGlue(const std::vector<int>& kernel_partition) {
    std::vector<int> owner(g_.nodes.size(), -1);
    for (size_t k = 0; k < kg_.kernel_nodes.size(); ++k) owner[kg_.kernel_nodes[k]] = kernel_partition[k];
    for (int i = static_cast<int>(g_.nodes.size()) - 1; i >= 0; --i) {
      if (owner[i] >= 0) continue;
      const Node& n = g_.nodes[i];
      int target = -1;
      for (int out : n.outputs) {
        for (int user : g_.values[out].users) {
          if (owner[user] < 0) continue;
          target = target < 0 ? owner[user] : lowestCommonAncestor(target, owner[user]);
        }
      }
      if (target < 0) {
        for (int in : n.inputs) {
          int producer = g_.values[in].producer;
          if (producer >= 0 && producer < i && owner[producer] >= 0) {
            target = target < 0 ? owner[producer] : lowestCommonAncestor(target, owner[producer]);
          }
        }
      }
      if (target < 0) target = 0;
      owner[i] = target;
      tree_.partitions[target].glue.push_back(i);
    }
    for (Partition& p : tree_.partitions) std::sort(p.glue.begin(), p.glue.end());
  }

  // Subtree node sets (bottom-up), boundaries, costs; children sorted by first node.
  void finish() {
    std::vector<NodeCost> costs;
    for (const Node& n : g_.nodes) costs.push_back(nodeCost(g_, n));
    std::set<int> model_outputs(g_.outputs.begin(), g_.outputs.end());
    std::set<int> parameter_values;
    for (const Parameter& p : g_.parameters) parameter_values.insert(p.value);
    // Partitions were added children-before-parents only for kernels; order by depth instead.
    std::vector<int> order(tree_.partitions.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::vector<int> depths;
    for (size_t i = 0; i < order.size(); ++i) depths.push_back(depth(static_cast<int>(i)));
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return depths[a] > depths[b]; });
    for (int idx : order) {
      Partition& p = tree_.partitions[idx];
      std::vector<int> nodes = p.glue;
      if (p.kernel_node >= 0) nodes.push_back(p.kernel_node);
      for (int c : p.children) {
        const auto& cn = tree_.partitions[c].nodes;
        nodes.insert(nodes.end(), cn.begin(), cn.end());
      }
      std::sort(nodes.begin(), nodes.end());
      p.nodes = nodes;
      std::sort(p.children.begin(), p.children.end(), [&](int a, int b) {
        return tree_.partitions[a].nodes.front() < tree_.partitions[b].nodes.front();
      });
      std::set<int> member(nodes.begin(), nodes.end());
      std::set<int> produced, seen_inputs, outputs;
      std::vector<int> inputs;  // in order of first use: the order of a replay function's arguments
      for (int n : nodes) {
        for (int out : g_.nodes[n].outputs) produced.insert(out);
      }
      p.flops = 0;
      for (int n : nodes) {
        p.flops += costs[n].flops;
        for (int in : g_.nodes[n].inputs) {
          if (!produced.count(in) && seen_inputs.insert(in).second) inputs.push_back(in);
        }
        for (int out : g_.nodes[n].outputs) {
          bool escapes = model_outputs.count(out) > 0;
          for (int user : g_.values[out].users) escapes |= !member.count(user);
          if (escapes) outputs.insert(out);
        }
      }
      p.inputs = inputs;
      p.outputs.assign(outputs.begin(), outputs.end());
      p.bytes = 0;
      p.params = 0;
      for (int v : p.inputs) {
        p.bytes += g_.values[v].bytes();
        if (parameter_values.count(v)) p.params += g_.values[v].numel();
      }
      for (int v : p.outputs) p.bytes += g_.values[v].bytes();
    }
    for (const Node& n : g_.nodes) {
      if (kg_.kernel_of_node[n.index] >= 0) ++tree_.source_ops;
    }
    std::vector<int> covered(g_.nodes.size(), 0);
    for (const Partition& p : tree_.partitions) {
      if (p.tier == Tier::Kernel) covered[p.kernel_node]++;
    }
    for (const Node& n : g_.nodes) {
      if (kg_.kernel_of_node[n.index] >= 0 && covered[n.index] == 1) ++tree_.covered_ops;
    }
  }

  const Graph& g_;
  const PartitionOptions& options_;
  KernelGraph kg_;
  PartitionTree tree_;
};

}  // namespace

PartitionTree partitionGraph(const Graph& graph, const PartitionOptions& options) {
  PartitionTree tree = TreeBuilder(graph, options).build();
  checkInvariants(graph, tree);
  return tree;
}

}  // namespace kdecomp
