// Each partitioner pass run alone and printed (kdecomp/partition_passes.h). The printers show
// node ids, never indices, so a text test reads like the graph it was written as.
#include <map>
#include <sstream>
#include <stdexcept>

#include "kdecomp/partition_passes.h"
#include "partition_internal.h"

namespace kdecomp {

namespace {

using detail::KernelGraph;

const std::string& kernelId(const Graph& g, const KernelGraph& kg, int kernel) {
  return g.nodes[kg.kernel_nodes[kernel]].id;
}

std::string printKernels(const Graph& g) {
  KernelGraph kg = detail::buildKernelGraph(g);
  std::ostringstream out;
  for (const Node& n : g.nodes) {
    int k = kg.kernel_of_node[n.index];
    if (k < 0) {
      out << "glue " << n.id << ": " << n.kind << "\n";
    } else {
      out << "kernel " << n.id << ": " << n.kind << " " << toString(kg.info[k]->category) << " "
          << toString(kg.info[k]->pattern) << "\n";
    }
  }
  for (size_t p = 0; p < kg.consumers.size(); ++p) {
    for (int c : kg.consumers[p]) {
      out << "edge " << kernelId(g, kg, static_cast<int>(p)) << " -> " << kernelId(g, kg, c) << ": "
          << toString(detail::edgePattern(g, kg, static_cast<int>(p), c)) << "\n";
    }
  }
  for (size_t k = 0; k < kg.reaches_output.size(); ++k) {
    if (kg.reaches_output[k]) out << "output " << kernelId(g, kg, static_cast<int>(k)) << "\n";
  }
  return out.str();
}

std::string kernelList(const Graph& g, const KernelGraph& kg, const std::vector<int>& kernels) {
  std::string s;
  for (size_t i = 0; i < kernels.size(); ++i) s += (i ? ", " : "") + kernelId(g, kg, kernels[i]);
  return s;
}

std::string printLayers(const Graph& g) {
  KernelGraph kg = detail::buildKernelGraph(g);
  std::vector<detail::LayerSpec> layers = detail::findLayers(g, kg);
  std::ostringstream out;
  if (layers.empty()) out << "no layers\n";
  for (const detail::LayerSpec& l : layers) {
    out << l.id << " module=" << (l.module_path.empty() ? "<root>" : l.module_path) << " (" << l.module_class
        << "): " << kernelList(g, kg, l.kernels) << "\n";
  }
  return out.str();
}

std::string printFusion(const Graph& g, const PartitionOptions& options) {
  KernelGraph kg = detail::buildKernelGraph(g);
  std::vector<detail::LayerSpec> layers = detail::findLayers(g, kg);
  std::vector<int> region(kg.kernel_nodes.size(), -1);
  for (size_t l = 0; l < layers.size(); ++l) {
    for (int k : layers[l].kernels) region[k] = static_cast<int>(l);
  }
  detail::FusionResult fusion = detail::fuseKernels(g, kg, region, options);
  std::map<int, std::vector<int>> groups;
  for (size_t k = 0; k < fusion.group_of_kernel.size(); ++k)
    groups[fusion.group_of_kernel[k]].push_back(static_cast<int>(k));
  std::ostringstream out;
  for (const auto& [gid, members] : groups) {
    if (members.size() < 2) continue;
    std::vector<std::string> kinds;
    for (int k : members) kinds.push_back(g.nodes[kg.kernel_nodes[k]].atenKind());
    out << "group [" << detail::fusionTemplate(kinds) << "] " << kernelList(g, kg, members)
        << (fusion.group_capped[gid] ? " (size cap)" : "") << "\n";
  }
  for (const FusionBreak& b : fusion.breaks) {
    out << "not fused: " << kernelId(g, kg, b.producer) << " -> " << kernelId(g, kg, b.consumer) << ": " << b.reason
        << "\n";
  }
  return out.str();
}

std::string printPartition(const Graph& g, const PartitionOptions& options) {
  return formatPartitionTree(g, partitionGraph(g, options));
}

std::string printWorkloads(const Graph& g, const PartitionOptions& options) {
  PartitionTree tree = partitionGraph(g, options);
  std::ostringstream out;
  for (Tier tier : {Tier::Kernel, Tier::Fusion, Tier::Layer, Tier::Model}) {
    for (const Workload& w : tree.workloads) {
      if (w.tier != tier) continue;
      out << toString(tier) << " " << w.name << " x" << w.instances.size() << ":";
      for (int p : w.instances) out << " " << tree.partitions[p].id;
      out << "\n";
    }
  }
  return out.str();
}

}  // namespace

const std::vector<std::string>& partitionPassNames() {
  static const std::vector<std::string> names = {"kernels", "layers", "fusion", "partition", "workloads"};
  return names;
}

std::string runPartitionPass(const std::string& pass, const Graph& graph, const PartitionOptions& options) {
  if (pass == "kernels") return printKernels(graph);
  if (pass == "layers") return printLayers(graph);
  if (pass == "fusion") return printFusion(graph, options);
  if (pass == "partition") return printPartition(graph, options);
  if (pass == "workloads") return printWorkloads(graph, options);
  std::string known;
  for (const std::string& name : partitionPassNames()) known += (known.empty() ? "" : ", ") + name;
  throw std::invalid_argument("no partitioner pass `" + pass + "` (passes: " + known + ")");
}

}  // namespace kdecomp
