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

namespace {

using detail::KernelGraph;
using detail::LayerSpec;

class TreeBuilder {
 public:
  TreeBuilder(const Graph& g, const PartitionOptions& options) : g_(g), options_(options), kg_(detail::buildKernelGraph(g)) {}

  PartitionTree build() {
    std::vector<LayerSpec> layers = detail::findLayers(g_, kg_);
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
        if (!n.aten.linear_bias) kinds.push_back(n.atenKind());
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